"""What each task means, in one table used by the generic tests and by the apps.

A `Task` knows how to make example inputs for a model of that task, run it forward, take one
training step on a tiny batch, check its output contract, and which single-input parts of the
model a phone receives (the files an app exports). Apps check ``--model`` against the tasks they
train with `check_model` before any work starts.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Union

import numpy as np

from keras_cv_apps.models._cfg import ModelCfg
from keras_cv_apps.models._registry import _REGISTRY, get_cfg, list_models

if TYPE_CHECKING:
    import keras


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    description: str
    example_inputs: Callable  # (image_shape, n, seed) -> what the model is called on
    forward: Callable  # (model, inputs) -> outputs
    fit_one_batch: Callable  # (model, inputs) -> keras History
    check_output: Callable  # (model, inputs, outputs) -> None, asserts the contract
    parts: Callable  # model -> {file stem: single-input keras.Model}


def _images(image_shape, n=4, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=(n, *image_shape)).astype("float32")


def _pairs(image_shape, n=4, seed=0):
    x = _images(image_shape, n, seed)
    return [x, x[::-1]]


def _call(model, inputs):
    import keras

    return keras.ops.convert_to_numpy(model(inputs, training=False))


def _labels(n):
    return np.arange(n, dtype="int32") % 2


def _fit_classifier(model, x):
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model.fit(x, _labels(len(x)), epochs=1, verbose=0)


def _fit_autoencoder(model, x):
    model.compile(optimizer="adam", loss="mse")
    return model.fit(x, x, epochs=1, verbose=0)


def _fit_vae(model, x):
    model.compile(optimizer="adam")
    return model.fit(x, epochs=1, batch_size=len(x), verbose=0)


def _fit_siamese(model, pair):
    from keras_cv_apps.losses import ContrastiveLoss

    model.compile(optimizer="adam", loss=ContrastiveLoss())
    return model.fit(pair, _labels(len(pair[0])).astype("float32"), epochs=1, verbose=0)


def _fit_embedding(model, x):
    from keras_cv_apps.losses import TripletLoss

    model.compile(optimizer="adam", loss=TripletLoss())
    return model.fit(x, _labels(len(x)), epochs=1, batch_size=len(x), verbose=0)


def _check_classifier(model, x, y):
    assert y.shape == (len(x), model.output_shape[-1]), y.shape
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


def _check_reconstruction(model, x, y):
    import keras

    assert y.shape == x.shape, (y.shape, x.shape)
    assert isinstance(model.encoder, keras.Model) and isinstance(model.decoder, keras.Model)


def _check_distance(model, pair, y):
    assert y.reshape(len(pair[0]), -1).shape[1] == 1 and np.all(y >= 0)


def _check_embedding(model, x, y):
    assert y.ndim == 2 and y.shape[0] == len(x)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, rtol=1e-4)


TASKS: Dict[str, Task] = {
    "classifier": Task("classifier", "image -> class probabilities", _images, _call, _fit_classifier,
                       _check_classifier, lambda m: {"model": m}),
    "siamese": Task("siamese", "two images -> their embedding distance", _pairs, _call, _fit_siamese,
                    _check_distance, lambda m: {"embedding": m.embedding}),
    "embedding": Task("embedding", "image -> unit embedding (behind a training head)", _images, _call,
                      _fit_embedding, _check_embedding, lambda m: {"embedding": m.embedding}),
    "autoencoder": Task("autoencoder", "image -> code -> image", _images, _call, _fit_autoencoder,
                        _check_reconstruction, lambda m: {"encoder": m.encoder, "decoder": m.decoder}),
    "vae": Task("vae", "image -> Gaussian code -> image", _images, _call, _fit_vae, _check_reconstruction,
                lambda m: {"encoder": m.encoder, "decoder": m.decoder}),
}


def task_of(name_or_model: Union[str, keras.Model]) -> Task:
    """The `Task` of a registered name or of a model the registry built."""
    from keras_cv_apps.models._registry import cfg_of

    cfg = get_cfg(name_or_model) if isinstance(name_or_model, str) else cfg_of(name_or_model)
    if cfg is None:
        raise ValueError(f"{getattr(name_or_model, 'name', name_or_model)!r} was not built by the registry.")
    return TASKS[cfg.task]


def check_model(name: str, tasks: Iterable[str], *, app: str = "this app") -> ModelCfg:
    """The cfg of ``name`` if it is a registered model of one of ``tasks``; otherwise one sentence
    naming the models ``app`` can train (never the tiny ``test_*`` variants)."""
    tasks = tuple(tasks)
    valid = ", ".join(list_models(task=tasks, include_test=False))
    kinds = " or ".join(tasks)
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model {name!r}; {app} trains {kinds} models: {valid}.")
    cfg = get_cfg(name)
    if cfg.task not in tasks:
        raise ValueError(f"Model {name!r} is a{'n' if cfg.task[0] in 'aeiou' else ''} {cfg.task} model; "
                         f"{app} trains {kinds} models: {valid}.")
    return cfg
