"""OpenCV/numpy tools for image datasets: near-duplicates, quality, outliers, EDA, features.

They sit above `models` and `data`; reading files is `keras_cv_apps.image.io`.

Submodules load lazily, so ``import keras_cv_apps.vision`` imports neither OpenCV nor
scikit-learn nor TensorFlow; each submodule imports its heavy dependencies inside functions::

    from keras_cv_apps.vision import dedup
    from keras_cv_apps.image import io
    result = dedup.find_duplicates(io.list_images("photos/"))
"""

import importlib

_SUBMODULES = (
    "demo",
    "dedup",
    "eda",
    "embeddings",
    "enhance",
    "features",
    "fingerprint",
    "hashing",
    "keep",
    "outliers",
    "quality",
    "report",
    "verify",
)

__all__ = list(_SUBMODULES)


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
