"""BiT: Big Transfer ResNets (Kolesnikov et al., 2020, "Big Transfer (BiT): General Visual
Representation Learning").

A pre-activation ResNet-v2 (He et al., 2016) in which every convolution is weight-standardised
and every normalisation is a GroupNorm (32 groups), so it trains and transfers well at any batch
size. Layout of R50x1 on 224x224 (width factor w multiplies every width)::

    root     zero-pad 3, std-conv 7x7/2 64w (VALID), zero-pad 1, max-pool 3x3/2 (VALID) -> 56x56
    block1   3 units, 256w out   (stride 1)                                         -> 56x56
    block2   4 units, 512w out   (stride 2 in the first unit)                       -> 28x28
    block3   6 units, 1024w out  (23 in R101)                                       -> 14x14
    block4   3 units, 2048w out                                                     ->  7x7
    GroupNorm + ReLU -> global average pool -> head (1x1 conv on the pooled map) -> softmax

A unit: ``a = relu(gn(x))``; shortcut = ``x``, or a 1x1 std-conv of ``a`` (strided) when the shape
changes; branch = 1x1 std-conv -> gn, relu -> zero-pad 1, 3x3 std-conv carrying the stride (VALID)
-> gn, relu -> 1x1 std-conv (4x the bottleneck width); output = shortcut + branch. This is the
arithmetic of the official google-research/big_transfer code that reads the released ``.npz``
files (`npz_layout`); none of its paddings is Keras "same", which pads a strided convolution
asymmetrically. The head reads a 1x1 pooled map, so it is stored as a ``Dense`` layer with the
file's ``(1, 1, C, K)`` kernel reshaped to ``(C, K)``; it starts at zero, as BiT's does. The model
takes images scaled to [-1, 1] (``scale="symmetric"``) and does no scaling itself.

Variants: ``bit_s_r50x1`` (BiT-S, ImageNet-1k weights), ``bit_m_r50x1`` and ``bit_m_r101x1``
(BiT-M, ImageNet-21k weights): the same networks, told apart by the checkpoint they read; and
``bit_tiny`` (three one-unit blocks a quarter as wide, 32x32 grey input), small enough to pretrain
on a CPU for the offline transfer demo of ``apps.transfer_finetune``.
"""

from __future__ import annotations

import keras
from keras import layers

from keras_cv_apps._validate import check_image_shape, check_int, check_number
from keras_cv_apps.models._blocks import check_num_classes
from keras_cv_apps.models._registry import register_model
from keras_cv_apps.models.bit_layers import StandardizedConv2D
from keras_cv_apps.models.checkpoints import load_weights, register_layout

GN_EPSILON = 1e-5
MIN_IMAGE_SIZE = 8


