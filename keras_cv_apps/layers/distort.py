"""Degradations a camera or a codec adds: `RandomElastic` (smooth local warps), `RandomBlur`
(Gaussian) and `RandomJPEG` (compression artefacts).

OpenCV on whole batches with keyed randomness (`augment_base`); 1 or 3 channels, uint8 or
float in [0, 255], the input dtype kept. Identity unless ``training``.
"""

import keras
import numpy as np

from keras_cv_apps.layers.augment_base import (
    KeyedAugmentation,
    border_flag,
    check_choice,
    check_range,
    copy_aligned,
    interpolation_flag,
    output_batch,
    plane,
    to_dtype,
)
from keras_cv_apps.layers.augmentation import FILL_MODES, INTERPOLATIONS

__all__ = ["RandomBlur", "RandomElastic", "RandomJPEG"]


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class RandomElastic(KeyedAugmentation):
    """Elastic distortion (Simard et al., 2003): every pixel moves along a smooth random field.

    The field is drawn as independent N(0, 1) values on a coarse grid (one node every
    ``smoothness`` x image side) and interpolated bicubically to every pixel, which gives the
    smooth field Gaussian filtering of per-pixel noise gives, at a fraction of the cost. It is
    scaled to ``displacement`` x image side (about the standard deviation of the shift, per
    axis) and applied with ``cv2.remap``. ``displacement=0`` is the identity.

    Core ``RandomElasticTransform`` draws one distortion strength per batch and filters
    full-resolution noise; this layer draws per image and is several times faster.
    """

    def __init__(self, *, displacement: float = 0.03, smoothness: float = 0.15, fill_mode: str = "reflect",
                 fill_value: float = 0.0, interpolation: str = "bilinear", probability: float = 1.0, seed=None,
                 **kwargs):
        super().__init__(probability=probability, seed=seed, **kwargs)
        self.displacement = check_range(displacement, "RandomElastic displacement", 0.0, 0.5, pair=False)
        self.smoothness = check_range(smoothness, "RandomElastic smoothness", 0.01, 1.0, pair=False)
        self.fill_mode = check_choice(fill_mode, FILL_MODES, "fill_mode")
        self.fill_value = fill_value
        self.interpolation = check_choice(interpolation, INTERPOLATIONS, "interpolation")

    def is_identity(self):
        return super().is_identity() or self.displacement == 0

    def transform(self, images, rng, chosen):
        import cv2

        n, h, w = images.shape[:3]
        nodes_y, nodes_x = (max(2, round(1 / self.smoothness) + 1),) * 2
        grids = rng.standard_normal((n, nodes_y, nodes_x, 2)).astype(np.float32) * (self.displacement * max(h, w))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        out = output_batch(images, ~chosen)
        flag, border, fill = interpolation_flag(self.interpolation), border_flag(self.fill_mode), float(self.fill_value)
        for i in np.flatnonzero(chosen):
            field = cv2.resize(grids[i], (w, h), interpolation=cv2.INTER_CUBIC)
            cv2.remap(plane(images[i]), xx + field[..., 0], yy + field[..., 1], flag, dst=plane(out[i]),
                      borderMode=border, borderValue=(fill, fill, fill, fill))
        return out

    def get_config(self):
        return {**super().get_config(), "displacement": self.displacement, "smoothness": self.smoothness,
                "fill_mode": self.fill_mode, "fill_value": self.fill_value, "interpolation": self.interpolation}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class RandomBlur(KeyedAugmentation):
    """Gaussian blur with a standard deviation ~ U(sigma) pixels drawn per image; the kernel
    spans +-floor(``truncate`` x sigma) pixels (3.5: the rule of PIL and albumentations; a
    sigma under 1 / ``truncate`` leaves the image as it is). Core ``RandomGaussianBlur`` draws one
    sigma per batch and returns float32."""

    def __init__(self, *, sigma=(0.5, 2.0), truncate: float = 3.5, probability: float = 1.0, seed=None, **kwargs):
        super().__init__(probability=probability, seed=seed, **kwargs)
        self.sigma = check_range(sigma, "RandomBlur sigma", 0.0, 50.0, pair_only=True)
        self.truncate = check_range(truncate, "RandomBlur truncate", 1.0, 10.0, pair=False)

    def is_identity(self):
        return super().is_identity() or int(self.truncate * self.sigma[1]) == 0

    def transform(self, images, rng, chosen):
        import cv2

        sigmas = rng.uniform(self.sigma[0], self.sigma[1], len(images))
        radii = (self.truncate * sigmas).astype(int)
        blurred = chosen & (radii > 0)
        out = output_batch(images, ~blurred)
        for i in np.flatnonzero(blurred):
            # a float32 kernel on rows then columns: uint8 results are the float blur correctly rounded, at
            # about twice the speed of cv2.GaussianBlur's fixed-point uint8 path (which is off by up to 1.5)
            kernel = cv2.getGaussianKernel(2 * int(radii[i]) + 1, sigmas[i], cv2.CV_32F)
            cv2.sepFilter2D(plane(images[i]), -1, kernel, kernel, dst=plane(out[i]), borderType=cv2.BORDER_REFLECT_101)
        return out

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma, "truncate": self.truncate}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class RandomJPEG(KeyedAugmentation):
    """Encode and decode each image as JPEG at a quality ~ U(quality) (integers, 1-100).

    Float images are rounded to uint8 for the codec. RGB is handed to OpenCV as BGR, so the
    chroma planes are the ones a camera would write."""

    def __init__(self, *, quality=(30, 90), probability: float = 1.0, seed=None, **kwargs):
        super().__init__(probability=probability, seed=seed, **kwargs)
        self.quality = [int(q) for q in check_range(quality, "RandomJPEG quality", 1, 100, pair_only=True)]

    def transform(self, images, rng, chosen):
        import cv2

        qualities = rng.integers(self.quality[0], self.quality[1] + 1, len(images))
        out = copy_aligned(images)
        color = images.shape[-1] == 3
        for i in np.flatnonzero(chosen):
            image = to_dtype(images[i], np.uint8)
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if color else plane(image)
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(qualities[i])])
            decoded = cv2.imdecode(data, cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)
            decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB) if color else decoded[..., None]
            out[i] = decoded
        return out

    def get_config(self):
        return {**super().get_config(), "quality": self.quality}
