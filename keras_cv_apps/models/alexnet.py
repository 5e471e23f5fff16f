"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012): five convolutions and three dense layers.

Layout on the paper's 227x227x3 input::

    conv1 96@11x11 stride 4 -> [LRN] -> maxpool 3x3/2      conv2 256@5x5 -> [LRN] -> maxpool 3x3/2
    conv3 384@3x3  conv4 384@3x3  conv5 256@3x3 -> maxpool 3x3/2
    FC 4096 -> dropout 0.5 -> FC 4096 -> dropout 0.5 -> FC num_classes (softmax)

``norm="lrn"`` is the paper's local response normalisation; ``norm="batchnorm"`` (default) is the
modern replacement that trains faster. For small inputs the network scales itself down from
``image_shape``: below 128 px the 11x11/4 stem becomes a 5x5/2 stem (below 64 px a 3x3/1 stem),
pooling keeps the spatial size from collapsing, and the widths and dense layers shrink so a
32x32 digit model stays small.
"""

from __future__ import annotations

import keras
from keras import layers

from keras_cv_apps._validate import check_choice, check_image_shape, check_number
from keras_cv_apps.choices import ALEXNET_NORMS
from keras_cv_apps.layers.normalization import LocalResponseNormalization
from keras_cv_apps.models._blocks import check_num_classes
from keras_cv_apps.models._registry import register_model

MIN_IMAGE_SIZE = 16  # three 3x3/2 pools on the smallest stem

NORMS = ALEXNET_NORMS
_PAPER_WIDTHS = (96, 256, 384, 384, 256)


def _auto_scale(size: int):
    """(stem kernel, stem stride, width multiplier, dense units) for an input of ``size`` pixels."""
    if size >= 128:
        return 11, 4, 1.0, 4096
    if size >= 64:
        return 5, 2, 0.5, 1024
    return 3, 1, 0.25, 256


def build_alexnet(
    *,
    num_classes: int = 1000,
    image_shape=(227, 227, 3),
    norm: str = "batchnorm",
    dropout: float = 0.5,
    width_multiplier: float | None = None,
    dense_units: int | None = None,
    name: str = "alexnet",
) -> keras.Model:
    """Build AlexNet as a functional ``keras.Model`` ending in a softmax.

    Args:
        num_classes: number of output classes.
        image_shape: input (height, width, channels); the stem and widths adapt to the size.
        norm: ``batchnorm`` after every convolution, ``lrn`` after conv1 and conv2 as in the
            paper, or ``none``.
        dropout: dropout rate before the first two dense layers (0.5 in the paper).
        width_multiplier: scales the convolution widths; None picks it from the input size.
        dense_units: units of the two hidden dense layers; None picks it from the input size.
    """
    check_choice(norm, NORMS, "norm")
    num_classes = check_num_classes(num_classes, model=name)
    image_shape = check_image_shape(image_shape, f"{name} image_shape", min_size=MIN_IMAGE_SIZE)
    check_number(dropout, f"{name} dropout", minimum=0, maximum=1, max_inclusive=False)
    size = min(image_shape[:2])
    stem_kernel, stem_stride, auto_width, auto_units = _auto_scale(size)
    width = auto_width if width_multiplier is None else float(width_multiplier)
    units = auto_units if dense_units is None else int(dense_units)
    filters = [max(8, int(round(f * width))) for f in _PAPER_WIDTHS]
    # The paper's pools are 3x3/2 "valid"; on small inputs "same" padding keeps 3 pools possible.
    pool_padding = "valid" if size >= 128 else "same"

    def conv(x, n, kernel, stride, block, lrn=False):
        padding = "valid" if block == "conv1" and size >= 128 else "same"
        x = layers.Conv2D(n, kernel, strides=stride, padding=padding, use_bias=norm != "batchnorm", name=block)(x)
        if norm == "batchnorm":
            x = layers.BatchNormalization(name=f"{block}_bn")(x)
        x = layers.ReLU(name=f"{block}_relu")(x)
        if norm == "lrn" and lrn:
            x = LocalResponseNormalization(name=f"{block}_lrn")(x)
        return x

    inputs = keras.Input(shape=image_shape, name="image")
    x = conv(inputs, filters[0], stem_kernel, stem_stride, "conv1", lrn=True)
    x = layers.MaxPooling2D(3, strides=2, padding=pool_padding, name="pool1")(x)
    x = conv(x, filters[1], 5, 1, "conv2", lrn=True)
    x = layers.MaxPooling2D(3, strides=2, padding=pool_padding, name="pool2")(x)
    x = conv(x, filters[2], 3, 1, "conv3")
    x = conv(x, filters[3], 3, 1, "conv4")
    x = conv(x, filters[4], 3, 1, "conv5")
    x = layers.MaxPooling2D(3, strides=2, padding=pool_padding, name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    for i in (6, 7):
        if dropout:
            x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


_CFG = dict(task="classifier", min_image_size=MIN_IMAGE_SIZE, feature_layer="fc7", classifier="predictions")


@register_model("alexnet", defaults=dict(image_shape=(227, 227, 3), num_classes=1000), test_image_shape=(32, 32, 1),
                **_CFG, description="AlexNet (2012): 5 conv + 3 FC, LRN or batch-norm, scaled down for small inputs.")
def alexnet(**kwargs):
    return build_alexnet(**kwargs)


@register_model("test_alexnet", defaults=dict(image_shape=(16, 16, 1), num_classes=3, norm="lrn",
                                              width_multiplier=0.05, dense_units=16),
                **_CFG, description="A tiny AlexNet with LRN for fast tests.")
def test_alexnet(**kwargs):
    return build_alexnet(**kwargs)
