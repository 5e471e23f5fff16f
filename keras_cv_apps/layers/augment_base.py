"""What every augmentation layer of the package shares: keyed randomness and batched pixel work.

*Keyed randomness.* A layer called as ``layer(images, training=True, key=key)`` takes all its
random draws from ``key`` (two int32 numbers), so one key always gives the same output bit for
bit, whichever ``tf.data`` thread runs it and in whatever order. The train pipeline derives one
key per batch from the seed and the epoch (`keras_cv_apps.data.pipelines`). Called without a
key, a layer draws one from its own ``SeedGenerator`` (random, as Keras' layers are).
`KeyedSeed` gives Keras' own preprocessing layers the same property: passed as ``seed=`` to
their ``get_random_transformation`` it hands out seeds derived from the key.

*Batched pixel work.* Subclasses implement `KeyedAugmentation.transform` in NumPy/OpenCV on a
whole batch ``[B, H, W, C]`` (C = 1 or 3, uint8 or float in [0, 255]); `augment` runs it in one
``tf.numpy_function`` per batch with a NumPy generator seeded from the key. OpenCV's resampling,
blurring and flipping are SIMD code that release the GIL, several times faster on a CPU than
TensorFlow's generic image kernels (``benchmarks/bench_augment.py``); results go into recycled,
aligned buffers (`empty_aligned`) that TensorFlow wraps without a copy. Such layers belong in the
``tf.data`` pipeline, never in an exported model.
"""

from __future__ import annotations

import sys
import threading

import keras
import numpy as np
import tensorflow as tf

_ALIGN = 64  # TensorFlow wraps (instead of copying) NumPy results aligned to 64 bytes
_POOL_SIZE = 12  # batches in flight in a pipeline: parallel calls + prefetch + the consumer


class KeyedSeed(keras.random.SeedGenerator):
    """A ``SeedGenerator`` stand-in whose ``next()`` returns seeds derived from a fixed ``key``
    (``stateless_fold_in(key, 1)``, ``(key, 2)``, ...): no variable, no state between batches."""

    def __init__(self, key):  # noqa: D107 - no variable is created, unlike SeedGenerator
        self.key = tf.cast(key, tf.int32)
        self.count = 0
        self.name = "keyed_seed"

    def next(self, ordered=True):
        self.count += 1
        return tf.random.experimental.stateless_fold_in(self.key, self.count)


def split_key(key, n: int):
    """``n`` independent keys ``[n, 2]`` from one key."""
    return tf.random.experimental.stateless_split(tf.cast(key, tf.int32), n)


def _refs(buffers):
    for buffer in buffers:  # the same code shape as the search in `empty_aligned`
        return sys.getrefcount(buffer)


_IDLE_REFS = _refs([np.empty(1)])  # references to a pooled buffer that no array or tensor uses
_POOL_LOCK = threading.Lock()
_POOL: list = []  # recycled output buffers, at most _POOL_SIZE


