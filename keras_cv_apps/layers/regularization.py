"""Structured dropout for CNNs: stochastic depth (drop a whole residual branch per sample) and
DropBlock (drop contiguous squares of a feature map). Both act only when ``training=True`` and
are the identity at inference, so they vanish from exported models.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_cv_apps._validate import check_int
from keras_cv_apps.layers._compose import check_rate


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class StochasticDepth(keras.layers.Layer):
    """Drop a residual branch for a whole sample with probability ``rate`` (Huang et al., 2016).

    Apply it to the branch before the addition: ``x + StochasticDepth(0.1)(branch)``. In
    training each sample's branch is kept with probability ``1 - rate`` and then divided by
    ``1 - rate``, so the expected output equals the input; at inference it is the identity.
    """

    def __init__(self, rate=0.1, *, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate(rate, "StochasticDepth rate")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        keep = 1.0 - self.rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        u = keras.random.uniform(shape, dtype=inputs.dtype, seed=self.seed_generator)
        return inputs * ops.cast(u < keep, inputs.dtype) / keep

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class DropBlock(keras.layers.Layer):
    """Zero ``block_size x block_size`` squares of a ``(B, H, W, C)`` map (Ghiasi et al., 2018),
    so that a fraction ``rate`` of the activations is dropped, then rescale what is kept.

    Block centres are drawn on a grid padded by ``block_size - 1`` (blocks may overlap the
    border and are clipped), so every position of the map is covered by exactly ``block_size²``
    candidate centres, whatever the height and width. A position then survives with probability
    ``(1 - gamma) ** block_size²``; choosing ``gamma = 1 - (1 - rate) ** (1 / block_size²)`` makes
    the expected dropped fraction exactly ``rate`` on square and non-square maps, including the
    overlap of neighbouring blocks (the paper's ``gamma`` is a first-order approximation computed
    from the map's area; KerasCV's version also puts the width where the height belongs). The
    kept activations are scaled by ``size / kept`` per sample.

    Args:
        rate: the fraction of activations to drop (0.1 to 0.3 in the paper, often ramped up).
        block_size: side of the dropped squares.
        per_channel: an independent mask per channel (the paper's Algorithm 1); False shares one
            mask across channels.
        seed: for the random centres.
    """

    def __init__(self, rate=0.1, block_size=3, *, per_channel=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate(rate, "DropBlock rate")
        self.block_size = check_int(block_size, "DropBlock block_size", minimum=1)
        self.per_channel = bool(per_channel)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def gamma(self) -> float:
        """Probability that a candidate position becomes a block centre."""
        return 1.0 - (1.0 - self.rate) ** (1.0 / self.block_size ** 2)

    def mask(self, inputs):
        """The keep mask (1 = kept) for ``inputs``, drawn anew on every call."""
        shape = ops.shape(inputs)
        pad = self.block_size - 1
        channels = shape[3] if self.per_channel else 1
        u = keras.random.uniform((shape[0], shape[1] + pad, shape[2] + pad, channels), seed=self.seed_generator)
        centres = ops.cast(u < self.gamma, "float32")
        dropped = ops.max_pool(centres, pool_size=self.block_size, strides=1, padding="valid")
        return 1.0 - dropped

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        keep = ops.cast(self.mask(inputs), inputs.dtype)
        keep = ops.broadcast_to(keep, ops.shape(inputs))
        size = ops.cast(ops.prod(ops.shape(inputs)[1:]), inputs.dtype)
        kept = ops.sum(keep, axis=(1, 2, 3), keepdims=True)
        return inputs * keep * (size / ops.maximum(kept, 1.0))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "block_size": self.block_size,
                "per_channel": self.per_channel, "seed": self.seed}
