"""`load(spec)` -> `Splits`: seeded stratified train/val/test splits as batched tf.data pipelines.

The images stay uint8 in memory until the last moment. Train pipeline::

    from_tensor_slices(uint8) -> cache -> shuffle(seed, reshuffle each epoch) -> batch
      -> map(augment [0, 255] -> scale, parallel) -> prefetch

Batching *before* the map makes augmentation and scaling vectorised over the whole batch
(one op per batch instead of per image), which is faster (``benchmarks/bench_pipeline.py``).
val/test: ``batch -> map(scale) -> cache -> prefetch``, never shuffled or augmented.

Reproducible epochs: each train batch is zipped with a key from
``Dataset.random(seed, rerandomize_each_iteration=True)`` (a fixed sequence of keys per epoch,
a new one every epoch) and the augmenter takes all its randomness from that key, so a seeded
augmented epoch is bit-identical between runs whatever the parallelism of the ``map``. A preset
that mixes labels (MixUp/CutMix) turns the labels of every split into one-hot float32 rows.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Optional, Sequence

import numpy as np

from keras_cv_apps._validate import check_choice
from keras_cv_apps.data import augment as augment_lib
from keras_cv_apps.data import sources
from keras_cv_apps.image import ops as image_ops
from keras_cv_apps.image.ops import SCALES

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
TARGETS = ("label", "image", "none")


def scale_images(x, scale: str, mean=None, std=None):
    """Pixels in [0, 255] (uint8 or float, NumPy or a TensorFlow tensor) -> float32 model inputs:
    `keras_cv_apps.image.ops.scale` after a cast to float32 (the one scaling implementation)."""
    if hasattr(x, "numpy") or type(x).__module__.startswith("tensorflow"):
        import tensorflow as tf

        x = tf.cast(x, tf.float32)
    return image_ops.scale(x, scale, mean, std)


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


def _image_size(image_size):
    if image_size is None:
        return None
    size = (image_size,) * 2 if isinstance(image_size, (int, np.integer)) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in size):
        raise ValueError(f"image_size must be a positive int, (height, width) or None; "
                         f"got {image_size!r}.")
    return tuple(int(v) for v in size)


def _check_args(scale, channels, val_fraction, test_fraction, batch_size, augment):
    check_choice(scale, SCALES, "scale")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB); got {channels!r}.")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction and test_fraction must each be in (0, 1) with a sum "
                         f"below 1; got {val_fraction} and {test_fraction}.")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    augment_lib.check_preset(augment)


def stratified_split(labels: np.ndarray, *, val_fraction: float, test_fraction: float,
                     seed: int, class_names: Optional[Sequence[str]] = None, min_classes: int = 2) -> dict:
    """Indices for train/val/test, stratified by label and seeded (scikit-learn's splitter).

    Every class needs at least ``ceil(1 / min(val_fraction, test_fraction))`` (and >= 3)
    images, so that each split can hold it; fewer raise ``ValueError`` naming the class.
    ``min_classes=1`` accepts a one-class dataset (an anomaly detector's normal images).
    """
    from sklearn.model_selection import train_test_split

    counts = np.bincount(labels)
    needed = max(3, math.ceil(1 / min(val_fraction, test_fraction) - 1e-9))
    present = np.flatnonzero(counts)
    if len(present) < min_classes:
        raise ValueError(f"A dataset needs at least {min_classes} classes here; got {len(present)}.")
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
    scaled, y int32 [B])``, built on first access; `dataset` builds variants (classes left out,
    class-balanced sampling, images as targets). ``preprocessing`` records the scaling so an
    exported model can be fed the same way; `describe` is the ``dataset`` section of a run's
    ``config.json``.
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
    def mixes_labels(self) -> bool:
        """True when the augmentation mixes labels: every split then yields one-hot float labels."""
        return self.augmenter is not None and self.augmenter.mixes_labels

    @property
    def image_shape(self) -> tuple:
        return tuple(int(v) for v in self._images.shape[1:])

    def labels(self, split: str) -> np.ndarray:
        """Integer labels of ``split`` in dataset order."""
        return self._labels[self._split(split)]

    def counts(self, split: str = "train") -> np.ndarray:
        """Images per class in ``split`` (an int64 array of length ``num_classes``)."""
        return np.bincount(self.labels(split), minlength=self.num_classes).astype(np.int64)

    def describe(self) -> dict:
        """The ``dataset`` section of ``config.json``: spec, pixel contract, classes and counts."""
        p = self.preprocessing
        return {"spec": self.info["spec"], "image_size": p["image_size"], "channels": p["channels"],
                "scale": p["scale"], "mean": p["mean"], "std": p["std"], "class_names": self.class_names,
                "counts": self.info["counts"], "skipped": len(self.info["skipped"])}

    def _split(self, split: str) -> np.ndarray:
        check_choice(split, SPLITS, "split")
        return self._indices[split]

    def _scale(self, x):
        p = self.preprocessing
        return scale_images(x, p["scale"], p["mean"], p["std"])

    def arrays(self, split: str, scaled: bool = True, *, exclude: Sequence[int] = ()):
        """``(x, y)`` numpy arrays of ``split``: x float32 scaled, or the raw uint8 images;
        ``exclude`` leaves out those class indices."""
        idx = self._select(split, exclude)
        x = self._images[idx]
        return (self._scale(x) if scaled else x), self._labels[idx]

    def _select(self, split, exclude):
        idx = self._split(split)
        if len(exclude):
            idx = idx[~np.isin(self._labels[idx], list(exclude))]
        return idx

    def representative(self, n: int = 200, *, exclude: Sequence[int] = ()) -> np.ndarray:
        """A seeded random sample of ``n`` scaled float32 train images (int8 calibration)."""
        idx = self._select("train", exclude)
        pick = np.random.default_rng(self.seed).permutation(len(idx))[:n]
        return self._scale(self._images[idx[np.sort(pick)]])

    def dataset(self, split: str = "train", *, exclude: Sequence[int] = (), balance: str = "none",
                target: str = "label"):
        """A batched ``tf.data`` pipeline over ``split``.

        Args:
            split: ``train`` (shuffled every epoch and augmented), ``val`` or ``test``.
            exclude: class indices to leave out (e.g. the anomaly class of an autoencoder).
            balance: ``none``; ``oversample`` / ``undersample`` (train only) draw exactly
                ``max_count`` / ``min_count`` examples of every class each epoch, in a seeded
                random order, from each class's own reshuffled stream.
            target: what follows the images: ``label`` -> ``(x, y)``, ``image`` -> ``(x, x)``,
                ``none`` -> ``x``. With a label-mixing augmentation ``y`` is one-hot float32
                (mixed in the train split), else int32.
        """
        import tensorflow as tf

        check_choice(balance, ("none", "oversample", "undersample"), "sampling")
        check_choice(target, TARGETS, "target")
        training = split == "train"
        if training and target != "label" and self.mixes_labels:
            augment_lib.check_preset(self.augmenter.layers, labels=False)
        idx = self._select(split, exclude)
        if not len(idx):
            raise ValueError(f"The {split} split has no images left after leaving out classes {list(exclude)}.")
        if balance != "none" and not training:
            raise ValueError("Balanced sampling applies to the train split only.")
        x, y = self._images[idx], self._labels[idx]
        if balance == "none":
            ds = tf.data.Dataset.from_tensor_slices((x, y))
            if training:
                if self.cache:
                    ds = ds.cache()
                ds = ds.shuffle(len(x), seed=self.seed, reshuffle_each_iteration=True)
        else:
            ds = self._resampled(x, y, balance)
        ds = ds.batch(self.batch_size)
        augmenter = self.augmenter if training else None
        one_hot = self.mixes_labels and target == "label"
        if augmenter is not None:  # one key per batch: the seed, the epoch and the batch's place in it
            ds = tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed=self.seed, rerandomize_each_iteration=True))

        def prepare(images, labels, key=None):
            images = tf.cast(images, tf.float32)
            if one_hot:
                labels = tf.one_hot(labels, self.num_classes, dtype=tf.float32)
            if augmenter is not None:
                keys = tf.random.experimental.stateless_split(tf.bitcast(key, tf.int32), 2)
                images = augmenter(images, keys[0])
                if one_hot:
                    images, labels = augmenter.mix(images, labels, keys[1])
            images = self._scale(images)
            return {"label": (images, labels), "image": (images, images), "none": images}[target]

        if augmenter is not None:
            ds = ds.map(lambda batch, key: prepare(*batch, key), num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
        if self.cache and not training:
            ds = ds.cache()
        return ds.prefetch(tf.data.AUTOTUNE)

    def _resampled(self, x, y, mode):
        """Unbatched ``(image, label)`` with the same number of draws from every present class."""
        import tensorflow as tf

        classes = np.flatnonzero(np.bincount(y))
        members = [np.flatnonzero(y == c) for c in classes]
        sizes = [len(m) for m in members]
        per_class = max(sizes) if mode == "oversample" else min(sizes)
        per_epoch = per_class * len(classes)
        streams = [tf.data.Dataset.from_tensor_slices(m).shuffle(len(m), seed=self.seed + int(c),
                                                                reshuffle_each_iteration=True).repeat()
                   for c, m in zip(classes, members)]
        order = (tf.data.Dataset.range(len(classes)).repeat(per_class)
                 .shuffle(per_epoch, seed=self.seed, reshuffle_each_iteration=True))
        images, labels = tf.constant(x), tf.constant(y)
        picked = tf.data.Dataset.choose_from_datasets(streams, order)
        picked = picked.apply(tf.data.experimental.assert_cardinality(per_epoch))
        logger.info("%s: %d examples per epoch over %d classes", mode, per_epoch, len(classes))
        return picked.map(lambda i: (tf.gather(images, i), tf.gather(labels, i)))

    @functools.cached_property
    def train(self):
        return self.dataset("train")

    @functools.cached_property
    def val(self):
        return self.dataset("val")

    @functools.cached_property
    def test(self):
        return self.dataset("test")

    def __repr__(self):
        counts = {s: len(i) for s, i in self._indices.items()}
        return (f"Splits({self.info['spec']}, image_shape={self.image_shape}, "
                f"classes={self.num_classes}, {counts}, scale={self.preprocessing['scale']!r})")


def load(spec="digits", *, image_size=32, channels: int = 1, scale: str = "unit", seed: int = 0,
         val_fraction: float = 0.1, test_fraction: float = 0.2, batch_size: int = 64,
         augment="none", classes: Optional[Sequence] = None, cache: bool = True, min_classes: int = 2,
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
        min_classes: fewer classes raise ``ValueError`` (1 for anomaly detection on one folder).
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
                               seed=seed, class_names=class_names, min_classes=min_classes)
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
