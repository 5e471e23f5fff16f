"""artifacts: atomic UTF-8 writers, the run folder (refusing to mix runs, cleaning up after early
failures, one schema for config.json and metrics.json) and the reference manifest."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_cv_apps import artifacts


def test_write_labels_and_json(tmp_path):
    artifacts.write_labels(tmp_path / "labels.txt", ["cat", "dog", 3])
    assert (tmp_path / "labels.txt").read_text() == "cat\ndog\n3\n"
    with pytest.raises(ValueError, match="one-line"):
        artifacts.write_labels(tmp_path / "bad.txt", ["a\nb"])

    obj = {"acc": np.float32(0.5), "n": np.int64(3), "cm": np.eye(2, dtype="int32"), "ok": np.bool_(True),
           "path": tmp_path / "x", "sub": {"v": [np.float64(1.25)]}}
    artifacts.write_json(tmp_path / "out" / "m.json", obj)
    assert json.loads((tmp_path / "out" / "m.json").read_text()) == {
        "acc": 0.5, "n": 3, "cm": [[1, 0], [0, 1]], "ok": True, "path": str(tmp_path / "x"), "sub": {"v": [1.25]}}
    with pytest.raises(TypeError, match="cannot store a object"):
        artifacts.write_json(tmp_path / "m.json", {"f": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.txt", "out"]


def test_writers_are_utf8_whatever_the_locale(tmp_path):
    """Non-ASCII names survive in a process whose locale is plain ASCII."""
    script = (
        "import sys; from keras_cv_apps import artifacts as a; root = sys.argv[1]\n"
        "a.write_json(root + '/m.json', {'classe': 'caf\\u00e9 \\u2615'})\n"
        "a.write_csv(root + '/m.csv', ['file', 'issue'], [['na\\u00efve.png', 'flou']])\n"
        "a.write_text(root + '/r.html', '<p>\\u00dcn\\u00efc\\u00f6d\\u00e9</p>')\n")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "ascii"}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "m.json").read_text(encoding="utf-8")) == {"classe": "café ☕"}
    assert "naïve.png" in (tmp_path / "m.csv").read_text(encoding="utf-8")
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == "<p>Ünïcödé</p>"


def test_run_folder_refuses_an_existing_run_unless_told(tmp_path):
    path = tmp_path / "run"
    with artifacts.RunFolder(path, app="demo") as run:
        run.write_config(model="m", model_kwargs={"image_shape": (8, 8, 1)}, dataset={"spec": "digits"}, seed=0)
        artifacts.write_bytes(run.file("model.tflite"), b"x")
    (path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--overwrite"):
        artifacts.RunFolder(path, app="demo").open()
    artifacts.RunFolder(path, app="demo", overwrite=True).open()
    assert sorted(p.name for p in path.iterdir()) == ["notes.txt"]  # only what a run writes went
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"jpeg")
    with pytest.raises(FileExistsError, match="does not look like a run folder"):
        artifacts.RunFolder(other, app="demo", overwrite=True).open()
    assert (other / "cat.jpg").exists()


def test_run_folder_leaves_nothing_when_the_run_fails_early(tmp_path):
    path = tmp_path / "a" / "b" / "run"
    with pytest.raises(ValueError):
        with artifacts.RunFolder(path, app="demo"):
            raise ValueError("bad dataset")
    assert not (tmp_path / "a").exists()
    with pytest.raises(RuntimeError):
        with artifacts.RunFolder(path, app="demo") as run:
            artifacts.write_json(run.file("history.json"), {"loss": [1.0]})
            raise RuntimeError("late failure")
    assert (path / "history.json").exists()  # what was saved stays


def test_run_folder_refuses_a_file_and_an_unwritable_place(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        artifacts.RunFolder(blocker, app="demo").open()
    with pytest.raises(PermissionError, match="not writable"):
        artifacts.RunFolder(blocker / "run", app="demo").open()


def test_check_writable_names_the_blocking_file_or_folder_and_creates_nothing(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NotADirectoryError, match=r"lies under .*file'"):
        artifacts.check_writable(blocker / "new" / "out.csv")
    with pytest.raises(NotADirectoryError, match="cannot be a folder: it is a file"):
        artifacts.check_writable(blocker, folder=True)
    target = tmp_path / "new" / "deeper" / "out.csv"
    assert artifacts.check_writable(target) == target
    assert artifacts.check_writable(tmp_path / "report", folder=True) == tmp_path / "report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing created, the probe removed

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(artifacts.tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(PermissionError, match=r"cannot be written: folder .* is not writable \(Permission denied\)"):
        artifacts.check_writable(target, flag="--out")


def test_config_and_metrics_follow_one_schema(tmp_path):
    with artifacts.RunFolder(tmp_path / "run", app="demo") as run:
        config = run.write_config(model="lenet5", model_kwargs={"image_shape": (32, 32, 1)}, seed=3,
                                  dataset={"spec": "digits", "image_size": [32, 32]}, options={"augment": "light"},
                                  command="python -m apps.demo --seed 3")
        metrics = run.write_metrics(test={"top1": 0.5}, exports={"model.tflite": {"max_abs_diff": 0.0}},
                                    training={"epochs_run": 2})
    assert config == json.loads((tmp_path / "run" / "config.json").read_text())
    assert {"app", "command", "model", "dataset", "seed", "versions", "training", "options"} <= set(config)
    assert config["model"] == {"name": "lenet5", "kwargs": {"image_shape": [32, 32, 1]}}
    assert {"python", "numpy"} <= set(config["versions"])
    assert metrics["exports"] == {"model.tflite": {"max_abs_diff": 0.0}} and metrics["app"] == "demo"
    assert metrics["training"]["epochs_run"] == 2 and metrics["training"]["total_seconds"] >= 0


def test_manifest_only_for_runs_under_saved_models(tmp_path):
    run = artifacts.RunFolder(tmp_path / "runs" / "x", app="demo").open()
    artifacts.write_bytes(run.file("model.tflite"), b"abc")
    assert run.update_manifest({"top1": 1.0}) is None
    ref = artifacts.RunFolder(tmp_path / "saved_models" / "demo", app="demo").open()
    ref.write_config(model="m", model_kwargs={}, dataset={}, seed=0, command="python -m apps.demo")
    artifacts.write_bytes(ref.file("model.tflite"), b"abc")
    artifacts.write_bytes(ref.file("best.keras"), b"big")
    manifest = json.loads(ref.update_manifest({"top1": 1.0}).read_text())
    entry = manifest["demo"]
    assert entry["command"] == "python -m apps.demo" and entry["metrics"] == {"top1": 1.0}
    assert sorted(entry["files"]) == ["config.json", "model.tflite"]  # .keras files are not committed


def test_default_run_paths_are_new_folders(tmp_path):
    first = artifacts.default_run_path("lenet_train", root=tmp_path)
    first.mkdir(parents=True)
    second = artifacts.default_run_path("lenet_train", root=tmp_path)
    assert first.parent == second.parent == tmp_path / "lenet_train" and first != second
    assert not second.exists()
