"""Noise: clipped Gaussian, salt-and-pepper and speckle (multiplicative) noise layers.

They act only when called with ``training=True`` (like ``keras.layers.GaussianNoise``), with
keyed randomness (`augment_base`), on any pixel range (``[0, 1]`` by default, the denoising
autoencoders' inputs; ``maxval=255`` for the augmentation presets), so they belong in the
``tf.data`` pipeline, never in an exported model. `denoising_pairs` turns a dataset of clean
images into ``(corrupted, clean)`` pairs with fresh noise each epoch.
"""

import keras
import numpy as np

from keras_cv_apps.layers.augment_base import KeyedAugmentation, check_range, to_dtype

__all__ = ["ClippedGaussianNoise", "SaltAndPepperNoise", "SpeckleNoise", "denoising_pairs"]


class _Noise(KeyedAugmentation):
    """Shared by the noise layers: a pixel range ``[minval, maxval]`` the result is clipped to."""

    def __init__(self, *, minval=0.0, maxval=1.0, probability=1.0, seed=None, **kwargs):
        super().__init__(probability=probability, seed=seed, **kwargs)
        if not float(minval) < float(maxval):
            raise ValueError(f"{type(self).__name__} needs minval < maxval; got {minval} and {maxval}.")
        self.minval = minval
        self.maxval = maxval

    def noisy(self, images, rng):
        """The whole batch with noise, as float64 (clipped afterwards)."""
        raise NotImplementedError

    def transform(self, images, rng, chosen):
        noisy = np.clip(self.noisy(images.astype(np.float64), rng), self.minval, self.maxval)
        return to_dtype(np.where(chosen[:, None, None, None], noisy, images), images.dtype)

    def get_config(self):
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class ClippedGaussianNoise(_Noise):
    """Add ``stddev * N(0, 1)`` to every pixel, then clip to ``[minval, maxval]``.

    Clipping keeps corrupted images in the same pixel range as clean ones (``unit`` scale by
    default), which is how a denoising benchmark such as ``x + 0.4 * N(0, 1)`` is defined.
    """

    def __init__(self, *, stddev, minval=0.0, maxval=1.0, probability=1.0, seed=None, **kwargs):
        super().__init__(minval=minval, maxval=maxval, probability=probability, seed=seed, **kwargs)
        self.stddev = check_range(stddev, "ClippedGaussianNoise stddev", 0.0, float("inf"), pair=False)

    def is_identity(self):
        return super().is_identity() or self.stddev == 0

    def noisy(self, images, rng):
        return images + self.stddev * rng.standard_normal(images.shape)

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class SaltAndPepperNoise(_Noise):
    """Replace a fraction ``rate`` of pixels by ``low`` (pepper) or ``high`` (salt), half each
    (every channel of a pixel alike, as a dead or hot sensor pixel)."""

    def __init__(self, *, rate, low=0.0, high=1.0, probability=1.0, seed=None, **kwargs):
        super().__init__(minval=low, maxval=high, probability=probability, seed=seed, **kwargs)
        self.rate = check_range(rate, "SaltAndPepperNoise rate", 0.0, 1.0, pair=False)
        self.low = low
        self.high = high

    def is_identity(self):
        return super().is_identity() or self.rate == 0

    def noisy(self, images, rng):
        u = rng.random(images.shape[:3] + (1,))
        return np.where(u < self.rate / 2, self.low, np.where(u < self.rate, self.high, images))

    def get_config(self):
        config = {**super().get_config(), "rate": self.rate, "low": self.low, "high": self.high}
        del config["minval"], config["maxval"]
        return config


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class SpeckleNoise(_Noise):
    """Multiplicative noise ``x * (1 + stddev * N(0, 1))`` (as in radar, ultrasound and
    ImageNet-C's speckle corruption), clipped to ``[minval, maxval]``."""

    def __init__(self, *, stddev, minval=0.0, maxval=1.0, probability=1.0, seed=None, **kwargs):
        super().__init__(minval=minval, maxval=maxval, probability=probability, seed=seed, **kwargs)
        self.stddev = check_range(stddev, "SpeckleNoise stddev", 0.0, float("inf"), pair=False)

    def is_identity(self):
        return super().is_identity() or self.stddev == 0

    def noisy(self, images, rng):
        return images * (1.0 + self.stddev * rng.standard_normal(images.shape))

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


def denoising_pairs(dataset, *, stddev=0.4, salt_pepper=0.0, seed=None):
    """Map a ``tf.data`` dataset of images (or ``(images, ...)`` tuples) to ``(noisy, clean)``.

    Gaussian noise (clipped to [0, 1]) comes first, then salt-and-pepper; either is skipped at 0.
    The noise is drawn anew every epoch, from keys derived from ``seed`` and the epoch, so each
    epoch sees different corruptions of the same clean images and a seeded run repeats them.
    """
    import tensorflow as tf

    gaussian = ClippedGaussianNoise(stddev=stddev, seed=seed)
    salt = SaltAndPepperNoise(rate=salt_pepper, seed=None if seed is None else seed + 1)

    def corrupt(x, key):
        x = tf.cast(x[0] if isinstance(x, tuple) else x, tf.float32)
        keys = tf.random.experimental.stateless_split(tf.bitcast(key, tf.int32), 2)
        return salt(gaussian(x, training=True, key=keys[0]), training=True, key=keys[1]), x

    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip(dataset, keys).map(corrupt, num_parallel_calls=tf.data.AUTOTUNE)
