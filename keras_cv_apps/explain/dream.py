"""DeepDream (Mordvintsev, Olah and Tyka, 2015), filter visualisation and activation grids.

DeepDream changes an image so that chosen layers respond more strongly: the objective is
``sum_l w_l * mean(a_l^2)`` over the layers' activations ``a_l`` and it climbs by gradient
ascent on the pixels. The gradient is divided by its mean absolute value, so ``step_size`` is the
mean change of a model input per step (in the model's input units: 0.01 is 2.55 grey levels
under ``unit`` scaling). Detail appears at several scales through *octaves*: the image is dreamed
at ``octaves`` sizes, each ``octave_scale`` times larger, from the smallest up; at each size the
dream so far is enlarged and added to the original at that size, which re-injects the detail
the shrunken image lost. Each step rolls the image by a random shift (``jitter``, drawn from
``seed`` alone) before the gradient and back after, so the network's grid does not print on the
picture. ``max_loss`` ends an octave before the step that would take the objective past it. The
image may leave the pixel range while it is dreamed (``clip=True`` keeps it inside after every
step); the result is clipped to uint8.

Large images are dreamed in **tiles**: the gradient is computed window by window (``tile_size``
pixels square), each window reaching ``tile_size // 8`` pixels past the part of the gradient it
contributes (its core), so a tile sees its neighbours' context and the cores cover the image to
its edges. With a tile at least as large as the image there is one window and the result equals
the untiled one. Memory follows the tile, not the image.

``scale`` is the pixel scaling the model was trained with (``unit``, ``symmetric``, or a dict
with ``scale``, ``mean``, ``std``): the cfg's for registry models, else ``unit``.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional

import numpy as np

from keras_cv_apps._validate import check_int, check_number
from keras_cv_apps.image import ops as pixel_ops

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as OpenCV
MARGIN = 8  # a window reaches tile_size // MARGIN pixels past its core


def parse_layers(layers) -> dict:
    """``{name: weight}`` from a mapping, a sequence of names (weight 1) or ``"a:1.0,b:1.5"``."""
    if isinstance(layers, str):
        out = {}
        for part in filter(None, (p.strip() for p in layers.split(","))):
            name, _, weight = part.partition(":")
            try:
                out[name.strip()] = float(weight) if weight else 1.0
            except ValueError:
                raise ValueError(f"Bad layer weight in {part!r}; write layers as name:weight,name:weight.") from None
        layers = out
    elif not isinstance(layers, Mapping):
        layers = {name: 1.0 for name in layers}
    if not layers:
        raise ValueError("layers is empty; name at least one layer to dream with (name:weight,...).")
    return {str(k): check_number(v, f"weight of layer {k!r}") for k, v in layers.items()}


def _check_layer_names(model, names):
    from keras_cv_apps.explain._graph import feature_maps, iter_layers

    known = {layer.name for layer, _ in iter_layers(model)}
    unknown = [n for n in names if n not in known]
    if unknown:
        maps = [n for n, _ in feature_maps(model)]
        shown = ", ".join(maps[:24]) + (f" (and {len(maps) - 24} more)" if len(maps) > 24 else "")
        raise ValueError(f"{model.name} has no layer {unknown[0]!r}; layers with feature maps are: {shown}.")


INCEPTION_LAYERS = {"mixed3": 1.0, "mixed5": 1.5}


def default_layers(model) -> dict:
    """Layers to dream with when none are named: InceptionV3's ``mixed3`` and ``mixed5``, else the
    last two activation layers with feature maps (the last two feature maps if none is one)."""
    import keras

    from keras_cv_apps.explain._graph import feature_maps, iter_layers

    maps = [name for name, _ in feature_maps(model)]
    if all(name in maps for name in INCEPTION_LAYERS):
        return dict(INCEPTION_LAYERS)
    kinds = {layer.name: layer for layer, _ in iter_layers(model)}
    active = [n for n in maps if isinstance(kinds[n], (keras.layers.ReLU, keras.layers.Activation))] or maps
    if not active:
        raise ValueError(f"{model.name} has no layer with a 4-D output (N, H, W, C) larger than 1x1 to dream with.")
    return {name: float(1.0 + 0.5 * i) for i, name in enumerate(active[-2:])}


def scale_of(model, scale=None) -> dict:
    """The pixel scaling as ``{"scale", "mean", "std"}``: ``scale`` if given, else the cfg's, else unit."""
    if scale is None:
        from keras_cv_apps.models import cfg_of

        cfg = cfg_of(model)
        scale = cfg.scale if cfg is not None else "unit"
    spec = dict(scale) if isinstance(scale, Mapping) else {"scale": scale}
    spec.setdefault("mean", None)
    spec.setdefault("std", None)
    pixel_ops.scale_params(spec["scale"], spec["mean"], spec["std"])  # validates
    return spec


