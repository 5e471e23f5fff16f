"""`load(spec)` -> `Splits`: seeded stratified train/val/test splits as batched tf.data pipelines.

Small built-in sets stay uint8 in memory until the last moment. Train pipeline::

    from_tensor_slices(uint8) -> cache -> shuffle(seed, reshuffle each epoch) -> batch
      -> map(augment [0, 255] -> scale, parallel) -> prefetch

``dir:`` and ``tfrecord:`` sources are streamed (`streaming`): the file list is shuffled, and
files are read and decoded in a parallel map before the same ``batch -> map -> prefetch``, so
the decoded dataset is never held in memory; ``Splits.arrays`` and ``representative`` read a
bounded sample of them.

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
import os
from typing import Optional, Sequence

import numpy as np

from keras_cv_apps._validate import check_choice
from keras_cv_apps.data import augment as augment_lib
from keras_cv_apps.data import shards, sources, streaming
from keras_cv_apps.data.splitting import image_size as _image_size
from keras_cv_apps.data.splitting import stratified_split
from keras_cv_apps.image import ops as image_ops
from keras_cv_apps.image.ops import SCALES

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
TARGETS = ("label", "image", "none")
STATS_SAMPLE = 2000  # streamed train images that `standardize` estimates its mean and std from


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


class Splits:
    """Seeded, stratified train/val/test splits of one dataset, ready for ``model.fit``.

    ``train``/``val``/``test`` are batched ``tf.data.Dataset`` of ``(x float32 [B, H, W, C]
    scaled, y int32 [B])``, built on first access; `dataset` builds variants (classes left out,
    class-balanced sampling, images as targets). ``preprocessing`` records the scaling so an
    exported model can be fed the same way; `describe` is the ``dataset`` section of a run's
    ``config.json``. A streamed source (``streamed`` is True) decodes its files inside the
    pipelines; its datasets carry ``per_worker(input_context)``, which `training.fit` uses to give
    each ``multiworker`` worker its own files.
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
    def streamed(self) -> bool:
        """True when the images stay on disk and are decoded as the pipelines run."""
        return isinstance(self._images, streaming.FileStream)

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

    @property
    def read_limit(self) -> int:
        """The most images `arrays` reads of a streamed split by default (what fits in
        `streaming.READ_BUDGET` bytes as float32)."""
        return max(1, streaming.READ_BUDGET // (4 * int(np.prod(self.image_shape))))

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
                "counts": self.info["counts"], "skipped": len(self.skipped())}

    def skipped(self) -> list:
        """The files that could not be decoded (for a streamed source: found so far)."""
        return self._images.skipped() if self.streamed else list(self.info["skipped"])

    def _split(self, split: str) -> np.ndarray:
        check_choice(split, SPLITS, "split")
        return self._indices[split]

    def _scale(self, x):
        p = self.preprocessing
        return scale_images(x, p["scale"], p["mean"], p["std"])

    def arrays(self, split: str, scaled: bool = True, *, exclude: Sequence[int] = (), max_images=None, rows=None):
        """``(x, y)`` numpy arrays of ``split``: x float32 scaled, or the raw uint8 images;
        ``exclude`` leaves out those class indices. At most ``max_images`` (a seeded random
        sample, in split order); a streamed split is limited to what fits in
        `streaming.READ_BUDGET` bytes by default, and files that fail to decode are left out.
        ``rows`` reads just those places of the split (indices into ``labels(split)``, e.g. a
        few-shot pick), all of them, in that order."""
        idx = self._select(split, exclude)
        if rows is not None:
            if len(exclude):
                raise ValueError("arrays takes rows or exclude, not both.")
            idx = idx[np.asarray(rows, np.int64)]
            max_images = len(idx)
        x, y = self._take(idx, max_images, what=f"the {split} split")
        return (self._scale(x) if scaled else x), y

    def _take(self, idx, limit=None, what="images"):
        """uint8 images and labels at ``idx``, a seeded sample of ``limit`` when there are more."""
        if limit is None and self.streamed:
            limit = self.read_limit
        if limit is not None and len(idx) > limit:
            pick = np.sort(np.random.default_rng(self.seed).choice(len(idx), int(limit), replace=False))
            logger.warning("Using a seeded sample of %d of the %d images of %s.", limit, len(idx), what)
            idx = idx[pick]
        if not self.streamed:
            return self._images[idx], self._labels[idx]
        got, images = self._images.read(idx)
        return images, self._labels[got]

    def _select(self, split, exclude):
        idx = self._split(split)
        if len(exclude):
            idx = idx[~np.isin(self._labels[idx], list(exclude))]
        return idx

    def representative(self, n: int = 200, *, exclude: Sequence[int] = ()) -> np.ndarray:
        """A seeded random sample of ``n`` scaled float32 train images (int8 calibration)."""
        idx = self._select("train", exclude)
        pick = np.random.default_rng(self.seed).permutation(len(idx))[:n]
        return self._scale(self._take(idx[np.sort(pick)])[0])

    def dataset(self, split: str = "train", *, exclude: Sequence[int] = (), balance: str = "none",
                target: str = "label", raw: bool = False, refill: bool = True, _shard=None, _batch=None,
                _cool=False):
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
            raw: the uint8 images as decoded, neither augmented nor scaled, with int32 labels
                (for a caller that augments and scales them itself, as `transfer.feed` does).
            refill: a streamed split gives the slot of a file that fails to decode to an image of a
                later pass, so every epoch has the split's length (what ``fit`` and distributed
                evaluation need); ``False`` leaves such files out (each readable image once, the
                length unknown: what a test report counts). In-memory splits have no such files.

        When the augmentation ends with a cool-down (`augment.COOLDOWNS`), the train dataset
        carries ``cooldown = (fraction, build)``: ``build()`` is the same pipeline with the
        cool-down's augmentation, which `training.fit` feeds for the last epochs.

        Under ``tf.distribute`` an in-memory dataset is sharded by data (each worker keeps its
        part of every global batch); a streamed one carries ``per_worker(input_context)``, the same
        pipeline over one worker's files at the per-replica batch size.
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
        if self.streamed:
            ds = self._streamed(split, idx, balance, training, _shard, refill)
        elif balance == "none":
            ds = tf.data.Dataset.from_tensor_slices((self._images[idx], self._labels[idx]))
            if training:
                if self.cache:
                    ds = ds.cache()
                ds = ds.shuffle(len(idx), seed=self.seed, reshuffle_each_iteration=True)
        else:
            ds = self._resampled(self._images[idx], self._labels[idx], balance)
        ds = ds.batch(_batch or self.batch_size)
        augmenter = self.augmenter if training and not raw else None
        cool = getattr(augmenter, "cooldown", None)
        if _cool:
            augmenter = cool[1]
        one_hot = self.mixes_labels and target == "label" and not raw
        if augmenter is not None:  # one key per batch: the seed, the epoch and the batch's place in it
            ds = tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed=self.seed, rerandomize_each_iteration=True))

        if self.streamed:  # (positions, images): finish the batch, labels by position
            store, label_table = self._images, tf.constant(self._labels)

            def arrive(positions, images):
                return store.finish(positions, images), tf.gather(label_table, positions)
        else:
            def arrive(images, labels):
                return images, labels

        def prepare(batch, key=None):
            images, labels = arrive(*batch)
            if raw:
                return {"label": (images, labels), "image": (images, images), "none": images}[target]
            images = tf.cast(images, tf.float32)
            if one_hot:
                labels = tf.one_hot(labels, self.num_classes, dtype=tf.float32)
            if augmenter is not None:
                keys = augment_lib.batch_keys(key)
                images = augmenter(images, keys[0])
                if one_hot:
                    images, labels = augmenter.mix(images, labels, keys[1])
            images = self._scale(images)
            return {"label": (images, labels), "image": (images, images), "none": images}[target]

        if augmenter is not None:
            ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = ds.map(lambda *batch: prepare(batch), num_parallel_calls=tf.data.AUTOTUNE)
        if self.cache and not training and not self.streamed:
            ds = ds.cache()
        ds = ds.prefetch(tf.data.AUTOTUNE)
        if not self.streamed:
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
            ds = ds.with_options(options)
        if cool is not None and not _cool:
            ds.cooldown = (cool[0], functools.partial(self.dataset, split, exclude=exclude, balance=balance,
                                                      target=target, refill=refill, _shard=_shard, _batch=_batch,
                                                      _cool=True))
        if not self.streamed:
            return ds
        if _shard is None:
            ds.per_worker = functools.partial(self._per_worker, split, tuple(exclude), balance, target, raw, refill)
        return ds

    def _per_worker(self, split, exclude, balance, target, raw, refill, context):
        """`dataset` for one worker of ``tf.distribute`` (its files, the per-replica batch)."""
        return self.dataset(split, exclude=exclude, balance=balance, target=target, raw=raw, refill=refill,
                            _shard=(context.num_input_pipelines, context.input_pipeline_id),
                            _batch=context.get_per_replica_batch_size(self.batch_size))

    def _streamed(self, split, idx, balance, training, shard, refill=True):
        """Unbatched ``(position, uint8 image)`` of a streamed source (batches go through
        `FileStream.finish`; labels are looked up per batch)."""
        store = self._images
        if balance != "none":
            ds = self._resampled_stream(idx, balance, shard)
        else:
            cache = None
            if refill and isinstance(self.cache, (str, os.PathLike)):
                name = store.cache_name(idx, shuffle=training, seed=self.seed, shard=shard)
                cache = os.path.join(os.fspath(self.cache), f"{split}-{name}")
            ds = store.stream(idx, shuffle=training, seed=self.seed, cache=cache, shard=shard, refill=refill)
        return ds

    def _resampled_stream(self, idx, mode, shard):
        """`_resampled` for a streamed source: one reshuffled stream of files per class."""
        import tensorflow as tf

        y = self._labels[idx]
        classes = np.flatnonzero(np.bincount(y))
        members = [idx[y == c] for c in classes]
        sizes = [len(m) for m in members]
        per_class = math.ceil((max(sizes) if mode == "oversample" else min(sizes)) / (shard[0] if shard else 1))
        per_epoch = per_class * len(classes)
        streams = [self._images.stream(m, shuffle=True, seed=self.seed + int(c), shard=shard).repeat()
                   for c, m in zip(classes, members)]
        order = (tf.data.Dataset.range(len(classes)).repeat(per_class)
                 .shuffle(per_epoch, seed=self.seed, reshuffle_each_iteration=True))
        picked = tf.data.Dataset.choose_from_datasets(streams, order)
        logger.info("%s: %d examples per epoch over %d classes", mode, per_epoch, len(classes))
        return picked.apply(tf.data.experimental.assert_cardinality(per_epoch))

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
        spec: ``digits``, ``shapes[:K[:N]]``, ``lfw_subset``, ``photos``, ``dir:PATH`` and
            ``tfrecord:GLOB`` (streamed from disk; the split of a ``tfrecord:`` source is the one
            written into its shards), ``tfds:NAME[:split]``, ``keras:mnist|fashion_mnist|cifar10``
            or an ``(x, y)`` tuple.
        image_size: int or (h, w) to resize to, or None for the native size.
        channels: 1 (grayscale) or 3 (RGB).
        scale: ``unit``, ``symmetric`` or ``standardize`` (mean/std of the train split).
        augment: an `augment.PRESETS` name or a list of Keras layers, train split only.
        classes: optional subset of class names (or indices) to keep, relabelled in that order.
        cache: cache the uint8 train images and the scaled val/test batches in memory (in-memory
            sources); a folder path caches the decoded, resized images of a streamed source
            there, for later epochs and runs.
        min_classes: fewer classes raise ``ValueError`` (1 for anomaly detection on one folder).
        source_options: passed to the source (e.g. ``class_names=`` for arrays, ``workers=``
            decoding threads for a streamed source).
    """
    _check_args(scale, channels, val_fraction, test_fraction, batch_size, augment)
    size = _image_size(image_size)
    fixed = None
    if sources.is_streamed(spec):
        if size is not None:  # a few float32 batches are in flight at once (decoding, prefetch, the step)
            image_ops.check_fits_in_memory(8 * batch_size, size, channels, bytes_per_value=4,
                                           what=f"8 float32 batches of {batch_size} images",
                                           advice="choose a smaller image size or batch size")
        images, labels, class_names, fixed = _open_stream(spec, size, channels, **source_options)
        skipped = images.skipped()
    else:
        data = sources.load_source(spec, image_size=size, channels=channels, seed=seed,
                                   **source_options)
        images, labels, class_names, skipped = data.images, data.labels, list(data.class_names), data.skipped
    if classes is not None:
        images, labels, class_names = _select_classes(images, labels, class_names, classes)
    present = np.flatnonzero(labels >= 0)  # a streamed source keeps the files of left-out classes, labelled -1
    if fixed is None:
        indices = stratified_split(labels[present], val_fraction=val_fraction, test_fraction=test_fraction,
                                   seed=seed, class_names=class_names, min_classes=min_classes)
        indices = {split: present[idx] for split, idx in indices.items()}
    else:
        indices = _fixed_split(fixed, labels, class_names, min_classes)
    if isinstance(images, streaming.FileStream):
        streaming.check_split_readable(images, indices)
        if isinstance(cache, (str, os.PathLike)) and os.path.exists(cache) and not os.path.isdir(cache):
            raise NotADirectoryError(f"The cache {os.fspath(cache)!r} is a file; give a folder (it is created "
                                     "if missing) for the decoded images.")
    elif isinstance(cache, (str, os.PathLike)):
        logger.warning("The cache folder %s is not used: %s is held in memory; only streamed sources (dir:, "
                       "tfrecord:) are cached on disk.", os.fspath(cache), spec if isinstance(spec, str) else "arrays")
    mean = std = None
    if scale == "standardize":
        train = indices["train"]
        if isinstance(images, streaming.FileStream) and len(train) > STATS_SAMPLE:
            train = np.sort(np.random.default_rng(seed).choice(train, STATS_SAMPLE, replace=False))
        mean, std = channel_stats(images.read(train)[1] if isinstance(images, streaming.FileStream)
                                  else images[train])
    preprocessing = {"scale": scale, "mean": mean, "std": std,
                     "image_size": list(images.shape[1:3]), "channels": channels}
    info = {
        "spec": spec if isinstance(spec, str) else "arrays",
        "num_images": int(len(present)),
        "counts": {split: {class_names[c]: int(n) for c, n in
                           enumerate(np.bincount(labels[idx], minlength=len(class_names)))}
                   for split, idx in indices.items()},
        "skipped": list(skipped),
    }
    augmenter = augment_lib.build_augmenter(augment, seed=seed)
    logger.info("Loaded %s: %s images, %d classes, %d skipped.", info["spec"],
                {s: len(i) for s, i in indices.items()}, len(class_names), len(skipped))
    return Splits(images, labels, indices, class_names=class_names, preprocessing=preprocessing,
                  batch_size=int(batch_size), augmenter=augmenter, seed=seed, cache=cache,
                  info=info)


def _open_stream(spec, size, channels, **options):
    """A streamed source: ``(FileStream, labels, class names, fixed split or None)``."""
    unknown = sorted(set(options) - {"workers"})
    if unknown:
        raise TypeError(f"Spec {spec!r} does not take option(s) {unknown}; it takes ['workers'].")
    head, _, rest = spec.partition(":")
    if head == "dir":
        stream, labels, names = streaming.open_folder(rest, size=size, channels=channels, **options)
        return stream, labels, names, None
    return shards.open_records(rest, size=size, channels=channels, **options)


def _fixed_split(fixed, labels, class_names, min_classes):
    """The split written into shards, without the positions of left-out classes."""
    indices = {split: idx[labels[idx] >= 0] for split, idx in fixed.items()}
    present = np.unique(labels[indices["train"]])
    if len(present) < min_classes:
        raise ValueError(f"A dataset needs at least {min_classes} classes here; the train split has {len(present)}.")
    empty = [split for split, idx in indices.items() if not len(idx)]
    if empty:
        raise ValueError(f"The shards hold no images for the {', '.join(empty)} split(s) of classes {class_names}.")
    return indices


def _select_classes(images, labels, class_names, classes):
    """Keep only ``classes`` (names or indices), relabelled 0..k-1 in the order given; a
    streamed source keeps every file and labels the others -1."""
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
    if isinstance(images, streaming.FileStream):
        return images, new, [class_names[w] for w in wanted]
    keep = new >= 0
    return images[keep], new[keep], [class_names[w] for w in wanted]
