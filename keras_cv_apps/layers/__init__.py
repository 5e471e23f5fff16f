"""Reusable serializable layers. Importing this package registers them with Keras."""

from keras_cv_apps.layers.normalization import LocalResponseNormalization

__all__ = ["LocalResponseNormalization"]
