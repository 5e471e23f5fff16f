"""Model factories by name: ``create``, ``list_models``, ``get_cfg``, ``register_model``, and the
tools that read a model's cfg: ``cfg_of``, ``feature_extractor``, ``find_layer``, ``load_weights``;
``complexity`` (MACs and parameters per layer), ``compound_scaling``, and
``load_checkpoint`` / ``save_checkpoint`` for the official ViT and BiT ``.npz`` layouts.

Importing this package imports each family module once so that its variants register, and
imports ``keras_cv_apps.layers``, ``keras_cv_apps.losses`` and the Keras metric classes so that
every serializable class of the package is known to Keras: after ``import keras_cv_apps.models``,
``keras.models.load_model`` opens any ``.keras`` file the package wrote.
"""

import keras_cv_apps.layers  # noqa: F401  (registers the serializable layers)
import keras_cv_apps.losses  # noqa: F401  (registers the serializable losses)
import keras_cv_apps.metrics.dense  # noqa: F401  (registers the serializable metrics)

# Families register their variants on import.
from keras_cv_apps.models import (  # noqa: E402,F401
    alexnet,
    autoencoders,
    bit,
    cct,
    efficientnet,
    ghostnet,
    lenet,
    mobilenet,
    siamese,
    vae,
    vit,
)
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
from keras_cv_apps.models.checkpoints import CheckpointReport, load_checkpoint, save_checkpoint
from keras_cv_apps.models.complexity import complexity, complexity_table, print_complexity
from keras_cv_apps.models.scaling import compound_scaling

__all__ = [
    "TASKS",
    "CheckpointReport",
    "ModelCfg",
    "catalog",
    "cfg_of",
    "complexity",
    "complexity_table",
    "compound_scaling",
    "create",
    "feature_extractor",
    "find_layer",
    "get_cfg",
    "list_models",
    "load_checkpoint",
    "load_weights",
    "print_complexity",
    "register_model",
    "save_checkpoint",
]
