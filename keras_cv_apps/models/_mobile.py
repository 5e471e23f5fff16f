"""What the mobile families (MobileNetV2-, GhostNet- and EfficientNet-style) share: argument
checks, the stem convolution, the classifier head and the cfg fields they register with."""

from __future__ import annotations

import keras
from keras import layers

from keras_cv_apps._validate import check_image_shape, check_number
from keras_cv_apps.layers._compose import BN_MOMENTUM, activation_layer, check_activation
from keras_cv_apps.models._blocks import check_num_classes

# The families downsample by 2 five times: below 32 px the last stages would see a 1x1 map
# padded from nothing.
MIN_IMAGE_SIZE = 32


def min_image_size(**_) -> int:
    """Smallest input of the mobile families: five stride-2 stages need 32 px."""
    return MIN_IMAGE_SIZE


def check_args(name, *, num_classes, image_shape, width_multiplier, dropout, activation):
    """Validate the arguments every mobile family takes; return ``(num_classes, image_shape)``."""
    check_activation(activation, f"{name} activation")
    check_number(width_multiplier, f"{name} width_multiplier", minimum=0, min_inclusive=False)
    check_number(dropout, f"{name} dropout", minimum=0, maximum=1, max_inclusive=False)
    return (check_num_classes(num_classes, model=name),
            check_image_shape(image_shape, f"{name} image_shape", min_size=MIN_IMAGE_SIZE))


def conv_bn_act(x, filters, kernel_size, *, strides=1, activation="relu", name):
    """A bias-free convolution, batch-norm and activation as three named layers of the graph."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return x if activation in (None, "linear") else activation_layer(activation, name=f"{name}_act")(x)


def classifier(x, num_classes, *, dropout, hidden=None, activation="relu"):
    """Global average pool (``avg_pool``), an optional dense ``features`` layer (GhostNet's and
    MobileNetV3's), dropout and the softmax ``predictions`` layer."""
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if hidden:
        x = layers.Dense(hidden, name="features")(x)
        x = activation_layer(activation, name="features_act")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_classes, activation="softmax", name="predictions")(x)


def inputs(image_shape):
    return keras.Input(shape=image_shape, name="image")


def cfg(feature_layer: str) -> dict:
    """The cfg fields shared by every variant of a mobile family.

    int8 exports use one weight scale per tensor: per-channel scales add 12 bytes per channel,
    which weigh on 3x3 depthwise channels of 9 weights (int8 files 0.285-0.306x float32 instead of
    0.258-0.262x on digits, with no better accuracy).
    """
    return dict(task="classifier", min_image_size=min_image_size, feature_layer=feature_layer,
                classifier="predictions", tflite_options={"per_channel": False})
