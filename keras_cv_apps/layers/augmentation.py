"""Geometric and cropping augmentation: `RandomAffine`, `RandomMirror`, `RandomResizedCrop`.

Each image is resampled once with OpenCV (`augment_base`), keyed randomness, 1 or 3 channels,
uint8 or float in [0, 255], the input dtype kept. Identity unless ``training``.
"""

import math
import threading

import keras
import numpy as np

from keras_cv_apps.layers.augment_base import (
    KeyedAugmentation,
    border_flag,
    check_choice,
    check_range,
    interpolation_flag,
    output_batch,
    plane,
)

__all__ = ["RandomAffine", "RandomMirror", "RandomResizedCrop"]

FILL_MODES = ("constant", "reflect", "nearest", "wrap")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class RandomAffine(KeyedAugmentation):
    """Random rotation, shear, translation and zoom about the image centre in *one* resampling.

    Core Keras has one layer per transform (RandomRotation, RandomShear, RandomTranslation,
    RandomZoom); chaining them interpolates several times, which blurs small images and costs
    as many passes. Per image: angle ~ U(-rotation, rotation) degrees (counter-clockwise on
    screen), shear angle ~ U(-shear, shear) degrees along x, shift ~ U(-translation, translation)
    x width/height, scale ~ U(1 - zoom, 1 + zoom) (> 1 enlarges the content). All zero: identity.
    """

    def __init__(self, *, rotation: float = 10.0, translation: float = 0.1, zoom: float = 0.1, shear: float = 0.0,
                 fill_mode: str = "constant", fill_value: float = 0.0, interpolation: str = "bilinear",
                 probability: float = 1.0, seed=None, **kwargs):
        super().__init__(probability=probability, seed=seed, **kwargs)
        if not (0 <= rotation <= 180 and 0 <= translation <= 1 and 0 <= zoom < 1 and 0 <= shear < 90):
            raise ValueError("RandomAffine needs 0 <= rotation <= 180, 0 <= translation <= 1, 0 <= zoom < 1 and "
                             f"0 <= shear < 90; got {rotation}, {translation}, {zoom}, {shear}.")
        self.rotation, self.translation, self.zoom, self.shear = rotation, translation, zoom, shear
        self.fill_mode = check_choice(fill_mode, FILL_MODES, "fill_mode")
        self.fill_value = fill_value
        self.interpolation = check_choice(interpolation, INTERPOLATIONS, "interpolation")

    def is_identity(self):
        return super().is_identity() or not (self.rotation or self.translation or self.zoom or self.shear)

    @staticmethod
    def matrices(angle, shear, shift_x, shift_y, scale, height, width) -> np.ndarray:
        """``[N, 2, 3]`` maps from each *output* pixel (x, y) back to the input pixel it samples,
        for OpenCV's ``warpAffine(..., WARP_INVERSE_MAP)``: rotate by ``angle`` (radians,
        counter-clockwise on screen), shear by ``tan(shear)`` along x and scale by ``scale`` about
        the centre, then shift by (shift_x, shift_y) pixels."""
        angle, shear, shift_x, shift_y, scale = np.broadcast_arrays(
            *(np.asarray(v, np.float64) for v in (angle, shear, shift_x, shift_y, scale)))
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        cos, sin, k = np.cos(angle), np.sin(angle), np.tan(shear)
        # inverse of  scale * [[1, k], [0, 1]] @ [[cos, sin], [-sin, cos]]  (y points down)
        a, b = (cos - k * sin) / scale, (-sin - k * cos) / scale
        c, d = sin / scale, cos / scale
        ox, oy = cx + shift_x, cy + shift_y  # where the input centre lands
        return np.stack([np.stack([a, b, cx - a * ox - b * oy], -1),
                         np.stack([c, d, cy - c * ox - d * oy], -1)], -2)

    def transform(self, images, rng, chosen):
        import cv2

        n, h, w = images.shape[:3]
        u = rng.uniform(-1.0, 1.0, (n, 5))
        mats = self.matrices(u[:, 0] * math.radians(self.rotation), u[:, 1] * math.radians(self.shear),
                             u[:, 2] * self.translation * w, u[:, 3] * self.translation * h,
                             1.0 + u[:, 4] * self.zoom, h, w)
        out = output_batch(images, ~chosen)
        flags = interpolation_flag(self.interpolation) | cv2.WARP_INVERSE_MAP
        border, fill = border_flag(self.fill_mode), float(self.fill_value)
        for i in np.flatnonzero(chosen):
            cv2.warpAffine(plane(images[i]), mats[i], (w, h), dst=plane(out[i]), flags=flags, borderMode=border,
                           borderValue=(fill, fill, fill, fill))
        return out

    def get_config(self):
        return {**super().get_config(), "rotation": self.rotation, "translation": self.translation,
                "zoom": self.zoom, "shear": self.shear, "fill_mode": self.fill_mode, "fill_value": self.fill_value,
                "interpolation": self.interpolation}


_SWAPPABLE = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))  # what cvtColor swaps
_SCRATCH_BYTES = 1 << 19  # a few 224 x 224 photos: stays in a core's L2 cache between `_mirror_rgb`'s passes
_SCRATCH = threading.local()  # one scratch per decoding thread, reused


