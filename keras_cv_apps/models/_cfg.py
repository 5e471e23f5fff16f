"""`ModelCfg`: the frozen description of one registered model name."""

from __future__ import annotations

import dataclasses
from typing import Optional

TASKS = ("classifier", "siamese", "embedding", "autoencoder", "vae", "features")
SCALES = ("unit", "symmetric", "standardize")


@dataclasses.dataclass(frozen=True)
class ModelCfg:
    """What callers and generic tests need to know about a registered model.

    Attributes:
        name: the registry name.
        image_shape: default input shape, HWC.
        num_classes: default number of outputs for classifiers, else None.
        task: one of ``TASKS``; generic tests dispatch on it.
        test_image_shape: a small shape the model accepts, used by the generic tests.
        scale: pixel scaling the model expects (``unit`` [0,1], ``symmetric`` [-1,1],
            ``standardize`` per-channel mean/std from the train split).
        mean, std: per-channel statistics for ``standardize`` when fixed (e.g. pretrained).
        tflite: whether the model exports to TFLite with built-in ops.
        min_image_size: smallest spatial size (pixels) the model accepts.
        weights: optional description of pretrained weights (URL or preset name).
        description: one line for ``list_models`` listings.
    """

    name: str
    image_shape: tuple = (32, 32, 1)
    num_classes: Optional[int] = 10
    task: str = "classifier"
    test_image_shape: tuple = (32, 32, 1)
    scale: str = "unit"
    mean: Optional[tuple] = None
    std: Optional[tuple] = None
    tflite: bool = True
    min_image_size: int = 1
    weights: Optional[str] = None
    description: str = ""

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"ModelCfg {self.name!r}: task {self.task!r} is not one of {TASKS}.")
        if self.scale not in SCALES:
            raise ValueError(f"ModelCfg {self.name!r}: scale {self.scale!r} is not one of {SCALES}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
