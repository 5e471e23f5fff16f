"""Evaluation metrics: classification (top-k, per-class P/R/F1, confusion matrix),
verification and retrieval for embeddings, open-set identification (DIR at a false-accept
rate, rejection of unknown queries, open-set ROC) and reconstruction quality (NumPy functions);
and Keras metric classes for dense predictions (``MaskMeanIoU``, ``DiceScore``, ``PSNR``,
``SSIM``, loaded with Keras on first use)."""

from keras_cv_apps.metrics import open_set  # noqa: F401
from keras_cv_apps.metrics.classification import *  # noqa: F401,F403
from keras_cv_apps.metrics.open_set import (  # noqa: F401
    dir_at_far,
    identification_rate,
    open_set_roc,
    rejection_rate,
    threshold_at_far,
)
from keras_cv_apps.metrics.reconstruction import *  # noqa: F401,F403
from keras_cv_apps.metrics.verification import *  # noqa: F401,F403

_KERAS_METRICS = ("DiceScore", "MaskMeanIoU", "PSNR", "SSIM")


def __getattr__(name):
    if name in _KERAS_METRICS:
        from keras_cv_apps.metrics import dense

        return getattr(dense, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
