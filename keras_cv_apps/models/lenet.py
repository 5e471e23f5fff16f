"""LeNet-5 (LeCun et al., 1998): the first convolutional network that read real cheques.

Layout on a 32x32 input, as in the paper::

    C1 conv 6@5x5 -> 28x28x6   S2 subsampling 2x2 -> 14x14x6
    C3 conv 16@5x5 -> 10x10x16 S4 subsampling 2x2 -> 5x5x16
    C5 FC 120 -> F6 FC 84 -> output FC num_classes (softmax)

The paper's trainable subsampling and scaled tanh are approximated by average pooling and tanh;
``activation``, ``pooling``, ``padding``, ``batch_norm`` and ``dropout`` change them.
"""

from __future__ import annotations

import keras
from keras import layers

from keras_cv_apps._validate import check_choice, check_image_shape, check_number
from keras_cv_apps.models._blocks import ACTIVATIONS, POOLINGS, check_num_classes
from keras_cv_apps.models._registry import register_model


def min_image_size(*, padding: str = "valid", **_) -> int:
    """Smallest input LeNet-5 takes: two 5x5 convolutions and two 2x2 pools need 16 px with
    ``valid`` padding; ``same`` padding keeps the size through C1, so 10 px suffice."""
    return 16 if padding == "valid" else 10


def build_lenet5(
    *,
    num_classes: int = 10,
    image_shape=(32, 32, 1),
    activation: str = "tanh",
    pooling: str = "avg",
    padding: str = "valid",
    batch_norm: bool = False,
    dropout: float = 0.0,
    widths=(6, 16, 120, 84),
    name: str = "lenet5",
) -> keras.Model:
    """Build LeNet-5 as a functional ``keras.Model`` ending in a softmax.

    Args:
        num_classes: number of output classes.
        image_shape: input (height, width, channels); 32x32 in the paper.
        activation: one of ``ACTIVATIONS`` for every hidden layer (the paper used a scaled tanh).
        pooling: ``avg`` (the paper's subsampling) or ``max``.
        padding: ``valid`` (the paper, for 32x32 inputs) or ``same`` (keeps 28x28 MNIST-sized
            inputs at the paper's feature-map sizes).
        batch_norm: add batch normalisation after each convolution (not in the paper).
        dropout: dropout rate before each fully connected layer (0 disables it).
        widths: channels of C1, C3 and units of C5, F6.
    """
    check_choice(activation, ACTIVATIONS, "activation")
    check_choice(pooling, POOLINGS, "pooling")
    check_choice(padding, ("valid", "same"), "padding")
    num_classes = check_num_classes(num_classes, model=name)
    image_shape = check_image_shape(image_shape, f"{name} image_shape", min_size=min_image_size(padding=padding))
    check_number(dropout, f"{name} dropout", minimum=0, maximum=1, max_inclusive=False)
    c1, c3, c5, f6 = widths
    pool = layers.AveragePooling2D if pooling == "avg" else layers.MaxPooling2D

    def conv(x, filters, conv_padding, block):
        x = layers.Conv2D(filters, 5, padding=conv_padding, use_bias=not batch_norm, name=f"{block}_conv")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{block}_bn")(x)
        return layers.Activation(activation, name=f"{block}_act")(x)

    def dense(x, units, block):
        if dropout:
            x = layers.Dropout(dropout, name=f"{block}_dropout")(x)
        return layers.Dense(units, activation=activation, name=block)(x)

    inputs = keras.Input(shape=image_shape, name="image")
    x = conv(inputs, c1, padding, "c1")                   # 28x28x6 on 32x32 input
    x = pool(2, name="s2")(x)                             # 14x14x6
    x = conv(x, c3, "valid", "c3")                        # 10x10x16
    x = pool(2, name="s4")(x)                             # 5x5x16
    x = layers.Flatten(name="flatten")(x)
    x = dense(x, c5, "c5")                                # 120
    x = dense(x, f6, "f6")                                # 84
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


_CFG = dict(task="classifier", min_image_size=min_image_size, feature_layer="f6", classifier="predictions")


@register_model("lenet5", defaults=dict(image_shape=(32, 32, 1), num_classes=10), **_CFG,
                description="LeNet-5 (1998): conv 6@5x5, pool, conv 16@5x5, pool, FC 120-84-classes.")
def lenet5(**kwargs):
    return build_lenet5(**kwargs)


@register_model("test_lenet5", defaults=dict(image_shape=(16, 16, 1), num_classes=3, widths=(2, 4, 8, 8)), **_CFG,
                description="A tiny LeNet-5 for fast tests.")
def test_lenet5(**kwargs):
    return build_lenet5(**kwargs)
