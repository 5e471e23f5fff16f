"""Datasets as seeded, stratified ``tf.data`` splits.

    from keras_cv_apps import data
    splits = data.load("digits", image_size=32, augment="light")
    model.fit(splits.train, validation_data=splits.val)

`sources` turns a spec (``digits``, ``shapes``, ``lfw_subset``, ``photos``, ``tfds:NAME``,
``keras:mnist``, numpy arrays) into uint8 arrays; ``dir:PATH`` and ``tfrecord:GLOB`` stay on disk
and are decoded as the pipelines run (`streaming`, `shards`; `write_shards` writes TFRecord
shards); `pipelines` splits and feeds them; `augment` holds the augmentation presets used by the
train pipeline; `balance` and `pairs` build class-balanced and metric-learning feeds.
"""

from keras_cv_apps.data.augment import PRESETS, build_augmenter, register_preset
from keras_cv_apps.data.pipelines import SCALES, Splits, load, scale_images, stratified_split
from keras_cv_apps.data.shards import write_shards
from keras_cv_apps.data.sources import spec_choices

__all__ = [
    "PRESETS",
    "SCALES",
    "Splits",
    "build_augmenter",
    "load",
    "register_preset",
    "scale_images",
    "spec_choices",
    "stratified_split",
    "write_shards",
]
