"""Activations written for int8 phones.

`HardSwish` computes MobileNetV3's ``x * relu6(x + 3) / 6`` as ``(x / 6) * relu6(x + 3)``. The
usual spelling is fused by the TFLite converter into one HARD_SWISH op, which LiteRT's XNNPACK
delegate runs only in float: in an int8 model every hard-swish then falls back to the built-in
kernel and cuts the delegated graph into pieces (measured: 6 XNNPACK partitions instead of 1 on a
two-block model). This spelling converts to ADD (with a fused RELU6) and two MULs, which XNNPACK
runs in int8, so the whole network stays in one partition.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class HardSwish(keras.layers.Layer):
    """``x * relu6(x + 3) / 6`` (Howard et al., 2019), spelled to stay on XNNPACK's int8 kernels."""

    def call(self, inputs):
        return (inputs * (1.0 / 6.0)) * ops.relu6(inputs + 3.0)

    def compute_output_shape(self, input_shape):
        return input_shape
