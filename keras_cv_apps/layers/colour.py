"""Colour augmentation: `RandomGamma`, `RandomContrast`, and the photometric operations `RandAugment`
draws from.

The operations take one float32 image ``[H, W, C]`` (C = 1 or 3) in [0, 255] and a factor, and
return a new float32 image in [0, 255]; each is the identity at its neutral factor (1 for the
enhancements, 0 for the blended ones). Brightness, contrast, colour and sharpness follow PIL's
``ImageEnhance`` (a blend with black, the mean grey, the grey image or a smoothed image).
"""

import keras
import numpy as np

from keras_cv_apps.layers.augment_base import (
    KeyedAugmentation,
    check_range,
    copy_aligned,
    output_batch,
    plane,
    to_dtype,
)

__all__ = ["PHOTOMETRIC", "RandomContrast", "RandomGamma"]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _grey(x):
    return x if x.shape[-1] == 1 else (x @ _LUMA)[..., None]


def _blend(a, b, factor):
    """``b + factor * (a - b)``: ``a`` at factor 1, ``b`` at 0, extrapolated beyond, clipped."""
    return np.clip(b + factor * (a - b), 0.0, 255.0)


def brightness(x, factor):
    return _blend(x, np.zeros_like(x), factor)


def contrast(x, factor):
    return _blend(x, np.full_like(x, _grey(x).mean()), factor)


def colour(x, factor):
    return x if x.shape[-1] == 1 else _blend(x, np.broadcast_to(_grey(x), x.shape), factor)


def sharpness(x, factor):
    import cv2

    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0
    smooth = cv2.filter2D(x, -1, kernel, borderType=cv2.BORDER_REPLICATE).reshape(x.shape)
    return _blend(x, smooth, factor)


def solarize(x, threshold):
    """Invert the pixels at or above ``threshold`` (256 changes nothing)."""
    return np.where(x >= threshold, 255.0 - x, x)


def posterize(x, bits):
    """Keep the ``bits`` high bits of each (rounded) pixel (8 changes nothing)."""
    step = float(2 ** (8 - int(bits)))
    return np.floor(np.rint(x) / step) * step if bits < 8 else x


def autocontrast(x, amount):
    """Stretch each channel to [0, 255], blended in by ``amount`` (0 changes nothing)."""
    lo, hi = x.min(axis=(0, 1)), x.max(axis=(0, 1))
    scale = np.where(hi > lo, 255.0 / np.maximum(hi - lo, 1e-6), 1.0)
    stretched = np.where(hi > lo, (x - lo) * scale, x)
    return _blend(stretched, x, amount)


def equalize(x, amount):
    """Histogram equalisation per channel, blended in by ``amount`` (0 changes nothing)."""
    import cv2

    bytes_ = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    flat = np.stack([cv2.equalizeHist(np.ascontiguousarray(bytes_[..., k])) for k in range(x.shape[-1])], -1)
    return _blend(flat.astype(np.float32), x, amount)


def gamma(x, value):
    return 255.0 * np.power(x / 255.0, value)


# name -> (function, factor at magnitude m for a sign s, from neutral to the strongest change)
PHOTOMETRIC = {
    "brightness": (brightness, lambda m, s: 1.0 + 0.9 * m * s),
    "contrast": (contrast, lambda m, s: 1.0 + 0.9 * m * s),
    "colour": (colour, lambda m, s: 1.0 + 0.9 * m * s),
    "sharpness": (sharpness, lambda m, s: 1.0 + 0.9 * m * s),
    "solarize": (solarize, lambda m, s: 256.0 * (1.0 - m)),
    "posterize": (posterize, lambda m, s: 8 - round(4 * m)),
    "autocontrast": (autocontrast, lambda m, s: m),
    "equalize": (equalize, lambda m, s: m),
}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class RandomGamma(KeyedAugmentation):
    """Gamma correction ``255 * (x / 255) ** g`` with ``g`` log-uniform in ``gamma`` per image
    (below 1 brightens the shadows, above 1 darkens them). ``gamma=(1, 1)`` is the identity.
    uint8 batches go through a lookup table."""

    def __init__(self, *, gamma=(0.7, 1.5), probability: float = 1.0, seed=None, **kwargs):
        super().__init__(probability=probability, seed=seed, **kwargs)
        self.gamma = check_range(gamma, "RandomGamma gamma", 0.05, 20.0, pair_only=True)

    def is_identity(self):
        return super().is_identity() or self.gamma == [1.0, 1.0]

    def transform(self, images, rng, chosen):
        import cv2

        values = np.exp(rng.uniform(np.log(self.gamma[0]), np.log(self.gamma[1]), len(images)))
        out = copy_aligned(images)
        levels = np.arange(256, dtype=np.float32)
        for i in np.flatnonzero(chosen):
            if images.dtype == np.uint8:
                out[i] = cv2.LUT(images[i], to_dtype(gamma(levels, values[i]), np.uint8)).reshape(images[i].shape)
            else:
                out[i] = gamma(np.clip(images[i], 0, 255), values[i])
        return out

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class RandomContrast(KeyedAugmentation):
    """Contrast scaled by ``c`` uniform in ``contrast`` per image: ``(x - m) * c + m`` with ``m`` the
    image's mean per channel, clipped to [0, 255]. The formula of core ``RandomContrast`` (core's
    ``factor=f`` is ``contrast=(1 - f, 1 + f)``), one OpenCV pass per image (``cv2.transform``)
    instead of TensorFlow ops over the batch. ``contrast=(1, 1)`` is the identity."""

    def __init__(self, *, contrast=(0.8, 1.2), probability: float = 1.0, seed=None, **kwargs):
        super().__init__(probability=probability, seed=seed, **kwargs)
        self.contrast = check_range(contrast, "RandomContrast contrast", 0.0, 10.0, pair_only=True)

    def is_identity(self):
        return super().is_identity() or self.contrast == [1.0, 1.0]

    def transform(self, images, rng, chosen):
        import cv2

        values = rng.uniform(self.contrast[0], self.contrast[1], len(images))
        out = output_batch(images, ~chosen)
        channels = images.shape[-1]
        for i in np.flatnonzero(chosen):
            x, y, c = plane(images[i]), plane(out[i]), values[i]
            means = cv2.mean(x)[:channels]
            matrix = np.zeros((channels, channels + 1), np.float32)  # one pass: y = c * x + (1 - c) * mean
            matrix[:, :channels] = np.eye(channels) * c
            matrix[:, channels] = np.multiply(means, 1.0 - c)
            cv2.transform(x, matrix, dst=y)  # uint8 results are rounded and saturated by OpenCV
            if y.dtype == np.float32:
                cv2.threshold(y, 255.0, 0.0, cv2.THRESH_TRUNC, dst=y)
                cv2.threshold(y, 0.0, 0.0, cv2.THRESH_TOZERO, dst=y)
        return out

    def get_config(self):
        return {**super().get_config(), "contrast": self.contrast}
