"""What every explanation shares: input checks, class indices, batching, and the one place that
differentiates (the backend's autodiff, behind `score_gradients` and `input_gradients`).

The maps themselves are computed with ``keras.ops``. Gradients of an inner layer's output need a
tape that can watch a tensor in the middle of a forward pass; that is TensorFlow's
``GradientTape``, so the gradient functions below run on the TensorFlow backend (the package's
backend) and say so clearly on another one.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import keras
import numpy as np

from keras_cv_apps.explain._graph import GraphRunner, graph_of, input_shape

_CACHE = "_keras_cv_apps_explain_cache"


def check_images(images, model) -> np.ndarray:
    """``images`` as float32 ``(N, H, W, C)`` that ``model`` takes, or one sentence saying why not."""
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"images must be a non-empty float array (N, H, W, C) as the model takes it; got shape "
                         f"{x.shape} (add a batch axis with images[None] for one image).")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"images must be float, scaled exactly as the model takes them; got dtype {x.dtype} (scale "
                         "uint8 pixels with keras_cv_apps.image.ops.scale first).")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise ValueError("images contain NaN or infinite values.")
    expected = input_shape(model)
    if expected[-1] is not None and x.shape[-1] != expected[-1]:
        raise ValueError(f"{model.name} takes {expected[-1]}-channel images; got {x.shape[-1]} channels.")
    return x


def num_classes(model) -> int:
    return int(graph_of(model).outputs[0].shape[-1])


def check_class_index(class_index, n: int, model) -> np.ndarray:
    """Per-image class indices, ``-1`` meaning the predicted class."""
    k = num_classes(model)
    if class_index is None:
        return np.full(n, -1, np.int32)
    values = np.asarray(class_index)
    if values.ndim == 0:
        values = np.full(n, values)
    ok = np.issubdtype(values.dtype, np.integer) and values.shape == (n,)
    if not ok or values.min() < 0 or values.max() >= k:
        raise ValueError(f"class_index {class_index!r} is out of range for {model.name}, which scores {k} classes: "
                         f"use None (the predicted class) or an integer in 0..{k - 1}.")
    return values.astype(np.int32)


def batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _cached(model, key, build):
    """Compiled functions kept on the model itself (outside Keras' attribute tracking), so they live
    exactly as long as it does."""
    per_model = model.__dict__.get(_CACHE)
    if per_model is None:
        per_model = {}
        object.__setattr__(model, _CACHE, per_model)
    if key not in per_model:
        per_model[key] = build()
    return per_model[key]


def _require_tensorflow():
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(f"Explanations differentiate through TensorFlow's GradientTape; the Keras backend is "
                         f"{backend!r}. Set KERAS_BACKEND=tensorflow.")
    import tensorflow as tf

    return tf


def _pick(scores, idx):
    chosen = keras.ops.where(idx < 0, keras.ops.cast(keras.ops.argmax(scores, axis=-1), "int32"), idx)
    picked = keras.ops.take_along_axis(scores, chosen[:, None], axis=1)[:, 0]
    return picked, chosen


def score_gradients(model, layers: Sequence[str] = ()):
    """A compiled ``f(x, idx) -> (picked scores, chosen class, d score / d x, {layer: (output, d score / d output)})``
    with the scores taken before a final softmax."""
    tf = _require_tensorflow()
    layers = tuple(layers)

    def build():
        runner = GraphRunner(model, capture=layers)

        def step(x, idx):
            with tf.GradientTape() as tape:
                tape.watch(x)

                def hook(name, value):
                    tape.watch(value)
                    return value

                scores, captured = runner(x, hook)
                picked, chosen = _pick(scores, idx)
                total = tf.reduce_sum(picked)
            grads = tape.gradient(total, [x] + [captured[n] for n in layers],
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return picked, chosen, grads[0], {n: (captured[n], g) for n, g in zip(layers, grads[1:])}

        return tf.function(step, reduce_retracing=True)

    return _cached(model, ("score_gradients", layers), build)


def scores_fn(model):
    """A compiled ``f(x) -> scores`` (before a final softmax)."""
    tf = _require_tensorflow()

    def build():
        runner = GraphRunner(model)
        return tf.function(lambda x: runner(x)[0], reduce_retracing=True)

    return _cached(model, ("scores",), build)


def predict_scores(model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Scores before a final softmax for every image, ``(N, classes)`` NumPy."""
    fn = scores_fn(model)
    return np.concatenate([keras.ops.convert_to_numpy(fn(images[s])) for s in batches(len(images), batch_size)])


def resolve_classes(model, images: np.ndarray, class_index, batch_size: int = 64) -> np.ndarray:
    """The class explained for each image: ``class_index`` checked, else the predicted class."""
    idx = check_class_index(class_index, len(images), model)
    if (idx < 0).any():
        idx = np.where(idx < 0, predict_scores(model, images, batch_size).argmax(axis=-1), idx).astype(np.int32)
    return idx


def input_gradients(model, x: np.ndarray, idx: np.ndarray, batch_size: int) -> np.ndarray:
    """d score / d x for every row of ``x`` (classes ``idx``), batch by batch."""
    fn = score_gradients(model)
    out = np.empty_like(x)
    for s in batches(len(x), batch_size):
        out[s] = keras.ops.convert_to_numpy(fn(x[s], idx[s])[2])
    return out


def to_numpy(tree) -> Dict:
    return keras.tree.map_structure(keras.ops.convert_to_numpy, tree)


def normalise_max(maps, eps: float = 1e-12):
    """Each map divided by its maximum; a map with no positive value becomes zeros (never NaN)."""
    peak = keras.ops.max(maps, axis=tuple(range(1, len(maps.shape))), keepdims=True)
    return keras.ops.where(peak > eps, maps / keras.ops.maximum(peak, eps), keras.ops.zeros_like(maps))


def resize_maps(maps, size: Sequence[int]):
    """(N, h, w) maps -> (N, H, W), bilinear."""
    if tuple(maps.shape[1:3]) == tuple(size):
        return maps
    return keras.ops.image.resize(maps[..., None], tuple(size), interpolation="bilinear")[..., 0]


def optional_int(value, what: str, minimum: int) -> Optional[int]:
    from keras_cv_apps._validate import check_int

    return None if value is None else check_int(value, what, minimum=minimum)
