"""What single units respond to: filter visualisation by activation maximisation (Erhan et al.,
2009) and grids of a layer's activations on one image.

`visualize_filters` starts every filter from the same grey, lightly noisy image and climbs the
mean activation of that filter (a unit for a 2-D layer) by normalised gradient ascent with a
small random roll per step; all filters go through the model as one batch. `activation_grid`
shows each channel of a layer's output on an image, min-max scaled per channel, as one grey grid.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from keras_cv_apps._validate import check_int, check_number
from keras_cv_apps.explain.dream import _to_model, scale_of
from keras_cv_apps.explain.overlay import tile_images
from keras_cv_apps.image import ops as pixel_ops


def _layer_shape(model, layer: str) -> tuple:
    from keras_cv_apps.explain._graph import find, iter_layers

    find(model, layer)
    shapes = [shape for lay, shape in iter_layers(model) if lay.name == layer]
    return shapes[-1]


def _image_size(model, size) -> tuple:
    from keras_cv_apps.explain._graph import input_shape

    if size is not None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        return tuple(check_int(s, "size", minimum=1) for s in size)
    shape = input_shape(model)
    return (shape[1] or 128, shape[2] or 128)


def visualize_filters(model, layer: str, filters: Sequence[int], *, size=None, steps: int = 60,
                      step_size: float = 0.02, seed: int = 0, scale=None, jitter: int = 2) -> np.ndarray:
    """uint8 ``(F, H, W, C)``: one image per filter index that excites it (see the module docstring).

    ``size``: the images' (height, width) or one int (default: the model's input size, else 128).
    """
    import tensorflow as tf

    from keras_cv_apps.explain._graph import GraphRunner, input_shape

    shape = _layer_shape(model, layer)
    filters = np.asarray(list(filters))
    if filters.ndim != 1 or len(filters) == 0 or not np.issubdtype(filters.dtype, np.integer):
        raise ValueError(f"filters must be a non-empty list of integers; got {filters!r}.")
    if filters.min() < 0 or filters.max() >= shape[-1]:
        raise ValueError(f"Layer {layer!r} has {shape[-1]} filters (0..{shape[-1] - 1}); got {filters.tolist()}.")
    steps = check_int(steps, "steps", minimum=0)
    check_number(step_size, "step_size", minimum=0)
    spec = scale_of(model, scale)
    channels = input_shape(model)[-1] or 3
    h, w = _image_size(model, size)
    runner = GraphRunner(model, capture=(layer,), scores=False)
    onehot = tf.constant(np.eye(shape[-1], dtype=np.float32)[filters])

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            a = runner(x)[1][layer]
            a = tf.reduce_mean(a, axis=(1, 2)) if len(a.shape) == 4 else a
            total = tf.reduce_sum(a * onehot)
        return tape.gradient(total, x)

    rng = np.random.default_rng(seed)
    lo = pixel_ops.scale(np.zeros(channels), spec["scale"], spec["mean"], spec["std"])
    hi = pixel_ops.scale(np.full(channels, 255.0), spec["scale"], spec["mean"], spec["std"])
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    pixels = 128.0 + rng.normal(0, 8, (h, w, channels))
    x = np.repeat(pixel_ops.scale(pixels, spec["scale"], spec["mean"], spec["std"])[None], len(filters), axis=0)
    for _ in range(steps):
        dy, dx = rng.integers(-jitter, jitter + 1, size=2) if jitter else (0, 0)
        g = np.roll(step(np.roll(x, (dy, dx), axis=(1, 2)).astype(np.float32)).numpy(), (-dy, -dx), axis=(1, 2))
        g /= np.maximum(np.abs(g).mean(axis=(1, 2, 3), keepdims=True), 1e-8)
        x = np.clip(x + step_size * g, lo, hi)
    out = pixel_ops.unscale(x, spec["scale"], spec["mean"], spec["std"])
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def activation_grid(model, image, layer: str, *, max_channels: int = 64, scale=None, size=None,
                    columns: Optional[int] = None) -> np.ndarray:
    """uint8 grey grid of the first ``max_channels`` channels of ``layer``'s output on ``image``
    (uint8 HxW or HxWxC, resized to the model's input size or ``size``)."""
    from keras_cv_apps.explain._graph import GraphRunner, input_shape

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"image must be uint8 HxW or HxWxC; got {image.dtype} {image.shape}.")
    shape = _layer_shape(model, layer)
    if len(shape) != 4:
        raise ValueError(f"Layer {layer!r} outputs shape {shape}, not a 4-D feature map (N, H, W, C).")
    max_channels = check_int(max_channels, "max_channels", minimum=1)
    spec = scale_of(model, scale)
    channels = input_shape(model)[-1] or 3
    pixels = pixel_ops.fit(image, _image_size(model, size), channels)
    x = pixel_ops.scale(_to_model(pixels, channels), spec["scale"], spec["mean"], spec["std"])[None]
    a = np.asarray(GraphRunner(model, capture=(layer,), scores=False)(x)[1][layer])[0][..., :max_channels]
    lo, hi = a.min(axis=(0, 1)), a.max(axis=(0, 1))
    span = np.where(hi > lo, hi - lo, 1.0)
    maps = np.rint(255 * (a - lo) / span).astype(np.uint8)
    return tile_images(np.moveaxis(maps, -1, 0), columns=columns)