def _mirror_rgb(image: np.ndarray, code: int, out: np.ndarray) -> None:
    """``out`` = ``cv2.flip(image, code)`` for ``[H, W, 3]`` uint8, uint16 or float32 (``out``
    C-contiguous), in two faster passes. OpenCV flips three-channel pixels value by value but
    one-channel rows with vector instructions, and reversing a row of values reverses each pixel's
    channels along with the pixels; so channels 0 and 2 are swapped first, into a scratch that
    stays in cache, and the scratch is flipped as one channel of ``W * 3`` values a row, a strip
    of rows at a time. Images stacked as ``[k * H, W, 3]`` mirror left-right (``code`` 1) in one call."""
    import cv2

    h, w = image.shape[:2]
    if code == 0:  # up-down moves whole rows: nothing per pixel to speed up
        cv2.flip(image, 0, dst=out)
        return
    scratch = getattr(_SCRATCH, "buffer", None)
    if scratch is None:
        scratch = _SCRATCH.buffer = np.empty(_SCRATCH_BYTES, np.uint8)
    row_bytes = image[0].nbytes
    strip = max(1, _SCRATCH_BYTES // row_bytes)
    for top in range(0, h, strip):
        rows = min(strip, h - top)
        swapped = (scratch[:rows * row_bytes] if rows * row_bytes <= scratch.nbytes
                   else np.empty(rows * row_bytes, np.uint8)).view(image.dtype).reshape(rows, w, 3)
        cv2.cvtColor(image[top:top + rows], cv2.COLOR_RGB2BGR, dst=swapped)
        at = top if code > 0 else h - top - rows  # code -1 also turns the strips upside down
        cv2.flip(swapped.reshape(rows, w * 3), code, dst=out[at:at + rows].reshape(rows, w * 3))


def _mirror_plane(image: np.ndarray, code: int, out: np.ndarray) -> None:
    import cv2

    cv2.flip(plane(image), code, dst=plane(out))


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class RandomMirror(KeyedAugmentation):
    """Mirror each image with ``probability``: ``horizontal`` (left-right), ``vertical`` or
    ``both`` (each direction decided separately). The same job as core ``RandomFlip``, done by
    OpenCV on the whole batch (several times faster on 224 x 224 photos; three-channel images by
    `_mirror_rgb`)."""

    MODES = ("horizontal", "vertical", "both")

    def __init__(self, mode: str = "horizontal", *, probability: float = 0.5, seed=None, **kwargs):
        super().__init__(probability=probability, seed=seed, **kwargs)
        self.mode = check_choice(mode, self.MODES, "mirror mode")

    def transform(self, images, rng, chosen):
        n, h, w, c = images.shape
        codes = {"horizontal": np.ones(n, int), "vertical": np.zeros(n, int)}.get(self.mode)
        if codes is None:  # both: 1 = left-right, 0 = up-down, -1 = both
            codes = rng.choice([1, 0, -1], n)
        out = output_batch(images, ~chosen)
        flip = _mirror_rgb if c == 3 and images.dtype in _SWAPPABLE else _mirror_plane
        if chosen.all() and self.mode == "horizontal":  # one call mirrors every row of the batch
            flip(images.reshape(n * h, w, c), 1, out.reshape(n * h, w, c))
            return out
        for i in np.flatnonzero(chosen):
            flip(images[i], int(codes[i]), out[i])
        return out

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class RandomResizedCrop(KeyedAugmentation):
    """Crop a random region and resize it back to the input size (the Inception crop).

    Per image: area fraction ~ U(scale), aspect ratio (width / height) log-uniform in ``ratio``;
    ten draws, the first that fits wins, else the largest crop of the nearest allowed ratio.
    ``scale=(1, 1)`` with a ratio range holding the image's own ratio is the identity.
    """

    def __init__(self, *, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation: str = "bilinear",
                 probability: float = 1.0, seed=None, **kwargs):
        super().__init__(probability=probability, seed=seed, **kwargs)
        self.scale = check_range(scale, "RandomResizedCrop scale", 1e-4, 1.0, pair_only=True)
        self.ratio = check_range(ratio, "RandomResizedCrop ratio", 1e-2, 1e2, pair_only=True)
        self.interpolation = check_choice(interpolation, INTERPOLATIONS, "interpolation")

    def boxes(self, rng, n, h, w, tries: int = 10) -> np.ndarray:
        """``[n, 4]`` integer crops ``(top, left, height, width)``."""
        (lo, hi), (r_lo, r_hi) = self.scale, self.ratio
        area = rng.uniform(lo, hi, (n, tries)) * h * w
        aspect = np.exp(rng.uniform(math.log(r_lo), math.log(r_hi), (n, tries)))
        cw, ch = np.rint(np.sqrt(area * aspect)).astype(int), np.rint(np.sqrt(area / aspect)).astype(int)
        fits = (cw >= 1) & (ch >= 1) & (cw <= w) & (ch <= h)
        first, rows = np.argmax(fits, axis=1), np.arange(n)
        own = w / h  # fallback: the largest crop of the nearest allowed ratio
        fw, fh = (w, round(w / r_lo)) if own < r_lo else (round(h * r_hi), h) if own > r_hi else (w, h)
        fw, fh = min(max(fw, 1), w), min(max(fh, 1), h)
        found = fits.any(axis=1)
        ch, cw = np.where(found, ch[rows, first], fh), np.where(found, cw[rows, first], fw)
        top = (rng.random(n) * (h - ch + 1)).astype(int)
        left = (rng.random(n) * (w - cw + 1)).astype(int)
        return np.stack([top, left, ch, cw], axis=1)

    def transform(self, images, rng, chosen):
        import cv2

        n, h, w = images.shape[:3]
        boxes = self.boxes(rng, n, h, w)
        whole = (boxes[:, 2] == h) & (boxes[:, 3] == w)
        out = output_batch(images, ~chosen | whole)
        flag = interpolation_flag(self.interpolation)
        for i in np.flatnonzero(chosen & ~whole):
            top, left, ch, cw = boxes[i]
            cv2.resize(plane(images[i, top:top + ch, left:left + cw]), (w, h), dst=plane(out[i]), interpolation=flag)
        return out

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "ratio": self.ratio,
                "interpolation": self.interpolation}
