"""Compact Convolutional Transformer (Hassani et al., 2021, "Escaping the Big Data Paradigm with
Compact Transformers"): a transformer that trains from scratch on a couple of thousand images.

A plain ViT needs tens of millions of images because nothing in it knows that neighbouring pixels
belong together. CCT puts that prior back in two places: a small convolutional tokenizer (conv ->
ReLU -> 3x3/2 max-pool, twice) makes overlapping, translation-equivariant tokens instead of cut
patches, and sequence pooling (`SeqPool`: a learned softmax weighting of all output tokens)
replaces the class token. In between: a learned position embedding and ``depth`` pre-norm
transformer blocks (self-attention, MLP with GELU, stochastic depth on both branches). On 32x32
digits::

    conv 5x5 32 + BN + ReLU + pool -> 16x16x32    conv 3x3 64 + BN + ReLU + pool -> 8x8x64
    64 tokens of 64 + position embedding -> 4 blocks (4 heads, MLP 64) -> LayerNorm -> SeqPool -> head

``cct_small`` has about 125k parameters. The ablation switches (``tokenizer="patch"``: a ViT patch
projection instead of the convolutions; ``pooling="cls"`` / ``"gap"``; ``locality=True``: Locality
Self-Attention of Lee et al., 2021) make the same builder a plain small ViT or an LSA model.
"""

from __future__ import annotations

import keras
from keras import layers

from keras_cv_apps._validate import check_choice, check_image_shape, check_int, check_number
from keras_cv_apps.layers.regularization import StochasticDepth
from keras_cv_apps.models._blocks import check_num_classes
from keras_cv_apps.models._registry import register_model
from keras_cv_apps.models.cct_layers import SeqPool
from keras_cv_apps.models.vit_layers import ClassToken, MultiHeadSelfAttention, PositionEmbedding

TOKENIZERS = ("conv", "patch")
POOLINGS = ("seqpool", "cls", "gap")
EPSILON = 1e-5


