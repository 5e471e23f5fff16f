"""Local response normalisation (Krizhevsky et al., 2012), as AlexNet used it."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class LocalResponseNormalization(keras.layers.Layer):
    """Normalise each activation by the energy of its neighbours across channels.

    ``b[..., c] = a[..., c] / (k + alpha * sum_{j=c-n//2}^{c+n//2} a[..., j]**2) ** beta``

    with the paper's defaults ``k=2, n=5, alpha=1e-4, beta=0.75`` (channels last). The sum is
    written with padding and shifted slices, so the layer exports to TFLite with built-in ops.
    """

    def __init__(self, *, depth=5, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        if depth < 1 or depth % 2 == 0:
            raise ValueError(f"LocalResponseNormalization depth must be a positive odd number, got {depth}.")
        self.depth = depth
        self.bias = bias
        self.alpha = alpha
        self.beta = beta

    def call(self, inputs):
        radius = self.depth // 2
        channels = inputs.shape[-1]
        squared = ops.square(inputs)
        padded = ops.pad(squared, [[0, 0]] * (len(inputs.shape) - 1) + [[radius, radius]])
        window_sum = padded[..., 0:channels]
        for offset in range(1, self.depth):
            window_sum = window_sum + padded[..., offset : offset + channels]
        return inputs / ops.power(self.bias + self.alpha * window_sum, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "depth": self.depth,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }
