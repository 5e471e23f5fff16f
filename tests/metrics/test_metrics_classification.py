"""Classification metrics against hand-computed values and scikit-learn as an oracle."""

import os

import numpy as np
import pytest

from keras_cv_apps import metrics

NAMES = ["cat", "dog", "owl"]
# Hand-made 3-class case. True labels and scores; the predicted class (argmax) is
#   y_pred = [0, 0, 1, 1, 2, 2, 2, 2, 2]
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
PROBS = np.array([
    [0.8, 0.1, 0.1],
    [0.6, 0.3, 0.1],
    [0.4, 0.5, 0.1],  # true 0, predicted 1, second choice 0 -> top-2 hit
    [0.2, 0.7, 0.1],
    [0.3, 0.1, 0.6],  # true 1, predicted 2, second choice 0 -> top-2 miss
    [0.1, 0.2, 0.7],
    [0.2, 0.1, 0.7],
    [0.25, 0.3, 0.45],
    [0.1, 0.1, 0.8],
])


def test_report_matches_hand_computed_values():
    report = metrics.classification_report(Y_TRUE, PROBS, NAMES)
    # Confusion matrix (rows = true): cat [2,1,0], dog [0,1,1], owl [0,0,4].
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 4]]
    # Column sums 2, 2, 5 -> precision 2/2, 1/2, 4/5; row sums 3, 2, 4 -> recall 2/3, 1/2, 4/4.
    expected = {
        "cat": (1.0, 2 / 3, 0.8, 3),       # F1 = 2 * 1 * 2/3 / (1 + 2/3) = 0.8
        "dog": (0.5, 0.5, 0.5, 2),
        "owl": (0.8, 1.0, 8 / 9, 4),       # F1 = 2 * 0.8 / 1.8
    }
    for name, (p, r, f1, support) in expected.items():
        got = report["per_class"][name]
        assert got["precision"] == pytest.approx(p)
        assert got["recall"] == pytest.approx(r)
        assert got["f1"] == pytest.approx(f1)
        assert got["support"] == support
    assert report["macro_f1"] == pytest.approx((0.8 + 0.5 + 8 / 9) / 3)
    assert report["macro_precision"] == pytest.approx((1.0 + 0.5 + 0.8) / 3)
    assert report["top1"] == pytest.approx(7 / 9)
    # Fewer than 5 classes: "top5" is top-3 here, which is always right.
    assert (report["top5"], report["top5_k"]) == (1.0, 3)
    assert report["n"] == 9 and report["class_names"] == NAMES


def test_top_k_accuracy_hand_computed_and_ties():
    assert metrics.top_k_accuracy(Y_TRUE, PROBS, 1) == pytest.approx(7 / 9)
    assert metrics.top_k_accuracy(Y_TRUE, PROBS, 2) == pytest.approx(8 / 9)
    assert metrics.top_k_accuracy(Y_TRUE, PROBS, 3) == 1.0
    # Ties go to the lower class index, as argmax does.
    assert metrics.top_k_accuracy([1, 0], [[0.5, 0.5], [0.5, 0.5]], 1) == 0.5


def test_report_agrees_with_sklearn_on_random_scores():
    from sklearn.metrics import f1_score, precision_recall_fscore_support, top_k_accuracy_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, size=300)
    probs = rng.dirichlet(np.ones(7), size=300) + np.eye(7)[y] * rng.uniform(0, 0.5, (300, 1))
    report = metrics.classification_report(y, probs, [f"c{i}" for i in range(7)])
    p, r, f, s = precision_recall_fscore_support(y, probs.argmax(1), labels=range(7),
                                                 zero_division=0)
    got = report["per_class"]
    np.testing.assert_allclose([got[f"c{i}"]["precision"] for i in range(7)], p)
    np.testing.assert_allclose([got[f"c{i}"]["recall"] for i in range(7)], r)
    np.testing.assert_allclose([got[f"c{i}"]["f1"] for i in range(7)], f)
    assert [got[f"c{i}"]["support"] for i in range(7)] == list(s)
    assert report["macro_f1"] == pytest.approx(f1_score(y, probs.argmax(1), average="macro"))
    assert report["top5_k"] == 5
    assert report["top5"] == pytest.approx(top_k_accuracy_score(y, probs, k=5, labels=range(7)))


def test_evaluate_classifier_predicts_then_reports():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Softmax()])
    # softmax(log p) == p, so the model reproduces PROBS exactly.
    report = metrics.evaluate_classifier(model, np.log(PROBS).astype("float32"), Y_TRUE, NAMES,
                                         batch_size=4)
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 4]]
    assert report["top1"] == pytest.approx(7 / 9)


def test_evaluate_classifier_scores_every_batch_of_a_dataset_once():
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((3,)), keras.layers.Softmax()])
    x = np.log(PROBS).astype("float32")
    batches = tf.data.Dataset.from_tensor_slices((x, np.asarray(Y_TRUE, "int32"))).batch(4)  # 4 + 4 + 1
    report = metrics.evaluate_classifier(model, batches, None, NAMES)
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 4]]
    assert report["n"] == 9 and report["top1"] == pytest.approx(7 / 9)
    one_hot = batches.map(lambda a, b: (a, tf.one_hot(b, 3)))  # labels of a label-mixing preset
    assert metrics.evaluate_classifier(model, one_hot, None, NAMES)["confusion_matrix"] == report["confusion_matrix"]
    with pytest.raises(ValueError, match="empty"):
        metrics.evaluate_classifier(model, batches.take(0), None, NAMES)


def test_plot_confusion_matrix_writes_png(tmp_path):
    import matplotlib.image

    cm = metrics.classification_report(Y_TRUE, PROBS, NAMES)["confusion_matrix"]
    path = metrics.plot_confusion_matrix(cm, NAMES, tmp_path / "cm.png")
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) >= 300
    assert image.std() > 0.05  # not a blank canvas
    assert os.listdir(tmp_path) == ["cm.png"]  # no temporary file left behind
    with pytest.raises(ValueError, match="2, 2"):
        metrics.plot_confusion_matrix(cm, NAMES[:2], tmp_path / "bad.png")


@pytest.mark.parametrize("y, probs, names, match", [
    (Y_TRUE, PROBS, NAMES[:2], "2 class names for 3"),
    (np.array([0, 3]), PROBS[:2], NAMES, r"in \[0, 2\]"),
    (Y_TRUE[:3], PROBS, NAMES, "matching probs"),
    (Y_TRUE, PROBS[:, 0], NAMES, r"\[N, num_classes\]"),
    (Y_TRUE, PROBS, ["a", "a", "b"], "unique"),
])
def test_bad_inputs_raise_clear_errors(y, probs, names, match):
    with pytest.raises(ValueError, match=match):
        metrics.classification_report(y, probs, names)


def test_bad_k_raises():
    with pytest.raises(ValueError, match=r"k must be in \[1, 3\]"):
        metrics.top_k_accuracy(Y_TRUE, PROBS, 4)
