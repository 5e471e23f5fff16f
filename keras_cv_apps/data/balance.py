"""Class imbalance: class weights, over/undersampling inside tf.data, and the focal loss.

A classifier trained on a skewed dataset learns the prior: it predicts the majority classes
more often and minority recall suffers. Four standard remedies, one entry point::

    from keras_cv_apps.data import balance
    plan = balance.prepare(splits, "oversample", seed=0)
    training.fit(model, plan.train, class_weight=plan.class_weight, loss=plan.loss)

- ``weights``: keep the data, weight each example's loss by ``n / (k * n_c)`` (what
  scikit-learn calls "balanced"), so every class carries the same total weight.
- ``oversample``: every epoch draws exactly ``max_count`` examples of each class, in a seeded
  random order, from each class's own repeated stream (``tf.data.Dataset.choose_from_datasets``):
  minority examples are seen several times per epoch.
- ``undersample``: the same exact draw with ``min_count`` examples per class, so each majority
  example is seen in only some epochs (a fresh random subset every epoch).
- ``focal``: keep the data and the weights, train with :class:`FocalLoss`, which
  down-weights the easy (mostly majority) examples.

Only the training split is changed; validation and test keep the real class distribution.
"""

import dataclasses
import logging

import numpy as np

logger = logging.getLogger(__name__)

MODES = ("none", "weights", "oversample", "undersample", "focal")


@dataclasses.dataclass
class BalancePlan:
    """What a training run needs for one balancing mode.

    Attributes:
        mode: the mode that produced the plan.
        train: batched ``(x, y)`` training dataset to fit on.
        class_weight: ``{class_id: weight}`` for ``model.fit``, or None.
        loss: a loss object to train with (focal mode), or None for the app's default loss.
        counts: examples per class in the original training split.
    """

    mode: str
    train: object
    class_weight: dict | None
    loss: object | None
    counts: np.ndarray


def class_counts(dataset, num_classes):
    """Examples per class in a batched or unbatched ``(x, y)`` dataset, as an int64 array."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for y in dataset.map(lambda x, y: y).as_numpy_iterator():
        counts += np.bincount(np.asarray(y, dtype=np.int64).ravel(), minlength=num_classes)
    return counts


def class_weights(counts):
    """Balanced class weights ``n / (k * n_c)``; a class with no examples gets weight 0.

    Every present class then contributes the same total weight ``n / k`` to the loss.
    """
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return {i: float(w) for i, w in enumerate(weights)}


def resample(dataset, counts, *, target, batch_size, seed=0):
    """Rebalance a batched ``(x, y)`` dataset so classes are drawn uniformly.

    Args:
        dataset: batched training dataset of ``(x, y)`` with integer labels.
        counts: examples per class in ``dataset`` (classes with zero examples are skipped).
        target: ``"oversample"`` (epoch of ``k * max_count`` examples) or ``"undersample"``
            (epoch of ``k * min_count`` examples), ``k`` = number of present classes.
        batch_size: batch size of the returned dataset.
        seed: seed of the class draw.

    Returns:
        a finite, batched, prefetched dataset with the same element structure.
    """
    import tensorflow as tf

    if target not in ("oversample", "undersample"):
        raise ValueError(f"Unknown resampling target {target!r}; choose oversample or undersample.")
    counts = np.asarray(counts)
    classes = [int(c) for c in np.flatnonzero(counts)]
    per_class = int(counts[classes].max() if target == "oversample" else counts[classes].min())
    per_epoch = len(classes) * per_class
    flat = dataset.unbatch()
    streams = [flat.filter(_LabelEquals(c)).repeat() for c in classes]
    # Each epoch draws exactly `per_class` examples of every class, in a seeded random order.
    order = (tf.data.Dataset.range(len(classes)).repeat(per_class)
             .shuffle(per_epoch, seed=seed, reshuffle_each_iteration=True))
    mixed = tf.data.Dataset.choose_from_datasets(streams, order)
    logger.info("%s: %d examples per epoch over %d classes", target, per_epoch, len(classes))
    return mixed.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class _LabelEquals:
    """``Dataset.filter`` predicate ``y == class_id`` (an object, so each class keeps its id)."""

    def __init__(self, class_id):
        self.class_id = class_id

    def __call__(self, x, y):
        import tensorflow as tf

        return tf.equal(tf.cast(tf.reshape(y, []), tf.int64), self.class_id)


def prepare(splits, mode, *, seed=0, batch_size=None, gamma=2.0, from_logits=False):
    """Build the training dataset, class weights and loss for one balancing mode.

    Args:
        splits: a ``keras_cv_apps.data`` Splits (needs ``.train`` and ``.num_classes``).
        mode: one of ``none, weights, oversample, undersample, focal``.
        seed: seed of the resampling draw.
        batch_size: batch size of a resampled dataset; defaults to ``splits.batch_size``.
        gamma: focusing exponent of the focal loss (focal mode).
        from_logits: whether the model outputs logits (focal mode).

    Returns:
        a :class:`BalancePlan`.
    """
    if mode not in MODES:
        raise ValueError(f"Unknown balance mode {mode!r}; choose one of {', '.join(MODES)}.")
    if mode in ("oversample", "undersample"):
        batch_size = batch_size or getattr(splits, "batch_size", None)
        if not batch_size:
            raise ValueError("Resampling needs a batch size; pass batch_size= or use Splits "
                             "with a batch_size attribute.")
    counts = class_counts(splits.train, splits.num_classes)
    train, weights, loss = splits.train, None, None
    if mode == "weights":
        weights = class_weights(counts)
    elif mode in ("oversample", "undersample"):
        train = resample(splits.train, counts, target=mode, batch_size=batch_size, seed=seed)
    elif mode == "focal":
        from keras_cv_apps.losses.focal import FocalLoss

        loss = FocalLoss(gamma=gamma, from_logits=from_logits)
    if counts.min() > 0:
        logger.info("class imbalance ratio (max/min count) %.2f", counts.max() / counts.min())
    return BalancePlan(mode=mode, train=train, class_weight=weights, loss=loss, counts=counts)
