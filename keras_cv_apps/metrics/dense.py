"""Keras metric classes for dense predictions, to pass to ``model.compile(metrics=[...])``:
mean IoU and Dice of masks (accumulated over the whole evaluation, then averaged over classes),
and the per-image mean PSNR and SSIM of reconstructions.

Masks follow the loss convention of `keras_cv_apps.losses.segmentation`: ``y_true`` of the
prediction's shape ``[B, H, W, C]``, ``y_pred`` probabilities. Predictions are made hard first:
``threshold`` per channel (binary or multi-label masks), or ``"argmax"`` over the channels (one
class per pixel: the mean IoU then equals ``keras.metrics.MeanIoU`` on the class indices).
"""

from __future__ import annotations

import keras
from keras import ops

from keras_cv_apps._validate import check_int, check_number
from keras_cv_apps.losses._overlap import class_counts, ssim_per_image


class _MaskOverlap(keras.metrics.Metric):
    """Running TP / FP / FN per class over every pixel seen; ``result`` is the class mean of
    `score` (classes that never occur in targets or predictions are left out)."""

    def __init__(self, *, num_classes=1, threshold=0.5, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = check_int(num_classes, "num_classes", minimum=1)
        if threshold != "argmax":
            threshold = check_number(threshold, "threshold (a probability or 'argmax')", minimum=0, maximum=1)
        self.threshold = threshold
        self.counts = self.add_variable(shape=(3, self.num_classes), initializer="zeros", name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred)
        if y_pred.shape[-1] != self.num_classes:
            raise ValueError(f"{type(self).__name__} was built for num_classes={self.num_classes}, "
                             f"got predictions with {y_pred.shape[-1]} channels.")
        if self.threshold == "argmax":
            hard = ops.one_hot(ops.argmax(y_pred, axis=-1), self.num_classes, dtype=self.dtype)
        else:
            hard = ops.cast(y_pred > self.threshold, self.dtype)
        flat = ops.reshape(hard, (1, -1, self.num_classes))
        truth = ops.reshape(ops.cast(y_true, self.dtype), (1, -1, self.num_classes))
        tp, fp, fn = class_counts(truth, flat)
        self.counts.assign_add(ops.concatenate([tp, fp, fn], axis=0))

    def result(self):
        tp, fp, fn = self.counts[0], self.counts[1], self.counts[2]
        present = ops.cast(tp + fp + fn > 0, self.dtype)
        scores = self.score(tp, fp, fn) * present
        return ops.sum(scores) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self):
        self.counts.assign(ops.zeros_like(self.counts))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "threshold": self.threshold}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class MaskMeanIoU(_MaskOverlap):
    """Mean over classes of ``TP / (TP + FP + FN)`` on hard masks."""

    def __init__(self, *, num_classes=1, threshold=0.5, name="mean_iou", dtype=None):
        super().__init__(num_classes=num_classes, threshold=threshold, name=name, dtype=dtype)

    def score(self, tp, fp, fn):
        return tp / ops.maximum(tp + fp + fn, 1.0)


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class DiceScore(_MaskOverlap):
    """Mean over classes of ``2 TP / (2 TP + FP + FN)`` on hard masks."""

    def __init__(self, *, num_classes=1, threshold=0.5, name="dice", dtype=None):
        super().__init__(num_classes=num_classes, threshold=threshold, name=name, dtype=dtype)

    def score(self, tp, fp, fn):
        return 2.0 * tp / ops.maximum(2.0 * tp + fp + fn, 1.0)


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class PSNR(keras.metrics.Mean):
    """Mean over images of ``10 log10(max_val^2 / MSE)`` in dB (identical images count 100 dB)."""

    def __init__(self, *, max_val=1.0, name="psnr", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.max_val = check_number(max_val, "max_val", minimum=0, min_inclusive=False)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        axes = tuple(range(1, len(y_pred.shape)))
        mse = ops.maximum(ops.mean(ops.square(y_true - y_pred), axis=axes), self.max_val ** 2 * 1e-10)
        psnr = 10.0 * ops.log(self.max_val ** 2 / mse) / ops.log(10.0)
        return super().update_state(psnr, sample_weight=sample_weight)

    def get_config(self):
        return {**super().get_config(), "max_val": self.max_val}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class SSIM(keras.metrics.Mean):
    """Mean over images of their SSIM (see `keras_cv_apps.losses.SSIMLoss` for the window)."""

    def __init__(self, *, max_val=1.0, filter_size=11, sigma=1.5, name="ssim", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.max_val = check_number(max_val, "max_val", minimum=0, min_inclusive=False)
        self.filter_size = check_int(filter_size, "filter_size", minimum=1)
        self.sigma = check_number(sigma, "sigma", minimum=0, min_inclusive=False)

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = ssim_per_image(y_true, y_pred, max_val=self.max_val, filter_size=self.filter_size, sigma=self.sigma)
        return super().update_state(values, sample_weight=sample_weight)

    def get_config(self):
        return {**super().get_config(), "max_val": self.max_val, "filter_size": self.filter_size,
                "sigma": self.sigma}
