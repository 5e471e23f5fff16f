"""`RandAugment` (Cubuk et al., 2020) on 1- and 3-channel batches, one op choice per image.

Each image gets ``num_ops`` operations drawn uniformly from ``ops`` (with replacement), all at
one ``magnitude`` in [0, 1] with a random sign where the op has one. The geometric ops are
composed into one affine map and resampled once; the photometric ops are those of
`keras_cv_apps.layers.colour`. Magnitude 0 is the identity (autocontrast and equalize are blended
in by the magnitude, so they follow the same rule).

Core Keras' ``RandAugment`` picks the ops once per batch (every image of a batch gets the same
ones), computes all of them for every batch, draws from its own generator even when given a
seed (so a parallel ``map`` is not reproducible) and needs 3 channels for some ops.
"""

import math

import keras
import numpy as np

from keras_cv_apps.layers.augment_base import KeyedAugmentation, check_range, copy_aligned, plane, to_dtype
from keras_cv_apps.layers.colour import PHOTOMETRIC

__all__ = ["RandAugment"]

# geometric op -> its strongest value at magnitude 1
GEOMETRIC = {"rotate": 30.0, "shear_x": 0.3, "shear_y": 0.3, "translate_x": 0.3, "translate_y": 0.3}
OPS = ("identity",) + tuple(GEOMETRIC) + tuple(PHOTOMETRIC)


def _forward(name, value, h, w):
    """The 2x3 forward map (input -> output pixel) of one geometric op about the centre."""
    if name == "rotate":  # counter-clockwise on screen (y points down)
        a = math.radians(value)
        linear, shift = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]), (0.0, 0.0)
    elif name == "shear_x":
        linear, shift = np.array([[1.0, value], [0.0, 1.0]]), (0.0, 0.0)
    elif name == "shear_y":
        linear, shift = np.array([[1.0, 0.0], [value, 1.0]]), (0.0, 0.0)
    else:
        linear, shift = np.eye(2), ((value * w, 0.0) if name == "translate_x" else (0.0, value * h))
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    return np.concatenate([linear, (centre - linear @ centre + shift)[:, None]], axis=1)


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class RandAugment(KeyedAugmentation):
    """RandAugment with per-image op choice (see the module docstring).

    Args:
        num_ops: operations per image (N in the paper).
        magnitude: strength of every op in [0, 1] (M / 30 in the paper's scale): rotation up to
            30 degrees, shear up to 0.3, translation up to 30% of the side, enhancement factors
            1 +- 0.9, solarize threshold down to 0, posterize down to 4 bits.
        ops: names from `OPS` to draw from (default: all of them).
        fill_value: the pixel value uncovered by the geometric ops.
    """

    def __init__(self, *, num_ops: int = 2, magnitude: float = 0.5, ops=None, fill_value: float = 0.0,
                 probability: float = 1.0, seed=None, **kwargs):
        super().__init__(probability=probability, seed=seed, **kwargs)
        if not (isinstance(num_ops, int) and 0 <= num_ops <= 10):
            raise ValueError(f"RandAugment num_ops must be an integer in [0, 10]; got {num_ops!r}.")
        self.num_ops = num_ops
        self.magnitude = check_range(magnitude, "RandAugment magnitude", 0.0, 1.0, pair=False)
        ops = list(OPS if ops is None else ops)
        unknown = [op for op in ops if op not in OPS]
        if unknown or not ops:
            raise ValueError(f"Unknown RandAugment op(s) {unknown}; choose among {', '.join(OPS)}.")
        self.ops = ops
        self.fill_value = check_range(fill_value, "RandAugment fill_value", 0.0, 255.0, pair=False)

    def is_identity(self):
        return super().is_identity() or self.magnitude == 0 or self.num_ops == 0

    def transform(self, images, rng, chosen):
        import cv2

        n, h, w = images.shape[:3]
        picks = rng.integers(0, len(self.ops), (n, self.num_ops))
        signs = rng.choice([-1.0, 1.0], (n, self.num_ops))
        out = copy_aligned(images)
        m, fill = self.magnitude, (self.fill_value,) * 4
        for i in np.flatnonzero(chosen):
            x, forward = images[i].astype(np.float32), None
            for pick, sign in zip(picks[i], signs[i]):
                name = self.ops[pick]
                if name in GEOMETRIC:
                    step = np.vstack([_forward(name, sign * m * GEOMETRIC[name], h, w), [0.0, 0.0, 1.0]])
                    forward = step if forward is None else step @ forward
                elif name in PHOTOMETRIC:
                    op, factor = PHOTOMETRIC[name]
                    x = op(x, factor(m, sign))
            if forward is not None:
                x = cv2.warpAffine(plane(x), forward[:2], (w, h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=fill).reshape(x.shape)
            out[i] = to_dtype(x, images.dtype)
        return out

    def get_config(self):
        return {**super().get_config(), "num_ops": self.num_ops, "magnitude": self.magnitude, "ops": self.ops,
                "fill_value": self.fill_value}
