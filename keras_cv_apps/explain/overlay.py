"""Heatmaps on images, image grids and PNG files (NumPy and OpenCV only; no TensorFlow).

- `colorize(heatmap)`: a map of any range -> uint8 RGB through an OpenCV colour map (``jet`` by
  default), after scaling its 0..max (or, with ``signed=True``, its -max|v|..max|v|) to 0..255.
- `heatmap_overlay(image, heatmap, alpha)`: the coloured map blended over a uint8 image, the map
  resized to the image; grey images become RGB.
- `tile_images(images, columns)`: a stack of equally sized images as one grid with 1-px gaps.
- `save_png(path, image)` / `save_overlay(path, image, heatmap)`: atomic PNG writes.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

COLORMAPS = ("jet", "inferno", "viridis", "turbo", "hot")


def _unit(heatmap: np.ndarray, signed: bool) -> np.ndarray:
    h = np.nan_to_num(np.asarray(heatmap, np.float32))
    if signed:
        peak = float(np.abs(h).max())
        return 0.5 + 0.5 * h / peak if peak > 0 else np.full_like(h, 0.5)
    h = np.maximum(h, 0)
    peak = float(h.max())
    return h / peak if peak > 0 else np.zeros_like(h)


def colorize(heatmap, *, colormap: str = "jet", signed: bool = False) -> np.ndarray:
    """``(H, W)`` values -> uint8 RGB ``(H, W, 3)``."""
    import cv2

    from keras_cv_apps._validate import check_choice

    check_choice(colormap, COLORMAPS, "colour map")
    heatmap = np.asarray(heatmap)
    if heatmap.ndim != 2:
        raise ValueError(f"A heatmap is one (H, W) map; got shape {heatmap.shape}.")
    code = getattr(cv2, f"COLORMAP_{colormap.upper()}")
    levels = np.rint(_unit(heatmap, signed) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, code), cv2.COLOR_BGR2RGB)


def heatmap_overlay(image, heatmap, *, alpha: float = 0.45, colormap: str = "jet", signed: bool = False) -> np.ndarray:
    """uint8 RGB: ``(1 - alpha) * image + alpha * colour(heatmap)``, the map resized to the image."""
    import cv2

    from keras_cv_apps.image.ops import fit

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"image must be uint8 HxW or HxWxC; got {image.dtype} {image.shape}.")
    rgb = fit(image, None, 3)
    heatmap = np.asarray(heatmap, np.float32)
    if heatmap.shape != rgb.shape[:2]:
        heatmap = cv2.resize(heatmap, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    colour = colorize(heatmap, colormap=colormap, signed=signed).astype(np.float32)
    return np.clip(np.rint((1 - alpha) * rgb + alpha * colour), 0, 255).astype(np.uint8)


def tile_images(images, *, columns: Optional[int] = None, gap: int = 1, background: int = 255) -> np.ndarray:
    """``(N, H, W[, C])`` uint8 images -> one grid image, ``columns`` wide (default: square-ish)."""
    images = np.asarray(images)
    if images.ndim not in (3, 4) or len(images) == 0:
        raise ValueError(f"tile_images takes a non-empty stack (N, H, W[, C]); got shape {images.shape}.")
    n, h, w = images.shape[:3]
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, *images.shape[3:]), background, images.dtype)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = im
    return grid


def save_png(path, image) -> str:
    """Write a uint8 RGB or grey image as PNG, atomically."""
    import cv2

    from keras_cv_apps.artifacts import write_bytes

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"save_png writes uint8 images; got {image.dtype}.")
    data = image[..., ::-1] if image.ndim == 3 and image.shape[-1] == 3 else image
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(data))
    if not ok:
        raise ValueError(f"OpenCV could not encode an image of shape {image.shape} as PNG.")
    return str(write_bytes(path, buf.tobytes()))


def save_overlay(path, image, heatmap, **kwargs) -> str:
    """`heatmap_overlay` written as a PNG."""
    return save_png(path, heatmap_overlay(image, heatmap, **kwargs))
