"""GhostNet (Han et al., 2020): MobileNetV3's layout with Ghost modules in place of the 1x1
convolutions, so about half of each expansion and projection comes from cheap depthwise "ghost"
features.

Ghost bottleneck (``k`` kernel, ``exp`` hidden channels, ``c`` outputs, ``se``, ``s`` stride)::

    GhostModule(exp, relu) -> [depthwise k x k / s + BN if s = 2] -> [SE] -> GhostModule(c, linear)
    + shortcut (identity, or depthwise k x k / s + BN -> 1x1 conv + BN when the shape changes)

Layout at 224x224 and width 1.0: stem conv 16@3x3/2, 16 bottlenecks (table `BLOCKS`), 1x1 conv
960, global average pool, dense 1280 (``features``), dropout, dense num_classes (softmax): about
141M MACs, against ~300M for MobileNetV2 1.0. Squeeze-and-excitation uses a hard-sigmoid gate
so the int8 export stays on XNNPACK.
"""

from __future__ import annotations

import keras
from keras import layers

from keras_cv_apps.layers._compose import BN_MOMENTUM
from keras_cv_apps.layers.attention import SqueezeExcitation
from keras_cv_apps.layers.mobile_blocks import GhostModule
from keras_cv_apps.models import _mobile
from keras_cv_apps.models._registry import register_model
from keras_cv_apps.models.scaling import make_divisible

# (kernel, hidden, out, se, stride) as in the paper's Table 7
BLOCKS = (
    (3, 16, 16, 0, 1),
    (3, 48, 24, 0, 2), (3, 72, 24, 0, 1),
    (5, 72, 40, 1, 2), (5, 120, 40, 1, 1),
    (3, 240, 80, 0, 2), (3, 200, 80, 0, 1), (3, 184, 80, 0, 1), (3, 184, 80, 0, 1),
    (3, 480, 112, 1, 1), (3, 672, 112, 1, 1),
    (5, 672, 160, 1, 2), (5, 960, 160, 0, 1), (5, 960, 160, 1, 1), (5, 960, 160, 0, 1), (5, 960, 160, 1, 1),
)


def _depthwise_bn(x, kernel, strides, name):
    x = layers.DepthwiseConv2D(kernel, strides=strides, padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)


def ghost_bottleneck(x, *, hidden, filters, kernel_size=3, strides=1, se=False, activation="relu", ratio=2,
                     name="ghost_bottleneck"):
    """One Ghost bottleneck on ``x`` (a functional-graph helper; its layers are named ``name_*``)."""
    channels = x.shape[-1]
    y = GhostModule(hidden, ratio=ratio, activation=activation, name=f"{name}_expand")(x)
    if strides > 1:
        y = _depthwise_bn(y, kernel_size, strides, f"{name}_dw")
    if se:
        y = SqueezeExcitation(squeeze_channels=make_divisible(hidden * 0.25, 4), gate="hard_sigmoid",
                              name=f"{name}_se")(y)
    y = GhostModule(filters, ratio=ratio, activation=None, name=f"{name}_project")(y)
    if strides == 1 and channels == filters:
        shortcut = x
    else:
        shortcut = _depthwise_bn(x, kernel_size, strides, f"{name}_shortcut_dw")
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_shortcut_conv")(shortcut)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_shortcut_conv_bn")(shortcut)
    return layers.Add(name=f"{name}_add")([y, shortcut])


def build_ghostnet(
    *,
    num_classes: int = 1000,
    image_shape=(224, 224, 3),
    width_multiplier: float = 1.0,
    activation: str = "relu",
    ratio: int = 2,
    dropout: float = 0.2,
    head_filters: int = 960,
    features: int = 1280,
    blocks=BLOCKS,
    name: str = "ghostnet",
) -> keras.Model:
    """Build a GhostNet classifier ending in a softmax.

    Args:
        num_classes: output classes.
        image_shape: input (height, width, channels), at least 32x32.
        width_multiplier: scales the stem, every bottleneck and the head convolution (multiples of 4).
        activation: of the stem, the first Ghost module of each bottleneck, the head and features.
        ratio: ``s`` of the Ghost modules (2: half the outputs are ghosts).
        dropout: before the classifier.
        head_filters: channels of the 1x1 head convolution (scaled by the width).
        features: units of the dense layer after pooling (0 removes it).
        blocks: ``(kernel, hidden, out, se, stride)`` per bottleneck.
    """
    num_classes, image_shape = _mobile.check_args(name, num_classes=num_classes, image_shape=image_shape,
                                                  width_multiplier=width_multiplier, dropout=dropout,
                                                  activation=activation)
    inputs = _mobile.inputs(image_shape)
    x = _mobile.conv_bn_act(inputs, make_divisible(16 * width_multiplier, 4), 3, strides=2, activation=activation,
                            name="stem")
    for i, (kernel, hidden, out, se, stride) in enumerate(blocks, start=1):
        x = ghost_bottleneck(x, hidden=make_divisible(hidden * width_multiplier, 4),
                             filters=make_divisible(out * width_multiplier, 4), kernel_size=kernel, strides=stride,
                             se=bool(se), activation=activation, ratio=ratio, name=f"block{i}")
    x = _mobile.conv_bn_act(x, make_divisible(head_filters * width_multiplier, 4), 1, activation=activation,
                            name="head")
    outputs = _mobile.classifier(x, num_classes, dropout=dropout, hidden=features, activation=activation)
    return keras.Model(inputs, outputs, name=name)


_CFG = _mobile.cfg(feature_layer="features_act")


@register_model("ghostnet", defaults=dict(image_shape=(224, 224, 3), num_classes=1000), test_image_shape=(32, 32, 3),
                **_CFG, description="GhostNet 1.0 (2020): Ghost bottlenecks, ~141M MACs at 224 px.")
def ghostnet(**kwargs):
    return build_ghostnet(**kwargs)


@register_model("test_ghostnet", defaults=dict(image_shape=(32, 32, 3), num_classes=3, width_multiplier=0.25,
                                               head_filters=64, features=32,
                                               blocks=((3, 16, 16, 0, 1), (3, 48, 24, 1, 2))),
                **_CFG, description="A tiny GhostNet (two bottlenecks, with SE) for fast tests.")
def test_ghostnet(**kwargs):
    return build_ghostnet(**kwargs)
