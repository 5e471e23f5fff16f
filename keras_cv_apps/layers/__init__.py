"""Reusable serializable layers. Importing this package registers them with Keras.

Mobile CNN building blocks: `DepthwiseSeparableConv2D`, `SpatiallySeparableConv2D`,
`BottleneckResidual` (conv_blocks), `InvertedResidual` (MBConv), `GhostModule` (mobile_blocks),
`SqueezeExcitation`, `MultiHeadSelfAttention2D` (attention), `FeaturePyramid` (fpn),
`StochasticDepth`, `DropBlock` (regularization), `DynamicConv2D` (dynamic) and the int8-friendly
`HardSwish` (activations).
"""

from keras_cv_apps.layers.activations import HardSwish
from keras_cv_apps.layers.attention import MultiHeadSelfAttention2D, SqueezeExcitation
from keras_cv_apps.layers.augment_base import KeyedAugmentation, KeyedSeed
from keras_cv_apps.layers.augmentation import RandomAffine, RandomMirror, RandomResizedCrop
from keras_cv_apps.layers.colour import RandomContrast, RandomGamma
from keras_cv_apps.layers.conv_blocks import BottleneckResidual, DepthwiseSeparableConv2D, SpatiallySeparableConv2D
from keras_cv_apps.layers.distance import EuclideanDistance, pairwise_distances
from keras_cv_apps.layers.distort import RandomBlur, RandomElastic, RandomJPEG
from keras_cv_apps.layers.dynamic import DynamicConv2D
from keras_cv_apps.layers.erasing import Cutout, Erasing, GridMask
from keras_cv_apps.layers.fpn import FeaturePyramid
from keras_cv_apps.layers.mixing import LabelMix
from keras_cv_apps.layers.mobile_blocks import GhostModule, InvertedResidual
from keras_cv_apps.layers.noise import ClippedGaussianNoise, SaltAndPepperNoise, SpeckleNoise, denoising_pairs
from keras_cv_apps.layers.normalization import LocalResponseNormalization
from keras_cv_apps.layers.rand_augment import RandAugment
from keras_cv_apps.layers.regularization import DropBlock, StochasticDepth
from keras_cv_apps.layers.sampling import Sampling

__all__ = [
    "BottleneckResidual",
    "ClippedGaussianNoise",
    "Cutout",
    "DepthwiseSeparableConv2D",
    "DropBlock",
    "DynamicConv2D",
    "Erasing",
    "EuclideanDistance",
    "FeaturePyramid",
    "GhostModule",
    "GridMask",
    "HardSwish",
    "InvertedResidual",
    "KeyedAugmentation",
    "KeyedSeed",
    "LabelMix",
    "LocalResponseNormalization",
    "MultiHeadSelfAttention2D",
    "RandAugment",
    "RandomAffine",
    "RandomBlur",
    "RandomContrast",
    "RandomElastic",
    "RandomGamma",
    "RandomJPEG",
    "RandomMirror",
    "RandomResizedCrop",
    "SaltAndPepperNoise",
    "Sampling",
    "SpatiallySeparableConv2D",
    "SpeckleNoise",
    "SqueezeExcitation",
    "StochasticDepth",
    "denoising_pairs",
    "pairwise_distances",
]