class Dreamer:
    """The objective of ``layers`` on ``model`` and its gradient, whole or tiled, on float images
    ``(H, W, C)`` in model-input units. One compiled step serves every image size; convolution,
    batch-norm and ReLU chains run fused (``fuse``), with the weights as they are now."""

    def __init__(self, model, layers, scale=None, *, fuse: bool = True):
        from keras_cv_apps.explain._core import _require_tensorflow
        from keras_cv_apps.explain._graph import GraphRunner, input_shape

        tf = _require_tensorflow()
        self.model = model
        self.layers = parse_layers(layers)
        _check_layer_names(model, self.layers)
        self.channels = input_shape(model)[-1] or 3
        self.scale = scale_of(model, scale)
        runner = GraphRunner(model, capture=tuple(self.layers), scores=False, fuse=fuse)
        weights = dict(self.layers)

        @tf.custom_gradient
        def mean_square(a):  # d/da mean(a^2) = 2a / a.size in one product (autodiff adds a tile and two more)
            def grad(upstream):
                return (2.0 / tf.cast(tf.size(a), a.dtype) * tf.cast(upstream, a.dtype)) * a

            return tf.reduce_mean(tf.square(tf.cast(a, tf.float32))), grad

        def objective(x):
            _, acts = runner(x)
            return tf.add_n([w * mean_square(acts[n]) for n, w in weights.items()])

        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = objective(x)
            return loss, tape.gradient(loss, x)

        # traced once per image size (an octave, a tile): with the size known, TensorFlow picks
        # its convolution kernels and layouts for it, which a shape-free signature prevents
        self._step = tf.function(step)
        self._objective = tf.function(objective)

    def limits(self):
        """The model-input values of pixel 0 and 255 (per channel)."""
        lo = pixel_ops.scale(np.zeros(self.channels), self.scale["scale"], self.scale["mean"], self.scale["std"])
        hi = pixel_ops.scale(np.full(self.channels, 255.0), self.scale["scale"], self.scale["mean"], self.scale["std"])
        return np.minimum(lo, hi).astype(np.float32), np.maximum(lo, hi).astype(np.float32)

    def objective(self, x: np.ndarray) -> float:
        return float(self._objective(x[None].astype(np.float32)))

    def gradient(self, x: np.ndarray, tile_size: Optional[int] = None, shift=(0, 0)):
        """``(objective, gradient)`` of ``x`` (H, W, C) rolled by ``shift`` (rows, columns), the
        gradient given back in ``x``'s own coordinates; tiled when ``tile_size`` is smaller than
        the image. Tiles are gathered from ``x`` directly, so no rolled copy of it is made; a window
        covering the image is the rolled image itself (a roll costs less than a gather)."""
        h, w = x.shape[:2]
        tile = max(h, w) if tile_size is None else tile_size
        th, tw = min(tile, h), min(tile, w)
        if (th, tw) == (h, w):
            value, g = self._step(np.roll(x, shift, axis=(0, 1))[None])
            return float(value), np.roll(g.numpy()[0], (-shift[0], -shift[1]), axis=(0, 1))
        grad = np.empty_like(x)
        loss = 0.0
        for r0, c0, c1 in dream_windows(h, th):
            rows = (np.arange(r0, r0 + th) - shift[0]) % h  # rolled row i is x's row i - shift
            for q0, d0, d1 in dream_windows(w, tw):
                cols = (np.arange(q0, q0 + tw) - shift[1]) % w
                value, g = self._step(x[np.ix_(rows, cols)][None])
                core = np.ix_(rows[c0 - r0:c1 - r0], cols[d0 - q0:d1 - q0])
                grad[core] = g.numpy()[0, c0 - r0:c1 - r0, d0 - q0:d1 - q0]
                loss += float(value) * (c1 - c0) * (d1 - d0) / (th * tw)
        return loss, grad


