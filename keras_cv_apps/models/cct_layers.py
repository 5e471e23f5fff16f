"""Layers of the compact transformer: sequence pooling (stochastic depth is ``layers.StochasticDepth``)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class SeqPool(keras.layers.Layer):
    """Sequence pooling (Hassani et al., 2021): a learned score per token, softmax over the tokens,
    and the score-weighted sum of the tokens: ``(B, N, D) -> (B, D)``. It replaces the class token."""

    def build(self, input_shape):
        self.score_kernel = self.add_weight(name="score_kernel", shape=(int(input_shape[-1]), 1),
                                            initializer="glorot_uniform")
        self.score_bias = self.add_weight(name="score_bias", shape=(1,), initializer="zeros")

    def call(self, x):
        weights = ops.softmax(ops.matmul(x, self.score_kernel) + self.score_bias, axis=1)  # (B, N, 1)
        return ops.reshape(ops.matmul(ops.transpose(weights, (0, 2, 1)), x), (-1, x.shape[-1]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])
