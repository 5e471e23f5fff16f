"""Backend-neutral pieces shared by the overlap losses and the dense-prediction metrics: soft
per-class overlap counts of masks, box IoU / GIoU, and the SSIM map of an image pair."""

from __future__ import annotations

import numpy as np
from keras import ops

BOX_FORMATS = ("xyxy", "yxyx", "center_xywh")


def class_counts(y_true, y_pred):
    """Soft true positives, false positives and false negatives of each (image, class):
    masks ``[B, ..., C]`` summed over every axis but the first and the last, giving ``[B, C]``."""
    y_true = ops.cast(y_true, y_pred.dtype)
    axes = tuple(range(1, len(y_pred.shape) - 1)) or None
    reduce = (lambda t: t) if axes is None else (lambda t: ops.sum(t, axis=axes))
    tp = reduce(y_true * y_pred)
    fp = reduce((1.0 - y_true) * y_pred)
    fn = reduce(y_true * (1.0 - y_pred))
    return tp, fp, fn


def probabilities(y_pred, from_logits: bool):
    """Logits as probabilities: a sigmoid for one channel, a softmax over several."""
    if not from_logits:
        return y_pred
    return ops.sigmoid(y_pred) if y_pred.shape[-1] == 1 else ops.softmax(y_pred, axis=-1)


def corners(boxes, box_format: str):
    """``(x1, y1, x2, y2)`` of boxes in one of `BOX_FORMATS` (last axis of length 4)."""
    a, b, c, d = (boxes[..., i] for i in range(4))
    if box_format == "xyxy":
        return a, b, c, d
    if box_format == "yxyx":
        return b, a, d, c
    return a - c / 2.0, b - d / 2.0, a + c / 2.0, b + d / 2.0  # center_xywh


def iou_and_giou(boxes_true, boxes_pred, box_format: str, eps: float = 1e-7):
    """IoU and generalised IoU (Rezatofighi et al., 2019) of paired boxes, each ``[..., 4]``."""
    tx1, ty1, tx2, ty2 = corners(boxes_true, box_format)
    px1, py1, px2, py2 = corners(boxes_pred, box_format)
    area_t = ops.maximum(tx2 - tx1, 0.0) * ops.maximum(ty2 - ty1, 0.0)
    area_p = ops.maximum(px2 - px1, 0.0) * ops.maximum(py2 - py1, 0.0)
    inter = (ops.maximum(ops.minimum(tx2, px2) - ops.maximum(tx1, px1), 0.0)
             * ops.maximum(ops.minimum(ty2, py2) - ops.maximum(ty1, py1), 0.0))
    union = area_t + area_p - inter
    iou = inter / (union + eps)
    hull = ((ops.maximum(tx2, px2) - ops.minimum(tx1, px1)) * (ops.maximum(ty2, py2) - ops.minimum(ty1, py1)))
    return iou, iou - (hull - union) / (hull + eps)


def gaussian_window(size: int, sigma: float, channels: int) -> np.ndarray:
    """Normalised ``size x size`` Gaussian as a depthwise kernel ``[size, size, channels, 1]``."""
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(coords ** 2) / (2.0 * sigma ** 2))
    window = np.outer(g, g) / np.sum(g) ** 2
    return np.tile(window[:, :, None, None], (1, 1, channels, 1)).astype("float32")


def ssim_per_image(x, y, *, max_val: float, filter_size: int = 11, sigma: float = 1.5, k1: float = 0.01,
                   k2: float = 0.03):
    """Mean SSIM (Wang et al., 2004) of each image pair ``[B, H, W, C]``: Gaussian-weighted local
    statistics over 'valid' windows (of side ``min(filter_size, H, W)``), averaged over positions
    and channels."""
    y = ops.convert_to_tensor(y)
    x = ops.cast(x, y.dtype)
    size = min(filter_size, x.shape[1] or filter_size, x.shape[2] or filter_size)
    kernel = ops.cast(gaussian_window(size, sigma, x.shape[-1]), x.dtype)

    def blur(t):
        return ops.depthwise_conv(t, kernel, strides=1, padding="valid")

    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    luminance = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    structure = (2.0 * cov + c2) / (var_x + var_y + c2)
    return ops.mean(luminance * structure, axis=(1, 2, 3))
