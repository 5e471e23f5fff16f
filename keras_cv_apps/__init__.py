"""keras-cv-apps: Keras 3 computer-vision model factories, data pipelines and exportable apps.

Submodules are imported lazily, so ``import keras_cv_apps`` is cheap; TensorFlow, OpenCV,
scikit-learn and matplotlib load only when the part that needs them is first used::

    from keras_cv_apps import models
    model = models.create("lenet5", num_classes=10)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

__version__ = "0.1.0"

_SUBMODULES = (
    "callbacks",
    "data",
    "export",
    "layers",
    "losses",
    "metrics",
    "models",
    "training",
    "vision",
)

__all__ = ["__version__", "load_model", *_SUBMODULES]


def load_model(path, **kwargs) -> keras.Model:
    """``keras.models.load_model`` once every serializable class of the package is registered."""
    importlib.import_module(f"{__name__}.models")  # imports layers and losses too
    import keras

    return keras.models.load_model(path, **kwargs)


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
