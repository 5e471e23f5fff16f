"""Attention for feature maps: channel attention (squeeze-and-excitation) and spatial
multi-head self-attention over the positions of a 2-D map.

Both export to TFLite with built-in ops. Squeeze-and-excitation uses a keep-dims mean and 1x1
convolutions (not ``Dense``), and its default ``hard_sigmoid`` gate is ``relu6(x + 3) / 6``,
so the int8 graph is MEAN, CONV_2D, ADD, MUL ops that XNNPACK runs in int8.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_cv_apps._validate import check_choice, check_int, check_number
from keras_cv_apps.layers._compose import channels_of, check_activation

GATES = ("sigmoid", "hard_sigmoid")


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class SqueezeExcitation(keras.layers.Layer):
    """Rescale each channel by a gate computed from the whole map (Hu et al., 2018).

    ``s = gate(W2 act(W1 mean_hw(x)))``, output ``x * s``. The squeeze has
    ``squeeze_channels`` units, else ``int(channels * ratio)``; a ratio that leaves no channel is
    refused (``ValueError`` naming ``ratio``).

    Args:
        ratio: squeeze width as a fraction of the input channels (0.25 in MobileNetV3/EfficientNet
            when counted on the block input; 1/16 in the paper).
        squeeze_channels: explicit squeeze width (overrides ``ratio``; MBConv passes it).
        activation: of the squeeze.
        gate: ``sigmoid`` or ``hard_sigmoid`` (int8-friendly).
    """

    def __init__(self, *, ratio=0.25, squeeze_channels=None, activation="relu", gate="hard_sigmoid", **kwargs):
        super().__init__(**kwargs)
        self.ratio = check_number(ratio, "SqueezeExcitation ratio", minimum=0, maximum=1, min_inclusive=False)
        self.squeeze_channels = (None if squeeze_channels is None
                                 else check_int(squeeze_channels, "SqueezeExcitation squeeze_channels", minimum=1))
        self.activation = check_activation(activation, "SqueezeExcitation activation")
        self.gate = check_choice(gate, GATES, "SqueezeExcitation gate")

    def build(self, input_shape):
        channels = channels_of(input_shape, "SqueezeExcitation")
        squeeze = self.squeeze_channels or int(channels * self.ratio)
        if squeeze < 1:
            raise ValueError(f"SqueezeExcitation ratio={self.ratio} leaves {channels} x {self.ratio} < 1 squeeze "
                             f"channel; use ratio >= {1 / channels:.3g} or squeeze_channels >= 1.")
        self.squeeze = keras.layers.Conv2D(squeeze, 1, activation=self.activation, name="squeeze")
        self.excite = keras.layers.Conv2D(channels, 1, activation=self.gate, name="excite")
        self.squeeze.build((None, 1, 1, channels))
        self.excite.build((None, 1, 1, squeeze))

    def call(self, inputs):
        pooled = ops.mean(inputs, axis=(1, 2), keepdims=True)
        return inputs * self.excite(self.squeeze(pooled))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "ratio": self.ratio, "squeeze_channels": self.squeeze_channels,
                "activation": self.activation, "gate": self.gate}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class MultiHeadSelfAttention2D(keras.layers.Layer):
    """Pre-norm multi-head self-attention over the H x W positions of a map, with a residual.

    ``y = x + W_o concat_h softmax(Q_h K_hᵀ / sqrt(d)) V_h`` where ``Q, K, V`` are linear
    projections of ``LayerNorm(x)`` flattened to ``H*W`` tokens (Vaswani et al., 2017; used on
    CNN maps as in BoTNet / MobileViT). Written with dense layers and matrix products, so
    `models.complexity` counts the Q/K/V/O projections and QKᵀ and AV.

    Args:
        num_heads: attention heads.
        key_dim: size of each head (default ``channels // num_heads``).
        position_embedding: add a learned embedding per position (fixes H and W at build time).
        dropout: on the attention weights during training.
    """

    def __init__(self, *, num_heads=4, key_dim=None, position_embedding=False, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_int(num_heads, "MultiHeadSelfAttention2D num_heads", minimum=1)
        self.key_dim = None if key_dim is None else check_int(key_dim, "MultiHeadSelfAttention2D key_dim", minimum=1)
        self.position_embedding = bool(position_embedding)
        self.dropout = check_number(dropout, "MultiHeadSelfAttention2D dropout", minimum=0, maximum=1,
                                    max_inclusive=False)

    def build(self, input_shape):
        _, h, w, channels = input_shape
        channels = channels_of(input_shape, "MultiHeadSelfAttention2D")
        self.head_dim = self.key_dim or channels // self.num_heads
        if self.head_dim < 1:
            raise ValueError(f"MultiHeadSelfAttention2D num_heads={self.num_heads} is larger than the {channels} "
                             "input channels; use fewer heads or give key_dim.")
        inner = self.num_heads * self.head_dim
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, name="norm")
        self.query, self.key, self.value = (keras.layers.Dense(inner, name=n) for n in ("query", "key", "value"))
        self.output_dense = keras.layers.Dense(channels, name="output")
        self.attention_dropout = keras.layers.Dropout(self.dropout)
        tokens = (None, None, channels)
        self.norm.build(tokens)
        for dense in (self.query, self.key, self.value):
            dense.build(tokens)
        self.output_dense.build((None, None, inner))
        if self.position_embedding:
            if h is None or w is None:
                raise ValueError("MultiHeadSelfAttention2D position_embedding=True needs a fixed height and width.")
            self.positions = self.add_weight(name="positions", shape=(1, h * w, channels),
                                             initializer=keras.initializers.TruncatedNormal(stddev=0.02))

    def _heads(self, x, tokens):
        # (B, T, heads * d) -> (B, heads, T, d)
        return ops.transpose(ops.reshape(x, (-1, tokens, self.num_heads, self.head_dim)), (0, 2, 1, 3))

    def call(self, inputs, training=None):
        h, w, c = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        dynamic = h is None or w is None
        if dynamic:
            h, w = ops.shape(inputs)[1], ops.shape(inputs)[2]
        tokens = h * w
        x = ops.reshape(inputs, (-1, tokens, c))
        y = self.norm(x)
        if self.position_embedding:
            y = y + self.positions
        q, k, v = (self._heads(proj(y), tokens) for proj in (self.query, self.key, self.value))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * (1.0 / math.sqrt(self.head_dim))
        weights = self.attention_dropout(ops.softmax(scores, axis=-1), training=training)
        attended = ops.reshape(ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3)),
                               (-1, tokens, self.num_heads * self.head_dim))
        return inputs + ops.reshape(self.output_dense(attended), (-1, h, w, c))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "position_embedding": self.position_embedding, "dropout": self.dropout}
