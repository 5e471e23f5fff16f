"""Reusable serializable layers. Importing this package registers them with Keras."""

from keras_cv_apps.layers.augment_base import KeyedAugmentation, KeyedSeed
from keras_cv_apps.layers.augmentation import RandomAffine, RandomMirror, RandomResizedCrop
from keras_cv_apps.layers.colour import RandomGamma
from keras_cv_apps.layers.distance import EuclideanDistance, pairwise_distances
from keras_cv_apps.layers.distort import RandomBlur, RandomElastic, RandomJPEG
from keras_cv_apps.layers.erasing import Cutout, Erasing, GridMask
from keras_cv_apps.layers.mixing import LabelMix
from keras_cv_apps.layers.noise import ClippedGaussianNoise, SaltAndPepperNoise, SpeckleNoise, denoising_pairs
from keras_cv_apps.layers.normalization import LocalResponseNormalization
from keras_cv_apps.layers.rand_augment import RandAugment
from keras_cv_apps.layers.sampling import Sampling

__all__ = [
    "ClippedGaussianNoise",
    "Cutout",
    "Erasing",
    "EuclideanDistance",
    "GridMask",
    "KeyedAugmentation",
    "KeyedSeed",
    "LabelMix",
    "LocalResponseNormalization",
    "RandAugment",
    "RandomAffine",
    "RandomBlur",
    "RandomElastic",
    "RandomGamma",
    "RandomJPEG",
    "RandomMirror",
    "RandomResizedCrop",
    "SaltAndPepperNoise",
    "Sampling",
    "SpeckleNoise",
    "denoising_pairs",
    "pairwise_distances",
]
