"""Factorised convolutions and the ResNet bottleneck block.

- `DepthwiseSeparableConv2D` (MobileNet v1): a k x k depthwise convolution per channel, then a
  1x1 pointwise convolution that mixes channels. On the 4x4x3 -> 2 outputs, 3x3 ``valid`` example
  it costs 108 + 24 = 132 MACs against 216 for `keras.layers.Conv2D` (see `models.complexity`).
- `SpatiallySeparableConv2D`: a k x 1 convolution then a 1 x k one. A k x k kernel that is an
  outer product of a column and a row is reproduced exactly with 2k instead of k² taps.
- `BottleneckResidual` (ResNet-50 and deeper): 1x1 reduce, 3x3, 1x1 expand, plus a shortcut.
"""

from __future__ import annotations

import keras

from keras_cv_apps._validate import check_choice, check_int
from keras_cv_apps.layers._compose import (
    PADDINGS,
    activation_layer,
    as_list,
    build_chain,
    channels_of,
    check_activation,
    check_fits,
    conv_bn,
    pair,
    run_chain,
)


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class DepthwiseSeparableConv2D(keras.layers.Layer):
    """Depthwise k x k convolution (+ BN + activation), then 1x1 pointwise (+ BN + activation).

    Args:
        filters: output channels of the pointwise convolution.
        kernel_size: depthwise kernel, an int or ``(kh, kw)``.
        strides: stride of the depthwise convolution.
        padding: ``same`` or ``valid``.
        activation: after each convolution (None for none).
        batch_norm: batch-normalise after each convolution (the convolutions then have no bias).
        depth_multiplier: depthwise outputs per input channel.
    """

    def __init__(self, filters, kernel_size=3, *, strides=1, padding="same", activation="relu", batch_norm=True,
                 depth_multiplier=1, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int(filters, "DepthwiseSeparableConv2D filters", minimum=1)
        self.kernel_size = pair(kernel_size, "DepthwiseSeparableConv2D kernel_size")
        self.strides = pair(strides, "DepthwiseSeparableConv2D strides")
        self.padding = check_choice(padding, PADDINGS, "padding")
        self.activation = None if activation is None else check_activation(activation, "activation")
        self.batch_norm = bool(batch_norm)
        self.depth_multiplier = check_int(depth_multiplier, "depth_multiplier", minimum=1)
        self.depthwise = conv_bn(None, self.kernel_size, strides=self.strides, padding=padding, depthwise=True,
                                 activation=activation, batch_norm=batch_norm, depth_multiplier=depth_multiplier,
                                 name="depthwise")
        self.pointwise = conv_bn(filters, 1, activation=activation, batch_norm=batch_norm, name="pointwise")

    def build(self, input_shape):
        check_fits(self.kernel_size, input_shape, self.padding, "DepthwiseSeparableConv2D kernel_size")
        build_chain(self.depthwise + self.pointwise, input_shape)

    def call(self, inputs, training=None):
        return run_chain(self.depthwise + self.pointwise, inputs, training)

    def compute_output_shape(self, input_shape):
        shape = self.depthwise[0].compute_output_shape(input_shape)
        return (*shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": as_list(self.kernel_size),
                "strides": as_list(self.strides), "padding": self.padding, "activation": self.activation,
                "batch_norm": self.batch_norm, "depth_multiplier": self.depth_multiplier}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class SpatiallySeparableConv2D(keras.layers.Layer):
    """``Conv2D(intermediate, (k, 1))`` then ``Conv2D(filters, (1, k))``, then ``activation``.

    Args:
        filters: output channels.
        kernel_size: ``k`` (or ``(kh, kw)``: a kh x 1 pass then a 1 x kw pass).
        strides: ``(sh, sw)``: the first pass strides the height, the second the width.
        padding: ``same`` or ``valid`` (both passes).
        intermediate_filters: channels between the passes (default ``filters``).
        activation: applied once at the end (None for linear).
        use_bias: biases on both passes.
    """

    def __init__(self, filters, kernel_size=3, *, strides=1, padding="same", intermediate_filters=None,
                 activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int(filters, "SpatiallySeparableConv2D filters", minimum=1)
        self.kernel_size = pair(kernel_size, "SpatiallySeparableConv2D kernel_size")
        self.strides = pair(strides, "SpatiallySeparableConv2D strides")
        self.padding = check_choice(padding, PADDINGS, "padding")
        self.intermediate_filters = check_int(intermediate_filters or filters, "intermediate_filters", minimum=1)
        self.activation = None if activation is None else check_activation(activation, "activation")
        self.use_bias = bool(use_bias)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        self.vertical = keras.layers.Conv2D(self.intermediate_filters, (kh, 1), strides=(sh, 1), padding=padding,
                                            use_bias=use_bias, name="vertical")
        self.horizontal = keras.layers.Conv2D(filters, (1, kw), strides=(1, sw), padding=padding,
                                              use_bias=use_bias, activation=activation, name="horizontal")

    def build(self, input_shape):
        check_fits(self.kernel_size, input_shape, self.padding, "SpatiallySeparableConv2D kernel_size")
        build_chain([self.vertical, self.horizontal], input_shape)

    def call(self, inputs):
        return self.horizontal(self.vertical(inputs))

    def compute_output_shape(self, input_shape):
        return self.horizontal.compute_output_shape(self.vertical.compute_output_shape(input_shape))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": as_list(self.kernel_size),
                "strides": as_list(self.strides), "padding": self.padding,
                "intermediate_filters": self.intermediate_filters, "activation": self.activation,
                "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class BottleneckResidual(keras.layers.Layer):
    """ResNet bottleneck: 1x1 (``filters``) -> 3x3 (stride) -> 1x1 (``filters * expansion``), each
    batch-normalised, added to the shortcut, then ``activation``.

    The shortcut is the input itself when shapes match, else a strided 1x1 convolution + BN
    (ResNet "option B"). The last BN's scale starts at zero when ``zero_init`` is set, so every
    block starts as the identity (Goyal et al., 2017).
    """

    def __init__(self, filters, *, strides=1, expansion=4, kernel_size=3, activation="relu", zero_init=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int(filters, "BottleneckResidual filters", minimum=1)
        self.strides = check_int(strides, "BottleneckResidual strides", minimum=1)
        self.expansion = check_int(expansion, "BottleneckResidual expansion", minimum=1)
        self.kernel_size = pair(kernel_size, "BottleneckResidual kernel_size")
        self.activation = check_activation(activation, "activation")
        self.zero_init = bool(zero_init)
        out = filters * expansion
        self.branch = (conv_bn(filters, 1, activation=activation, name="reduce")
                       + conv_bn(filters, self.kernel_size, strides=strides, activation=activation, name="conv")
                       + conv_bn(out, 1, name="expand", zero_gamma=zero_init))
        self.shortcut = []
        self.act = activation_layer(activation, name="out_act")

    def build(self, input_shape):
        out_shape = build_chain(self.branch, input_shape)
        if self.strides != 1 or channels_of(input_shape, "BottleneckResidual") != out_shape[-1]:
            self.shortcut = conv_bn(out_shape[-1], 1, strides=self.strides, name="shortcut")
            build_chain(self.shortcut, input_shape)

    def call(self, inputs, training=None):
        shortcut = run_chain(self.shortcut, inputs, training) if self.shortcut else inputs
        return self.act(run_chain(self.branch, inputs, training) + shortcut)

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for layer in self.branch:
            shape = layer.compute_output_shape(shape)
        return shape

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides,
                "expansion": self.expansion, "kernel_size": as_list(self.kernel_size), "activation": self.activation,
                "zero_init": self.zero_init}
