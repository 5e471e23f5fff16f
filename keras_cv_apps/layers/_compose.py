"""Helpers for the composite block layers: checks with one-sentence errors, conv + BN + activation
chains, and building / calling a chain of sublayers (so each block's ``build`` creates every
weight before a ``.keras`` file restores them)."""

from __future__ import annotations

import keras

from keras_cv_apps._validate import check_choice, check_int, check_number

# activations the blocks accept (all export to built-in TFLite ops; hard_* are the int8-friendly ones)
BLOCK_ACTIVATIONS = ("relu", "relu6", "swish", "hard_swish", "gelu", "sigmoid", "hard_sigmoid", "linear")
PADDINGS = ("same", "valid")
# Batch-norm momentum of the blocks. Keras' default (0.99) suits long ImageNet runs; over the few
# hundred steps of a short run the moving variance keeps much of its initial 1, which ruins
# inference-mode outputs of deep mobile networks (validation stuck at chance while training
# accuracy rises). 0.9 (PyTorch's default) forgets the initial value within ~50 steps.
BN_MOMENTUM = 0.9


def as_list(value):
    """A tuple argument as the list a JSON config gives back (ints pass through)."""
    return list(value) if isinstance(value, tuple) else value


def check_activation(activation, what: str):
    return check_choice(activation, BLOCK_ACTIVATIONS, what)


def pair(value, what: str) -> tuple:
    """An int or a pair of ints (kernel sizes, strides) as a positive ``(h, w)`` tuple."""
    values = (value, value) if isinstance(value, (int, float)) else tuple(value)
    if len(values) != 2:
        raise ValueError(f"{what} must be an integer or a pair of integers, got {value!r}.")
    return tuple(check_int(v, what, minimum=1) for v in values)


def check_rate(rate, what: str, *, maximum_inclusive: bool = False) -> float:
    return check_number(rate, what, minimum=0, maximum=1, max_inclusive=maximum_inclusive)


def check_fits(kernel, input_shape, padding: str, what: str):
    """Refuse a kernel larger than the feature map in ``valid`` padding (the output would be empty)."""
    if padding != "valid":
        return
    size = tuple(input_shape[1:3])
    if any(s is not None and k > s for k, s in zip(kernel, size)):
        raise ValueError(f"{what} {tuple(kernel)} is larger than the {size[0]}x{size[1]} feature map with "
                         "padding='valid'; use a smaller kernel, a larger input or padding='same'.")


def channels_of(input_shape, what: str) -> int:
    channels = input_shape[-1]
    if channels is None:
        raise ValueError(f"{what} needs a known number of input channels, got shape {tuple(input_shape)}.")
    return int(channels)


def activation_layer(activation: str, name: str):
    """A Keras ``Activation`` layer, or `HardSwish` for ``hard_swish`` (it stays on XNNPACK in int8)."""
    if activation == "hard_swish":
        from keras_cv_apps.layers.activations import HardSwish

        return HardSwish(name=name)
    return keras.layers.Activation(activation, name=name)


def conv_bn(filters, kernel_size, *, strides=1, padding="same", activation=None, depthwise=False,
            batch_norm=True, name="conv", depth_multiplier=1, bn_momentum=BN_MOMENTUM, zero_gamma=False):
    """``[conv, batch-norm, activation]`` sublayers (bias only without batch-norm; ``zero_gamma``
    starts the batch-norm scale at zero)."""
    if depthwise:
        conv = keras.layers.DepthwiseConv2D(kernel_size, strides=strides, padding=padding, use_bias=not batch_norm,
                                            depth_multiplier=depth_multiplier, name=name)
    else:
        conv = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=not batch_norm,
                                   name=name)
    chain = [conv]
    if batch_norm:
        chain.append(keras.layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn",
                                                     gamma_initializer="zeros" if zero_gamma else "ones"))
    if activation not in (None, "linear"):
        chain.append(activation_layer(activation, name=f"{name}_act"))
    return chain


def build_chain(chain, input_shape):
    """Build each sublayer of ``chain`` in turn; return the output shape."""
    shape = tuple(input_shape)
    for layer in chain:
        layer.build(shape)
        shape = tuple(layer.compute_output_shape(shape))
    return shape


def run_chain(chain, x, training=None):
    for layer in chain:
        x = layer(x, training=training) if isinstance(layer, keras.layers.BatchNormalization) else layer(x)
    return x
