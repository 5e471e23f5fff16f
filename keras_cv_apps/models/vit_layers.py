"""Layers of the transformer families: self-attention, class token, position embedding, GELU.

`MultiHeadSelfAttention` keeps its projections in the shapes of the released ViT checkpoints
(query/key/value kernels ``(dim, heads, head_dim)`` with ``(heads, head_dim)`` biases, output kernel
``(heads, head_dim, dim)``), so an official ``.npz`` loads without reshaping. Every layer is written
with matmuls, reshapes and transposes of at most four dimensions, which TFLite runs with built-in
ops (no Flex) and its GPU delegate accepts.
"""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Scaled dot-product self-attention over ``(batch, tokens, dim)``, ``num_heads`` heads.

    ``softmax(q k^T / sqrt(head_dim)) v`` per head (Vaswani et al., 2017), then an output
    projection back to ``dim``. ``locality=True`` is Locality Self-Attention (Lee et al., 2021,
    "Vision Transformer for Small-Size Datasets"): a learned temperature (initialised to
    ``sqrt(head_dim)``) replaces the fixed scale and each token's attention to itself is masked
    out, which sharpens the attention of a transformer trained from scratch on little data.
    """

    def __init__(self, *, num_heads: int, head_dim=None, locality: bool = False, dropout: float = 0.0,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if int(num_heads) < 1:
            raise ValueError(f"num_heads must be a positive integer, got {num_heads!r}.")
        self.num_heads = int(num_heads)
        self.head_dim = None if head_dim is None else int(head_dim)
        self.locality = bool(locality)
        self.dropout = float(dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._drop = keras.layers.Dropout(self.dropout) if self.dropout else None

    def build(self, input_shape):
        dim = int(input_shape[-1])
        if self.head_dim is None and dim % self.num_heads:
            raise ValueError(f"{self.name}: width {dim} is not divisible by num_heads={self.num_heads}.")
        heads, depth = self.num_heads, self.head_dim or dim // self.num_heads
        self._depth = depth
        for part in ("query", "key", "value"):
            setattr(self, f"{part}_kernel", self.add_weight(name=f"{part}_kernel", shape=(dim, heads, depth),
                                                            initializer=self._fan_init(dim, heads * depth)))
            setattr(self, f"{part}_bias", self.add_weight(name=f"{part}_bias", shape=(heads, depth),
                                                          initializer="zeros"))
        self.out_kernel = self.add_weight(name="out_kernel", shape=(heads, depth, dim),
                                          initializer=self._fan_init(heads * depth, dim))
        self.out_bias = self.add_weight(name="out_bias", shape=(dim,), initializer="zeros")
        if self.locality:
            self.temperature = self.add_weight(name="temperature", shape=(),
                                               initializer=keras.initializers.Constant(math.sqrt(depth)))

    def _fan_init(self, fan_in, fan_out):
        """The configured initializer, applied as if the kernel were a (fan_in, fan_out) matrix."""
        base = self.kernel_initializer

        def init(shape, dtype=None):
            return ops.reshape(base((fan_in, fan_out), dtype=dtype), shape)

        return init

    def call(self, x, training=None):
        tokens, dim = x.shape[1], x.shape[2]
        heads, depth = self.num_heads, self._depth

        def project(kernel, bias):  # (B, N, D) -> (B, heads, N, depth)
            y = ops.matmul(x, ops.reshape(kernel, (dim, heads * depth))) + ops.reshape(bias, (heads * depth,))
            return ops.transpose(ops.reshape(y, (-1, tokens, heads, depth)), (0, 2, 1, 3))

        q = project(self.query_kernel, self.query_bias)
        k = project(self.key_kernel, self.key_bias)
        v = project(self.value_kernel, self.value_bias)
        if self.locality:
            scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / self.temperature
            # softmax without the diagonal: exp(s - max) over the other tokens only
            off = 1.0 - ops.eye(tokens, dtype=scores.dtype)
            e = ops.exp(scores - ops.max(scores, axis=-1, keepdims=True)) * off
            weights = e / ops.sum(e, axis=-1, keepdims=True)
        else:
            scores = ops.matmul(q / math.sqrt(depth), ops.transpose(k, (0, 1, 3, 2)))
            weights = ops.softmax(scores, axis=-1)
        if self._drop is not None:
            weights = self._drop(weights, training=training)
        out = ops.reshape(ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3)), (-1, tokens, heads * depth))
        return ops.matmul(out, ops.reshape(self.out_kernel, (heads * depth, dim))) + self.out_bias

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "head_dim": self.head_dim,
                "locality": self.locality, "dropout": self.dropout,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class ClassToken(keras.layers.Layer):
    """Prepend one learned token (``cls``, shape ``(1, 1, dim)``, zeros at start) to ``(B, N, dim)``."""

    def build(self, input_shape):
        self.cls = self.add_weight(name="cls", shape=(1, 1, int(input_shape[-1])), initializer="zeros")

    def call(self, x):
        # x[:, :1] * 0 + cls: a batch-sized copy of the token from ops every TFLite delegate runs
        return ops.concatenate([x[:, :1, :] * 0.0 + self.cls, x], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None if input_shape[1] is None else input_shape[1] + 1, input_shape[2])


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class PositionEmbedding(keras.layers.Layer):
    """Add a learned ``(1, tokens, dim)`` embedding (``pos_embedding``, normal stddev 0.02 as BERT)."""

    def __init__(self, *, stddev: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.stddev = float(stddev)

    def build(self, input_shape):
        self.pos_embedding = self.add_weight(
            name="pos_embedding", shape=(1, int(input_shape[1]), int(input_shape[2])),
            initializer=keras.initializers.RandomNormal(stddev=self.stddev))

    def call(self, x):
        return x + self.pos_embedding

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class Gelu(keras.layers.Layer):
    """GELU; ``approximate=True`` is the tanh form ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``
    that flax's ``nn.gelu`` (and so every released ViT) uses."""

    def __init__(self, *, approximate: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.approximate = bool(approximate)

    def call(self, x):
        return keras.activations.gelu(x, approximate=self.approximate)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "approximate": self.approximate}
