"""Model factories by name: ``create``, ``list_models``, ``get_cfg``, ``register_model``, and the
tools that read a model's cfg: ``cfg_of``, ``feature_extractor``, ``find_layer``, ``load_weights``.

Importing this package imports each family module once so that its variants register, and
imports ``keras_cv_apps.layers`` and ``keras_cv_apps.losses`` so that every serializable class of
the package is known to Keras: after ``import keras_cv_apps.models``, ``keras.models.load_model``
opens any ``.keras`` file the package wrote.
"""

import keras_cv_apps.layers  # noqa: F401  (registers the serializable layers)
import keras_cv_apps.losses  # noqa: F401  (registers the serializable losses)

# Families register their variants on import.
from keras_cv_apps.models import alexnet, autoencoders, lenet, siamese, vae  # noqa: E402,F401,I001
from keras_cv_apps.models._cfg import TASKS, ModelCfg
from keras_cv_apps.models._registry import (
    catalog,
    cfg_of,
    create,
    feature_extractor,
    find_layer,
    get_cfg,
    list_models,
    load_weights,
    register_model,
)

__all__ = [
    "TASKS",
    "ModelCfg",
    "catalog",
    "cfg_of",
    "create",
    "feature_extractor",
    "find_layer",
    "get_cfg",
    "list_models",
    "load_weights",
    "register_model",
]
