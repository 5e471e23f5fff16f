"""Augmentation presets for the training pipeline, built from Keras core preprocessing layers.

An augmenter is applied by `data.load` inside the train ``tf.data`` map, on float32 batches
``[B, H, W, C]`` with pixel values in **[0, 255], before scaling** (so value-range layers such as
RandomContrast/RandomBrightness use their default ``(0, 255)`` range), and its output is clipped
back to [0, 255]. Augmentation never goes inside a model: random ops do not export to TFLite/ONNX.

A preset is a list of *factories* ``seed -> layer`` in `PRESETS`; adding one is one entry::

    from keras_cv_apps.data import augment
    augment.register_preset("digits_strong", [
        lambda seed: augment.RandomAffine(rotation=15, translation=0.15, seed=seed),
        lambda seed: keras.layers.RandomElasticTransform(factor=0.5, scale=0.1, seed=seed),
    ])

Core layers are used where they exist; `RandomAffine` (one resampling for rotation + shift +
zoom) and the noise layers come from `keras_cv_apps.layers`.

Note: the layers draw from stateful seed generators, so with a parallel ``map`` the *order* of
random draws is not fixed; augmented batches are random but not bit-reproducible between runs
(which images form each batch is, via the seeded shuffle).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence, Union

import keras
from keras import ops

from keras_cv_apps.layers.augmentation import RandomAffine
from keras_cv_apps.layers.noise import ClippedGaussianNoise, SaltAndPepperNoise

LayerFactory = Callable[[int], keras.layers.Layer]


# name -> layer factories (seed -> layer), applied in order. Add a preset with `register_preset`.
PRESETS: Dict[str, List[LayerFactory]] = {
    "none": [],
    # digits / handwriting: rotation 10 deg, shift 10%, zoom 10%, black borders; no flips
    # (a mirrored 2 is not a 2)
    "light": [lambda s: RandomAffine(rotation=10, translation=0.1, zoom=0.1, seed=s)],
    # the LeNet-5 digits recipe: rotation up to ~14 deg (0.04 of a turn), shift 10%, zoom 10%
    "digits": [lambda s: RandomAffine(rotation=14.4, translation=0.1, zoom=0.1, seed=s)],
    # photos: mirror, affine jitter with reflected borders, contrast and brightness
    "standard": [
        lambda s: keras.layers.RandomFlip("horizontal", seed=s),
        lambda s: RandomAffine(rotation=15, translation=0.1, zoom=0.15, fill_mode="reflect",
                               seed=s),
        lambda s: keras.layers.RandomContrast(0.2, seed=s),
        lambda s: keras.layers.RandomBrightness(0.15, seed=s),
    ],
    # light + sensor-style noise and one erased patch (cutout) per image
    "noisy": [
        lambda s: RandomAffine(rotation=10, translation=0.1, zoom=0.1, seed=s),
        lambda s: ClippedGaussianNoise(stddev=8.0, minval=0.0, maxval=255.0, seed=s),
        lambda s: SaltAndPepperNoise(rate=0.02, low=0.0, high=255.0, seed=s),
        lambda s: keras.layers.RandomErasing(factor=0.5, scale=(0.02, 0.1), fill_value=0.0,
                                             seed=s),
    ],
}


def register_preset(name: str, factories: Sequence[LayerFactory]) -> None:
    """Add preset ``name`` made of ``factories`` (each ``seed -> keras layer``)."""
    if name in PRESETS:
        raise ValueError(f"Augmentation preset {name!r} already exists.")
    PRESETS[name] = list(factories)


def check_preset(preset) -> None:
    """Raise ``ValueError`` naming the valid presets if ``preset`` is an unknown name."""
    if isinstance(preset, str) and preset not in PRESETS:
        raise ValueError(f"Unknown augmentation preset {preset!r}; use one of "
                         f"{', '.join(sorted(PRESETS))} or a list of Keras layers.")


class Augmenter:
    """Applies ``layers`` in order with ``training=True`` to a float batch in [0, 255] and
    clips the result to [0, 255]. Callable on ``tf.Tensor`` batches inside ``tf.data.map``."""

    def __init__(self, layers: Sequence[keras.layers.Layer]):
        self.layers = list(layers)

    def __call__(self, images):
        for layer in self.layers:
            images = layer(images, training=True)
        return ops.clip(images, 0.0, 255.0)

    def __repr__(self):
        return f"Augmenter({[type(layer).__name__ for layer in self.layers]})"


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
    return Augmenter(layers) if layers else None
