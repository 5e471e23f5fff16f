"""Model registry: one short registered function per variant, created by name.

``create`` applies the variant's cfg defaults, builds the model, attaches the cfg to it and
loads weights when asked; ``feature_extractor`` cuts a model at the layer its cfg names.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Tuple, Union

from keras_cv_apps.models._cfg import ModelCfg

if TYPE_CHECKING:
    import keras

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
        public = [n for n in _REGISTRY if not n.startswith("test_")]
        close = difflib.get_close_matches(str(name), public, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} Available: {', '.join(sorted(public))}.")
    return _REGISTRY[name]


def create(name: str, *, weights: Optional[Union[str, os.PathLike]] = None, **kwargs) -> keras.Model:
    """Build the registered model ``name``.

    The cfg's ``defaults`` apply first; keyword arguments that are ``None`` are dropped, so CLI
    defaults never override a model's own. ``weights`` is a ``.keras`` or ``.weights.h5`` file
    written by Keras, or a checkpoint format the cfg's ``load_weights`` reads; the model is built
    first, so a checkpoint for another architecture fails with the mismatched names.
    """
    fn, cfg = _lookup(name)
    given = {k: v for k, v in kwargs.items() if v is not None}
    model = fn(**{"name": name, **cfg.defaults, **given})
    model.cfg = cfg
    if weights is not None:
        load_weights(model, weights)
    return model


def load_weights(model: keras.Model, path: Union[str, os.PathLike], *, strict: bool = True):
    """Load ``path`` into ``model``: a Keras ``.keras`` / ``.weights.h5`` file, or a checkpoint the
    model's cfg can read. A family with a ``cfg.load_weights`` reads everything but ``.weights.h5``
    itself (its own checkpoint formats, ``.keras`` files, release names); returns that loader's
    report, else None."""
    cfg = cfg_of(model)
    if cfg is not None and cfg.load_weights is not None and not str(path).endswith(".weights.h5"):
        return cfg.load_weights(model, path, strict=strict)  # the family reads its own formats (and names)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Weights file {str(path)!r} does not exist.")
    if path.name.endswith(".weights.h5"):
        model.load_weights(path)
        return None
    if path.suffix == ".keras":
        import keras_cv_apps

        source = keras_cv_apps.load_model(path, compile=False)
        theirs, ours = source.get_weights(), model.get_weights()
        shapes = [(a.shape, b.shape) for a, b in zip(theirs, ours) if a.shape != b.shape]
        if len(theirs) != len(ours) or shapes:
            raise ValueError(f"{path.name} holds weights of another architecture ({len(theirs)} arrays vs "
                             f"{len(ours)}; first shape mismatch {shapes[:1]}).")
        model.set_weights(theirs)
        return None
    if cfg is None or cfg.load_weights is None:
        raise ValueError(f"Cannot read weights from {path.name}: use a .keras or .weights.h5 file written by Keras"
                         f"{'' if cfg is None else f' ({cfg.name} reads no other checkpoint format)'}.")
    return cfg.load_weights(model, path, strict=strict)


def get_cfg(name: str) -> ModelCfg:
    """The frozen `ModelCfg` of a registered name."""
    return _lookup(name)[1]


def cfg_of(model: keras.Model) -> Optional[ModelCfg]:
    """The cfg a model was created with (also for a model loaded from a ``.keras`` file, found by
    its name in the registry), or None for a model the registry did not build."""
    cfg = getattr(model, "cfg", None)
    if isinstance(cfg, ModelCfg):
        return cfg
    entry = _REGISTRY.get(getattr(model, "name", None))
    return entry[1] if entry else None


def list_models(pattern: str = "*", *, include_test: bool = True,
                task: Union[str, Iterable[str], None] = None) -> List[str]:
    """Sorted registered names matching a shell-style ``pattern`` (and of ``task``: a task name or
    a collection of them)."""
    tasks = (task,) if isinstance(task, str) else task
    names = sorted(n for n, (_, cfg) in _REGISTRY.items()
                   if fnmatch.fnmatch(n, pattern) and (tasks is None or cfg.task in tasks))
    if not include_test:
        names = [n for n in names if not n.startswith("test_")]
    return names


def catalog(pattern: str = "*", *, task: Union[str, Iterable[str], None] = None) -> Dict[str, str]:
    """``{name: one-line description}`` of the public models matching ``pattern`` (and ``task``)."""
    return {name: _REGISTRY[name][1].description for name in list_models(pattern, include_test=False, task=task)}


def find_layer(model: keras.Model, name: str) -> Tuple[keras.layers.Layer, keras.Model]:
    """``(layer, owner)``: the layer called ``name`` in ``model`` or in a model nested inside it
    (searched breadth first), with the (sub)model that holds it."""
    import keras

    queue, seen = [model], set()
    while queue:
        owner = queue.pop(0)
        for layer in owner.layers:
            if layer.name == name:
                return layer, owner
            if isinstance(layer, keras.Model) and id(layer) not in seen:
                seen.add(id(layer))
                queue.append(layer)
    raise ValueError(f"{model.name} has no layer {name!r}; its layers are "
                     f"{', '.join(repr(layer.name) for layer in model.layers)}.")


def feature_extractor(model: keras.Model, layer: Optional[str] = None) -> keras.Model:
    """A model from ``model``'s input to the output of ``layer`` (default: the cfg's
    ``feature_layer``). A layer inside a nested model is cut from that model's own input."""
    import keras

    cfg = cfg_of(model)
    name = layer or (cfg.feature_layer if cfg else None)
    if name is None:
        raise ValueError(f"{model.name} names no feature layer in its cfg; pass layer= one of "
                         f"{', '.join(repr(layer.name) for layer in model.layers)}.")
    found, owner = find_layer(model, name)
    return keras.Model(owner.inputs, found.output, name=f"{model.name}_{name}")
