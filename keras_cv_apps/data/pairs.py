"""Pair and P x K batch pipelines for metric learning, and class-disjoint splits.

Both samplers draw whole batches with vectorised TensorFlow ops from a counter and a seed
(``stateless`` random ops), so they are endless, reproducible and never loop in Python:

- `pair_dataset` yields ``((a, b), same)`` batches, half same-class pairs and half
  different-class pairs, for a two-input siamese model and `ContrastiveLoss`.
- `pk_dataset` yields ``(images, labels)`` batches of P classes x K images each, so every anchor
  has positives and negatives in the batch for `TripletLoss` / `SupConLoss` mining.

`class_disjoint_split` separates training classes from held-out classes for one-shot evaluation.
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["class_disjoint_split", "drop_small_classes", "pair_dataset", "pk_dataset",
           "training_feeds"]

log = logging.getLogger(__name__)


def drop_small_classes(x, y, *, min_count=2):
    """Keep only classes with at least ``min_count`` images; returns ``(x, y, dropped_classes)``.

    A class with a single image can make no positive pair, so it is left out and reported
    (logged, and returned so that callers can show it).
    """
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    dropped = [c.item() for c, n in zip(classes, counts) if n < min_count]
    if dropped:
        log.warning("Left out %d class(es) with fewer than %d images: %s",
                    len(dropped), min_count, dropped)
    keep = ~np.isin(y, dropped)
    return np.asarray(x)[keep], y[keep], dropped


def class_disjoint_split(x, y, held_out_classes):
    """Split arrays into ``(x_train, y_train), (x_held, y_held)`` by class membership.

    Raises ``ValueError`` when either side would have fewer than two classes (no metric can be
    learned or evaluated on one class) or a held-out class does not occur in ``y``.
    """
    y = np.asarray(y)
    present = set(np.unique(y).tolist())
    held = sorted({int(c) for c in held_out_classes})
    missing = [c for c in held if c not in present]
    if missing:
        raise ValueError(f"Held-out classes {missing} do not occur in the labels; "
                         f"present classes are {sorted(present)}.")
    mask = np.isin(y, held)
    n_train, n_held = len(present) - len(held), len(held)
    if n_train < 2 or n_held < 2:
        raise ValueError(f"A class-disjoint split needs at least 2 training and 2 held-out "
                         f"classes; got {n_train} training and {n_held} held-out.")
    x = np.asarray(x)
    return (x[~mask], y[~mask]), (x[mask], y[mask])


def _class_index(y):
    """Sort indices by class: returns (order, starts, counts, num_classes) as numpy arrays."""
    y = np.asarray(y).reshape(-1)
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"Metric-learning batches need at least 2 classes; got {len(classes)}.")
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, starts, counts, inverse


def _finish(ds, x, augment, preprocessing, make_inputs):
    """Gather images, apply the batch augmenter (pixel units) and the scaling, prefetch."""
    import tensorflow as tf

    from keras_cv_apps.data.pipelines import scale_images

    images = tf.constant(np.asarray(x, dtype=np.float32))

    def prepare(batch):
        if augment is not None:
            batch = augment(batch)
        if preprocessing is not None:
            p = preprocessing
            batch = scale_images(batch, p["scale"], p.get("mean"), p.get("std"))
        return batch

    def gather(idx, labels):
        return make_inputs([prepare(tf.gather(images, i)) for i in idx]), labels

    # Random augmentation layers draw from a stateful generator: one batch at a time keeps the
    # draws in order, so a seeded run is reproducible (prefetch still overlaps with training).
    parallel = None if augment is not None else tf.data.AUTOTUNE
    return ds.map(gather, num_parallel_calls=parallel).prefetch(tf.data.AUTOTUNE)


def pair_dataset(x, y, *, batch_size=64, seed=0, augment=None, preprocessing=None):
    """Endless balanced pair batches ``((a, b), same)`` with ``same`` 1.0 / 0.0 as float32.

    Each batch draws ``batch_size`` anchors uniformly; the first half of the batch gets a partner
    from the anchor's class (another image when the class has one), the second half a partner
    from a uniformly chosen different class. ``x`` holds images in pixel units ([0, 255]);
    ``augment`` (a callable on float pixel batches, see `data.build_augmenter`) is applied to
    each side independently, then ``preprocessing`` (a `Splits.preprocessing` dict) scales them.
    """
    import tensorflow as tf

    y = np.asarray(y).reshape(-1)
    order, starts, counts, inverse = _class_index(y)
    order_t, starts_t = tf.constant(order), tf.constant(starts)
    counts_t, inverse_t = tf.constant(counts), tf.constant(inverse)
    n, c = len(y), len(counts)
    half = batch_size // 2
    same = tf.concat([tf.ones(half), tf.zeros(batch_size - half)], axis=0)

    def draw(step):
        seeds = tf.random.experimental.stateless_split(tf.stack([seed, step]), 4)
        anchor = tf.random.stateless_uniform([batch_size], seeds[0], 0, n, dtype=tf.int64)
        a_cls = tf.gather(inverse_t, anchor)
        shift = tf.random.stateless_uniform([batch_size], seeds[1], 1, c, dtype=tf.int64)
        other = tf.where(same > 0, a_cls, (a_cls + shift) % c)
        # Position inside the partner class; for same pairs skip the anchor's own position.
        u = tf.random.stateless_uniform([batch_size], seeds[2])
        size = tf.gather(counts_t, other)
        own = tf.cast(tf.where(same > 0, tf.minimum(size - 1, 1), 0), tf.int64)
        pos = tf.cast(u * tf.cast(size - own, tf.float32), tf.int64)
        partner = tf.gather(order_t, tf.gather(starts_t, other) + pos)
        bump = tf.logical_and(tf.cast(own, tf.bool), partner == anchor)
        partner = tf.where(bump, tf.gather(order_t, tf.gather(starts_t, other) + size - 1),
                           partner)
        return (anchor, partner), same

    ds = tf.data.Dataset.counter().map(draw)
    return _finish(ds, x, augment, preprocessing, tuple)


def pk_dataset(x, y, *, p=8, k=4, seed=0, augment=None, preprocessing=None):
    """Endless P x K batches ``(images, labels)``: ``p`` distinct classes, ``k`` images each.

    Images within a class are drawn without replacement when the class has ``k`` or more,
    otherwise its images repeat. Labels are the original values of ``y`` (int32).
    ``augment`` and ``preprocessing`` work as in `pair_dataset`.
    """
    import tensorflow as tf

    y = np.asarray(y).reshape(-1)
    order, starts, counts, _ = _class_index(y)
    num_classes = len(counts)
    if p > num_classes:
        raise ValueError(f"P x K batches need p <= number of classes; got p={p} with "
                         f"{num_classes} classes.")
    if k < 2:
        raise ValueError(f"P x K batches need k >= 2 images per class; got k={k}.")
    order_t, starts_t, counts_t = tf.constant(order), tf.constant(starts), tf.constant(counts)
    labels_t = tf.constant(y.astype(np.int32))
    max_count = int(counts.max())

    def draw(step):
        seeds = tf.random.experimental.stateless_split(tf.stack([seed, step]), 2)
        classes = tf.argsort(tf.random.stateless_uniform([num_classes], seeds[0]))[:p]
        size = tf.gather(counts_t, classes)  # (p,)
        # Random ranks within each class; padding slots beyond the class size sort last.
        scores = tf.random.stateless_uniform([p, max_count], seeds[1])
        scores += tf.cast(tf.range(max_count)[None, :] >= tf.cast(size[:, None], tf.int32),
                          tf.float32)
        ranks = tf.argsort(scores, axis=1)[:, :k]
        slot = tf.cast(tf.gather(ranks, tf.range(k) % tf.cast(size[:, None], tf.int32),
                                 batch_dims=1), tf.int64)
        idx = tf.gather(order_t, tf.gather(starts_t, classes)[:, None] + slot)
        idx = tf.reshape(idx, [-1])
        return (idx,), tf.gather(labels_t, idx)

    ds = tf.data.Dataset.counter().map(draw)
    return _finish(ds, x, augment, preprocessing, lambda batch: batch[0])


def training_feeds(splits, *, held_out, pairs=False, batch_size=56, k=8, augment=None, seed=0,
                   val_batches=4):
    """Train and validation datasets for metric learning on the classes NOT in ``held_out``.

    ``splits`` is a `data.Splits`; its train and val images are used in pixel units, scaled as
    ``splits.preprocessing`` says. Returns ``(train, val, dropped)``: endless train batches
    (`pair_dataset` when ``pairs`` else `pk_dataset` with P = ``batch_size // k`` classes,
    at most all of them), ``val_batches`` fixed validation batches, and a dict with the
    number of ``train_images`` and the classes ``dropped`` for having fewer than two.
    """
    x, y = splits.arrays("train", scaled=False)
    x, y, dropped = drop_small_classes(x, y)
    seen = {"train": class_disjoint_split(x, y, held_out)[0]}
    x, y = splits.arrays("val", scaled=False)
    seen["val"] = x[~np.isin(y, held_out)], y[~np.isin(y, held_out)]
    feeds = []
    for split, (x, y) in seen.items():
        common = {"seed": seed + (split == "val"), "preprocessing": splits.preprocessing,
                  "augment": augment if split == "train" else None}
        if pairs:
            feeds.append(pair_dataset(x, y, batch_size=batch_size, **common))
        else:
            p = min(len(np.unique(y)), max(2, batch_size // k))
            feeds.append(pk_dataset(x, y, p=p, k=k, **common))
    info = {"train_images": int(len(seen["train"][1])), "dropped": dropped}
    return feeds[0], feeds[1].take(val_batches), info
