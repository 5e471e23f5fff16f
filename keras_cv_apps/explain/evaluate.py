"""How good an explanation is, measured: localisation against ground-truth masks, faithfulness
to the model, and a sanity check that it depends on what the model learned.

- `pointing_game` (Zhang et al., 2016): a hit when the map's maximum lies on the object (within
  ``tolerance`` pixels). `relevance_mass` (Arras et al., 2022): the share of the map's positive
  mass on the object. `random_maps` gives the chance baseline for both.
- `deletion_insertion` (Petsiuk et al., 2018): the class probability as pixels are removed
  (deletion, lower area is better) or revealed on a blurred image (insertion, higher is better)
  in the map's order; the areas under both curves. Removed pixels take the blurred image's
  values by default (the substrate insertion starts from), so removal adds no new edges: black
  pixels scattered over an image break every shape at once, and a random order then scores as
  low as a faithful one. ``substrate="zero"`` or a value (such as the data's mean colour, what
  zero is in mean-subtracted inputs) gives the other usual variants.
- `road` (Rong et al., 2022, remove and debias): the most (MoRF) or least (LeRF) relevant pixels
  are replaced by *noisy linear imputation* (each from its 8 neighbours, 1/6 direct and 1/12
  diagonal, solved as one sparse linear system, plus a little noise), so the removal itself
  leaks no shape; the class probability at each removed fraction.
- `cascading_randomization` (Adebayo et al., 2018): the layers' weights are re-initialised from
  the top down; the Spearman rank correlation between the trained model's maps and each
  randomised model's maps should fall towards 0.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from keras_cv_apps.explain import _core


def _maps(maps) -> np.ndarray:
    maps = np.asarray(maps, np.float32)
    if maps.ndim == 4:  # attributions shaped like images: sum the channels
        maps = maps.sum(axis=-1)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W) or (N, H, W, C); got shape {maps.shape}.")
    return np.nan_to_num(maps)


def random_maps(shape, seed: int = 0) -> np.ndarray:
    """Uniform random maps ``(N, H, W)``: the chance level of every score here."""
    return np.random.default_rng(seed).random(tuple(shape[:3])).astype(np.float32)


def pointing_game(maps, masks, *, tolerance: int = 0) -> np.ndarray:
    """``(N,)`` bool: the map's maximum (first one) is on the mask dilated by ``tolerance`` px."""
    import cv2

    maps, masks = _maps(maps), np.asarray(masks, bool)
    hits = np.zeros(len(maps), bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tolerance + 1,) * 2) if tolerance else None
    for i, (m, mask) in enumerate(zip(maps, masks)):
        if kernel is not None:
            mask = cv2.dilate(mask.astype(np.uint8), kernel) > 0
        hits[i] = mask.flat[int(np.argmax(m))]
    return hits


def relevance_mass(maps, masks) -> np.ndarray:
    """``(N,)`` share of each map's positive mass on its mask (0 for a map with none)."""
    pos = np.maximum(_maps(maps), 0)
    total = pos.sum(axis=(1, 2))
    inside = (pos * np.asarray(masks, bool)).sum(axis=(1, 2))
    return np.where(total > 0, inside / np.where(total > 0, total, 1), 0.0)


def _order(maps, seed):
    """Pixel indices by decreasing relevance, ties broken at random."""
    maps = _maps(maps).reshape(len(maps), -1)
    jitter = np.random.default_rng(seed).random(maps.shape) * 1e-7 * (np.abs(maps).max(axis=1, keepdims=True) + 1e-12)
    return np.argsort(-(maps + jitter), axis=1, kind="stable")


def _probabilities(model, x, idx, batch_size):
    import keras

    out = np.concatenate([keras.ops.convert_to_numpy(model(x[s], training=False))
                          for s in _core.batches(len(x), batch_size)])
    return out[np.arange(len(x)), idx]


def _blur(images):
    import cv2

    return np.stack([cv2.GaussianBlur(im, (0, 0), sigmaX=max(1.0, im.shape[1] / 16)).reshape(im.shape)
                     for im in images])


def _substrate(x, blurred, substrate):
    if isinstance(substrate, str):
        from keras_cv_apps._validate import check_choice

        check_choice(substrate, ("blur", "zero"), "deletion substrate")
        return blurred if substrate == "blur" else np.zeros_like(x)
    try:
        return np.broadcast_to(np.asarray(substrate, np.float32), x.shape)
    except ValueError:
        raise ValueError(f"The deletion substrate must be 'blur', 'zero' or values that broadcast to the images' "
                         f"shape {x.shape}; got shape {np.shape(substrate)}.") from None


def deletion_insertion(model, images, maps, class_index, *, steps: int = 16, seed: int = 0,
                       substrate="blur", batch_size: int = 128) -> dict:
    """``{"deletion": (N,), "insertion": (N,)}`` areas under the class-probability curves.

    Deletion replaces pixels (all channels) by the ``substrate`` in the map's order (ties broken at
    random): ``"blur"`` (default) a Gaussian blur of the image, ``"zero"`` zeros, or values that
    broadcast to the images (e.g. a mean colour ``(C,)``); insertion starts from the blurred image
    and puts the original pixels back in that order. ``steps`` equal steps of the pixel count, the
    trapezoid area over removed fractions 0..1. The probability is the model's output for class
    ``class_index`` (an int per image, or one int)."""
    x = np.asarray(images, np.float32)
    n, h, w, c = x.shape
    idx = np.broadcast_to(np.asarray(class_index), (n,))
    blurred = _blur(x)
    fill = _substrate(x, blurred, substrate)
    order = _order(maps, seed)
    counts = np.rint(np.linspace(0, h * w, steps + 1)).astype(int)
    curves = {"deletion": [], "insertion": []}
    for k in counts:
        keep = np.ones((n, h * w), bool)
        np.put_along_axis(keep, order[:, :k], False, axis=1)
        keep = keep.reshape(n, h, w, 1)
        curves["deletion"].append(_probabilities(model, np.where(keep, x, fill), idx, batch_size))
        curves["insertion"].append(_probabilities(model, np.where(keep, blurred, x), idx, batch_size))
    return {name: np.trapezoid(np.stack(v, axis=1), dx=1.0 / steps, axis=1) for name, v in curves.items()}


