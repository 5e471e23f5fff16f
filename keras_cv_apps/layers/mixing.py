"""`LabelMix`: MixUp and CutMix on a batch of images with one-hot (or already soft) labels.

MixUp (Zhang et al., 2018) blends two images and their labels with a weight ~ Beta(a, a);
CutMix (Yun et al., 2019) pastes a box of one image into another and mixes the labels by the
box's area. Both are Keras core layers (``keras.layers.MixUp`` / ``CutMix``), driven here with
keyed seeds (`augment_base.KeyedSeed`), so a batch's mixing depends only on its key. Per image,
`LabelMix` keeps the image, or takes its MixUp or its CutMix version, so a fraction of each batch
stays clean. Every mixed label row is a convex combination of two rows, so rows still sum to 1.
"""

import keras
import tensorflow as tf

from keras_cv_apps.layers.augment_base import KeyedSeed, check_range

__all__ = ["LabelMix"]


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class LabelMix(keras.layers.Layer):
    """Batch-level MixUp/CutMix with soft labels; call on ``{"images": [B, H, W, C] float,
    "labels": [B, K] one-hot or soft}`` with ``training=True`` (and optionally ``key=``).

    Args:
        mixup_alpha: Beta(a, a) parameter of MixUp; 0 turns MixUp off.
        cutmix_alpha: Beta(a, a) parameter of CutMix's kept area, in (0, 1]; 0 turns CutMix off.
        probability: chance that an image is mixed at all.
        cutmix_share: of the mixed images, the share that gets CutMix instead of MixUp.
    """

    mixes_labels = True

    def __init__(self, *, mixup_alpha: float = 0.2, cutmix_alpha: float = 1.0, probability: float = 0.5,
                 cutmix_share: float = 0.5, seed=None, **kwargs):
        kwargs.setdefault("autocast", False)  # keep the images' dtype
        super().__init__(**kwargs)
        self.mixup_alpha = check_range(mixup_alpha, "LabelMix mixup_alpha", 0.0, 100.0, pair=False)
        self.cutmix_alpha = check_range(cutmix_alpha, "LabelMix cutmix_alpha", 0.0, 1.0, pair=False)
        self.probability = check_range(probability, "LabelMix probability", 0.0, 1.0, pair=False)
        self.cutmix_share = check_range(cutmix_share, "LabelMix cutmix_share", 0.0, 1.0, pair=False)
        if not self.mixup_alpha:
            self.cutmix_share = 1.0
        elif not self.cutmix_alpha:
            self.cutmix_share = 0.0
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._mixup = keras.layers.MixUp(alpha=self.mixup_alpha or 1.0)
        a = self.cutmix_alpha or 1.0
        self._cutmix = keras.layers.CutMix(factor=(a, a))  # core draws a ~ U(factor): fixed at a

    def build(self, input_shape):  # the core layers inside hold no weights
        self.built = True

    def is_identity(self):
        return self.probability == 0 or not (self.mixup_alpha or self.cutmix_alpha)

    def _mixed(self, layer, images, labels, key):
        data = {"images": images, "labels": labels}
        change = layer.get_random_transformation(data, training=True, seed=KeyedSeed(key))
        return (tf.cast(layer.transform_images(images, change), images.dtype),
                tf.cast(layer.transform_labels(labels, change), labels.dtype))

    def call(self, data, training=None, key=None):
        if not training or self.is_identity():
            return data
        images, labels = tf.convert_to_tensor(data["images"]), tf.convert_to_tensor(data["labels"])
        if not labels.dtype.is_floating or labels.shape.rank != 2:
            raise ValueError("LabelMix needs one-hot or soft labels [batch, classes] as floats; got "
                             f"{labels.dtype.name} labels of shape {labels.shape}.")
        if key is None:
            key = keras.random.randint((2,), 0, 2**31 - 1, dtype="int32", seed=self.seed_generator)
        keys = tf.random.experimental.stateless_split(tf.cast(key, tf.int32), 3)
        u = tf.random.stateless_uniform([tf.shape(images)[0]], keys[0])
        cut = u < self.probability * self.cutmix_share
        mix = tf.logical_and(tf.logical_not(cut), u < self.probability)
        out_x, out_y = images, labels
        for layer, where, k in ((self._mixup, mix, keys[1]), (self._cutmix, cut, keys[2])):
            if (layer is self._mixup and self.cutmix_share == 1.0) or (layer is self._cutmix and not self.cutmix_share):
                continue
            x, y = self._mixed(layer, images, labels, k)
            out_x = tf.where(where[:, None, None, None], x, out_x)
            out_y = tf.where(where[:, None], y, out_y)
        return {"images": out_x, "labels": out_y}

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mixup_alpha": self.mixup_alpha, "cutmix_alpha": self.cutmix_alpha,
                "probability": self.probability, "cutmix_share": self.cutmix_share, "seed": self.seed}