def build_cct(*, num_classes: int = 10, image_shape=(32, 32, 1), tokenizer: str = "conv", conv_filters=(32, 64),
              conv_kernels=(5, 3), conv_batch_norm: bool = True, patch_size: int = 4, dim: int = 64, depth: int = 4,
              num_heads: int = 4, mlp_ratio: float = 1.0, drop_path: float = 0.1, locality: bool = False,
              pooling: str = "seqpool", position_embedding: bool = True, name: str = "cct") -> keras.Model:
    """Build a compact transformer as a functional ``keras.Model`` ending in a softmax.

    Args:
        num_classes: number of output classes.
        image_shape: input (height, width, channels).
        tokenizer: ``conv`` (the CCT tokenizer) or ``patch`` (non-overlapping ``patch_size`` patches).
        conv_filters / conv_kernels: widths and kernel sizes of the tokenizer's convolutions.
        conv_batch_norm: batch normalisation after each tokenizer convolution.
        dim: token width; a 1x1 projection follows the tokenizer when it differs from its output.
        depth / num_heads / mlp_ratio: transformer blocks, heads, MLP width as a multiple of ``dim``.
        drop_path: stochastic-depth rate of the last block (linearly less in earlier blocks).
        locality: Locality Self-Attention (learned temperature, no attention to oneself).
        pooling: ``seqpool``, ``cls`` (a class token) or ``gap`` (mean of the tokens).
        position_embedding: add a learned position embedding to the tokens.
    """
    check_choice(tokenizer, TOKENIZERS, "tokenizer")
    check_choice(pooling, POOLINGS, "pooling")
    num_classes = check_num_classes(num_classes, model=name)
    image_shape = check_image_shape(image_shape, f"{name} image_shape", min_size=4)
    dim, depth, num_heads = (check_int(v, f"{name} {k}", minimum=1) for k, v in
                             (("dim", dim), ("depth", depth), ("num_heads", num_heads)))
    mlp_dim = max(1, int(round(check_number(mlp_ratio, f"{name} mlp_ratio", minimum=0, min_inclusive=False) * dim)))
    check_number(drop_path, f"{name} drop_path", minimum=0, maximum=1, max_inclusive=False)
    if len(conv_filters) != len(conv_kernels) or not len(conv_filters):
        raise ValueError(f"{name}: conv_filters and conv_kernels must be equally long, non-empty lists.")

    inputs = keras.Input(shape=image_shape, name="image")
    x = inputs
    if tokenizer == "conv":
        for i, (filters, kernel) in enumerate(zip(conv_filters, conv_kernels)):
            x = layers.Conv2D(int(filters), int(kernel), padding="same", use_bias=not conv_batch_norm,
                              name=f"tokenizer_conv{i}")(x)
            if conv_batch_norm:
                x = layers.BatchNormalization(name=f"tokenizer_bn{i}")(x)
            x = layers.ReLU(name=f"tokenizer_relu{i}")(x)
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"tokenizer_pool{i}")(x)
        if x.shape[-1] != dim:
            x = layers.Conv2D(dim, 1, name="tokenizer_projection")(x)
    else:
        patch_size = check_int(patch_size, f"{name} patch_size", minimum=1)
        if image_shape[0] % patch_size or image_shape[1] % patch_size:
            raise ValueError(f"{name}: image size {image_shape[0]}x{image_shape[1]} is not divisible by the "
                             f"patch size {patch_size}.")
        x = layers.Conv2D(dim, patch_size, strides=patch_size, name="patch_embedding")(x)
    x = layers.Reshape((x.shape[1] * x.shape[2], dim), name="tokens")(x)
    if pooling == "cls":
        x = ClassToken(name="cls")(x)
    if position_embedding:
        x = PositionEmbedding(name="position_embedding")(x)
    for i in range(depth):
        rate = drop_path * i / max(1, depth - 1)
        y = layers.LayerNormalization(epsilon=EPSILON, name=f"block{i}_ln0")(x)
        y = MultiHeadSelfAttention(num_heads=num_heads, locality=locality, name=f"block{i}_attention")(y)
        y = StochasticDepth(rate=rate, name=f"block{i}_drop0")(y)
        x = layers.Add(name=f"block{i}_add0")([x, y])
        y = layers.LayerNormalization(epsilon=EPSILON, name=f"block{i}_ln1")(x)
        y = layers.Dense(mlp_dim, activation="gelu", name=f"block{i}_mlp0")(y)
        y = layers.Dense(dim, name=f"block{i}_mlp1")(y)
        y = StochasticDepth(rate=rate, name=f"block{i}_drop1")(y)
        x = layers.Add(name=f"block{i}_add1")([x, y])
    x = layers.LayerNormalization(epsilon=EPSILON, name="norm")(x)
    if pooling == "seqpool":
        x = SeqPool(name="pool")(x)
    elif pooling == "gap":
        x = layers.GlobalAveragePooling1D(name="pool")(x)
    else:
        x = layers.Flatten(name="pool")(layers.Cropping1D((0, x.shape[1] - 1), name="class_token")(x))
    x = layers.Dense(num_classes, name="head")(x)
    outputs = layers.Softmax(name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


_CFG = dict(task="classifier", min_image_size=4, feature_layer="pool", classifier="predictions")


@register_model("cct_small", defaults=dict(image_shape=(32, 32, 1), num_classes=10), **_CFG,
                description="Compact Convolutional Transformer for small data: 2-conv tokenizer, 4 blocks of 64, "
                            "sequence pooling (125k parameters).")
def cct_small(**kwargs):
    return build_cct(**kwargs)


@register_model("test_cct", defaults=dict(image_shape=(16, 16, 1), num_classes=3, conv_filters=(4, 8),
                                          conv_kernels=(3, 3), dim=8, depth=1, num_heads=2),
                **_CFG, description="A tiny compact transformer for fast tests.")
def test_cct(**kwargs):
    return build_cct(**kwargs)
