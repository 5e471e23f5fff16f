"""Checking a near-duplicate candidate pair: SSIM on small thumbnails, with alignment when needed.

- `ssim`: the structural similarity of Wang et al. (2004) with an 11x11 Gaussian window
  (sigma 1.5), the constants ``K1 = 0.01``, ``K2 = 0.03`` and population covariances, averaged
  over the pixels at least 5 from the border: five ``cv2.GaussianBlur`` calls on 64x64 images,
  the same numbers scikit-image's ``structural_similarity(gaussian_weights=True)`` gives without
  importing scipy.
- `aligned_ssim`: SSIM of two lined-up thumbnails; when the hashes say the pair is shifted (a
  crop or rotation) and plain SSIM falls short, an affine ECC fit refines the alignment first.
  The fit runs on the thumbnails shrunk to 32x32 with at most `ECC_ITERATIONS` steps (distinct
  images never converge and use them all), and the warp is scaled back for the 64x64 SSIM.
- `ThumbStore`: the 64x64 gray thumbnail of every image, kept from the hashing pass so that
  verification never decodes a file twice. The first `ThumbStore.MEMORY_LIMIT` bytes stay in
  memory and the rest spill to a temporary file, so a folder of any size keeps memory bounded.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

THUMB = 64  # thumbnails are THUMB x THUMB gray
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
_PAD = 5  # (11 - 1) // 2: the border the mean leaves out


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Gaussian-window SSIM of two same-size gray images (uint8 or float in [0, 255])."""
    import cv2

    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)

    def blur(x):
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
    den = (mu_a * mu_a + mu_b * mu_b + _C1) * (var_a + var_b + _C2)
    s = num / den
    if min(s.shape) > 2 * _PAD:
        s = s[_PAD:-_PAD, _PAD:-_PAD]
    return float(s.mean())


def thumbnail(square: np.ndarray, region=(0.0, 1.0, 0.0, 1.0)) -> np.ndarray:
    """``region`` (fractions y0, y1, x0, x1) of a gray square, at THUMB x THUMB, histogram-equalised
    so that brightness and contrast edits do not count."""
    import cv2

    h, w = square.shape[:2]
    y0, y1, x0, x1 = region
    part = square[round(y0 * h) : max(round(y1 * h), 1), round(x0 * w) : max(round(x1 * w), 1)]
    if part.shape != (THUMB, THUMB):
        part = cv2.resize(part, (THUMB, THUMB), interpolation=cv2.INTER_AREA if part.shape[0] > THUMB
                          else cv2.INTER_LINEAR)
    return cv2.equalizeHist(part)


def aligned_ssim(a: np.ndarray, b: np.ndarray, *, shifted: bool, min_ssim: float) -> float:
    """SSIM of two THUMB x THUMB thumbnails lined up by their hashes.

    When plain SSIM is below ``min_ssim`` and ``shifted`` says the hashes matched a sub-region or
    only loosely, an affine ECC fit absorbs the rest (a crop between region steps, a small
    rotation). Fits that move far from identity are ignored, so distinct images cannot be warped
    into agreement.
    """
    import cv2

    score = ssim(a, b)
    if score >= min_ssim or not shifted:
        return score
    warp = _ecc_warp(a, b, ECC_SCALE)
    if warp is None or np.abs(warp[:, :2] - np.eye(2)).max() > 0.25 or np.abs(warp[:, 2]).max() > 10:
        return score
    moved = cv2.warpAffine(b, warp, (THUMB, THUMB), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    return max(score, ssim(a, moved))


ECC_SCALE = 2  # the ECC fit runs on thumbnails shrunk by this factor (32x32)
ECC_ITERATIONS = 10  # at most this many ECC steps (pairs that do not line up use them all)


def _ecc_warp(a: np.ndarray, b: np.ndarray, scale: int):
    """Affine ECC warp (THUMB-pixel units, inverse map) taking ``b`` onto ``a``, fitted on both
    shrunk ``scale`` times; None when the fit does not converge."""
    import cv2

    side = THUMB // scale
    small = [cv2.resize(x, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) if scale > 1
             else x.astype(np.float32) for x in (a, b)]
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, 1e-4)
    try:
        _, warp = cv2.findTransformECC(small[0], small[1], np.eye(2, 3, dtype=np.float32), cv2.MOTION_AFFINE,
                                       criteria, None, 3)
    except cv2.error:  # no convergence: keep the hash alignment
        return None
    # pixel centres: x_full = scale * x_small + (scale - 1) / 2, so t_full = scale * t + (scale - 1) / 2 (I - A) 1
    shift = (scale - 1) / 2.0
    warp[:, 2] = scale * warp[:, 2] + shift * (1.0 - warp[:, :2].sum(axis=1))
    return warp


class ThumbStore:
    """Append-only store of THUMB x THUMB uint8 thumbnails, read back by index."""

    MEMORY_LIMIT = 64 * 2**20  # bytes kept in memory before spilling to a temporary file

    def __init__(self, memory_limit: int = MEMORY_LIMIT):
        self._size = THUMB * THUMB
        self._in_memory = max(0, memory_limit // self._size)
        self._memory = []
        self._file = None
        self._dirty = False
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, thumb: np.ndarray) -> int:
        data = np.ascontiguousarray(thumb, np.uint8)
        if data.shape != (THUMB, THUMB):
            raise ValueError(f"Thumbnails are {THUMB}x{THUMB}, got {data.shape}.")
        if self._count < self._in_memory:
            self._memory.append(data)
        else:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="thumbs_")
            self._file.write(data.tobytes())
            self._dirty = True
        self._count += 1
        return self._count - 1

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < self._count:
            raise IndexError(index)
        if index < self._in_memory:
            return self._memory[index]
        if self._dirty:
            self._file.flush()
            self._dirty = False
        offset = (index - self._in_memory) * self._size
        data = os.pread(self._file.fileno(), self._size, offset)
        return np.frombuffer(data, np.uint8).reshape(THUMB, THUMB)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
