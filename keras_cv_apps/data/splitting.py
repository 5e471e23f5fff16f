"""Where a dataset's images go: the seeded, stratified train/val/test split, and the image size
argument every loader takes. The one place both live, so the in-memory pipelines, the TFRecord
shard writer and the corrupted test sets split the same way."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np


def image_size(image_size):
    """``image_size`` as ``(height, width)`` (an int means a square), or None; anything else raises."""
    if image_size is None:
        return None
    size = (image_size,) * 2 if isinstance(image_size, (int, np.integer)) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in size):
        raise ValueError(f"image_size must be a positive int, (height, width) or None; "
                         f"got {image_size!r}.")
    return tuple(int(v) for v in size)


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
