"""Classification metrics in plain NumPy: top-k accuracy, per-class precision / recall / F1,
macro-F1 and the confusion matrix, gathered into one JSON-ready report, plus its figure.

Conventions: ``y_true`` holds integer class indices ``[N]``; ``probs`` holds one score row per
sample ``[N, C]`` (probabilities or logits: only their order matters). The predicted class is
the first highest score (``argmax``); top-k ties are broken the same way, by class index.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike

from keras_cv_apps._figures import new_figure, save_figure

if TYPE_CHECKING:
    import keras

PathLike = Union[str, os.PathLike]

__all__ = [
    "classification_report",
    "confusion_matrix",
    "evaluate_classifier",
    "plot_confusion_matrix",
    "top_k_accuracy",
]


def _check_inputs(y_true, probs, class_names=None):
    """Validated ``(y_true int64 [N], probs float [N, C])``, or one clear ValueError."""
    y_true = np.asarray(y_true)
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] < 1:
        raise ValueError(f"probs must be a [N, num_classes] array; got shape {probs.shape}.")
    y_true = y_true.reshape(-1) if y_true.ndim == 2 and y_true.shape[1] == 1 else y_true
    if y_true.ndim != 1 or len(y_true) != len(probs) or len(y_true) == 0:
        raise ValueError(f"y_true must be N >= 1 integer labels matching probs {probs.shape}; "
                         f"got shape {y_true.shape}.")
    num_classes = probs.shape[1]
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"Got {len(class_names)} class names for {num_classes} score columns.")
    if class_names is not None and len(set(class_names)) != len(class_names):
        raise ValueError("class_names must be unique.")
    if not np.issubdtype(y_true.dtype, np.integer) or y_true.min() < 0 \
            or y_true.max() >= num_classes:
        raise ValueError(f"y_true must hold integer labels in [0, {num_classes - 1}]; got "
                         f"dtype {y_true.dtype}, range [{y_true.min()}, {y_true.max()}].")
    return y_true.astype(np.int64), probs


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """``[C, C]`` int64 counts: row = true class, column = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def top_k_accuracy(y_true: ArrayLike, probs: ArrayLike, k: int) -> float:
    """Fraction of samples whose true class is among the ``k`` highest scores."""
    y_true, probs = _check_inputs(y_true, probs)
    if not 1 <= int(k) <= probs.shape[1]:
        raise ValueError(f"k must be in [1, {probs.shape[1]}] (the number of classes); got {k}.")
    top = np.argsort(-probs, axis=1, kind="stable")[:, : int(k)]
    return float(np.mean(np.any(top == y_true[:, None], axis=1)))


def classification_report(y_true: ArrayLike, probs: ArrayLike, class_names: Sequence[str]) -> dict:
    """All classification numbers of one evaluation as a JSON-ready dict.

    Keys: ``n``, ``num_classes``, ``class_names``, ``top1``; ``top5`` with ``top5_k`` = the k
    used (5, or the number of classes when fewer); ``per_class`` = ``{name: {precision, recall,
    f1, support}}`` (0 where undefined); ``macro_precision`` / ``macro_recall`` / ``macro_f1``
    (unweighted means over the classes that occur in ``y_true`` or in the predictions, as
    scikit-learn does); ``confusion_matrix`` (nested lists, rows = true class).
    """
    y_true, probs = _check_inputs(y_true, probs, class_names)
    num_classes = probs.shape[1]
    y_pred = np.argmax(probs, axis=1)
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0,
                      2 * precision * recall / (precision + recall), 0.0)
    seen = (support > 0) | (predicted > 0)
    k = min(5, num_classes)
    return {
        "n": int(len(y_true)),
        "num_classes": int(num_classes),
        "class_names": [str(c) for c in class_names],
        "top1": float(np.mean(y_pred == y_true)),
        "top5": top_k_accuracy(y_true, probs, k),
        "top5_k": k,
        "macro_precision": float(precision[seen].mean()),
        "macro_recall": float(recall[seen].mean()),
        "macro_f1": float(f1[seen].mean()),
        "per_class": {
            str(name): {"precision": float(precision[i]), "recall": float(recall[i]),
                        "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": cm.tolist(),
    }


def plot_confusion_matrix(cm: ArrayLike, class_names: Sequence[str], path: PathLike, *,
                          title: str = "Confusion matrix") -> str:
    """Save the confusion matrix as a PNG at ``path`` and return ``path``.

    Each cell is annotated with its count; its colour is the row-normalised fraction (the
    share of that true class), so rare classes stay readable.
    """

    cm = np.asarray(cm)
    n = len(class_names)
    if cm.shape != (n, n):
        raise ValueError(f"cm must be [{n}, {n}] for {n} class names; got shape {cm.shape}.")
    rows = cm.sum(axis=1, keepdims=True)
    fractions = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    size = max(4.0, 0.4 * n + 2.0)
    fig = new_figure((size, size))
    ax = fig.subplots()
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of the true class")
    fontsize = max(4.0, min(10.0, 220.0 / max(n, 1)))
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=fontsize,
                    color="white" if fractions[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), [str(c) for c in class_names], rotation=45, ha="right",
                  fontsize=fontsize)
    ax.set_yticks(range(n), [str(c) for c in class_names], fontsize=fontsize)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return save_figure(fig, path, dpi=100)


def evaluate_classifier(model: keras.Model, x, y: Optional[ArrayLike], class_names: Sequence[str],
                        batch_size: int = 256) -> dict:
    """Predict ``x`` with ``model`` and return `classification_report` of the scores.

    ``x`` is an array of inputs with labels ``y``, or a dataset of ``(inputs, labels)`` batches
    with ``y`` None (such as ``Splits.dataset("test")``, which streams a folder's files: every
    image of the split is scored in one pass, none held in memory but the scores)."""
    if y is None:
        return _evaluate_batches(model, x, class_names)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length; got {len(x)} and {len(y)}.")
    probs = model.predict(x, batch_size=batch_size, verbose=0)
    if isinstance(probs, (list, tuple, dict)):
        raise ValueError("evaluate_classifier needs a model with a single [N, C] output.")
    return classification_report(y, probs, class_names)


def _evaluate_batches(model, batches, class_names) -> dict:
    """`evaluate_classifier` over an iterable of ``(inputs, integer or one-hot labels)`` batches, in
    one pass. Each batch is a direct call of the model (in inference mode): no ``predict`` function
    is traced for shapes that the model's later ``predict`` calls would trace again."""
    import keras

    scores, labels = [], []
    for batch in batches:
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise ValueError("evaluate_classifier without y needs batches of (inputs, labels).")
        probs = model(batch[0], training=False)
        if isinstance(probs, (list, tuple, dict)):
            raise ValueError("evaluate_classifier needs a model with a single [N, C] output.")
        scores.append(keras.ops.convert_to_numpy(probs))
        labels.append(np.asarray(batch[1]))
    if not scores:
        raise ValueError("evaluate_classifier got an empty dataset.")
    labels = np.concatenate(labels)
    if labels.ndim == 2:  # one-hot rows (a preset that mixes labels): the class is the largest entry
        labels = labels.argmax(axis=1)
    return classification_report(labels, np.concatenate(scores), class_names)
