"""`ModelCfg`: the frozen contract of one registered model name.

The cfg is the single source of a family's defaults: `create` applies ``defaults`` before calling
the builder, the generic tests and the apps read the same fields, and the built model carries
its cfg (`cfg_of`).
"""

from __future__ import annotations

import dataclasses
import types
from typing import Callable, Mapping, Optional, Union

from keras_cv_apps.image.ops import SCALES

TASKS = ("classifier", "siamese", "embedding", "autoencoder", "vae")
# `export.export_tflite` keywords a family may set a default for in ``tflite_options``
TFLITE_OPTIONS = ("per_channel", "rewrite_avg_pool")


@dataclasses.dataclass(frozen=True)
class ModelCfg:
    """What callers, tools and generic tests need to know about a registered model.

    Attributes:
        name: the registry name.
        task: one of ``TASKS``; `models._tasks` maps it to example inputs, a forward pass,
            a one-batch fit and the parts a phone receives.
        defaults: keyword arguments `create` passes to the builder unless the caller gives
            them (at least ``image_shape``; ``num_classes`` for classifiers).
        test_image_shape: a small shape the model accepts, used by the generic tests
            (default: ``defaults["image_shape"]``).
        scale: pixel scaling the model expects (``unit`` [0, 1], ``symmetric`` [-1, 1],
            ``standardize`` per-channel mean/std of the train split).
        tflite: whether the model exports to TFLite with built-in ops.
        tflite_options: the family's defaults for the quantization options of
            `export.export_tflite` (keys in ``TFLITE_OPTIONS``, boolean values), which
            `export.export_all` applies unless its caller overrides them; empty means the
            exporter's own defaults.
        min_image_size: the smallest height/width the builder accepts, as an int or as a
            function of the builder's keyword arguments (the same function the builder checks).
        feature_layer: the layer whose output is the model's feature vector or map (what
            `feature_extractor` cuts at, Grad-CAM and embeddings use); None when there is none.
        classifier: the layer producing class scores (classifiers), else None.
        load_weights: ``fn(model, path, strict) -> report`` for checkpoint files that are not
            Keras files (for example official ``.npz`` releases); None when only Keras files load.
        description: one line for listings.
    """

    name: str
    task: str = "classifier"
    defaults: Mapping = dataclasses.field(default_factory=dict)
    test_image_shape: Optional[tuple] = None
    scale: str = "unit"
    tflite: bool = True
    tflite_options: Mapping = dataclasses.field(default_factory=dict)
    min_image_size: Union[int, Callable[..., int]] = 1
    feature_layer: Optional[str] = None
    classifier: Optional[str] = None
    load_weights: Optional[Callable] = None
    description: str = ""

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"ModelCfg {self.name!r}: task {self.task!r} is not one of {TASKS}.")
        if self.scale not in SCALES:
            raise ValueError(f"ModelCfg {self.name!r}: scale {self.scale!r} is not one of {SCALES}.")
        if "image_shape" not in self.defaults:
            raise ValueError(f"ModelCfg {self.name!r}: defaults must give an image_shape.")
        defaults = dict(self.defaults)
        defaults["image_shape"] = tuple(defaults["image_shape"])
        object.__setattr__(self, "defaults", types.MappingProxyType(defaults))
        options = dict(self.tflite_options)
        bad = sorted(k for k, v in options.items() if k not in TFLITE_OPTIONS or not isinstance(v, bool))
        if bad:
            raise ValueError(f"ModelCfg {self.name!r}: tflite_options {bad} are not boolean options among "
                             f"{TFLITE_OPTIONS}.")
        object.__setattr__(self, "tflite_options", types.MappingProxyType(options))
        object.__setattr__(self, "test_image_shape", tuple(self.test_image_shape or defaults["image_shape"]))

    @property
    def image_shape(self) -> tuple:
        """The default input shape, HWC."""
        return self.defaults["image_shape"]

    @property
    def num_classes(self) -> Optional[int]:
        """The default number of classes (classifiers), else None."""
        return self.defaults.get("num_classes")

    def min_size(self, **kwargs) -> int:
        """The smallest image size the model accepts when built with ``kwargs`` (on top of the
        defaults), computed by the function the builder itself checks with."""
        if callable(self.min_image_size):
            return int(self.min_image_size(**{**self.defaults, **kwargs}))
        return int(self.min_image_size)

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["defaults"] = dict(self.defaults)
        out["tflite_options"] = dict(self.tflite_options)
        for key in ("min_image_size", "load_weights"):
            if callable(out[key]):
                out[key] = getattr(out[key], "__name__", repr(out[key]))
        return out