def empty_aligned(shape, dtype) -> np.ndarray:
    """An uninitialised array whose data starts on a 64-byte boundary.

    Its buffer is recycled: one of the last few handed out whose arrays (and the tensors that
    TensorFlow wrapped around them) are all gone, else a new one. A fresh 10 MB batch costs page
    faults and cache misses on every call, which made memory-bound ops (flip, erasing) several
    times slower in a ``tf.data`` pipeline than the same OpenCV calls into a reused buffer.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buffer = spare = None
    with _POOL_LOCK:
        for candidate in _POOL:
            if sys.getrefcount(candidate) <= _IDLE_REFS:
                if candidate.nbytes == nbytes + _ALIGN:
                    buffer = candidate
                    break
                spare = candidate if spare is None else spare
        if buffer is None:
            buffer = np.empty(nbytes + _ALIGN, np.uint8)
            if len(_POOL) >= _POOL_SIZE and spare is not None:  # forget an unused buffer of another size
                # by identity: `list.remove` compares with ==, elementwise for arrays (it raised on a pool
                # whose busy buffers of other sizes came before the spare one)
                del _POOL[next(i for i, b in enumerate(_POOL) if b is spare)]
            if len(_POOL) < _POOL_SIZE:
                _POOL.append(buffer)
    start = (-buffer.ctypes.data) % _ALIGN
    return buffer[start:start + nbytes].view(dtype).reshape(shape)


def copy_aligned(images: np.ndarray) -> np.ndarray:
    out = empty_aligned(images.shape, images.dtype)
    np.copyto(out, images)
    return out


def output_batch(images: np.ndarray, kept) -> np.ndarray:
    """An aligned array for the result with only the images at ``kept`` (a boolean mask) copied:
    the others are about to be written whole, so copying them first would be wasted work."""
    out = empty_aligned(images.shape, images.dtype)
    for i in np.flatnonzero(kept):
        out[i] = images[i]
    return out


def plane(image: np.ndarray) -> np.ndarray:
    """``[H, W, C]`` as OpenCV takes it: ``[H, W]`` for one channel (a view), else unchanged."""
    return image[..., 0] if image.shape[-1] == 1 else image


def to_dtype(values: np.ndarray, dtype) -> np.ndarray:
    """Float results back to ``dtype``: rounded and clipped to [0, 255] for integer images."""
    if np.issubdtype(dtype, np.integer):
        return np.clip(np.rint(values), 0, 255).astype(dtype)
    return values.astype(dtype, copy=False)


def interpolation_flag(name: str) -> int:
    import cv2

    return {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}[name]


def border_flag(name: str) -> int:
    import cv2

    return {"constant": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT, "nearest": cv2.BORDER_REPLICATE,
            "wrap": cv2.BORDER_WRAP}[name]


def check_range(value, what: str, low: float, high: float, *, pair: bool = True, pair_only: bool = False):
    """``value`` inside ``[low, high]``: a number (returned as a float) or, when ``pair``, a
    ``(min, max)`` pair (returned as a list, as a config round trip through JSON gives it back);
    ``pair_only`` turns a single number ``v`` into ``[v, v]``."""
    values = list(value) if pair and isinstance(value, (tuple, list)) else [value]
    try:
        ok = len(values) in ((1, 2) if pair else (1,)) and all(low <= float(v) <= high for v in values)
        ok = ok and (len(values) == 1 or float(values[0]) <= float(values[1]))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        shape = "a number or a (min, max) pair" if pair else "a number"
        raise ValueError(f"{what} must be {shape} within [{low}, {high}]; got {value!r}.")
    values = [float(v) for v in values]
    if pair_only and len(values) == 1:
        values *= 2
    return values if len(values) == 2 else values[0]


def check_choice(value, choices, what: str):
    if value not in choices:
        raise ValueError(f"Unknown {what} {value!r}; choose one of {', '.join(map(repr, choices))}.")
    return value


class KeyedAugmentation(keras.layers.Layer):
    """Base of the package's augmentation layers (see the module docstring).

    Args:
        probability: chance that each image is transformed (independently per image).
        seed: seed of the generator used when the layer is called without a ``key``.

    A subclass implements ``transform(images, rng, chosen) -> new array`` in NumPy (``chosen``:
    boolean ``[B]``, the images to change; others must come back unchanged) and may override
    ``is_identity`` (True when its magnitudes are zero: the input is returned as it is) or
    ``augment`` (TensorFlow ops instead of NumPy). It stores its arguments and extends
    ``get_config``. Identity unless ``training``; single images ``[H, W, C]`` work too.
    """

    mixes_labels = False

    def __init__(self, *, probability: float = 1.0, seed=None, **kwargs):
        kwargs.setdefault("autocast", False)  # keep the input dtype (Keras would cast float64/float16 to float32)
        super().__init__(**kwargs)
        self.probability = check_range(probability, f"{type(self).__name__} probability", 0.0, 1.0, pair=False)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def is_identity(self) -> bool:
        return self.probability == 0.0

    def call(self, images, training=None, key=None):
        if not training or self.is_identity():
            return images
        images = tf.convert_to_tensor(images)
        batched = images.shape.rank == 4
        if not batched:
            images = images[None]
        if key is None:
            key = keras.random.randint((2,), 0, 2**31 - 1, dtype="int32", seed=self.seed_generator)
        dtype = images.dtype
        if dtype not in (tf.uint8, tf.float32):  # OpenCV's kernels take uint8 and float32
            images = tf.cast(images, tf.float32)
        out = self.augment(images, tf.cast(key, tf.int32))
        if dtype != out.dtype:
            out = tf.cast(tf.round(out) if dtype.is_integer else out, dtype)
        return out if batched else out[0]

    def augment(self, images, key):
        """The batch ``images`` transformed with randomness from ``key`` (one NumPy call)."""
        out = tf.numpy_function(self._numpy_augment, [images, key], images.dtype, stateful=False)
        out.set_shape(images.shape)
        return out

    def _numpy_augment(self, images, key):
        rng = np.random.default_rng([int(k) & 0xFFFFFFFF for k in key])
        chosen = rng.random(len(images)) < self.probability
        if not chosen.any():
            return copy_aligned(images)
        return self.transform(images, rng, chosen)

    def transform(self, images: np.ndarray, rng: np.random.Generator, chosen: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "probability": self.probability, "seed": self.seed}
