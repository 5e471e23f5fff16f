"""Class imbalance: class weights, over/undersampling inside tf.data, and the focal loss.

A classifier trained on a skewed dataset learns the prior: it predicts the majority classes
more often and minority recall suffers. Four standard remedies, one entry point::

    from keras_cv_apps.data import balance
    plan = balance.prepare(splits, "oversample", seed=0)
    training.fit(model, plan.train, class_weight=plan.class_weight, loss=plan.loss)

- ``weights``: keep the data, weight each example's loss by ``n / (k * n_c)`` (what
  scikit-learn calls "balanced"), so every class carries the same total weight.
- ``oversample``: every epoch draws exactly ``max_count`` examples of each class, in a seeded
  random order, from each class's own reshuffled stream (`Splits.dataset` with ``balance=``):
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

from keras_cv_apps._validate import check_choice
from keras_cv_apps.choices import BALANCE_MODES

logger = logging.getLogger(__name__)

MODES = BALANCE_MODES


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


def class_weights(counts):
    """Balanced class weights ``n / (k * n_c)``; a class with no examples gets weight 0.

    Every present class then contributes the same total weight ``n / k`` to the loss.
    """
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return {i: float(w) for i, w in enumerate(weights)}


def prepare(splits, mode: str, *, gamma: float = 2.0, from_logits: bool = False) -> BalancePlan:
    """Build the training dataset, class weights and loss for one balancing mode.

    Args:
        splits: a `keras_cv_apps.data.Splits` (its train counts are known without reading data).
        mode: one of ``MODES``.
        gamma: focusing exponent of the focal loss (focal mode).
        from_logits: whether the model outputs logits (focal mode).
    """
    check_choice(mode, MODES, "balance mode")
    counts = splits.counts("train")
    train, weights, loss = splits.train, None, None
    if mode == "weights":
        weights = class_weights(counts)
    elif mode in ("oversample", "undersample"):
        train = splits.dataset("train", balance=mode)
    elif mode == "focal":
        from keras_cv_apps.losses.focal import FocalLoss

        loss = FocalLoss(gamma=gamma, from_logits=from_logits)
    present = counts[counts > 0]
    if len(present):
        logger.info("class imbalance ratio (max/min count) %.2f", present.max() / present.min())
    return BalancePlan(mode=mode, train=train, class_weight=weights, loss=loss, counts=counts)
