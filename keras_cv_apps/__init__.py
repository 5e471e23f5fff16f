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
    "dream",
    "explain",
    "export",
    "layers",
    "losses",
    "metrics",
    "models",
    "training",
    "transfer",
    "vision",
)

__all__ = ["__version__", "load_model", *_SUBMODULES]


def load_model(path, **kwargs) -> keras.Model:
    """``keras.models.load_model`` once every serializable class of the package is registered.

    A missing file raises ``FileNotFoundError``; a file that is not a Keras model (a ``.tflite``
    export, a corrupt or truncated ``.keras`` archive, anything else) raises ``ValueError`` in one
    sentence naming the file, instead of Keras' messages (which call a corrupt archive "not found").
    """
    import zipfile
    from pathlib import Path

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"Model file {file} does not exist.")
    suffix = file.suffix.lower()
    if suffix == ".tflite":
        raise ValueError(f"{file.name} is a TFLite export, which runs with keras_cv_apps.inference; this needs the "
                         "Keras model (the model.keras file of the same run).")
    if suffix not in (".keras", ".h5", ".hdf5"):
        raise ValueError(f"{file.name} is not a Keras model file; give a .keras file (or a legacy .h5).")
    if suffix == ".keras" and not zipfile.is_zipfile(file):
        raise ValueError(f"{file.name} is not a valid .keras file (not a zip archive: truncated, corrupt or "
                         "another format).")
    importlib.import_module(f"{__name__}.models")  # imports layers and losses too
    import keras

    try:
        return keras.models.load_model(file, **kwargs)
    except Exception as err:  # noqa: BLE001 - a damaged archive, a class Keras cannot rebuild, ...: one sentence
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ValueError(f"Cannot load {file.name} as a Keras model ({first}).") from err


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