def dream_windows(size: int, tile: int) -> list:
    """``(window start, core start, core end)`` along one axis: the cores tile ``[0, size)``; every
    window is ``tile`` long, inside the image, and reaches ``tile // MARGIN`` past its core."""
    if tile >= size:
        return [(0, 0, size)]
    margin = tile // MARGIN
    core = tile - 2 * margin
    return [(min(max(c0 - margin, 0), size - tile), c0, min(c0 + core, size)) for c0 in range(0, size, core)]


def _resize(x: np.ndarray, shape) -> np.ndarray:
    import cv2

    if x.shape[:2] == tuple(shape):
        return x
    out = cv2.resize(x, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)
    return out.reshape(*shape, x.shape[-1])


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (1, 3)):
        raise ValueError(f"image must be uint8 HxW or HxWx3 (or HxWx1); got {image.dtype} {image.shape}.")
    return image


def _to_model(image: np.ndarray, channels: int) -> np.ndarray:
    """uint8 image -> float pixels (H, W, channels)."""
    x = image.reshape(*image.shape[:2], -1).astype(np.float32)
    if x.shape[-1] == channels:
        return x
    if channels == 3:
        return np.repeat(x, 3, axis=-1)
    return (x @ _LUMA)[..., None]


def _from_model(pixels: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Float pixels in the model's channels -> uint8 shaped like ``image``."""
    like = image.reshape(*image.shape[:2], -1).astype(np.float32)
    if pixels.shape[-1] == like.shape[-1]:
        out = pixels
    elif like.shape[-1] == 1:  # a grey image through a colour model: the dream's luma
        out = (pixels @ _LUMA)[..., None]
    else:  # a colour image through a grey model: the grey change added to every channel
        out = like + (pixels - _to_model(image, 1))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(image.shape)


def _frame(pixels: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Float pixels -> uint8 with the image's channel count (for progress frames)."""
    channels = 1 if image.ndim == 2 else image.shape[-1]
    if pixels.shape[-1] != channels:
        pixels = np.repeat(pixels, 3, axis=-1) if channels == 3 else (pixels @ _LUMA)[..., None]
    out = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return out[..., 0] if image.ndim == 2 else out


def octave_shapes(shape, octaves: int, octave_scale: float) -> list:
    """Image sizes from the smallest octave to ``shape``."""
    return [tuple(max(1, int(round(d / octave_scale ** i))) for d in shape[:2]) for i in range(octaves - 1, -1, -1)]


def deep_dream(model, image, *, layers, octaves: int = 3, octave_scale: float = 1.4, steps: int = 20,
               step_size: float = 0.01, max_loss: Optional[float] = None, tile_size: Optional[int] = None,
               seed: int = 0, scale=None, jitter: int = 16, clip: bool = False,
               callback: Optional[Callable] = None) -> np.ndarray:
    """DeepDream ``image`` (uint8 HxW or HxWx3) -> uint8 of the same shape (see the module docstring).

    ``layers``: ``{name: weight}``, names, or ``"a:1.0,b:1.5"`` (layers inside nested models
    included). ``clip`` keeps the image in the valid pixel range after every step (as the original
    Caffe notebook does); by default, as in keras-io's example, only the result is clipped, which
    lets the objective climb further. ``callback(info)``, if given, gets a dict after every step: ``octave``, ``step``,
    ``loss`` (the objective before that step's update) and ``image`` (uint8 at the octave's size).
    """
    image = _check_image(image)
    octaves = check_int(octaves, "octaves", minimum=1)
    steps = check_int(steps, "steps", minimum=0)
    jitter = check_int(jitter, "jitter", minimum=0)
    check_number(octave_scale, "octave_scale", minimum=1.0)
    check_number(step_size, "step_size", minimum=0.0)
    if tile_size is not None:
        tile_size = check_int(tile_size, "tile_size", minimum=2 * MARGIN)
    if max_loss is not None:
        check_number(max_loss, "max_loss")
    dreamer = model if isinstance(model, Dreamer) else Dreamer(model, layers, scale)
    spec = dreamer.scale
    lo, hi = dreamer.limits()
    original = pixel_ops.scale(_to_model(image, dreamer.channels), spec["scale"], spec["mean"], spec["std"])
    shapes = octave_shapes(image.shape, octaves, octave_scale)
    rng = np.random.default_rng(seed)
    change = np.zeros((*shapes[0], dreamer.channels), np.float32)
    for octave, shape in enumerate(shapes):
        base = _resize(original, shape)
        x = base + _resize(change, shape)
        limits = (lo, hi) if clip else (None, None)
        x = _ascend(dreamer, x, octave, steps, step_size, max_loss, tile_size, rng, jitter, limits, callback, image)
        change = x - base
    pixels = pixel_ops.unscale(original + change, spec["scale"], spec["mean"], spec["std"])
    return _from_model(pixels, image)


def _ascend(dreamer, x, octave, steps, step_size, max_loss, tile_size, rng, jitter, limits, callback, image):
    spec = dreamer.scale
    previous = None
    for step in range(steps + (max_loss is not None)):
        dy, dx = (rng.integers(-jitter, jitter + 1, size=2) if jitter else (0, 0))
        try:
            loss, grad = dreamer.gradient(x, tile_size, shift=(dy, dx))
        except Exception as err:  # noqa: BLE001 - a model that cannot take this size fails inside the backend
            if octave == 0 and step == 0 and not isinstance(err, (KeyboardInterrupt, MemoryError)):
                raise ValueError(f"{dreamer.model.name} cannot take a {x.shape[0]}x{x.shape[1]} image (the first "
                                 f"octave); use fewer octaves or a larger image ({type(err).__name__}).") from err
            raise
        if max_loss is not None and loss > max_loss:
            if previous is not None:
                x = previous
            break
        if step == steps:  # the extra evaluation only checks the last update against max_loss
            break
        if callback is not None:
            frame = _frame(pixel_ops.unscale(x, spec["scale"], spec["mean"], spec["std"]), image)
            callback({"octave": octave, "step": step, "loss": loss, "image": frame})
        previous = x.copy() if max_loss is not None else None
        grad *= step_size / max(float(np.mean(np.abs(grad))), 1e-8)
        x += grad  # in place: a large image keeps few full-size copies
        if limits[0] is not None:
            np.clip(x, *limits, out=x)
    return x


def objective(model, image, *, layers, scale=None) -> float:
    """The DeepDream objective ``sum_l w_l mean(a_l^2)`` of a uint8 image (untiled)."""
    image = _check_image(image)
    dreamer = model if isinstance(model, Dreamer) else Dreamer(model, layers, scale)
    spec = dreamer.scale
    return dreamer.objective(pixel_ops.scale(_to_model(image, dreamer.channels), spec["scale"], spec["mean"],
                                             spec["std"]))
