"""Reusable serializable layers. Importing this package registers them with Keras."""

from keras_cv_apps.layers.augmentation import RandomAffine
from keras_cv_apps.layers.distance import EuclideanDistance, pairwise_distances
from keras_cv_apps.layers.noise import ClippedGaussianNoise, SaltAndPepperNoise, denoising_pairs
from keras_cv_apps.layers.normalization import LocalResponseNormalization
from keras_cv_apps.layers.sampling import Sampling

__all__ = [
    "ClippedGaussianNoise",
    "EuclideanDistance",
    "LocalResponseNormalization",
    "RandomAffine",
    "SaltAndPepperNoise",
    "Sampling",
    "denoising_pairs",
    "pairwise_distances",
]
