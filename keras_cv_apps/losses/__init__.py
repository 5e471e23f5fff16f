"""Serializable loss classes (no closures). Importing this package registers them with Keras."""

from keras_cv_apps.losses.classification import SparseCategoricalCrossentropyWithSmoothing
from keras_cv_apps.losses.focal import FocalLoss

__all__ = ["FocalLoss", "SparseCategoricalCrossentropyWithSmoothing"]
