"""Augmentation presets for the training pipeline, and the `Augmenter` that applies them.

An augmenter is applied by `data.load` inside the train ``tf.data`` map, on float32 batches
``[B, H, W, C]`` with pixel values in **[0, 255], before scaling** (so value-range layers such as
RandomContrast/RandomBrightness use their default ``(0, 255)`` range), and its output is clipped
back to [0, 255]. Augmentation never goes inside a model: random ops do not export to TFLite/ONNX.

Eight families, one layer (or more) each, Keras core where it fits and the package's layers
(`keras_cv_apps.layers`) where core has none or is slow or not reproducible:

==========  ===========================================================================
geometric   core RandomFlip; RandomAffine (one warp), RandomMirror, RandAugment
colour      core RandomContrast / RandomBrightness; RandomContrast, RandomGamma, RandAugment's ops
noise       ClippedGaussianNoise, SaltAndPepperNoise, SpeckleNoise, RandomBlur, RandomJPEG
erasing     Erasing (area and aspect ranges), core RandomErasing
elastic     RandomElastic
cutout      Cutout (several holes), GridMask
mixup       LabelMix (core MixUp and CutMix, per image, soft labels)
cropping    RandomResizedCrop
==========  ===========================================================================

A preset is a list of *factories* ``seed -> layer`` in `PRESETS`; adding one is one entry::

    from keras_cv_apps.data import augment
    augment.register_preset("digits_strong", [
        lambda seed: layers.RandomAffine(rotation=15, translation=0.15, seed=seed),
        lambda seed: layers.RandomElastic(displacement=0.02, seed=seed),
    ])

*Reproducible epochs.* Called with a ``key`` (the train pipeline passes one per batch, derived
from the seed and the epoch), every layer takes its randomness from that key: the package's
layers directly, Keras core layers through `KeyedSeed`. A seeded epoch is then bit-identical
between runs, whatever the parallelism of the ``map``. Core layers that ignore the seed they are
given (RandAugment, AugMix, RandomColorJitter) are refused.
"""

from __future__ import annotations

import logging
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import keras
import tensorflow as tf

from keras_cv_apps.layers import (
    ClippedGaussianNoise,
    Erasing,
    LabelMix,
    RandAugment,
    RandomAffine,
    RandomContrast,
    RandomMirror,
    SaltAndPepperNoise,
)
from keras_cv_apps.layers.augment_base import KeyedAugmentation, KeyedSeed, split_key

logger = logging.getLogger(__name__)

LayerFactory = Callable[[int], keras.layers.Layer]

