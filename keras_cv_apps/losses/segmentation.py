"""Losses for masks, boxes and images: soft Dice, Jaccard (IoU) and Tversky for segmentation,
generalised IoU for box regression, and the SSIM loss for image reconstruction.

The mask losses take ``y_true`` as masks of the prediction's shape ``[B, H, W, C]`` (binary
masks with ``C = 1``, one-hot maps for ``C`` classes) and ``y_pred`` as probabilities (or logits
with ``from_logits=True``: a sigmoid for one channel, a softmax over several). The overlap is
counted per image and class over the pixels, ``smooth`` is added to numerator and denominator
(so an empty class predicted empty scores 1, not 0/0), and each image's loss is ``1 -`` the
mean score over its classes::

    Dice    = (2 TP + s) / (2 TP + FP + FN + s)
    Jaccard = (TP + s) / (TP + FP + FN + s)
    Tversky = (TP + s) / (TP + alpha FP + beta FN + s)   (alpha = beta = 0.5: Dice; 1, 1: Jaccard)

with soft counts ``TP = sum(t p)``, ``FP = sum((1 - t) p)``, ``FN = sum(t (1 - p))``.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_cv_apps._validate import check_choice, check_int, check_number
from keras_cv_apps.losses._overlap import BOX_FORMATS, class_counts, iou_and_giou, probabilities, ssim_per_image


class _OverlapLoss(keras.losses.Loss):
    """Base of the soft overlap losses: ``1 - mean over classes of score(TP, FP, FN)``."""

    def __init__(self, *, smooth=1.0, from_logits=False, **kwargs):
        super().__init__(**kwargs)
        self.smooth = check_number(smooth, "smooth", minimum=0)
        self.from_logits = bool(from_logits)

    def score(self, tp, fp, fn):
        raise NotImplementedError

    def call(self, y_true, y_pred):
        y_pred = probabilities(ops.convert_to_tensor(y_pred), self.from_logits)
        tp, fp, fn = class_counts(y_true, y_pred)
        return 1.0 - ops.mean(self.score(tp, fp, fn), axis=-1)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth, "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class DiceLoss(_OverlapLoss):
    """Soft Dice loss ``1 - (2 TP + s) / (2 TP + FP + FN + s)`` (Milletari et al., 2016)."""

    def __init__(self, *, smooth=1.0, from_logits=False, name="dice_loss", **kwargs):
        super().__init__(smooth=smooth, from_logits=from_logits, name=name, **kwargs)

    def score(self, tp, fp, fn):
        return (2.0 * tp + self.smooth) / (2.0 * tp + fp + fn + self.smooth)


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class JaccardLoss(_OverlapLoss):
    """Soft Jaccard (IoU) loss ``1 - (TP + s) / (TP + FP + FN + s)``."""

    def __init__(self, *, smooth=1.0, from_logits=False, name="jaccard_loss", **kwargs):
        super().__init__(smooth=smooth, from_logits=from_logits, name=name, **kwargs)

    def score(self, tp, fp, fn):
        return (tp + self.smooth) / (tp + fp + fn + self.smooth)


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class TverskyLoss(_OverlapLoss):
    """Tversky loss ``1 - (TP + s) / (TP + alpha FP + beta FN + s)`` (Salehi et al., 2017):
    ``beta > alpha`` penalises missed pixels more than false alarms (small structures)."""

    def __init__(self, *, alpha=0.3, beta=0.7, smooth=1.0, from_logits=False, name="tversky_loss", **kwargs):
        super().__init__(smooth=smooth, from_logits=from_logits, name=name, **kwargs)
        self.alpha = check_number(alpha, "alpha", minimum=0)
        self.beta = check_number(beta, "beta", minimum=0)
        if self.alpha == 0 and self.beta == 0:
            raise ValueError("alpha and beta cannot both be 0 (the loss would ignore every error).")

    def score(self, tp, fp, fn):
        return (tp + self.smooth) / (tp + self.alpha * fp + self.beta * fn + self.smooth)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class GIoULoss(keras.losses.Loss):
    """Generalised-IoU loss ``1 - GIoU`` of paired boxes ``[..., 4]`` (Rezatofighi et al., 2019):
    ``GIoU = IoU - (|hull| - |union|) / |hull|`` with ``hull`` the smallest box holding both, so
    disjoint boxes still get a gradient that pulls them together (loss in [0, 2]).

    Args:
        box_format: ``"xyxy"`` (x1, y1, x2, y2), ``"yxyx"`` (TensorFlow's order) or
            ``"center_xywh"`` (centre x, centre y, width, height).
    """

    def __init__(self, *, box_format="xyxy", name="giou_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.box_format = check_choice(box_format, BOX_FORMATS, "box_format")

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        if y_pred.shape[-1] != 4:
            raise ValueError(f"GIoULoss needs boxes with 4 coordinates in the last axis, got shape {y_pred.shape}.")
        return 1.0 - iou_and_giou(ops.cast(y_true, y_pred.dtype), y_pred, self.box_format)[1]

    def get_config(self):
        return {**super().get_config(), "box_format": self.box_format}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class SSIMLoss(keras.losses.Loss):
    """``1 - SSIM`` of each image pair ``[B, H, W, C]`` in [0, ``max_val``] (Gaussian window of
    side ``filter_size``, or the image side when smaller, and ``sigma``; the constants of Wang et
    al., 2004, as ``tf.image.ssim`` uses them)."""

    def __init__(self, *, max_val=1.0, filter_size=11, sigma=1.5, name="ssim_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.max_val = check_number(max_val, "max_val", minimum=0, min_inclusive=False)
        self.filter_size = check_int(filter_size, "filter_size", minimum=1)
        self.sigma = check_number(sigma, "sigma", minimum=0, min_inclusive=False)

    def call(self, y_true, y_pred):
        return 1.0 - ssim_per_image(y_true, y_pred, max_val=self.max_val, filter_size=self.filter_size,
                                    sigma=self.sigma)

    def get_config(self):
        return {**super().get_config(), "max_val": self.max_val, "filter_size": self.filter_size,
                "sigma": self.sigma}
