"""Attributions from gradients and from perturbation, all batched.

- `class_score`: the score every method explains: the class's logit (the input of a final
  softmax, computed without changing the model), else the model's output.
- `saliency`: ``max_c |dS/dx_c|`` (Simonyan et al., 2014); SmoothGrad (Smilkov et al., 2017)
  averages it over ``smooth_samples`` copies with Gaussian noise of ``noise`` times each
  image's value range.
- `integrated_gradients` (Sundararajan et al., 2017): ``(x - x') * integral_0^1 dS/dx(x' + a (x - x')) da``
  by a midpoint (default), trapezoid or Gauss-Legendre rule over ``steps`` points, evaluated in
  batches of path points; the attributions sum to ``S(x) - S(x')`` up to the rule's error
  (completeness). On ReLU networks the path gradient jumps where units switch, so the smooth-case
  orders of the rules do not hold; the midpoint rule, which never evaluates the baseline itself,
  gave the smallest errors in ``benchmarks/bench_explain.py``.
- `occlusion` (Zeiler and Fergus, 2014): the drop of the class score when a ``patch`` square
  (filled with each image's channel mean, or ``fill``) covers a pixel, averaged over the patches
  that cover it; patches slide by ``stride`` and the last row and column touch the edges.

Maps read "larger = more evidence for the class".
"""

from __future__ import annotations

from typing import Optional, Union

import keras
import numpy as np

from keras_cv_apps._validate import check_choice, check_int, check_number
from keras_cv_apps.explain import _core

IG_RULES = ("trapezoid", "midpoint", "gauss_legendre")


def class_score(model, images, class_index=None, *, batch_size: int = 64) -> np.ndarray:
    """``(N,)`` scores of ``class_index`` (None: each image's predicted class), before a final softmax."""
    x = _core.check_images(images, model)
    idx = _core.check_class_index(class_index, len(x), model)
    scores = _core.predict_scores(model, x, batch_size)
    idx = np.where(idx < 0, scores.argmax(axis=-1), idx)
    return scores[np.arange(len(x)), idx].astype(np.float32)


def saliency(model, images, *, class_index=None, smooth_samples: int = 0, noise: float = 0.15, seed: int = 0,
             batch_size: int = 32) -> np.ndarray:
    """Gradient magnitude maps ``(N, H, W)`` (SmoothGrad when ``smooth_samples > 0``)."""
    x = _core.check_images(images, model)
    smooth_samples = check_int(smooth_samples, "smooth_samples", minimum=0)
    check_number(noise, "noise", minimum=0)
    idx = _core.resolve_classes(model, x, class_index, batch_size)
    if smooth_samples == 0:
        return np.abs(_core.input_gradients(model, x, idx, batch_size)).max(axis=-1)
    rng = np.random.default_rng(seed)
    sigma = noise * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))
    total = np.zeros(x.shape[:3], np.float32)
    for _ in range(smooth_samples):
        noisy = x + rng.standard_normal(x.shape, dtype=np.float32) * sigma[:, None, None, None].astype(np.float32)
        total += np.abs(_core.input_gradients(model, noisy, idx, batch_size)).max(axis=-1)
    return total / smooth_samples


def ig_nodes(steps: int, rule: str):
    """Path positions ``a`` in [0, 1] and quadrature weights summing to 1 for ``rule``."""
    steps = check_int(steps, "steps", minimum=1)
    check_choice(rule, IG_RULES, "integration rule")
    if rule == "trapezoid":
        alphas = np.linspace(0.0, 1.0, steps + 1)
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] /= 2
    elif rule == "midpoint":
        alphas = (np.arange(steps) + 0.5) / steps
        weights = np.full(steps, 1.0 / steps)
    else:
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        alphas, weights = (nodes + 1) / 2, weights / 2
    return alphas.astype(np.float32), weights.astype(np.float32)


def integrated_gradients(model, images, *, class_index=None, baseline=None, steps: int = 64,
                         rule: str = "midpoint", batch_size: int = 64) -> np.ndarray:
    """Integrated-gradients attributions shaped like ``images``.

    ``baseline`` is None (zeros) or an array shaped like ``images``; ``batch_size`` path points
    (of one or several images) go through the model per gradient call.
    """
    x = _core.check_images(images, model)
    base = np.zeros_like(x) if baseline is None else np.asarray(baseline, np.float32)
    if base.shape != x.shape or not np.isfinite(base).all():
        raise ValueError(f"baseline must be None or a finite array shaped like images {x.shape}; got {base.shape}.")
    idx = _core.resolve_classes(model, x, class_index, batch_size)
    alphas, weights = ig_nodes(steps, rule)
    fn = _core.score_gradients(model)
    n, k = len(x), len(alphas)
    image_of, step_of = np.repeat(np.arange(n), k), np.tile(np.arange(k), n)
    total = np.zeros_like(x)
    for s in _core.batches(n * k, batch_size):
        i, j = image_of[s], step_of[s]
        a = alphas[j][:, None, None, None]
        points = base[i] + a * (x[i] - base[i])
        grads = keras.ops.convert_to_numpy(fn(points, idx[i])[2])
        np.add.at(total, i, grads * weights[j][:, None, None, None])
    return (x - base) * total


def _positions(size: int, patch: int, stride: int) -> list:
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def occlusion(model, images, *, class_index=None, patch: int = 8, stride: int = 4,
              fill: Optional[Union[float, str]] = "mean", batch_size: int = 64) -> np.ndarray:
    """Score-drop maps ``(N, H, W)``: how much covering each pixel lowers the class score."""
    x = _core.check_images(images, model)
    patch = check_int(patch, "patch", minimum=1)
    stride = check_int(stride, "stride", minimum=1)
    if isinstance(fill, str):
        check_choice(fill, ("mean",), "occlusion fill")
        values = x.mean(axis=(1, 2), keepdims=True)
    else:
        values = np.full((len(x), 1, 1, x.shape[-1]), check_number(fill, "fill"), np.float32)
    idx = _core.resolve_classes(model, x, class_index, batch_size)
    n, h, w = x.shape[:3]
    ph, pw = min(patch, h), min(patch, w)
    boxes = [(r, c) for r in _positions(h, ph, stride) for c in _positions(w, pw, stride)]
    full = _core.predict_scores(model, x, batch_size)[np.arange(n), idx]
    drop = np.zeros((n, h, w), np.float32)
    count = np.zeros((h, w), np.float32)
    for r, c in boxes:
        count[r:r + ph, c:c + pw] += 1
    jobs = [(i, r, c) for i in range(n) for r, c in boxes]
    fn = _core.scores_fn(model)
    for s in _core.batches(len(jobs), batch_size):
        chunk = jobs[s]
        batch = x[[i for i, _, _ in chunk]].copy()
        for b, (i, r, c) in enumerate(chunk):
            batch[b, r:r + ph, c:c + pw] = values[i]
        scores = keras.ops.convert_to_numpy(fn(batch))
        for b, (i, r, c) in enumerate(chunk):
            drop[i, r:r + ph, c:c + pw] += full[i] - scores[b, idx[i]]
    return drop / count