# name -> layer factories (seed -> layer), applied in order. Add a preset with `register_preset`.
PRESETS: Dict[str, List[LayerFactory]] = {
    "none": [],
    # digits / handwriting: rotation 10 deg, shift 10%, zoom 10%, black borders; no flips
    # (a mirrored 2 is not a 2)
    "light": [lambda s: RandomAffine(rotation=10, translation=0.1, zoom=0.1, seed=s)],
    # the LeNet-5 digits recipe: rotation up to ~14 deg (0.04 of a turn), shift 10%, zoom 10%
    "digits": [lambda s: RandomAffine(rotation=14.4, translation=0.1, zoom=0.1, seed=s)],
    # photos: mirror, affine jitter with reflected borders, contrast and brightness (the package's mirror
    # and contrast: core RandomFlip and RandomContrast each cost about 1 ms of CPU per 224 px image in the
    # train map, RandomMirror 0.2 and RandomContrast 0.15)
    "standard": [
        lambda s: RandomMirror("horizontal", probability=0.5, seed=s),
        lambda s: RandomAffine(rotation=15, translation=0.1, zoom=0.15, fill_mode="reflect", seed=s),
        lambda s: RandomContrast(contrast=(0.8, 1.2), seed=s),
        lambda s: keras.layers.RandomBrightness(0.15, seed=s),
    ],
    # light + sensor-style noise and one erased patch (cutout) per image
    "noisy": [
        lambda s: RandomAffine(rotation=10, translation=0.1, zoom=0.1, seed=s),
        lambda s: ClippedGaussianNoise(stddev=8.0, minval=0.0, maxval=255.0, seed=s),
        lambda s: SaltAndPepperNoise(rate=0.02, low=0.0, high=255.0, seed=s),
        lambda s: keras.layers.RandomErasing(factor=0.5, scale=(0.02, 0.1), fill_value=0.0, seed=s),
    ],
    # RandAugment-style: the digits affine jitter, RandAugment (2 ops at magnitude 0.7) on half the images,
    # contrast down to 10%, Gaussian noise on a quarter, random erasing on a quarter, MixUp/CutMix on a tenth;
    # the last quarter of the epochs cools down with `light` (COOLDOWNS)
    "strong": [
        lambda s: RandomAffine(rotation=14.4, translation=0.1, zoom=0.1, seed=s),
        lambda s: RandAugment(num_ops=2, magnitude=0.7, probability=0.5, seed=s),
        lambda s: keras.layers.RandomContrast(0.9, seed=s),
        lambda s: ClippedGaussianNoise(stddev=40.0, minval=0.0, maxval=255.0, probability=0.25, seed=s),
        lambda s: Erasing(area=(0.02, 0.2), probability=0.25, seed=s),
        lambda s: LabelMix(mixup_alpha=0.2, cutmix_alpha=1.0, probability=0.1, seed=s),
    ],
}

# preset -> (fraction of the epochs, preset): a cool-down, the last epochs of a run trained with the lighter
# preset instead (`training.fit` honours it for `data.Splits` pipelines; a run's config.json records it; the
# transfer apps' step-based fine-tuning keeps the main preset throughout). Set with `register_preset`.
# `strong` cools down for its last quarter: LeNet-5 on digits keeps its corruption accuracy and loses less
# clean accuracy (benchmarks/bench_robustness.py).
COOLDOWNS: Dict[str, Tuple[float, str]] = {"strong": (0.25, "light")}

# Core layers whose get_random_transformation draws from their own generator, whatever seed it is given.
_UNKEYED = tuple(getattr(keras.layers, name) for name in ("RandAugment", "AugMix", "RandomColorJitter")
                 if hasattr(keras.layers, name))


def register_preset(name: str, factories: Sequence[LayerFactory], *, cooldown: Optional[Tuple[float, str]] = None
                    ) -> None:
    """Add preset ``name`` made of ``factories`` (each ``seed -> keras layer``); ``cooldown =
    (fraction, preset)`` trains the last ``round(fraction * epochs)`` epochs with ``preset``."""
    if name in PRESETS:
        raise ValueError(f"Augmentation preset {name!r} already exists.")
    if cooldown is not None:
        fraction, other = cooldown
        check_preset(other)
        if not 0.0 < float(fraction) < 1.0 or other in COOLDOWNS or mixes_labels(other):
            raise ValueError(f"A cool-down is (fraction in (0, 1), a preset without a cool-down that mixes no "
                             f"labels); got {cooldown!r}.")
        COOLDOWNS[name] = (float(fraction), other)
    PRESETS[name] = list(factories)


def cooldown_of(preset) -> Optional[dict]:
    """``{"fraction": f, "preset": name}`` when ``preset`` ends its runs with a cool-down, else None
    (as a run's ``config.json`` records it)."""
    if not isinstance(preset, str) or preset not in COOLDOWNS:
        return None
    fraction, other = COOLDOWNS[preset]
    return {"fraction": fraction, "preset": other}


