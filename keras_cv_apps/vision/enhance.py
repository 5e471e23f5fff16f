"""Classical image enhancement with OpenCV: fix what the quality audit finds.

- `clahe`: contrast-limited adaptive histogram equalisation, for dark or flat images. The
  histogram is equalised per tile, with each bin clipped at ``clip_limit`` times its mean so
  noise is not amplified; colour images are equalised on the L channel of Lab only.
- `denoise`: non-local means (Buades et al.): each pixel becomes a weighted mean of pixels
  whose surrounding patches look alike, which removes noise but keeps edges.
- `unsharp_mask`: ``image + amount * (image - gaussian_blur(image))`` sharpens soft images.
- `gamma`: ``255 * (x / 255) ** (1 / gamma)``; gamma > 1 brightens, < 1 darkens.

Every function takes and returns uint8 RGB ``HxWx3`` or gray ``HxW``.
"""

from __future__ import annotations

import numpy as np


def _check(image):
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"Expected a uint8 HxW or HxWx3 image, got {image.dtype} {image.shape}.")


def clahe(image, *, clip_limit=2.0, tile_grid=8) -> np.ndarray:
    """CLAHE with ``tile_grid x tile_grid`` tiles (on Lab lightness for colour images)."""
    import cv2

    _check(image)
    op = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(tile_grid, tile_grid))
    if image.ndim == 2:
        return op.apply(image)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lab[..., 0] = op.apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def denoise(image, *, strength=10.0, template=7, search=21) -> np.ndarray:
    """Non-local-means denoising; ``strength`` is OpenCV's ``h`` (raise it for stronger noise)."""
    import cv2

    _check(image)
    if image.ndim == 2:
        return cv2.fastNlMeansDenoising(image, None, strength, template, search)
    return cv2.fastNlMeansDenoisingColored(image, None, strength, strength, template, search)


def unsharp_mask(image, *, sigma=1.0, amount=1.0) -> np.ndarray:
    """Sharpen: add ``amount`` times the difference from a Gaussian blur of width ``sigma``."""
    import cv2

    _check(image)
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    return cv2.addWeighted(image, 1.0 + amount, blurred, -amount, 0)


def gamma(image, value) -> np.ndarray:
    """Gamma correction through a 256-entry lookup table; ``value`` > 1 brightens."""
    import cv2

    _check(image)
    if value <= 0:
        raise ValueError(f"gamma must be > 0, got {value}.")
    table = np.clip(255.0 * (np.arange(256) / 255.0) ** (1.0 / value) + 0.5, 0, 255)
    return cv2.LUT(image, table.astype(np.uint8))
