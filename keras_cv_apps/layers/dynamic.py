"""Dynamic convolution (CondConv, Yang et al., 2019; DynamicConv, Chen et al., 2020): the kernel
is a per-image mixture of ``num_experts`` kernels, ``W(x) = sum_e r_e(x) W_e``, with routing
weights ``r(x)`` computed from the globally pooled input.

Because a convolution is linear in its kernel, ``conv(x, sum_e r_e W_e) = sum_e r_e conv(x, W_e)``.
This layer computes the right-hand side: one convolution with ``num_experts * filters`` outputs,
split per expert, scaled by the routing weights and summed. That is the same function and the
same gradients, uses only built-in, batch-independent ops (CONV_2D, MEAN, FULLY_CONNECTED,
SPLIT, MUL, ADD: it exports to TFLite and runs on XNNPACK), and costs ``num_experts``
convolutions, which `models.complexity` reports as such. (Mixing the kernels first costs one
convolution, but needs a different kernel per image, which TFLite's convolution kernels and
XNNPACK do not take.)
"""

from __future__ import annotations

import keras
from keras import ops

from keras_cv_apps._validate import check_choice, check_int, check_number
from keras_cv_apps.layers._compose import PADDINGS, as_list, channels_of, check_activation, check_fits, pair

ROUTINGS = ("sigmoid", "softmax")


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class DynamicConv2D(keras.layers.Layer):
    """A 2-D convolution whose kernel is an input-dependent mixture of ``num_experts`` kernels.

    Args:
        filters: output channels.
        kernel_size: int or ``(kh, kw)``.
        num_experts: kernels mixed per image (4 or 8 in the papers).
        strides, padding, use_bias: as in ``keras.layers.Conv2D`` (the bias is mixed too).
        routing: ``sigmoid`` (CondConv: independent weights) or ``softmax`` (DynamicConv:
            weights sum to one).
        temperature: divides the routing logits before a softmax (DynamicConv anneals it
            from 30 to 1); ignored for ``sigmoid``.
        activation: applied to the output.
    """

    def __init__(self, filters, kernel_size=3, *, num_experts=4, strides=1, padding="same", use_bias=True,
                 routing="sigmoid", temperature=1.0, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int(filters, "DynamicConv2D filters", minimum=1)
        self.kernel_size = pair(kernel_size, "DynamicConv2D kernel_size")
        self.num_experts = check_int(num_experts, "DynamicConv2D num_experts", minimum=1)
        self.strides = pair(strides, "DynamicConv2D strides")
        self.padding = check_choice(padding, PADDINGS, "DynamicConv2D padding")
        self.use_bias = bool(use_bias)
        self.routing = check_choice(routing, ROUTINGS, "DynamicConv2D routing")
        self.temperature = check_number(temperature, "DynamicConv2D temperature", minimum=0, min_inclusive=False)
        self.activation = None if activation is None else check_activation(activation, "DynamicConv2D activation")
        self.activation_fn = keras.activations.get(activation)
        self.router = keras.layers.Dense(self.num_experts, name="router")
        self.experts = keras.layers.Conv2D(self.filters * self.num_experts, self.kernel_size, strides=self.strides,
                                           padding=self.padding, use_bias=self.use_bias, name="experts")

    def build(self, input_shape):
        check_fits(self.kernel_size, input_shape, self.padding, "DynamicConv2D kernel_size")
        channels = channels_of(input_shape, "DynamicConv2D")
        self.router.build((None, channels))
        self.experts.build(input_shape)

    def routing_weights(self, inputs):
        """``(B, num_experts)`` mixing weights for ``inputs``."""
        logits = self.router(ops.mean(inputs, axis=(1, 2)))
        if self.routing == "softmax":
            return ops.softmax(logits / self.temperature, axis=-1)
        return ops.sigmoid(logits)

    def call(self, inputs):
        weights = self.routing_weights(inputs)
        outputs = self.experts(inputs)
        if self.num_experts == 1:
            return self.activation_fn(outputs * ops.reshape(weights, (-1, 1, 1, 1)))
        parts = ops.split(outputs, self.num_experts, axis=-1)
        gates = ops.split(ops.reshape(weights, (-1, 1, 1, self.num_experts)), self.num_experts, axis=-1)
        mixed = parts[0] * gates[0]
        for part, gate in zip(parts[1:], gates[1:]):
            mixed = mixed + part * gate
        return self.activation_fn(mixed)

    def compute_output_shape(self, input_shape):
        return (*self.experts.compute_output_shape(input_shape)[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": as_list(self.kernel_size),
                "num_experts": self.num_experts, "strides": as_list(self.strides), "padding": self.padding,
                "use_bias": self.use_bias, "routing": self.routing, "temperature": self.temperature,
                "activation": self.activation}