def check_preset(preset, *, labels: bool = True) -> None:
    """Raise ``ValueError`` naming the valid presets if ``preset`` is an unknown name, or when
    ``labels`` is False (images without class labels) and the preset mixes labels."""
    if isinstance(preset, str) and preset not in PRESETS:
        raise ValueError(f"Unknown augmentation preset {preset!r}; use one of "
                         f"{', '.join(sorted(PRESETS))} or a list of Keras layers.")
    if not labels and mixes_labels(preset):
        plain = ", ".join(name for name in PRESETS if not mixes_labels(name))
        raise ValueError(f"Augmentation {preset!r} mixes labels (MixUp/CutMix), which needs class labels and a "
                         f"classifier loss; use one of {plain}.")


def _is_mixer(layer) -> bool:
    return bool(getattr(layer, "mixes_labels", False)) or isinstance(layer, (keras.layers.MixUp, keras.layers.CutMix))


def mixes_labels(preset_or_layers) -> bool:
    """Whether a preset name (or a list of layers) holds a label-mixing layer (MixUp/CutMix)."""
    if isinstance(preset_or_layers, str):
        return preset_or_layers in PRESETS and any(_is_mixer(f(0)) for f in PRESETS[preset_or_layers])
    return any(_is_mixer(layer) for layer in preset_or_layers or [])


def _core(layer) -> bool:
    from keras.src.layers.preprocessing.image_preprocessing.base_image_preprocessing_layer import (
        BaseImagePreprocessingLayer,
    )

    return isinstance(layer, BaseImagePreprocessingLayer)


class Augmenter:
    """Applies ``layers`` in order with ``training=True`` to a float batch in [0, 255] and
    clips the result to [0, 255]. Callable on ``tf.Tensor`` batches inside ``tf.data.map``;
    with ``key`` (int32 ``[2]``) the result depends on the key alone. Label-mixing layers are
    left to `mix`, which the pipeline calls with one-hot labels."""

    cooldown = None  # (fraction of the epochs, Augmenter or None): the last epochs' augmentation

    def __init__(self, layers: Sequence[keras.layers.Layer]):
        self.layers = list(layers)
        unkeyed = [type(layer).__name__ for layer in self.layers if isinstance(layer, _UNKEYED)]
        if unkeyed:
            raise ValueError(f"keras.layers.{unkeyed[0]} draws from its own generator even when given a seed, so "
                             "augmented epochs could not be reproduced; use keras_cv_apps.layers.RandAugment or "
                             "the layers it combines.")
        self.image_layers = [layer for layer in self.layers if not _is_mixer(layer)]
        self.mixers = [layer for layer in self.layers if _is_mixer(layer)]

    @property
    def mixes_labels(self) -> bool:
        return bool(self.mixers)

    def __call__(self, images, key=None):
        dtype = tf.as_dtype(images.dtype)  # numpy arrays are taken too
        keys = split_key(key, len(self.image_layers)) if key is not None and self.image_layers else None
        for i, layer in enumerate(self.image_layers):
            k = None if keys is None else keys[i]
            if isinstance(layer, KeyedAugmentation):
                images = layer(images, training=True, key=k)
            elif k is not None and _core(layer):  # core layers compute in float
                images = tf.cast(images, tf.float32)
                change = layer.get_random_transformation(images, training=True, seed=KeyedSeed(k))
                images = layer.transform_images(images, change, training=True)
            else:
                images = layer(tf.cast(images, tf.float32) if _core(layer) else images, training=True)
        images = tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 255.0)
        return tf.cast(tf.round(images) if dtype.is_integer else images, dtype)

    def mix(self, images, labels, key=None):
        """``(images, labels)`` after the label-mixing layers; ``labels`` one-hot or soft floats."""
        keys = split_key(key, len(self.mixers)) if key is not None and self.mixers else None
        for i, layer in enumerate(self.mixers):
            k = None if keys is None else keys[i]
            data = {"images": images, "labels": labels}
            if isinstance(layer, LabelMix):
                data = layer(data, training=True, key=k)
            elif k is None:
                data = layer(data, training=True)
            else:  # a core MixUp / CutMix
                change = layer.get_random_transformation(data, training=True, seed=KeyedSeed(k))
                data = {"images": layer.transform_images(images, change),
                        "labels": layer.transform_labels(labels, change)}
            images, labels = tf.cast(data["images"], images.dtype), tf.cast(data["labels"], labels.dtype)
        return images, labels

    def __repr__(self):
        return f"Augmenter({[type(layer).__name__ for layer in self.layers]})"


