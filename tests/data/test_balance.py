"""Imbalance handling: class weights, resampling proportions, and the focal loss formula."""

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from keras_cv_apps import data  # noqa: E402
from keras_cv_apps.data import balance  # noqa: E402
from keras_cv_apps.losses.focal import FocalLoss  # noqa: E402

TOTAL = (250, 50, 25)  # a 10:2:1 imbalance; the stratified train split keeps 70% of each
COUNTS = (175, 35, 17)


@pytest.fixture(scope="module")
def splits():
    """Real `Splits` of a constructed 10:2:1 imbalanced dataset (class = brightness level)."""
    y = np.concatenate([np.full(n, c, np.int32) for c, n in enumerate(TOTAL)])
    x = (np.random.default_rng(0).random((len(y), 4, 4, 1)) * 60 + 80 * y[:, None, None, None]).astype(np.uint8)
    splits = data.load((x, y), image_size=None, batch_size=16, seed=0)
    assert splits.counts("train").tolist() == list(COUNTS)
    return splits


def _labels(dataset):
    return np.concatenate([y for _, y in dataset.as_numpy_iterator()])


def test_class_weights_formula():
    weights = balance.class_weights([90, 10, 0])
    assert weights == pytest.approx({0: 100 / (2 * 90), 1: 100 / (2 * 10), 2: 0.0})


def test_weights_mode(splits):
    plan = balance.prepare(splits, "weights")
    n, k = sum(COUNTS), len(COUNTS)
    assert plan.class_weight == pytest.approx({c: n / (k * m) for c, m in enumerate(COUNTS)})
    assert plan.train is splits.train and plan.loss is None
    assert plan.counts.tolist() == list(COUNTS)


@pytest.mark.parametrize("mode,per_class", [("oversample", 175), ("undersample", 17)])
def test_resampling_balances_classes(splits, mode, per_class):
    plan = balance.prepare(splits, mode)
    assert int(plan.train.cardinality()) == -(-3 * per_class // 16)  # known length: schedules work
    first, second = _labels(plan.train), _labels(plan.train)
    for labels in (first, second):
        assert len(labels) == 3 * per_class
        assert np.bincount(labels, minlength=3).tolist() == [per_class] * 3  # exactly balanced
    assert not np.array_equal(first, second)  # a fresh order every epoch
    assert plan.class_weight is None and plan.loss is None
    x, y = next(iter(plan.train))
    assert x.shape[1:] == (4, 4, 1) and x.shape[0] == 16
    # every image stays with its own label through the resampling
    assert np.all(np.floor(x.numpy()[:, 0, 0, 0] * 255 / 80) == y.numpy())


def test_none_focal_and_bad_mode(splits):
    plan = balance.prepare(splits, "none")
    assert plan.train is splits.train and plan.class_weight is None and plan.loss is None
    focal = balance.prepare(splits, "focal", from_logits=True)
    assert isinstance(focal.loss, FocalLoss) and focal.loss.from_logits
    with pytest.raises(ValueError, match="Unknown balance mode 'smote'; choose one of 'none', 'weights'"):
        balance.prepare(splits, "smote")


def test_focal_loss_equals_formula():
    probs = np.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]], np.float32)
    y = np.array([0, 1])
    expected = [-(0.3 ** 2) * math.log(0.7), -(0.75 ** 2) * math.log(0.25)]
    loss = FocalLoss(gamma=2.0, reduction=None)(y, probs)
    assert np.allclose(loss, expected, rtol=1e-5)
    weighted = FocalLoss(gamma=2.0, alpha=[0.25, 2.0, 1.0], reduction=None)(y, probs)
    assert np.allclose(weighted, [0.25 * expected[0], 2.0 * expected[1]], rtol=1e-5)
    assert float(FocalLoss(gamma=2.0)(y[:, None], probs)) == pytest.approx(np.mean(expected), 1e-5)


def test_focal_reduces_to_cross_entropy_and_handles_logits():
    logits = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 1, 0])
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    assert float(FocalLoss(gamma=0.0, from_logits=True)(y, logits)) == pytest.approx(float(ce), 1e-5)
    probs = tf.nn.softmax(logits).numpy()
    assert float(FocalLoss(gamma=1.5, from_logits=True)(y, logits)) == pytest.approx(
        float(FocalLoss(gamma=1.5)(y, probs)), 1e-5)


def test_focal_loss_round_trips():
    loss = FocalLoss(gamma=1.0, alpha=[1.0, 3.0], from_logits=True)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, FocalLoss)
    assert (restored.gamma, restored.alpha, restored.from_logits) == (1.0, [1.0, 3.0], True)
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        FocalLoss(gamma=-1)


def test_prepare_on_real_digits():
    from keras_cv_apps import data

    splits = data.load("digits", image_size=16, seed=0, batch_size=64)
    plan = balance.prepare(splits, "undersample")
    labels = _labels(plan.train)
    assert len(labels) == splits.num_classes * plan.counts.min()
    assert np.bincount(labels).max() / np.bincount(labels).min() < 2.0
