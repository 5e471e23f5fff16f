"""Layers of the compact transformer: sequence pooling and stochastic depth."""

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


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class StochasticDepth(keras.layers.Layer):
    """Drop a residual branch for a whole example with probability ``rate`` while training (Huang et
    al., 2016), scaling kept branches by ``1 / (1 - rate)``; the identity at inference."""

    def __init__(self, *, rate: float = 0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"StochasticDepth rate must be in [0, 1), got {rate!r}.")
        self.rate = float(rate)
        self.seed = seed
        self._generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        mask = ops.floor(keep + keras.random.uniform(shape, seed=self._generator))
        return x * mask / keep

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
