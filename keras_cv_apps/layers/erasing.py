"""Occlusion augmentation: `Erasing` (one rectangle of random area and shape), `Cutout` (several
square holes) and `GridMask` (a regular grid of squares).

Each fills the occluded pixels with ``fill_value`` (or, with ``fill_value=None``, uniform noise
in [0, 255]); keyed randomness (`augment_base`), 1 or 3 channels, uint8 or float in [0, 255].
Identity unless ``training``.
"""

import math

import keras
import numpy as np

from keras_cv_apps.layers.augment_base import KeyedAugmentation, check_range, copy_aligned

__all__ = ["Cutout", "Erasing", "GridMask"]


class _Occlusion(KeyedAugmentation):
    def __init__(self, *, fill_value=0.0, probability=1.0, seed=None, **kwargs):
        super().__init__(probability=probability, seed=seed, **kwargs)
        if fill_value is not None:
            fill_value = check_range(fill_value, f"{type(self).__name__} fill_value", 0.0, 255.0, pair=False)
        self.fill_value = fill_value

    def masks(self, rng, n, h, w) -> np.ndarray:
        """Boolean ``[n, h, w]``: the pixels to occlude in each image."""
        top, left, height, width = self.boxes(rng, n, h, w)
        return _boxes_to_masks(top, left, height, width, h, w)

    def boxes(self, rng, n, h, w):
        """``(top, left, height, width)`` integer arrays ``[n, k]``: rectangles to occlude."""
        raise NotImplementedError

    def _fill(self, rng, shape, dtype):
        if self.fill_value is not None:
            return self.fill_value
        noise = rng.uniform(0, 255, shape)
        return np.rint(noise) if np.issubdtype(dtype, np.integer) else noise

    def transform(self, images, rng, chosen):
        n, h, w, c = images.shape
        out = copy_aligned(images)
        if type(self).boxes is _Occlusion.boxes:  # a mask that is no union of rectangles
            masks = self.masks(rng, n, h, w) & chosen[:, None, None]
            out[masks] = self._fill(rng, (int(masks.sum()), c), images.dtype)
            return out
        top, left, height, width = self.boxes(rng, n, h, w)
        for i in np.flatnonzero(chosen):  # slices: no full-size mask for a few rectangles
            for t, le, hh, ww in zip(top[i], left[i], height[i], width[i]):
                out[i, t:t + hh, le:le + ww] = self._fill(rng, (hh, ww, c), images.dtype)
        return out

    def get_config(self):
        return {**super().get_config(), "fill_value": self.fill_value}


