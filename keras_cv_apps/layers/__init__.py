"""Reusable serializable layers. Importing this package registers them with Keras.

Mobile CNN building blocks: `DepthwiseSeparableConv2D`, `SpatiallySeparableConv2D`,
`BottleneckResidual` (conv_blocks), `InvertedResidual` (MBConv), `GhostModule` (mobile_blocks),
`SqueezeExcitation`, `MultiHeadSelfAttention2D` (attention), `FeaturePyramid` (fpn),
`StochasticDepth`, `DropBlock` (regularization), `DynamicConv2D` (dynamic) and the int8-friendly
`HardSwish` (activations).
"""

from keras_cv_apps.layers.activations import HardSwish
from keras_cv_apps.layers.attention import MultiHeadSelfAttention2D, SqueezeExcitation
from keras_cv_apps.layers.augmentation import RandomAffine
from keras_cv_apps.layers.conv_blocks import BottleneckResidual, DepthwiseSeparableConv2D, SpatiallySeparableConv2D
from keras_cv_apps.layers.distance import EuclideanDistance, pairwise_distances
from keras_cv_apps.layers.dynamic import DynamicConv2D
from keras_cv_apps.layers.fpn import FeaturePyramid
from keras_cv_apps.layers.mobile_blocks import GhostModule, InvertedResidual
from keras_cv_apps.layers.noise import ClippedGaussianNoise, SaltAndPepperNoise, denoising_pairs
from keras_cv_apps.layers.normalization import LocalResponseNormalization
from keras_cv_apps.layers.regularization import DropBlock, StochasticDepth
from keras_cv_apps.layers.sampling import Sampling

__all__ = [
    "BottleneckResidual",
    "ClippedGaussianNoise",
    "DepthwiseSeparableConv2D",
    "DropBlock",
    "DynamicConv2D",
    "EuclideanDistance",
    "FeaturePyramid",
    "GhostModule",
    "HardSwish",
    "InvertedResidual",
    "LocalResponseNormalization",
    "MultiHeadSelfAttention2D",
    "RandomAffine",
    "SaltAndPepperNoise",
    "Sampling",
    "SpatiallySeparableConv2D",
    "SqueezeExcitation",
    "StochasticDepth",
    "denoising_pairs",
    "pairwise_distances",
]
