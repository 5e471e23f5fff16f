"""Feature pyramid network (Lin et al., 2017): merge a backbone's maps of several resolutions into
maps that all carry ``filters`` channels of strong, high-level features.

Top-down: the coarsest map goes through a 1x1 "lateral" convolution; each finer level adds its
own lateral convolution to the coarser result resized (nearest neighbour) to its size; a 3x3
convolution then smooths each sum. Resizing to the exact size of the finer level (instead of a
fixed x2) also handles odd sizes such as 7 -> 4 -> 2 under ``same``-padded strides.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_cv_apps._validate import check_int
from keras_cv_apps.layers._compose import channels_of


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class FeaturePyramid(keras.layers.Layer):
    """Call on a list of ``(B, H_i, W_i, C_i)`` maps ordered fine to coarse (e.g. strides 8, 16,
    32); returns a list of ``(B, H_i, W_i, filters)`` maps in the same order.

    Args:
        filters: channels of every output level (256 in the paper).
        extra_levels: coarser levels added on top by stride-2 3x3 convolutions of the coarsest
            output (RetinaNet's P6/P7).
    """

    def __init__(self, filters=64, *, extra_levels=0, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int(filters, "FeaturePyramid filters", minimum=1)
        self.extra_levels = check_int(extra_levels, "FeaturePyramid extra_levels", minimum=0)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not all(isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError("FeaturePyramid takes a list of feature maps ordered fine to coarse.")
        sizes = [s[1:3] for s in input_shape]
        if any(a[0] is not None and b[0] is not None and a[0] < b[0] for a, b in zip(sizes, sizes[1:])):
            raise ValueError(f"FeaturePyramid inputs must be ordered fine to coarse; got sizes {sizes}.")
        self.lateral = [keras.layers.Conv2D(self.filters, 1, name=f"lateral_{i}") for i in range(len(input_shape))]
        self.smooth = [keras.layers.Conv2D(self.filters, 3, padding="same", name=f"smooth_{i}")
                       for i in range(len(input_shape))]
        self.extra = [keras.layers.Conv2D(self.filters, 3, strides=2, padding="same", name=f"extra_{i}")
                      for i in range(self.extra_levels)]
        for i, shape in enumerate(input_shape):
            self.lateral[i].build(shape)
            self.smooth[i].build((*shape[:-1], self.filters))
            channels_of(shape, "FeaturePyramid")
        for conv in self.extra:
            conv.build((None, None, None, self.filters))

    def call(self, inputs):
        merged = self.lateral[-1](inputs[-1])
        outputs = [self.smooth[-1](merged)]
        for i in range(len(inputs) - 2, -1, -1):
            lateral = self.lateral[i](inputs[i])
            size = (lateral.shape[1], lateral.shape[2])
            if None in size:
                size = (ops.shape(lateral)[1], ops.shape(lateral)[2])
            merged = lateral + ops.image.resize(merged, size, interpolation="nearest")
            outputs.insert(0, self.smooth[i](merged))
        x = outputs[-1]
        for i, conv in enumerate(self.extra):
            x = conv(x if i == 0 else ops.relu(x))
            outputs.append(x)
        return outputs

    def compute_output_shape(self, input_shape):
        shapes = [(*s[:-1], self.filters) for s in input_shape]
        b, h, w = shapes[-1][:3]
        for _ in range(self.extra_levels):
            h, w = (None if s is None else -(-s // 2) for s in (h, w))
            shapes.append((b, h, w, self.filters))
        return shapes

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "extra_levels": self.extra_levels}