def _boxes_to_masks(top, left, height, width, h, w):
    """``[n, k]`` boxes -> ``[n, h, w]`` masks (their union per image)."""
    rows, cols = np.arange(h), np.arange(w)
    in_rows = (rows >= top[..., None]) & (rows < (top + height)[..., None])  # [n, k, h]
    in_cols = (cols >= left[..., None]) & (cols < (left + width)[..., None])  # [n, k, w]
    return (in_rows[..., :, None] & in_cols[..., None, :]).any(axis=1)


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class Erasing(_Occlusion):
    """Random Erasing (Zhong et al., 2017): one rectangle per image whose area is a fraction
    ~ U(area) of the image and whose aspect ratio (height / width) is log-uniform in ``aspect``.

    The erased fraction (after rounding to whole pixels) always lies in ``area``: sizes are
    redrawn until one does (ten tries), else the square closest to the middle of the range is
    taken. Core ``RandomErasing`` fills with Gaussian noise by default and returns float32.
    """

    def __init__(self, *, area=(0.02, 0.33), aspect=(0.3, 3.3), fill_value=0.0, probability: float = 0.5,
                 seed=None, **kwargs):
        super().__init__(fill_value=fill_value, probability=probability, seed=seed, **kwargs)
        self.area = check_range(area, "Erasing area", 0.0, 1.0, pair_only=True)
        self.aspect = check_range(aspect, "Erasing aspect", 0.01, 100.0, pair_only=True)

    def is_identity(self):
        return super().is_identity() or self.area[1] == 0

    def sizes(self, rng, n, h, w, tries: int = 10):
        """Integer ``(height, width)`` arrays ``[n]`` of the rectangles."""
        (lo, hi), (a_lo, a_hi) = self.area, self.aspect
        area = rng.uniform(lo, hi, (n, tries)) * h * w
        ratio = np.exp(rng.uniform(math.log(a_lo), math.log(a_hi), (n, tries)))
        rh, rw = np.rint(np.sqrt(area * ratio)).astype(int), np.rint(np.sqrt(area / ratio)).astype(int)
        fraction = rh * rw / (h * w)
        ok = (rh >= 1) & (rw >= 1) & (rh <= h) & (rw <= w) & (fraction >= lo) & (fraction <= hi)
        first, rows = np.argmax(ok, axis=1), np.arange(n)
        side = min(max(1, round(math.sqrt((lo + hi) / 2 * h * w))), h, w)
        found = ok.any(axis=1)
        return np.where(found, rh[rows, first], side), np.where(found, rw[rows, first], side)

    def boxes(self, rng, n, h, w):
        rh, rw = self.sizes(rng, n, h, w)
        top = (rng.random(n) * (h - rh + 1)).astype(int)
        left = (rng.random(n) * (w - rw + 1)).astype(int)
        return top[:, None], left[:, None], rh[:, None], rw[:, None]

    def get_config(self):
        return {**super().get_config(), "area": self.area, "aspect": self.aspect}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class Cutout(_Occlusion):
    """Cutout (DeVries & Taylor, 2017) with several holes: a number of squares ~ U{holes}, each
    with a side ~ U(size) x the image's shorter side, placed wholly inside the image (they may
    overlap). The occluded fraction lies between ``size[0]**2`` and ``holes[1] * size[1]**2``
    (up to rounding to whole pixels)."""

    def __init__(self, *, holes=(1, 3), size=(0.1, 0.3), fill_value=0.0, probability: float = 0.5, seed=None,
                 **kwargs):
        super().__init__(fill_value=fill_value, probability=probability, seed=seed, **kwargs)
        self.holes = [int(v) for v in check_range(holes, "Cutout holes", 0, 64, pair_only=True)]
        self.size = check_range(size, "Cutout size", 0.0, 1.0, pair_only=True)

    def is_identity(self):
        return super().is_identity() or self.holes[1] == 0 or self.size[1] == 0

    def boxes(self, rng, n, h, w):
        k = self.holes[1]
        count = rng.integers(self.holes[0], k + 1, n)
        side = np.maximum(1, np.rint(rng.uniform(self.size[0], self.size[1], (n, k)) * min(h, w))).astype(int)
        top = (rng.random((n, k)) * (h - side + 1)).astype(int)
        left = (rng.random((n, k)) * (w - side + 1)).astype(int)
        side = np.where(np.arange(k) < count[:, None], side, 0)  # unused holes are empty
        return top, left, side, side

    def get_config(self):
        return {**super().get_config(), "holes": self.holes, "size": self.size}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class GridMask(_Occlusion):
    """GridMask (Chen et al., 2020): squares on a regular grid are occluded. Per image the grid
    period is ~ U(period) x the shorter side, its offset is random, and each period holds one
    occluded square whose side is ``ratio`` x the period, so about ``ratio**2`` of the image is
    occluded."""

    def __init__(self, *, period=(0.2, 0.5), ratio: float = 0.5, fill_value=0.0, probability: float = 0.5,
                 seed=None, **kwargs):
        super().__init__(fill_value=fill_value, probability=probability, seed=seed, **kwargs)
        self.period = check_range(period, "GridMask period", 0.01, 1.0, pair_only=True)
        self.ratio = check_range(ratio, "GridMask ratio", 0.0, 1.0, pair=False)

    def is_identity(self):
        return super().is_identity() or self.ratio == 0

    def masks(self, rng, n, h, w):
        period = np.maximum(2, np.rint(rng.uniform(*self.period, n) * min(h, w))).astype(int)
        hole = np.rint(self.ratio * period).astype(int)
        dy, dx = (rng.random((2, n)) * period).astype(int)
        rows = (np.arange(h) + dy[:, None]) % period[:, None] < hole[:, None]
        cols = (np.arange(w) + dx[:, None]) % period[:, None] < hole[:, None]
        return rows[:, :, None] & cols[:, None, :]

    def get_config(self):
        return {**super().get_config(), "period": self.period, "ratio": self.ratio}
