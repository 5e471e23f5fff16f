"""The reparameterisation trick of a variational autoencoder as a layer."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class Sampling(keras.layers.Layer):
    """Draw ``z = mean + exp(log_var / 2) * eps`` with ``eps ~ N(0, I)``.

    Written this way the sample is a differentiable function of ``mean`` and ``log_var``, so the
    gradient of a loss on ``z`` reaches the encoder (Kingma & Welling, 2014). The layer always
    samples; call the decoder on ``mean`` for a deterministic reconstruction.

    Args:
        seed: optional integer seed of the layer's own random stream.
    """

    def __init__(self, *, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mean, log_var = inputs
        eps = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
