"""Model factories by name: ``create``, ``list_models``, ``get_cfg``, ``register_model``.

Importing this package imports each family module once so that its variants register.
"""

from keras_cv_apps.models._cfg import ModelCfg
from keras_cv_apps.models._registry import create, get_cfg, list_models, register_model

# Families register their variants on import.
from keras_cv_apps.models import alexnet, lenet  # noqa: E402,F401

__all__ = ["ModelCfg", "create", "get_cfg", "list_models", "register_model"]
