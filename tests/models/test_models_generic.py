"""Generic tests over the registry, dispatched through the task table (`models._tasks`).

Every registered name builds at its test shape, meets its task's output contract and
round-trips its config. Every tiny `test_*` variant (one fixture per name) takes one fit step,
exports to TFLite with numerical parity, and (`test_serialization.py`) loads from a ``.keras``
file in a fresh process.
"""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import export, models  # noqa: E402
from keras_cv_apps.models._tasks import TASKS, task_of  # noqa: E402

ALL = models.list_models()
TEST_VARIANTS = models.list_models("test_*")


def _built(name):
    cfg = models.get_cfg(name)
    return models.create(name, image_shape=cfg.test_image_shape), cfg


def test_every_task_has_an_entry_and_every_family_a_test_variant():
    assert set(models.TASKS) == set(TASKS)
    tasks_with_test_variants = {models.get_cfg(n).task for n in TEST_VARIANTS}
    assert tasks_with_test_variants == {models.get_cfg(n).task for n in ALL}


@pytest.mark.parametrize("name", ALL)
def test_builds_and_meets_its_task_contract(name):
    model, cfg = _built(name)
    task = task_of(name)
    x = task.example_inputs(cfg.test_image_shape)
    y = task.forward(model, x)
    assert np.all(np.isfinite(y))
    task.check_output(model, x, y)
    assert models.cfg_of(model) is cfg


@pytest.mark.parametrize("name", ALL)
def test_config_round_trip_gives_the_same_function(name):
    model, cfg = _built(name)
    clone = model.__class__.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    task = task_of(name)
    x = task.example_inputs(cfg.test_image_shape)
    np.testing.assert_allclose(task.forward(clone, x), task.forward(model, x), atol=1e-6)


@pytest.fixture(scope="module", params=TEST_VARIANTS)
def trained(request):
    """One `test_*` variant after one fit step (built once per module and name)."""
    name = request.param
    model, cfg = _built(name)
    before = [w.copy() for w in model.get_weights()]
    task = task_of(name)
    history = task.fit_one_batch(model, task.example_inputs(cfg.test_image_shape, n=8, seed=1))
    return name, model, cfg, before, history


def test_one_fit_step_moves_the_weights(trained):
    name, model, _, before, history = trained
    assert np.all(np.isfinite(history.history["loss"])), name
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights())), name


def test_tflite_float32_export_agrees_with_keras(trained, tmp_path):
    name, model, cfg, _, _ = trained
    assert cfg.tflite
    for part, sub in task_of(model).parts(model).items():
        path = export.export_tflite(sub, tmp_path / f"{part}.tflite")
        samples = np.random.default_rng(3).uniform(0, 1, size=(4, *sub.input_shape[1:])).astype("float32")
        report = export.verify_tflite(sub, path, samples)
        assert report["max_abs_diff"] <= 1e-5, (name, part, report)
