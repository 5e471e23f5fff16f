"""Weight-standardised convolution, the convolution of every BiT ResNet."""

from __future__ import annotations

import keras
from keras import ops

EPSILON = 1e-10  # the released BiT code's epsilon


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class StandardizedConv2D(keras.layers.Conv2D):
    """A ``Conv2D`` whose kernel is standardised before each use (Qiao et al., 2019):
    ``(w - mean) / sqrt(var + 1e-10)`` with the mean and the biased variance taken over the
    kernel's height, width and input channels, separately for each output channel.

    The stored kernel stays the raw one (as in the released checkpoints); TFLite folds the
    standardisation into a constant kernel at export.
    """

    def convolution_op(self, inputs, kernel):
        mean = ops.mean(kernel, axis=(0, 1, 2), keepdims=True)
        var = ops.mean(ops.square(kernel - mean), axis=(0, 1, 2), keepdims=True)
        return super().convolution_op(inputs, (kernel - mean) / ops.sqrt(var + EPSILON))

    def get_config(self):
        # tuples as lists: the config reads back the same after a JSON round trip
        return {key: list(value) if isinstance(value, tuple) else value for key, value in super().get_config().items()}