def impute(image, removed, *, noise: float = 0.01, rng=None) -> np.ndarray:
    """Noisy linear imputation of the ``removed`` pixels (bool ``(H, W)``) of one image ``(H, W, C)``."""
    import scipy.sparse
    import scipy.sparse.linalg

    image = np.asarray(image, np.float32)
    h, w = removed.shape
    unknown = np.flatnonzero(removed)
    if unknown.size == 0:
        return image.copy()
    if unknown.size == h * w:
        raise ValueError("Cannot impute an image with every pixel removed.")
    slot = np.full(h * w, -1)
    slot[unknown] = np.arange(unknown.size)
    rows, cols = np.divmod(unknown, w)
    flat = image.reshape(h * w, -1)
    neighbours = [(dy, dx, 1 / 6 if dy == 0 or dx == 0 else 1 / 12)
                  for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    valid = [(0 <= rows + dy) & (rows + dy < h) & (0 <= cols + dx) & (cols + dx < w) for dy, dx, _ in neighbours]
    norm = sum(ok * wt for ok, (_, _, wt) in zip(valid, neighbours))
    a_rows, a_cols, a_vals = [np.arange(unknown.size)], [np.arange(unknown.size)], [np.ones(unknown.size)]
    rhs = np.zeros((unknown.size, flat.shape[1]))
    for ok, (dy, dx, wt) in zip(valid, neighbours):
        src = np.flatnonzero(ok)
        q = (rows[src] + dy) * w + cols[src] + dx
        weight = wt / norm[src]
        is_unknown = slot[q] >= 0
        a_rows.append(src[is_unknown])
        a_cols.append(slot[q[is_unknown]])
        a_vals.append(-weight[is_unknown])
        np.add.at(rhs, src[~is_unknown], weight[~is_unknown, None] * flat[q[~is_unknown]])
    a = scipy.sparse.csc_matrix((np.concatenate(a_vals), (np.concatenate(a_rows), np.concatenate(a_cols))),
                                shape=(unknown.size, unknown.size))
    values = scipy.sparse.linalg.spsolve(a, rhs).reshape(unknown.size, -1)
    rng = rng if rng is not None else np.random.default_rng(0)
    span = float(image.max() - image.min()) or 1.0
    out = flat.copy()
    out[unknown] = values + rng.normal(0, noise * span, values.shape)
    return out.reshape(image.shape)


def road(model, images, maps, class_index, *, fractions: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
         order: str = "morf", noise: float = 0.01, seed: int = 0, batch_size: int = 128) -> np.ndarray:
    """``(N, len(fractions))`` class probabilities after removing that fraction of pixels, most
    relevant first (``morf``: lower is better) or least relevant first (``lerf``: higher is better)."""
    from keras_cv_apps._validate import check_choice

    check_choice(order, ("morf", "lerf"), "ROAD order")
    x = np.asarray(images, np.float32)
    n, h, w, _ = x.shape
    idx = np.broadcast_to(np.asarray(class_index), (n,))
    ranked = _order(maps, seed)
    if order == "lerf":
        ranked = ranked[:, ::-1]
    rng = np.random.default_rng(seed)
    out = np.empty((n, len(fractions)), np.float32)
    for j, fraction in enumerate(fractions):
        k = int(round(fraction * h * w))
        batch = np.empty_like(x)
        for i in range(n):
            removed = np.zeros(h * w, bool)
            removed[ranked[i, :k]] = True
            batch[i] = impute(x[i], removed.reshape(h, w), noise=noise, rng=rng)
        out[:, j] = _probabilities(model, batch, idx, batch_size)
    return out


def spearman(a, b) -> np.ndarray:
    """``(N,)`` Spearman rank correlation between paired maps (0 where either map is constant)."""
    from scipy.stats import rankdata

    a, b = _maps(a).reshape(len(a), -1), _maps(b).reshape(len(b), -1)
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra ** 2).sum(axis=1) * (rb ** 2).sum(axis=1))
    return np.where(denom > 0, (ra * rb).sum(axis=1) / np.where(denom > 0, denom, 1), 0.0)


def cascading_randomization(model, explain: Callable, images, class_index, *, seed: int = 0) -> list:
    """``[(layer name, mean Spearman rho)]`` as the weighted layers are re-initialised one by one
    from the output down; ``explain(model, images, class_index) -> maps``. ``model`` is not changed."""
    import keras

    from keras_cv_apps.explain._graph import iter_layers

    trained = np.asarray(explain(model, images, class_index))
    keras.utils.set_random_seed(seed)
    fresh = keras.models.clone_model(model)  # new weights from each layer's initializers
    work = keras.models.clone_model(model)
    work.set_weights(model.get_weights())
    by_name = {layer.name: layer for layer, _ in iter_layers(work)}
    fresh_by_name = {layer.name: layer for layer, _ in iter_layers(fresh)}
    out = []
    for layer, _ in reversed(list(iter_layers(model))):
        if not layer.weights:
            continue
        by_name[layer.name].set_weights(fresh_by_name[layer.name].get_weights())
        maps = np.asarray(explain(work, images, class_index))
        out.append((layer.name, float(np.mean(spearman(trained, maps)))))
    return out
