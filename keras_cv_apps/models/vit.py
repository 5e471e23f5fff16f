"""Vision Transformer (Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words").

The image is cut into ``patch_size`` squares, each projected to ``hidden_dim`` (one strided
convolution), a learned class token is prepended and a learned position embedding added; then
``depth`` pre-norm encoder blocks (LayerNorm -> multi-head self-attention -> residual, LayerNorm
-> MLP with GELU -> residual), a final LayerNorm, the class token's output, an optional tanh
pre-logits layer and a linear head (zero at start). On a 224x224 input with patches of 16::

    embedding conv 16x16/16 -> 14x14xD -> 196 tokens (+1 class token) + position embedding
    encoderblock_0 .. encoderblock_{depth-1}   (D -> D, MLP D -> mlp_dim -> D)
    encoder_norm -> class token -> [pre_logits tanh] -> head -> softmax

The numbers follow the official google-research/vision_transformer ``models_vit.py`` that
produced the released checkpoints: LayerNorm epsilon 1e-6, the tanh form of GELU, attention
scaled by ``1/sqrt(head_dim)``, and the released ``.npz`` files load with
`keras_cv_apps.models.load_checkpoint` (`npz_layout` maps every array to its weight). The model
takes images scaled to [-1, 1] (``scale="symmetric"``), as the checkpoints expect; nothing in the
model rescales. Variants as ``vit_jax/configs/models.py``: Ti/16 (192 wide, 3 heads), S/16 (384,
6), B/16 (768, 12), each 12 blocks deep with an MLP four times as wide.
"""

from __future__ import annotations

import keras
from keras import layers

from keras_cv_apps._validate import check_image_shape, check_int
from keras_cv_apps.models._blocks import check_num_classes
from keras_cv_apps.models._registry import register_model
from keras_cv_apps.models.checkpoints import load_weights, register_layout
from keras_cv_apps.models.vit_layers import ClassToken, Gelu, MultiHeadSelfAttention, PositionEmbedding

EPSILON = 1e-6  # flax nn.LayerNorm's default, used by every released ViT


def min_image_size(*, patch_size: int = 16, **_) -> int:
    """The smallest input: one patch."""
    return int(patch_size)


def check_patch_grid(image_shape, patch_size, *, model: str = "vit") -> tuple:
    """``(rows, cols)`` of patches; raises ``ValueError`` when the image does not split into whole patches."""
    patch_size = check_int(patch_size, f"{model} patch_size", minimum=1)
    shape = check_image_shape(image_shape, f"{model} image_shape", min_size=patch_size)
    if shape[0] % patch_size or shape[1] % patch_size:
        nearest = patch_size * max(1, round(shape[0] / patch_size))
        raise ValueError(f"{model}: image size {shape[0]}x{shape[1]} is not divisible by the patch size "
                         f"{patch_size}; use a multiple of {patch_size} (e.g. {nearest}).")
    return shape[0] // patch_size, shape[1] // patch_size


