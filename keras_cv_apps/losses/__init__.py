"""Serializable loss classes (no closures). Importing this package registers them with Keras."""

from keras_cv_apps.losses.classification import SparseCategoricalCrossentropyWithSmoothing
from keras_cv_apps.losses.focal import FocalLoss
from keras_cv_apps.losses.metric_learning import ArcFace, ArcFaceLoss, ContrastiveLoss, SupConLoss, TripletLoss
from keras_cv_apps.losses.segmentation import DiceLoss, GIoULoss, JaccardLoss, SSIMLoss, TverskyLoss

__all__ = [
    "ArcFace",
    "ArcFaceLoss",
    "ContrastiveLoss",
    "DiceLoss",
    "FocalLoss",
    "GIoULoss",
    "JaccardLoss",
    "SSIMLoss",
    "SparseCategoricalCrossentropyWithSmoothing",
    "SupConLoss",
    "TripletLoss",
    "TverskyLoss",
]
