"""`load(spec)` -> `Splits`: seeded stratified train/val/test splits as batched tf.data pipelines.

The images stay uint8 in memory until the last moment. Train pipeline::

    from_tensor_slices(uint8) -> cache -> shuffle(seed, reshuffle each epoch) -> batch
      -> map(augment [0, 255] -> scale, parallel) -> prefetch

Batching *before* the map makes augmentation and scaling vectorised over the whole batch
(one op per batch instead of per image), which is faster (``benchmarks/bench_pipeline.py``).
val/test: ``batch -> map(scale) -> cache -> prefetch``, never shuffled or augmented.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Optional, Sequence

import numpy as np

from keras_cv_apps.data import augment as augment_lib
from keras_cv_apps.data import sources

logger = logging.getLogger(__name__)

SCALES = ("unit", "symmetric", "standardize")
SPLITS = ("train", "val", "test")


def scale_images(x, scale: str, mean=None, std=None):
    """Pixels in [0, 255] (uint8 or float, numpy or tf) -> float32 scaled by ``scale``.

    ``unit``: x / 255 in [0, 1]; ``symmetric``: x / 127.5 - 1 in [-1, 1]; ``standardize``:
    (x - mean) / std per channel, with ``mean``/``std`` in pixel units ([0, 255]).
    Returns the same kind (numpy array or tf tensor) it was given.
    """
    import tensorflow as tf

    _check_scale(scale)
    if scale == "standardize" and (mean is None or std is None):
        raise ValueError("scale='standardize' needs per-channel mean and std (pixel units).")
    if tf.is_tensor(x):
        x = tf.cast(x, tf.float32)
    else:
        x = np.asarray(x, dtype=np.float32)
    if scale == "unit":
        return x * (1.0 / 255.0)
    if scale == "symmetric":
        return x * (1.0 / 127.5) - 1.0
    std = np.asarray(std, np.float32)
    std = np.where(std > 0, std, 1.0).astype(np.float32)  # a constant channel stays finite
    return (x - np.asarray(mean, np.float32)) / std


def channel_stats(images: np.ndarray, chunk: int = 4096):
    """Per-channel mean and std (pixel units, lists of floats) of uint8 ``[N, H, W, C]``
    images, accumulated in float64 over chunks so big datasets need no float copy."""
    total = np.zeros(images.shape[-1])
    squares = np.zeros(images.shape[-1])
    for start in range(0, len(images), chunk):
        block = images[start:start + chunk].reshape(-1, images.shape[-1]).astype(np.float64)
        total += block.sum(axis=0)
        squares += np.square(block).sum(axis=0)
    count = images.size // images.shape[-1]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    return mean.tolist(), std.tolist()


def _check_scale(scale):
    if scale not in SCALES:
        raise ValueError(f"Unknown scale {scale!r}; use one of {', '.join(SCALES)}.")


def _image_size(image_size):
    if image_size is None:
        return None
    size = (image_size,) * 2 if isinstance(image_size, (int, np.integer)) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in size):
        raise ValueError(f"image_size must be a positive int, (height, width) or None; "
                         f"got {image_size!r}.")
    return tuple(int(v) for v in size)


def _check_args(scale, channels, val_fraction, test_fraction, batch_size, augment):
    _check_scale(scale)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB); got {channels!r}.")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction and test_fraction must each be in (0, 1) with a sum "
                         f"below 1; got {val_fraction} and {test_fraction}.")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    augment_lib.check_preset(augment)


def stratified_split(labels: np.ndarray, *, val_fraction: float, test_fraction: float,
                     seed: int, class_names: Optional[Sequence[str]] = None) -> dict:
    """Indices for train/val/test, stratified by label and seeded (scikit-learn's splitter).

    Every class needs at least ``ceil(1 / min(val_fraction, test_fraction))`` (and >= 3)
    images, so that each split can hold it; fewer raise ``ValueError`` naming the class.
    """
    from sklearn.model_selection import train_test_split

    counts = np.bincount(labels)
    needed = max(3, math.ceil(1 / min(val_fraction, test_fraction) - 1e-9))
    present = np.flatnonzero(counts)
    if len(present) < 2:
        raise ValueError(f"A dataset needs at least 2 classes to classify; got {len(present)}.")
    short = [class_names[c] if class_names else int(c) for c in present if counts[c] < needed]
    if short:
        raise ValueError(f"Class(es) {short} have fewer than {needed} images, too few for a "
                         f"stratified split with val_fraction={val_fraction} and "
                         f"test_fraction={test_fraction}; add images or raise the fractions.")
    idx = np.arange(len(labels))
    rest, test = train_test_split(idx, test_size=test_fraction, stratify=labels,
                                  random_state=seed)
    train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction),
                                  stratify=labels[rest], random_state=seed)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


class Splits:
    """Seeded, stratified train/val/test splits of one dataset, ready for ``model.fit``.

    ``train``/``val``/``test`` are batched ``tf.data.Dataset`` of ``(x float32 [B, H, W, C]
    scaled, y int32 [B])``, built on first access. ``preprocessing`` records the scaling so an
    exported model can be fed the same way.
    """

    def __init__(self, images, labels, indices, *, class_names, preprocessing, batch_size,
                 augmenter, seed, cache, info):
        self._images = images
        self._labels = labels
        self._indices = indices
        self.class_names = list(class_names)
        self.preprocessing = preprocessing
        self.batch_size = batch_size
        self.augmenter = augmenter
        self.seed = seed
        self.cache = cache
        self.info = info

    @property
    def indices(self) -> dict:
        """Split name -> sorted indices into the source's image order."""
        return dict(self._indices)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple:
        return tuple(int(v) for v in self._images.shape[1:])

    def _scale(self, x):
        p = self.preprocessing
        return scale_images(x, p["scale"], p["mean"], p["std"])

    def arrays(self, split: str, scaled: bool = True):
        """``(x, y)`` numpy arrays of ``split``: x float32 scaled, or the raw uint8 images."""
        if split not in SPLITS:
            raise ValueError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}.")
        idx = self._indices[split]
        x = self._images[idx]
        return (self._scale(x) if scaled else x), self._labels[idx]

    def representative(self, n: int = 200) -> np.ndarray:
        """A seeded random sample of ``n`` scaled float32 train images (int8 calibration)."""
        idx = self._indices["train"]
        pick = np.random.default_rng(self.seed).permutation(len(idx))[:n]
        return self._scale(self._images[idx[np.sort(pick)]])

    def _dataset(self, split: str, training: bool):
        import tensorflow as tf

        x, y = self.arrays(split, scaled=False)
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if training:
            if self.cache:
                ds = ds.cache()
            ds = ds.shuffle(len(x), seed=self.seed, reshuffle_each_iteration=True)
        ds = ds.batch(self.batch_size)
        augmenter = self.augmenter if training else None

        def prepare(images, labels):
            images = tf.cast(images, tf.float32)
            if augmenter is not None:
                images = augmenter(images)
            return self._scale(images), labels

        ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
        if self.cache and not training:
            ds = ds.cache()
        return ds.prefetch(tf.data.AUTOTUNE)

    @functools.cached_property
    def train(self):
        return self._dataset("train", training=True)

    @functools.cached_property
    def val(self):
        return self._dataset("val", training=False)

    @functools.cached_property
    def test(self):
        return self._dataset("test", training=False)

    def __repr__(self):
        counts = {s: len(i) for s, i in self._indices.items()}
        return (f"Splits({self.info['spec']}, image_shape={self.image_shape}, "
                f"classes={self.num_classes}, {counts}, scale={self.preprocessing['scale']!r})")


