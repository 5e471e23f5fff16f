"""Pixel operations with one implementation each, used by every layer of the package.

- `to_uint8`: any decoded array -> uint8 (16-bit ``round(v / 257)``, float ``[0, 1] -> rint(255 v)``,
  bool -> 0/255, other integers clipped to [0, 255], NaN -> 0).
- `fit`: one image -> uint8 HWC at a size and channel count (area when shrinking, bilinear when
  enlarging, ITU-R 601 luma for RGB -> gray, alpha dropped); `fit_max_side` shrinks only.
- `scale` / `unscale`: pixels in [0, 255] <-> model inputs for the scaling modes ``unit`` [0, 1],
  ``symmetric`` [-1, 1] and ``standardize`` (per-channel ``(x - mean) / std`` in pixel units).
  Both are the affine map of `scale_params`, so they work unchanged on NumPy arrays and on float
  tensors of any framework (the ``tf.data`` pipeline casts to float32 and calls `scale`).
- `quantize` / `dequantize`: float values <-> an integer tensor's ``(scale, zero_point)`` encoding,
  as TFLite's int8/uint8 inputs and outputs use it.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Tuple

import numpy as np

from keras_cv_apps._validate import check_choice
from keras_cv_apps.choices import SCALES


def to_uint8(image) -> np.ndarray:
    """Normalise one decoded image of any dtype to uint8 (see the module docstring)."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return np.rint(image.astype(np.float32) / 257.0).astype(np.uint8)
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.integer):
        return np.clip(image, 0, 255).astype(np.uint8)
    image = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    shrink = height * width < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def fit(image, size: Optional[Tuple[int, int]], channels: int) -> np.ndarray:
    """One RGB/RGBA/gray image of any dtype -> uint8 ``(H, W, channels)`` at ``size`` = (h, w)
    (None keeps the size). RGB -> gray uses OpenCV's ITU-R 601 weights; alpha is dropped."""
    import cv2

    check_choice(channels, (1, 3), "channel count")
    image = to_uint8(image)
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if size is not None and image.shape[:2] != tuple(size):
        image = _resize(image, int(size[0]), int(size[1]))
    if channels == 1 and image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim == 2:
        image = image[..., None]
        if channels == 3:
            image = np.repeat(image, 3, axis=-1)
    return image


def fit_many(images: Sequence, size, channels: int) -> np.ndarray:
    """`fit` over a sequence, stacked to ``(N, H, W, C)``; with ``size=None`` all images must
    already share one size. With a ``size``, the result is allocated once, after checking that
    it fits in the memory available (`check_fits_in_memory`)."""
    if size is not None:
        check_fits_in_memory(len(images), size, channels)
        out = np.empty((len(images), int(size[0]), int(size[1]), channels), np.uint8)
        for k, im in enumerate(images):
            out[k] = fit(im, size, channels)
        return out
    fitted = [fit(im, size, channels) for im in images]
    shapes = {im.shape for im in fitted}
    if len(shapes) > 1:
        raise ValueError(f"Images have different sizes {sorted(shapes)[:3]}...; "
                         "pass image_size to resize them to one size.")
    if not fitted:
        return np.zeros((0, 1, 1, channels), np.uint8)
    return np.stack(fitted)


def available_memory() -> Optional[int]:
    """Bytes of memory the system can still hand out (``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def check_fits_in_memory(count: int, size, channels: int, *, bytes_per_value: int = 1, what: str = "",
                         advice: str = "choose a smaller image size, or stream the images from a folder "
                                       "(dir:PATH), which never holds them all", fraction: float = 0.8) -> None:
    """Raise ``ValueError`` before ``count`` images of ``size`` x ``channels`` (``bytes_per_value``
    each: 1 for uint8, 4 for float32) are put in memory, when they would take more than
    ``fraction`` of the memory available."""
    needed = int(count) * int(size[0]) * int(size[1]) * int(channels) * int(bytes_per_value)
    free = available_memory()
    if free is not None and needed > fraction * free:
        raise ValueError(f"{what or f'{count:,} images'} at {size[0]}x{size[1]}x{channels} need "
                         f"{needed / 2**30:,.1f} GiB in memory, more than the {free / 2**30:,.1f} GiB available; "
                         f"{advice}.")


def fit_max_side(image: np.ndarray, max_side: Optional[int]) -> np.ndarray:
    """Shrink ``image`` (area interpolation, aspect kept) so its longer side is at most
    ``max_side``; smaller images and ``max_side=None`` pass unchanged (never enlarged)."""
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image
    factor = max_side / max(h, w)
    return _resize(image, max(1, round(h * factor)), max(1, round(w * factor)))


def scale_params(mode: str, mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None):
    """``(multiplier, offset)`` float32 arrays with ``scaled = pixels * multiplier + offset``.

    ``standardize`` needs per-channel ``mean`` and ``std`` in pixel units; a channel whose std
    is 0 (a constant channel) is only centred, so its values stay finite.
    """
    check_choice(mode, SCALES, "scale")
    if mode == "unit":
        return np.float32(1.0 / 255.0), np.float32(0.0)
    if mode == "symmetric":
        return np.float32(1.0 / 127.5), np.float32(-1.0)
    if mean is None or std is None:
        raise ValueError("scale='standardize' needs per-channel mean and std (pixel units).")
    mean = np.asarray(mean, np.float32)
    std = np.asarray(std, np.float32)
    std = np.where(std > 0, std, np.float32(1.0)).astype(np.float32)
    return (1.0 / std).astype(np.float32), (-mean / std).astype(np.float32)


def scale(x, mode: str, mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None):
    """Pixels in [0, 255] -> model inputs. NumPy input (any dtype) gives float32 NumPy; a float
    tensor of another framework is transformed with its own arithmetic."""
    multiplier, offset = scale_params(mode, mean, std)
    if isinstance(x, (np.ndarray, np.generic, list, tuple, int, float)):
        x = np.asarray(x, np.float32)
    return x * multiplier + offset


def unscale(x, mode: str, mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None):
    """Model inputs -> pixels in [0, 255] (float; `to_uint8` of ``x / 255`` gives bytes)."""
    multiplier, offset = scale_params(mode, mean, std)
    if isinstance(x, (np.ndarray, np.generic, list, tuple, int, float)):
        x = np.asarray(x, np.float32)
    return (x - offset) / multiplier


def quantize(x, scale_: float, zero_point: int, dtype) -> np.ndarray:
    """Float values -> integers of ``dtype`` as ``clip(round(x / scale) + zero_point)``."""
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype)
    q = np.rint(np.asarray(x, np.float32) / np.float32(scale_)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q, scale_: float, zero_point: int) -> np.ndarray:
    """Integers -> float32 values as ``(q - zero_point) * scale``."""
    return (np.asarray(q).astype(np.float32) - np.float32(zero_point)) * np.float32(scale_)
