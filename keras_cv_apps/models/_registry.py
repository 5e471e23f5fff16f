"""Model registry: one short registered function per variant, created by name."""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable, Dict, Tuple

from keras_cv_apps.models._cfg import ModelCfg

_REGISTRY: Dict[str, Tuple[Callable, ModelCfg]] = {}


def register_model(name: str, **cfg_fields) -> Callable:
    """Decorator: register ``fn(**kwargs) -> keras.Model`` under ``name`` with its `ModelCfg`.

    Registering the same name twice raises ``ValueError``.
    """

    def decorator(fn: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"Model name {name!r} is already registered.")
        _REGISTRY[name] = (fn, ModelCfg(name=name, **cfg_fields))
        return fn

    return decorator


def _lookup(name: str) -> Tuple[Callable, ModelCfg]:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Unknown model {name!r}.{hint} Available: {', '.join(sorted(_REGISTRY))}."
        )
    return _REGISTRY[name]


def create(name: str, **kwargs):
    """Build the registered model ``name``. Keyword arguments that are ``None`` are dropped,
    so CLI defaults never override a model's own defaults."""
    fn, _ = _lookup(name)
    return fn(**{k: v for k, v in kwargs.items() if v is not None})


def get_cfg(name: str) -> ModelCfg:
    """The frozen `ModelCfg` of a registered name."""
    return _lookup(name)[1]


def list_models(pattern: str = "*", *, include_test: bool = True) -> list:
    """Sorted registered names matching a shell-style ``pattern``."""
    names = sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))
    if not include_test:
        names = [n for n in names if not n.startswith("test_")]
    return names