def batch_keys(key):
    """The image key and the label-mixing key of a batch, from its ``tf.data.Dataset.random`` int64
    value (how `data.load` and `transfer.feed` key their batches)."""
    return split_key(tf.bitcast(key, tf.int32), 2)


def build_augmenter(preset_or_layers: Union[str, Sequence] = "none", seed: int = 0):
    """An `Augmenter` for a preset name or a list of layers, or None for ``"none"``/empty.

    Each layer of a preset gets its own seed (``seed``, ``seed + 1``, ...) so their random
    draws are independent. Layers passed directly are used as they are.
    """
    check_preset(preset_or_layers)
    if isinstance(preset_or_layers, str):
        layers = [factory(seed + i) for i, factory in enumerate(PRESETS[preset_or_layers])]
    else:
        layers = list(preset_or_layers)
    augmenter = Augmenter(layers) if layers else None
    cool = cooldown_of(preset_or_layers)
    if augmenter is not None and cool is not None:
        augmenter.cooldown = (cool["fraction"], build_augmenter(cool["preset"], seed))
    return augmenter


def preview(augmenter, images, labels=None, *, num_classes=None, versions: int = 4, seed: int = 0):
    """``versions`` augmented copies of ``images`` (uint8 or float ``[N, H, W, C]`` in [0, 255]):
    a list of float32 arrays ``[N, H, W, C]``, and for a label-mixing augmenter the mixed label
    rows ``[N, num_classes]`` of each version (else None), each version from its own key."""
    x = tf.cast(tf.convert_to_tensor(images), tf.float32)
    outputs, mixed = [], []
    for v in range(versions):
        key = tf.random.experimental.stateless_fold_in(tf.constant([seed, 0], tf.int32), v)
        keys = split_key(key, 2)
        out = augmenter(x, keys[0]) if augmenter is not None else x
        if augmenter is not None and augmenter.mixes_labels and labels is not None:
            one_hot = tf.one_hot(labels, num_classes, dtype=tf.float32)
            out, rows = augmenter.mix(out, one_hot, keys[1])
            mixed.append(rows.numpy())
        outputs.append(out.numpy())
    return outputs, (mixed or None)


def plot_preview(path, images, outputs, *, labels=None, mixed=None, class_names=None, title=None):
    """A PNG grid at ``path``: one row per image, the original then its augmented versions;
    label-mixed versions are captioned with their two largest label weights."""
    import numpy as np

    from keras_cv_apps._figures import new_figure, save_figure

    n, columns = len(images), 1 + len(outputs)
    names = [str(c) for c in class_names] if class_names is not None else None
    fig = new_figure((1.25 * columns + 0.4, 1.5 * n + 0.5))
    axes = np.asarray(fig.subplots(n, columns, squeeze=False))
    for r in range(n):
        for c in range(columns):
            image = np.asarray(images[r] if c == 0 else outputs[c - 1][r], np.float32) / 255.0
            ax = axes[r, c]
            ax.imshow(np.clip(image[..., 0] if image.shape[-1] == 1 else image, 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            caption = None
            if c == 0 and labels is not None:
                caption = names[labels[r]] if names else str(labels[r])
            elif c > 0 and mixed is not None:
                row = mixed[c - 1][r]
                top = np.argsort(-row)[:2]
                caption = "\n".join(f"{names[k] if names else k}:{row[k]:.2f}" for k in top if row[k] > 0.005)
            if caption:
                ax.set_title(caption, fontsize=7)
    axes[0, 0].set_xlabel("original", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=90)