def build_bit(*, num_classes: int = 1000, image_shape=(224, 224, 3), block_units=(3, 4, 6, 3),
              width_factor: float = 1, groups: int = 32, name: str = "bit") -> keras.Model:
    """Build a BiT ResNet-v2 as a functional ``keras.Model`` ending in a softmax.

    Args:
        num_classes: classes of the head.
        image_shape: input (height, width, channels).
        block_units: units in each of the four blocks: (3, 4, 6, 3) for R50, (3, 4, 23, 3) for R101;
            a small model may have fewer blocks.
        width_factor: multiplies every width (1 for the x1 models; fractions make small models).
        groups: GroupNorm groups (32 in BiT); a layer narrower than that gets one channel per group.
    """
    num_classes = check_num_classes(num_classes, model=name)
    image_shape = check_image_shape(image_shape, f"{name} image_shape", min_size=MIN_IMAGE_SIZE)
    units = tuple(block_units) if isinstance(block_units, (list, tuple)) else ()
    if not 1 <= len(units) <= 4:
        raise ValueError(f"{name} block_units must be four integers (units per block; fewer blocks make small "
                         f"models), got {block_units!r}.")
    units = tuple(check_int(u, f"{name} block_units", minimum=1) for u in units)
    width_factor = check_number(width_factor, f"{name} width_factor", minimum=0, min_inclusive=False)
    groups = check_int(groups, f"{name} groups", minimum=1)
    root = int(64 * width_factor)
    widths = [root] + [w * root * 2 ** b for b in range(len(units)) for w in (1, 4)]
    if root < 1 or any(w % min(groups, w) for w in widths):
        raise ValueError(f"{name}: width_factor {width_factor} gives widths {sorted(set(widths))}; each must be "
                         f"a multiple of groups={groups} or below it.")

    def conv(x, filters, kernel, stride, label):
        return StandardizedConv2D(filters, kernel, strides=stride, padding="valid", use_bias=False, name=label)(x)

    def norm(x, label):  # narrow layers (below `groups` channels) get one channel per group
        return layers.GroupNormalization(groups=min(groups, x.shape[-1]), epsilon=GN_EPSILON, name=label)(x)

    def preact(x, label):
        x = norm(x, f"{label}_gn")
        return layers.ReLU(name=f"{label}_relu")(x)

    def unit(x, mid, out, stride, label):
        a = preact(x, f"{label}_a")
        shortcut = conv(a, out, 1, stride, f"{label}_proj") if stride != 1 or x.shape[-1] != out else x
        y = conv(a, mid, 1, 1, f"{label}_a_conv")
        y = preact(y, f"{label}_b")
        y = layers.ZeroPadding2D(1, name=f"{label}_b_pad")(y)
        y = conv(y, mid, 3, stride, f"{label}_b_conv")
        y = preact(y, f"{label}_c")
        y = conv(y, out, 1, 1, f"{label}_c_conv")
        return layers.Add(name=f"{label}_add")([shortcut, y])

    inputs = keras.Input(shape=image_shape, name="image")
    x = layers.ZeroPadding2D(3, name="root_pad")(inputs)
    x = conv(x, root, 7, 2, "root_conv")                                   # 112x112 on 224x224
    x = layers.ZeroPadding2D(1, name="root_pool_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="root_pool")(x)  # 56x56
    for b, count in enumerate(units):
        mid = root * 2 ** b
        for u in range(count):
            x = unit(x, mid, 4 * mid, 2 if b and not u else 1, f"block{b + 1}_unit{u + 1:02d}")
    x = norm(x, "group_norm")
    x = layers.ReLU(name="relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(num_classes, kernel_initializer="zeros", name="head")(x)
    outputs = layers.Softmax(name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


@register_layout
def npz_layout(model):
    """``{checkpoint key: (variable, shape in the file, role)}`` for a BiT model, or None for another
    model. Keys are those of the released ``BiT-*.npz`` files (``resnet/...``); the head's
    ``(1, 1, C, K)`` kernel maps onto the Dense kernel ``(C, K)``."""
    names = {layer.name: layer for layer in model.layers}
    if "root_conv" not in names or not isinstance(names["root_conv"], StandardizedConv2D):
        return None
    out = {}

    def put(key, variable, shape=None, role="weight"):
        out[key] = (variable, tuple(shape or variable.shape), role)

    put("resnet/root_block/standardized_conv2d/kernel", names["root_conv"].kernel)
    b = 1
    while f"block{b}_unit01_a_gn" in names:
        u = 1
        while f"block{b}_unit{u:02d}_a_gn" in names:
            src, dst = f"block{b}_unit{u:02d}", f"resnet/block{b}/unit{u:02d}"
            for part in "abc":
                put(f"{dst}/{part}/group_norm/gamma", names[f"{src}_{part}_gn"].gamma)
                put(f"{dst}/{part}/group_norm/beta", names[f"{src}_{part}_gn"].beta)
                put(f"{dst}/{part}/standardized_conv2d/kernel", names[f"{src}_{part}_conv"].kernel)
            if f"{src}_proj" in names:
                put(f"{dst}/a/proj/standardized_conv2d/kernel", names[f"{src}_proj"].kernel)
            u += 1
        b += 1
    put("resnet/group_norm/gamma", names["group_norm"].gamma)
    put("resnet/group_norm/beta", names["group_norm"].beta)
    head = names["head"]
    put("resnet/head/conv2d/kernel", head.kernel, (1, 1, *head.kernel.shape), "head")
    put("resnet/head/conv2d/bias", head.bias, role="head")
    return out


def _load(model, weights, *, strict=True):
    """Read a released/official-layout ``.npz``, a release name or a ``hub:`` preset (`checkpoints`)."""
    return load_weights(model, weights, strict=strict)


_CFG = dict(task="classifier", scale="symmetric", min_image_size=MIN_IMAGE_SIZE, feature_layer="avg_pool",
            classifier="predictions", load_weights=_load, test_image_shape=(32, 32, 3))
_R50, _R101 = (3, 4, 6, 3), (3, 4, 23, 3)


def _variant(name, units, description):
    defaults = dict(image_shape=(224, 224, 3), num_classes=1000, block_units=units, width_factor=1)

    @register_model(name, defaults=defaults, **_CFG, description=description)
    def variant(**kwargs):
        return build_bit(**kwargs)

    return variant


bit_s_r50x1 = _variant("bit_s_r50x1", _R50, "BiT-S-R50x1: ResNet-50v2, GroupNorm + weight standardisation; "
                                            "ImageNet-1k checkpoint (25.5M parameters with 1,000 classes).")
bit_m_r50x1 = _variant("bit_m_r50x1", _R50, "BiT-M-R50x1: ResNet-50v2, GroupNorm + weight standardisation; "
                                            "ImageNet-21k checkpoint (25.5M parameters with 1,000 classes).")
bit_m_r101x1 = _variant("bit_m_r101x1", _R101, "BiT-M-R101x1: ResNet-101v2, GroupNorm + weight "
                                               "standardisation; ImageNet-21k checkpoint (44.5M parameters).")


@register_model("bit_tiny", defaults=dict(image_shape=(32, 32, 1), num_classes=10, block_units=(1, 1, 1),
                                          width_factor=0.25),
                **{**_CFG, "test_image_shape": None},
                description="A small BiT ResNet (three one-unit blocks, a quarter as wide; 128k parameters) that "
                            "pretrains on a CPU: the offline transfer demo's backbone.")
def bit_tiny(**kwargs):
    return build_bit(**kwargs)


@register_model("test_bit", defaults=dict(image_shape=(32, 32, 3), num_classes=3, block_units=(1, 1, 1, 1),
                                          width_factor=0.0625, groups=4),
                **{**_CFG, "test_image_shape": None}, description="A tiny BiT ResNet for fast tests.")
def test_bit(**kwargs):
    return build_bit(**kwargs)
