"""Evaluation metrics: classification (top-k, per-class P/R/F1, confusion matrix),
verification and retrieval for embeddings, and reconstruction quality."""

from keras_cv_apps.metrics.classification import *  # noqa: F401,F403
from keras_cv_apps.metrics.reconstruction import *  # noqa: F401,F403
from keras_cv_apps.metrics.verification import *  # noqa: F401,F403
