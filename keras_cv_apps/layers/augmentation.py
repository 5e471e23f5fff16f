"""Augmentation layers core Keras lacks; they act only when called with ``training=True`` and
belong in the ``tf.data`` pipeline, never in an exported model."""

import math

import keras
from keras import ops

__all__ = ["RandomAffine"]


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class RandomAffine(keras.layers.Layer):
    """Random rotation, translation and zoom about the image centre in *one* resampling.

    Core Keras has one layer per transform (RandomRotation, RandomTranslation, RandomZoom);
    chaining them interpolates three times, which blurs small images and costs three times as
    much. Per image: angle ~ U(-rotation, rotation) degrees, shift ~ U(-translation,
    translation) x width/height, scale ~ U(1 - zoom, 1 + zoom) (> 1 enlarges the content).
    Identity unless ``training``.
    """

    def __init__(self, *, rotation: float = 10.0, translation: float = 0.1, zoom: float = 0.1,
                 fill_mode: str = "constant", fill_value: float = 0.0,
                 interpolation: str = "bilinear", seed=None, **kwargs):
        super().__init__(**kwargs)
        if not (rotation >= 0 and translation >= 0 and 0 <= zoom < 1):
            raise ValueError("RandomAffine needs rotation >= 0, translation >= 0 and "
                             f"0 <= zoom < 1; got {rotation}, {translation}, {zoom}.")
        self.rotation = rotation
        self.translation = translation
        self.zoom = zoom
        self.fill_mode = fill_mode
        self.fill_value = fill_value
        self.interpolation = interpolation
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @staticmethod
    def transforms(angle, shift_x, shift_y, scale, height, width):
        """Per-image ``[N, 8]`` matrices for ``keras.ops.image.affine_transform`` that rotate by
        ``angle`` (radians, counter-clockwise on screen), scale by ``scale`` about the centre and
        then shift by (shift_x, shift_y) pixels. They map each output pixel back to its input."""
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        cos, sin = ops.cos(angle) / scale, ops.sin(angle) / scale
        px, py = cx + shift_x, cy + shift_y  # where the input centre lands
        zeros = ops.zeros_like(cos)
        return ops.stack([cos, -sin, cx - (cos * px - sin * py),
                          sin, cos, cy - (sin * px + cos * py), zeros, zeros], axis=1)

    def call(self, images, training=None):
        if not training:
            return images
        unbatched = len(images.shape) == 3
        if unbatched:
            images = ops.expand_dims(images, 0)
        shape = ops.shape(images)
        height, width = ops.cast(shape[1], "float32"), ops.cast(shape[2], "float32")
        u = keras.random.uniform((shape[0], 4), -1.0, 1.0, seed=self.seed_generator)
        matrices = self.transforms(u[:, 0] * math.radians(self.rotation),
                                   u[:, 1] * self.translation * width,
                                   u[:, 2] * self.translation * height,
                                   1.0 + u[:, 3] * self.zoom, height, width)
        out = ops.image.affine_transform(images, matrices, interpolation=self.interpolation,
                                         fill_mode=self.fill_mode, fill_value=self.fill_value)
        return out[0] if unbatched else out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rotation": self.rotation,
                "translation": self.translation, "zoom": self.zoom, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "interpolation": self.interpolation,
                "seed": self.seed}
