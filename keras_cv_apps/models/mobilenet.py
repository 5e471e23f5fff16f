"""MobileNetV2 (Sandler et al., 2018): a stem convolution, 17 inverted residual blocks and a 1x1
head convolution before global pooling.

Layout at 224x224 and width 1.0 (``t`` expansion, ``c`` channels, ``n`` blocks, ``s`` first
stride)::

    stem conv 32@3x3/2 -> 112x112
    t c   n s  :  1 16 1 1 | 6 24 2 2 | 6 32 3 2 | 6 64 4 2 | 6 96 3 1 | 6 160 3 2 | 6 320 1 1  -> 7x7
    head conv 1280@1x1 -> global average pool -> dropout -> dense num_classes (softmax)

About 300M MACs and 3.5M parameters with 1000 classes, as `keras.applications.MobileNetV2`
(`models.complexity` gives 300.8M for both). ``width_multiplier`` (α in the paper) scales every
width, rounded to a multiple of 8; the head keeps 1280 channels for α ≤ 1, as in the paper.
Blocks are `layers.InvertedResidual`; ``se_ratio`` adds squeeze-and-excitation to each block.
"""

from __future__ import annotations

import keras

from keras_cv_apps._validate import check_number
from keras_cv_apps.layers.mobile_blocks import InvertedResidual
from keras_cv_apps.models import _mobile
from keras_cv_apps.models._registry import register_model
from keras_cv_apps.models.scaling import make_divisible, scale_depth

# (expansion, channels, blocks, first stride)
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def build_mobilenetv2(
    *,
    num_classes: int = 1000,
    image_shape=(224, 224, 3),
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
    activation: str = "relu6",
    se_ratio: float = 0.0,
    dropout: float = 0.2,
    head_filters: int = 1280,
    blocks=BLOCKS,
    name: str = "mobilenetv2",
) -> keras.Model:
    """Build a MobileNetV2 classifier ending in a softmax.

    Args:
        num_classes: output classes.
        image_shape: input (height, width, channels), at least 32x32.
        width_multiplier: α: scales the stem, every block and (above 1) the head.
        depth_multiplier: scales the blocks per stage (rounded up).
        activation: of the stem, the expansions, the depthwise convolutions and the head.
        se_ratio: squeeze-and-excitation in every block (0: none, as in the paper).
        dropout: before the classifier.
        head_filters: channels of the last 1x1 convolution.
        blocks: ``(expansion, channels, repeats, stride)`` per stage.
    """
    num_classes, image_shape = _mobile.check_args(name, num_classes=num_classes, image_shape=image_shape,
                                                  width_multiplier=width_multiplier, dropout=dropout,
                                                  activation=activation)
    check_number(depth_multiplier, f"{name} depth_multiplier", minimum=0, min_inclusive=False)
    inputs = _mobile.inputs(image_shape)
    x = _mobile.conv_bn_act(inputs, make_divisible(32 * width_multiplier), 3, strides=2, activation=activation,
                            name="stem")
    for stage, (expansion, channels, repeats, stride) in enumerate(blocks, start=1):
        for i in range(scale_depth(repeats, depth_multiplier)):
            x = InvertedResidual(make_divisible(channels * width_multiplier), expansion=expansion,
                                 strides=stride if i == 0 else 1, activation=activation, se_ratio=se_ratio,
                                 name=f"block{stage}_{i + 1}")(x)
    x = _mobile.conv_bn_act(x, make_divisible(head_filters * max(1.0, width_multiplier)), 1, activation=activation,
                            name="head")
    outputs = _mobile.classifier(x, num_classes, dropout=dropout)
    return keras.Model(inputs, outputs, name=name)


_CFG = _mobile.cfg(feature_layer="avg_pool")


@register_model("mobilenetv2", defaults=dict(image_shape=(224, 224, 3), num_classes=1000), test_image_shape=(32, 32, 3),
                **_CFG, description="MobileNetV2 1.0 (2018): inverted residual blocks, ~300M MACs at 224 px.")
def mobilenetv2(**kwargs):
    return build_mobilenetv2(**kwargs)


@register_model("test_mobilenetv2", defaults=dict(image_shape=(32, 32, 3), num_classes=3, width_multiplier=0.25,
                                                  head_filters=32, se_ratio=0.25,
                                                  blocks=((1, 16, 1, 2), (4, 16, 2, 2))),
                **_CFG, description="A tiny MobileNetV2 (three blocks, with SE) for fast tests.")
def test_mobilenetv2(**kwargs):
    return build_mobilenetv2(**kwargs)
