"""Serializable loss classes (no closures). Importing this package registers them with Keras."""

from keras_cv_apps.losses.classification import SparseCategoricalCrossentropyWithSmoothing
from keras_cv_apps.losses.focal import FocalLoss
from keras_cv_apps.losses.metric_learning import ArcFace, ArcFaceLoss, ContrastiveLoss, SupConLoss, TripletLoss

__all__ = [
    "ArcFace",
    "ArcFaceLoss",
    "ContrastiveLoss",
    "FocalLoss",
    "SparseCategoricalCrossentropyWithSmoothing",
    "SupConLoss",
    "TripletLoss",
]
