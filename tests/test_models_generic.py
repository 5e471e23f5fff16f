"""Generic tests over the registry (DESIGN.md §10), dispatched on each name's `task`.

Every registered name: builds at its test shape, runs forward with the output contract of its task,
and round-trips its config. Every `test_*` variant: one fit step moves the weights, a `.keras` file
loads in a fresh process with equal outputs, and the TFLite export agrees with Keras.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import models  # noqa: E402

ALL = models.list_models()
TEST_VARIANTS = models.list_models("test_*")


def _inputs(cfg, n=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, size=(n, *cfg.test_image_shape)).astype("float32")


def _build(name):
    cfg = models.get_cfg(name)
    kwargs = {"image_shape": cfg.test_image_shape}
    return models.create(name, **kwargs), cfg


def _forward(model, cfg, x):
    if cfg.task == "siamese":
        return model([x, x[::-1]], training=False)
    return model(x, training=False)


@pytest.mark.parametrize("name", ALL)
def test_builds_and_meets_its_task_contract(name):
    model, cfg = _build(name)
    x = _inputs(cfg)
    y = keras.ops.convert_to_numpy(_forward(model, cfg, x))
    assert np.all(np.isfinite(y))
    if cfg.task == "classifier":
        assert y.shape == (len(x), model.output_shape[-1])
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    elif cfg.task in ("autoencoder", "vae"):
        assert y.shape == x.shape
        assert isinstance(model.encoder, keras.Model) and isinstance(model.decoder, keras.Model)
    elif cfg.task == "siamese":
        assert y.reshape(len(x), -1).shape[1] == 1 and np.all(y >= 0)
        assert isinstance(model.embedding, keras.Model)
    elif cfg.task in ("embedding", "features"):
        assert y.ndim == 2 and y.shape[0] == len(x)


@pytest.mark.parametrize("name", ALL)
def test_config_round_trip_gives_the_same_function(name):
    model, cfg = _build(name)
    clone = model.__class__.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    x = _inputs(cfg)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(_forward(clone, cfg, x)),
        keras.ops.convert_to_numpy(_forward(model, cfg, x)),
        atol=1e-6,
    )


def _fit_one_step(model, cfg):
    """Compile for the task and take one optimizer step on a tiny batch."""
    from keras_cv_apps import losses

    x = _inputs(cfg, n=8, seed=1)
    labels = np.arange(8, dtype="int32") % 2
    if cfg.task == "classifier":
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model.fit(x, labels, epochs=1, verbose=0)
    if cfg.task == "autoencoder":
        model.compile(optimizer="adam", loss="mse")
        return model.fit(x, x, epochs=1, verbose=0)
    if cfg.task == "vae":
        model.compile(optimizer="adam")
        return model.fit(x, epochs=1, batch_size=8, verbose=0)
    if cfg.task == "siamese":
        model.compile(optimizer="adam", loss=losses.ContrastiveLoss())
        return model.fit([x, x[::-1]], labels.astype("float32"), epochs=1, verbose=0)
    if cfg.task == "embedding":
        model.compile(optimizer="adam", loss=losses.TripletLoss())
        return model.fit(x, labels, epochs=1, batch_size=8, verbose=0)
    pytest.skip(f"no fit contract for task {cfg.task!r}")


def _exportable(model, cfg):
    """The single-input, single-output models a phone app receives for this task."""
    if cfg.task in ("autoencoder", "vae"):
        return {"encoder": model.encoder, "decoder": model.decoder}
    if cfg.task == "siamese":
        return {"embedding": model.embedding}
    return {"model": model}


@pytest.fixture(scope="module")
def trained_test_variants(tmp_path_factory):
    """Each `test_*` variant after one fit step, saved as .keras with its inputs and outputs."""
    root = tmp_path_factory.mktemp("test_variants")
    out = {}
    for name in TEST_VARIANTS:
        model, cfg = _build(name)
        before = [w.copy() for w in model.get_weights()]
        history = _fit_one_step(model, cfg)
        x = _inputs(cfg, seed=2)
        np.save(root / f"{name}_x.npy", x)
        expected = keras.ops.convert_to_numpy(_forward(model, cfg, x))
        model.save(root / f"{name}.keras")
        out[name] = {"model": model, "cfg": cfg, "before": before, "history": history, "expected": expected}
    return root, out


@pytest.mark.parametrize("name", TEST_VARIANTS)
def test_one_fit_step_moves_the_weights(name, trained_test_variants):
    _, trained = trained_test_variants
    item = trained[name]
    losses = item["history"].history["loss"]
    assert np.all(np.isfinite(losses))
    changed = [not np.allclose(a, b) for a, b in zip(item["before"], item["model"].get_weights())]
    assert any(changed)


def test_keras_files_load_in_a_fresh_process(trained_test_variants):
    """A saved `.keras` loads with `keras.models.load_model` after importing only the package."""
    root, trained = trained_test_variants
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np, keras
        import keras_cv_apps.models  # registers every serializable class of the package
        root, names, siamese = {str(root)!r}, {list(trained)!r}, {[n for n, t in trained.items() if t["cfg"].task == "siamese"]!r}
        for name in names:
            model = keras.models.load_model(f"{{root}}/{{name}}.keras")
            x = np.load(f"{{root}}/{{name}}_x.npy")
            y = model([x, x[::-1]], training=False) if name in siamese else model(x, training=False)
            np.save(f"{{root}}/{{name}}_loaded.npy", keras.ops.convert_to_numpy(y))
        print(json.dumps(names))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == list(trained)
    for name, item in trained.items():
        np.testing.assert_allclose(np.load(root / f"{name}_loaded.npy"), item["expected"], atol=1e-5, err_msg=name)


@pytest.mark.parametrize("name", TEST_VARIANTS)
def test_tflite_float32_export_agrees_with_keras(name, trained_test_variants, tmp_path):
    from keras_cv_apps import export

    _, trained = trained_test_variants
    item = trained[name]
    for part, sub in _exportable(item["model"], item["cfg"]).items():
        path = export.export_tflite(sub, tmp_path / f"{part}.tflite")
        samples = np.random.default_rng(3).uniform(0, 1, size=(4, *sub.input_shape[1:])).astype("float32")
        report = export.verify_tflite(sub, path, samples)
        assert report["max_abs_diff"] <= 1e-5, (part, report)
