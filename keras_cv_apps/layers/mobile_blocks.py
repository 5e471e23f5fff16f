"""The blocks of mobile CNNs: the inverted residual (MobileNetV2's block, EfficientNet's MBConv)
and the Ghost module (GhostNet).

- `InvertedResidual`: 1x1 expand (xt) -> k x k depthwise (stride) -> optional squeeze-and-
  excitation -> 1x1 linear projection, with an identity shortcut (and optional stochastic depth)
  when the stride is 1 and the channels match (Sandler et al., 2018; Tan and Le, 2019).
- `GhostModule`: a 1x1 convolution makes ``ceil(filters / ratio)`` "intrinsic" maps, a cheap
  depthwise convolution derives the other ``ratio - 1`` ghost maps from each, and the two are
  concatenated (Han et al., 2020): about ``1 / ratio`` of a 1x1 convolution's MACs.
"""

from __future__ import annotations

import math

import keras

from keras_cv_apps._validate import check_choice, check_int, check_number
from keras_cv_apps.layers._compose import (
    PADDINGS,
    as_list,
    build_chain,
    channels_of,
    check_activation,
    check_fits,
    check_rate,
    conv_bn,
    pair,
    run_chain,
)
from keras_cv_apps.layers.attention import GATES, SqueezeExcitation
from keras_cv_apps.layers.regularization import StochasticDepth


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class InvertedResidual(keras.layers.Layer):
    """MobileNetV2 inverted residual / EfficientNet MBConv block.

    Args:
        filters: output channels.
        expansion: width of the expanded layer as a multiple of the input channels (1 skips
            the expansion convolution, as in MobileNetV2's first block).
        kernel_size: depthwise kernel.
        strides: depthwise stride.
        activation: after the expansion and the depthwise convolution (``relu6`` in MobileNetV2,
            ``swish`` in EfficientNet, ``hard_swish`` in MobileNetV3); the projection is linear.
        se_ratio: squeeze-and-excitation width as a fraction of the block's *input* channels
            (0.25 in EfficientNet); 0 disables it. A ratio that leaves no channel is refused.
        se_gate: ``sigmoid`` or ``hard_sigmoid``.
        drop_rate: stochastic depth rate on the residual branch (only with a shortcut).
        zero_init: start the projection's batch-norm scale at zero in a block with a shortcut,
            so the block starts as the identity (Goyal et al., 2017; as `BottleneckResidual`
            does). Deep stacks of MBConv blocks then train from the first steps instead of
            sitting at chance for many epochs (the EfficientNet-style family sets it).
    """

    def __init__(self, filters, *, expansion=6, kernel_size=3, strides=1, activation="relu6", se_ratio=0.0,
                 se_gate="hard_sigmoid", drop_rate=0.0, zero_init=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int(filters, "InvertedResidual filters", minimum=1)
        self.expansion = check_number(expansion, "InvertedResidual expansion", minimum=1)
        self.kernel_size = pair(kernel_size, "InvertedResidual kernel_size")
        self.strides = check_int(strides, "InvertedResidual strides", minimum=1)
        self.activation = check_activation(activation, "InvertedResidual activation")
        self.se_ratio = check_number(se_ratio, "InvertedResidual se_ratio", minimum=0, maximum=1)
        self.se_gate = check_choice(se_gate, GATES, "InvertedResidual se_gate")
        self.drop_rate = check_rate(drop_rate, "InvertedResidual drop_rate")
        self.zero_init = bool(zero_init)

    def build(self, input_shape):
        channels = channels_of(input_shape, "InvertedResidual")
        expanded = int(round(channels * self.expansion))
        self.expand = [] if self.expansion == 1 else conv_bn(expanded, 1, activation=self.activation, name="expand")
        self.depthwise = conv_bn(None, self.kernel_size, strides=self.strides, depthwise=True,
                                 activation=self.activation, name="depthwise")
        self.se = []
        if self.se_ratio > 0:
            squeeze = int(channels * self.se_ratio)
            if squeeze < 1:
                raise ValueError(f"InvertedResidual se_ratio={self.se_ratio} gives {channels} x {self.se_ratio} < 1 "
                                 f"squeeze channel for {channels} input channels; use se_ratio >= "
                                 f"{1 / channels:.3g} or 0 to disable squeeze-and-excitation.")
            self.se = [SqueezeExcitation(squeeze_channels=squeeze, activation=self.activation
                                         if self.activation != "hard_swish" else "relu", gate=self.se_gate,
                                         name="se")]
        self.residual = self.strides == 1 and channels == self.filters
        self.project = conv_bn(self.filters, 1, name="project", zero_gamma=self.zero_init and self.residual)
        self.drop = [StochasticDepth(self.drop_rate, name="drop")] if self.residual and self.drop_rate else []
        build_chain(self.expand + self.depthwise + self.se + self.project + self.drop, input_shape)

    def call(self, inputs, training=None):
        x = run_chain(self.expand + self.depthwise + self.se + self.project, inputs, training)
        if not self.residual:
            return x
        for layer in self.drop:
            x = layer(x, training=training)
        return inputs + x

    def compute_output_shape(self, input_shape):
        h, w = input_shape[1:3]
        h, w = (None if s is None else math.ceil(s / self.strides) for s in (h, w))
        return (input_shape[0], h, w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "expansion": self.expansion,
                "kernel_size": as_list(self.kernel_size), "strides": self.strides, "activation": self.activation,
                "se_ratio": self.se_ratio, "se_gate": self.se_gate, "drop_rate": self.drop_rate,
                "zero_init": self.zero_init}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class GhostModule(keras.layers.Layer):
    """``filters`` output maps from a thin primary convolution plus cheap depthwise "ghosts".

    Args:
        filters: output channels.
        ratio: ``s`` in the paper: one primary map per ``ratio`` outputs (2 in GhostNet).
        kernel_size: primary convolution kernel (1 in GhostNet).
        dw_kernel_size: kernel of the cheap depthwise operation (3 in GhostNet).
        strides: stride of the primary convolution.
        padding: of the primary convolution (``same`` or ``valid``); the cheap one keeps size.
        activation: after both convolutions (None for a linear module, as in GhostNet's
            second module of each bottleneck).
    """

    def __init__(self, filters, *, ratio=2, kernel_size=1, dw_kernel_size=3, strides=1, padding="same",
                 activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int(filters, "GhostModule filters", minimum=1)
        self.ratio = check_int(ratio, "GhostModule ratio", minimum=2)
        self.kernel_size = pair(kernel_size, "GhostModule kernel_size")
        self.dw_kernel_size = pair(dw_kernel_size, "GhostModule dw_kernel_size")
        self.strides = check_int(strides, "GhostModule strides", minimum=1)
        self.padding = check_choice(padding, PADDINGS, "GhostModule padding")
        self.activation = None if activation is None else check_activation(activation, "GhostModule activation")
        self.intrinsic = math.ceil(self.filters / self.ratio)
        self.primary = conv_bn(self.intrinsic, self.kernel_size, strides=strides, padding=padding,
                               activation=activation, name="primary")
        self.cheap = conv_bn(None, self.dw_kernel_size, depthwise=True, depth_multiplier=self.ratio - 1,
                             activation=activation, name="cheap")
        self.concat = keras.layers.Concatenate(name="concat")

    def build(self, input_shape):
        check_fits(self.kernel_size, input_shape, self.padding, "GhostModule kernel_size")
        shape = build_chain(self.primary, input_shape)
        build_chain(self.cheap, shape)

    def call(self, inputs, training=None):
        primary = run_chain(self.primary, inputs, training)
        out = self.concat([primary, run_chain(self.cheap, primary, training)])
        return out if self.intrinsic * self.ratio == self.filters else out[..., :self.filters]

    def compute_output_shape(self, input_shape):
        return (*self.primary[0].compute_output_shape(input_shape)[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "ratio": self.ratio,
                "kernel_size": as_list(self.kernel_size), "dw_kernel_size": as_list(self.dw_kernel_size),
                "strides": self.strides, "padding": self.padding, "activation": self.activation}