def load(spec="digits", *, image_size=32, channels: int = 1, scale: str = "unit", seed: int = 0,
         val_fraction: float = 0.1, test_fraction: float = 0.2, batch_size: int = 64,
         augment="none", classes: Optional[Sequence] = None, cache: bool = True,
         **source_options) -> Splits:
    """Load a dataset ``spec`` (see `sources`) into seeded stratified `Splits`.

    Args:
        spec: ``digits``, ``shapes[:K[:N]]``, ``lfw_subset``, ``photos``, ``dir:PATH``,
            ``tfds:NAME[:split]``, ``keras:mnist|fashion_mnist|cifar10`` or an ``(x, y)`` tuple.
        image_size: int or (h, w) to resize to, or None for the native size.
        channels: 1 (grayscale) or 3 (RGB).
        scale: ``unit``, ``symmetric`` or ``standardize`` (mean/std of the train split).
        augment: an `augment.PRESETS` name or a list of Keras layers, train split only.
        classes: optional subset of class names (or indices) to keep, relabelled in that order.
        cache: cache the uint8 train images and the scaled val/test batches.
        source_options: passed to the source (e.g. ``class_names=`` for arrays).
    """
    _check_args(scale, channels, val_fraction, test_fraction, batch_size, augment)
    size = _image_size(image_size)
    data = sources.load_source(spec, image_size=size, channels=channels, seed=seed,
                               **source_options)
    images, labels, class_names = data.images, data.labels, list(data.class_names)
    if classes is not None:
        images, labels, class_names = _select_classes(images, labels, class_names, classes)
    indices = stratified_split(labels, val_fraction=val_fraction, test_fraction=test_fraction,
                               seed=seed, class_names=class_names)
    mean = std = None
    if scale == "standardize":
        mean, std = channel_stats(images[indices["train"]])
    preprocessing = {"scale": scale, "mean": mean, "std": std,
                     "image_size": list(images.shape[1:3]), "channels": channels}
    info = {
        "spec": spec if isinstance(spec, str) else "arrays",
        "num_images": int(len(labels)),
        "counts": {split: {class_names[c]: int(n) for c, n in
                           enumerate(np.bincount(labels[idx], minlength=len(class_names)))}
                   for split, idx in indices.items()},
        "skipped": list(data.skipped),
    }
    augmenter = augment_lib.build_augmenter(augment, seed=seed)
    logger.info("Loaded %s: %s images, %d classes, %d skipped.", info["spec"],
                {s: len(i) for s, i in indices.items()}, len(class_names), len(data.skipped))
    return Splits(images, labels, indices, class_names=class_names, preprocessing=preprocessing,
                  batch_size=int(batch_size), augmenter=augmenter, seed=seed, cache=cache,
                  info=info)


def _select_classes(images, labels, class_names, classes):
    """Keep only ``classes`` (names or indices), relabelled 0..k-1 in the order given."""
    wanted = []
    for c in classes:
        if isinstance(c, (int, np.integer)) and 0 <= c < len(class_names):
            wanted.append(int(c))
        elif c in class_names:
            wanted.append(class_names.index(c))
        else:
            raise ValueError(f"Unknown class {c!r}; the dataset has {class_names}.")
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"classes {list(classes)} names a class twice.")
    lookup = np.full(len(class_names), -1, np.int32)
    lookup[wanted] = np.arange(len(wanted), dtype=np.int32)
    new = lookup[labels]
    keep = new >= 0
    return images[keep], new[keep], [class_names[w] for w in wanted]