def build_vit(*, num_classes: int = 1000, image_shape=(224, 224, 3), patch_size: int = 16, hidden_dim: int = 768,
              depth: int = 12, num_heads: int = 12, mlp_dim: int = 3072, representation_size=None,
              name: str = "vit") -> keras.Model:
    """Build a ViT as a functional ``keras.Model`` ending in a softmax.

    Args:
        num_classes: classes of the linear head.
        image_shape: input (height, width, channels); height and width divisible by ``patch_size``.
        patch_size: side of the square patches (16 for the ``*16`` variants).
        hidden_dim: token width D.
        depth: number of encoder blocks.
        num_heads: attention heads per block (D must divide by it).
        mlp_dim: hidden width of each block's MLP.
        representation_size: width of the tanh pre-logits layer, or None for none (the head then
            reads the class token directly, as in fine-tuning).
    """
    num_classes = check_num_classes(num_classes, model=name)
    rows, cols = check_patch_grid(image_shape, patch_size, model=name)
    hidden_dim = check_int(hidden_dim, f"{name} hidden_dim", minimum=1)
    depth = check_int(depth, f"{name} depth", minimum=1)
    num_heads = check_int(num_heads, f"{name} num_heads", minimum=1)
    mlp_dim = check_int(mlp_dim, f"{name} mlp_dim", minimum=1)
    if hidden_dim % num_heads:
        raise ValueError(f"{name}: hidden_dim {hidden_dim} is not divisible by num_heads {num_heads}.")
    if representation_size is not None:
        representation_size = check_int(representation_size, f"{name} representation_size", minimum=1)
    tokens = rows * cols

    inputs = keras.Input(shape=tuple(image_shape), name="image")
    x = layers.Conv2D(hidden_dim, patch_size, strides=patch_size, padding="valid", name="embedding")(inputs)
    x = layers.Reshape((tokens, hidden_dim), name="tokens")(x)                  # (B, N, D)
    x = ClassToken(name="cls")(x)                                                 # (B, N + 1, D)
    x = PositionEmbedding(name="posembed_input")(x)
    for i in range(depth):
        block = f"encoderblock_{i}"
        y = layers.LayerNormalization(epsilon=EPSILON, name=f"{block}_ln0")(x)
        y = MultiHeadSelfAttention(num_heads=num_heads, name=f"{block}_attention")(y)
        x = layers.Add(name=f"{block}_add0")([x, y])
        y = layers.LayerNormalization(epsilon=EPSILON, name=f"{block}_ln2")(x)
        y = layers.Dense(mlp_dim, name=f"{block}_mlp0")(y)
        y = Gelu(approximate=True, name=f"{block}_gelu")(y)
        y = layers.Dense(hidden_dim, name=f"{block}_mlp1")(y)
        x = layers.Add(name=f"{block}_add1")([x, y])
    x = layers.LayerNormalization(epsilon=EPSILON, name="encoder_norm")(x)
    x = layers.Cropping1D((0, tokens), name="class_token")(x)                    # (B, 1, D)
    if representation_size is None:
        x = layers.Flatten(name="pre_logits")(x)
    else:
        x = layers.Flatten(name="token")(x)
        x = layers.Dense(representation_size, activation="tanh", name="pre_logits")(x)
    x = layers.Dense(num_classes, kernel_initializer="zeros", name="head")(x)
    outputs = layers.Softmax(name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


@register_layout
def npz_layout(model):
    """``{checkpoint key: (variable, shape in the file, role)}`` for a ViT, or None for another model.

    Keys are the flat names of the released ``.npz`` files (older flax module names). Roles:
    ``head`` (replaced when the class count differs), ``pre_logits`` (dropped when the model has
    none), ``posemb`` (resized when the grid differs), ``weight`` (everything else).
    """
    names = {layer.name: layer for layer in model.layers}
    if "posembed_input" not in names or "embedding" not in names:
        return None
    out = {}

    def put(key, variable, role="weight"):
        out[key] = (variable, tuple(variable.shape), role)

    put("embedding/kernel", names["embedding"].kernel)
    put("embedding/bias", names["embedding"].bias)
    put("cls", names["cls"].cls)
    put("Transformer/posembed_input/pos_embedding", names["posembed_input"].pos_embedding, "posemb")
    i = 0
    while f"encoderblock_{i}_ln0" in names:
        src, dst = f"encoderblock_{i}", f"Transformer/encoderblock_{i}"
        for ln, key in (("ln0", "LayerNorm_0"), ("ln2", "LayerNorm_2")):
            put(f"{dst}/{key}/scale", names[f"{src}_{ln}"].gamma)
            put(f"{dst}/{key}/bias", names[f"{src}_{ln}"].beta)
        attention = names[f"{src}_attention"]
        for part in ("query", "key", "value", "out"):
            put(f"{dst}/MultiHeadDotProductAttention_1/{part}/kernel", getattr(attention, f"{part}_kernel"))
            put(f"{dst}/MultiHeadDotProductAttention_1/{part}/bias", getattr(attention, f"{part}_bias"))
        for j in (0, 1):
            put(f"{dst}/MlpBlock_3/Dense_{j}/kernel", names[f"{src}_mlp{j}"].kernel)
            put(f"{dst}/MlpBlock_3/Dense_{j}/bias", names[f"{src}_mlp{j}"].bias)
        i += 1
    put("Transformer/encoder_norm/scale", names["encoder_norm"].gamma)
    put("Transformer/encoder_norm/bias", names["encoder_norm"].beta)
    if isinstance(names["pre_logits"], layers.Dense):
        put("pre_logits/kernel", names["pre_logits"].kernel, "pre_logits")
        put("pre_logits/bias", names["pre_logits"].bias, "pre_logits")
    put("head/kernel", names["head"].kernel, "head")
    put("head/bias", names["head"].bias, "head")
    return out


def _load(model, weights, *, strict=True):
    """Read a released/official-layout ``.npz``, a release name or a ``hub:`` preset (`checkpoints`)."""
    return load_weights(model, weights, strict=strict)


_CFG = dict(task="classifier", scale="symmetric", min_image_size=min_image_size, feature_layer="pre_logits",
            classifier="predictions", load_weights=_load)


def _variant(name, hidden_dim, num_heads, description):
    defaults = dict(image_shape=(224, 224, 3), num_classes=1000, patch_size=16, hidden_dim=hidden_dim, depth=12,
                    num_heads=num_heads, mlp_dim=4 * hidden_dim, representation_size=None)

    @register_model(name, defaults=defaults, test_image_shape=(32, 32, 3), **_CFG, description=description)
    def variant(**kwargs):
        return build_vit(**kwargs)

    return variant


vit_ti16 = _variant("vit_ti16", 192, 3, "ViT-Ti/16: 12 blocks, 192 wide, 3 heads (5.7M parameters).")
vit_s16 = _variant("vit_s16", 384, 6, "ViT-S/16: 12 blocks, 384 wide, 6 heads (22.1M parameters).")
vit_b16 = _variant("vit_b16", 768, 12, "ViT-B/16: 12 blocks, 768 wide, 12 heads (86.6M parameters).")


@register_model("test_vit", defaults=dict(image_shape=(16, 16, 3), num_classes=3, patch_size=4, hidden_dim=16,
                                          depth=2, num_heads=2, mlp_dim=32, representation_size=None),
                **_CFG, description="A tiny ViT for fast tests.")
def test_vit(**kwargs):
    return build_vit(**kwargs)
