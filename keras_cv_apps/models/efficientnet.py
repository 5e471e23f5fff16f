"""A compound-scaled family of MBConv + squeeze-and-excitation networks (EfficientNet's recipe,
Tan and Le, 2019), ``effnet_b0`` .. ``effnet_b3``.

``effnet_bφ`` is the B0 base scaled by `scaling.compound_scaling(φ)`: depth x1.2^φ (blocks per
stage rounded up), width x1.1^φ (multiples of 8, stem and head included) and resolution
x1.15^φ (default input 224, 256, 288, 352 px: multiples of 32), so each step costs about twice the MACs of the
one before (`models.complexity` measures it). The paper's B1-B3 were tuned by hand and differ
from φ = 1..3. Base B0::

    stem conv 32@3x3/2
    e k s  c   n :  1 3 1 16 1 | 6 3 2 24 2 | 6 5 2 40 2 | 6 3 2 80 3 | 6 5 1 112 3 | 6 5 2 192 4 | 6 3 1 320 1
    head conv 1280@1x1 -> global average pool -> dropout -> dense num_classes (softmax)

Each block is a `layers.InvertedResidual` with SE (``se_ratio`` 0.25 of its input channels)
and stochastic depth rising linearly to ``drop_connect_rate``; the last batch-norm of every block
with a shortcut starts at zero (``zero_init``), so each block starts as the identity. Without it
the deeper variants sat at chance for many epochs on short runs (``effnet_b1`` at 40 px on
digits with Adam 2e-3, warm-up + cosine over 30 epochs: training accuracy 0.09 after 4 epochs
and 88% test accuracy after 30; with it 0.91 after 4 and 100%). For int8 phones, swish and
sigmoid become hard-swish and hard-sigmoid by default (as MobileNetV3 does), which XNNPACK runs
in int8; ``activation="swish"`` gives the paper's choice.
"""

from __future__ import annotations

import keras

from keras_cv_apps._validate import check_number
from keras_cv_apps.layers.mobile_blocks import InvertedResidual
from keras_cv_apps.models import _mobile
from keras_cv_apps.models._registry import register_model
from keras_cv_apps.models.scaling import compound_scaling, make_divisible, scale_depth, scale_resolution

# (expansion, kernel, first stride, channels, repeats) of B0
BLOCKS = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
          (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
BASE_RESOLUTION = 224


def default_resolution(phi: int, base: int = BASE_RESOLUTION, divisor: int = 32) -> int:
    """Input size of ``effnet_b{phi}``: ``base * 1.15**phi`` rounded to a multiple of ``divisor``
    (32, the network's total stride, so every stride-2 stage halves the map exactly)."""
    return scale_resolution(base, compound_scaling(phi)["resolution"], divisor=divisor)


def build_effnet(
    *,
    num_classes: int = 1000,
    image_shape=(224, 224, 3),
    phi: float = 0,
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
    activation: str = "hard_swish",
    se_ratio: float = 0.25,
    se_gate: str = "hard_sigmoid",
    dropout: float = 0.2,
    drop_connect_rate: float = 0.2,
    head_filters: int = 1280,
    zero_init: bool = True,
    blocks=BLOCKS,
    name: str = "effnet",
) -> keras.Model:
    """Build the compound-scaled MBConv + SE classifier for coefficient ``phi``.

    Args:
        num_classes: output classes.
        image_shape: input (height, width, channels); `default_resolution(phi)` is the size the
            scaling rule gives (the registered variants default to it).
        phi: compound coefficient (>= 0): scales depth by 1.2**phi and width by 1.1**phi.
        width_multiplier, depth_multiplier: extra factors on top of the compound ones.
        activation: of the stem, expansions, depthwise convolutions and head.
        se_ratio: SE width as a fraction of each block's input channels (0 disables SE).
        se_gate: ``hard_sigmoid`` (int8-friendly) or ``sigmoid``.
        dropout: before the classifier.
        drop_connect_rate: stochastic depth rate of the last block (linear from 0 over blocks).
        head_filters: channels of the last 1x1 convolution before scaling.
        zero_init: start each residual block's last batch-norm scale at zero (identity blocks).
        blocks: ``(expansion, kernel, stride, channels, repeats)`` per stage.
    """
    scale = compound_scaling(phi)
    width = scale["width"] * check_number(width_multiplier, f"{name} width_multiplier", minimum=0, min_inclusive=False)
    depth = scale["depth"] * check_number(depth_multiplier, f"{name} depth_multiplier", minimum=0, min_inclusive=False)
    check_number(drop_connect_rate, f"{name} drop_connect_rate", minimum=0, maximum=1, max_inclusive=False)
    num_classes, image_shape = _mobile.check_args(name, num_classes=num_classes, image_shape=image_shape,
                                                  width_multiplier=width, dropout=dropout, activation=activation)
    stages = [(e, k, s, make_divisible(c * width), scale_depth(n, depth)) for e, k, s, c, n in blocks]
    total = sum(stage[-1] for stage in stages)
    inputs = _mobile.inputs(image_shape)
    x = _mobile.conv_bn_act(inputs, make_divisible(32 * width), 3, strides=2, activation=activation, name="stem")
    index = 0
    for number, (expansion, kernel, stride, channels, repeats) in enumerate(stages, start=1):
        for i in range(repeats):
            x = InvertedResidual(channels, expansion=expansion, kernel_size=kernel, strides=stride if i == 0 else 1,
                                 activation=activation, se_ratio=se_ratio, se_gate=se_gate,
                                 drop_rate=drop_connect_rate * index / total, zero_init=zero_init,
                                 name=f"block{number}_{i + 1}")(x)
            index += 1
    x = _mobile.conv_bn_act(x, make_divisible(head_filters * width), 1, activation=activation, name="head")
    outputs = _mobile.classifier(x, num_classes, dropout=dropout)
    return keras.Model(inputs, outputs, name=name)


_CFG = _mobile.cfg(feature_layer="avg_pool")


def _register(phi: int):
    size = default_resolution(phi)

    @register_model(f"effnet_b{phi}", defaults=dict(image_shape=(size, size, 3), num_classes=1000, phi=phi),
                    test_image_shape=(32, 32, 3), **_CFG,
                    description=f"MBConv + SE network, compound scaling phi={phi} of B0 ({size} px).")
    def variant(**kwargs):
        return build_effnet(**kwargs)

    return variant


effnet_b0, effnet_b1, effnet_b2, effnet_b3 = (_register(phi) for phi in range(4))


@register_model("test_effnet", defaults=dict(image_shape=(32, 32, 3), num_classes=3, width_multiplier=0.25,
                                             head_filters=32, blocks=((1, 3, 2, 16, 1), (4, 5, 2, 24, 2))),
                **_CFG, description="A tiny compound-scaled MBConv + SE network for fast tests.")
def test_effnet(**kwargs):
    return build_effnet(**kwargs)
