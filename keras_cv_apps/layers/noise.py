"""Input corruptions for denoising autoencoders: clipped Gaussian and salt-and-pepper noise.

Both layers act only when called with ``training=True`` (like ``keras.layers.GaussianNoise``),
so they belong in the ``tf.data`` pipeline, never in an exported model. `denoising_pairs`
turns a dataset of clean images into ``(corrupted, clean)`` pairs with fresh noise each epoch.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class ClippedGaussianNoise(keras.layers.Layer):
    """Add ``stddev * N(0, 1)`` to every pixel, then clip to ``[minval, maxval]``.

    Clipping keeps corrupted images in the same pixel range as clean ones (``unit`` scale by
    default), which is how a denoising benchmark such as ``x + 0.4 * N(0, 1)`` is defined.
    """

    def __init__(self, *, stddev, minval=0.0, maxval=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not float(stddev) >= 0.0:
            raise ValueError(f"ClippedGaussianNoise stddev must be >= 0, got {stddev}.")
        self.stddev = stddev
        self.minval = minval
        self.maxval = maxval
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.stddev == 0:
            return inputs
        noise = keras.random.normal(ops.shape(inputs), stddev=self.stddev, dtype=inputs.dtype,
                                    seed=self.seed_generator)
        return ops.clip(inputs + noise, self.minval, self.maxval)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "minval": self.minval,
                "maxval": self.maxval, "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class SaltAndPepperNoise(keras.layers.Layer):
    """Replace a fraction ``rate`` of pixels by ``low`` (pepper) or ``high`` (salt), half each."""

    def __init__(self, *, rate, low=0.0, high=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) <= 1.0:
            raise ValueError(f"SaltAndPepperNoise rate must be between 0 and 1, got {rate}.")
        self.rate = rate
        self.low = low
        self.high = high
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        u = keras.random.uniform(ops.shape(inputs), dtype=inputs.dtype, seed=self.seed_generator)
        pepper = u < self.rate / 2
        salt = ops.logical_and(u >= self.rate / 2, u < self.rate)
        out = ops.where(pepper, ops.cast(self.low, inputs.dtype), inputs)
        return ops.where(salt, ops.cast(self.high, inputs.dtype), out)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "low": self.low, "high": self.high,
                "seed": self.seed}


def denoising_pairs(dataset, *, stddev=0.4, salt_pepper=0.0, seed=None):
    """Map a ``tf.data`` dataset of images (or ``(images, ...)`` tuples) to ``(noisy, clean)``.

    Gaussian noise (clipped to [0, 1]) comes first, then salt-and-pepper; either is skipped at 0.
    The noise is drawn anew every time an element is produced, so each epoch sees different
    corruptions of the same clean images.
    """
    import tensorflow as tf

    gaussian = ClippedGaussianNoise(stddev=stddev, seed=seed)
    salt = SaltAndPepperNoise(rate=salt_pepper, seed=None if seed is None else seed + 1)

    def corrupt(x, *_):
        x = tf.cast(x, tf.float32)
        return salt(gaussian(x, training=True), training=True), x

    return dataset.map(corrupt, num_parallel_calls=tf.data.AUTOTUNE)
