"""Training that outgrows one run: TF_CONFIG checks, mixed precision and XLA, and resuming from
`callbacks.RunBackup` (in process, and an app killed with SIGKILL mid-run then resumed)."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_cv_apps import training

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def splits():
    from keras_cv_apps import data

    return data.load("digits", image_size=8, val_fraction=0.2, test_fraction=0.1, seed=0)


def dense_model():
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10, activation="softmax")])


# ------------------------------------------------------------------------------ TF_CONFIG


def _tf_config(cluster, kind="worker", index=0):
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})}


def test_tf_config_gives_ranks_and_refuses_bad_values_in_one_sentence():
    assert training.cluster({}) == training.Cluster()
    two = {"chief": ["a:1"], "worker": ["b:2", "c:3"]}
    place = training.cluster(_tf_config(two, "worker", 1))
    assert (place.workers, place.rank, place.is_chief, place.addresses) == (3, 2, False, ("a:1", "b:2", "c:3"))
    assert training.cluster(_tf_config(two, "chief", 0)).is_chief
    assert training.cluster(_tf_config({"worker": ["a:1", "b:2"]}, "worker", 0)).is_chief
    bad = [({"TF_CONFIG": "{cluster: 1"}, "TF_CONFIG is not valid JSON"),
           (_tf_config({"worker": ["a:1", "b:2"]}, "worker", 2), r"index 2 is out of range .* use 0\.\.1"),
           (_tf_config({"worker": ["a:1"]}, "ps", 0), "task type 'ps' is not in its cluster"),
           (_tf_config({"worker": ["a:1"], "ps": ["b:2"]}), "parameter servers"),
           ({"TF_CONFIG": "[]"}, "needs a 'cluster' and a 'task'")]
    for environ, message in bad:
        with pytest.raises(ValueError, match=message):
            training.cluster(environ)


def test_apps_refuse_a_bad_tf_config_with_exit_2(tmp_path, monkeypatch, capsys):
    from apps import lenet_train

    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1"]},
                                                "task": {"type": "worker", "index": 3}}))
    rc = lenet_train.main(["--strategy", "multiworker", "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "index 3 is out of range" in err[0]
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------- precision and XLA


def test_mixed_precision_and_xla_train_and_give_back_a_float32_model(splits, tmp_path, caplog):
    seen = {}

    class Look(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["policy"] = self.model.dtype_policy.name
            seen["optimizer"] = type(self.model.optimizer).__name__
            seen["output"] = self.model(splits.arrays("val")[0][:2]).dtype

    training.set_seed(0)
    result = training.fit(dense_model, splits, run_dir=tmp_path / "bf16", epochs=6, learning_rate=1e-2,
                          precision="mixed_bfloat16", jit_compile=True, extra_callbacks=[Look()], verbose=0)
    assert seen == {"policy": "mixed_bfloat16", "optimizer": "Adam", "output": "float32"}
    assert result.history["val_accuracy"][-1] > 0.85
    assert result.model.dtype_policy.name == "float32"
    x, _ = splits.arrays("test")
    assert result.model.predict(x, verbose=0).dtype == np.float32
    with caplog.at_level(logging.WARNING, logger="keras_cv_apps.training"):
        result = training.fit(dense_model, splits, run_dir=tmp_path / "f16", epochs=2, learning_rate=1e-2,
                               precision="mixed_float16", extra_callbacks=[Look()], verbose=0)
    assert "mixed_float16 on a CPU is slow" in caplog.text
    assert seen["optimizer"] == "LossScaleOptimizer" and seen["output"] == "float32"
    assert np.isfinite(result.history["loss"]).all()
    with pytest.raises(ValueError, match="'float32', 'mixed_float16', 'mixed_bfloat16'"):
        training.fit(dense_model, splits, run_dir=tmp_path / "x", precision="float16")


# ---------------------------------------------------------------------------- resume


class StopAt(keras.callbacks.Callback):
    """Fail at the start of epoch ``epoch`` (0-based), as a killed run would stop."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("stopped")


def _fit(splits, run_dir, **kwargs):
    training.set_seed(0)
    return training.fit(dense_model, splits, run_dir=run_dir, epochs=6, learning_rate=1e-2, schedule="cosine",
                        backup_dir=run_dir / "backup", verbose=0, **kwargs)


def test_a_stopped_fit_continues_from_its_backup(splits, tmp_path):
    whole = _fit(splits, tmp_path / "whole")
    with pytest.raises(RuntimeError, match="stopped"):
        _fit(splits, tmp_path / "cut", extra_callbacks=[StopAt(3)])
    meta = json.loads((tmp_path / "cut" / "backup" / "training_metadata.json").read_text())
    assert meta["epoch"] == 3 and sorted(os.listdir(tmp_path / "cut" / "backup")) == [
        "epoch-00003.best.npz", "epoch-00003.weights.h5", "training_metadata.json"]
    resumed = _fit(splits, tmp_path / "cut")
    assert resumed.epochs_run == 6
    history = json.loads((tmp_path / "cut" / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3, 4, 5, 6]
    # the cosine schedule continues from the restored optimizer step, it does not restart
    np.testing.assert_allclose(resumed.history["learning_rate"], whole.history["learning_rate"], rtol=1e-6)
    assert abs(resumed.history["val_accuracy"][-1] - whole.history["val_accuracy"][-1]) < 0.03
    states = [json.loads((tmp_path / run / "backup" / "training_metadata.json").read_text())["callbacks"]
              for run in ("whole", "cut")]
    assert states[0]["EarlyStopping"]["best_epoch"] == states[1]["EarlyStopping"]["best_epoch"]
    assert states[1]["HistoryWriter"]["history"]["epoch"] == [1, 2, 3, 4, 5, 6]


def _app(out, *extra, model="lenet5"):
    return ["--model", model, "--image-size", "16", "--epochs", "8", "--batch-size", "32", "--quantize",
            "none", "--quiet", "--output", str(out), *extra]


@pytest.mark.large  # a second process training for about a minute; the in-process resume above stays in the suite
def test_an_app_killed_mid_run_resumes_from_its_last_epoch(tmp_path, capsys):
    from apps import alexnet_train, lenet_train

    out = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "apps.lenet_train", *_app(out)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meta = out / "backup" / "training_metadata.json"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if meta.exists() and json.loads(meta.read_text())["epoch"] >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    kept = json.loads(meta.read_text())["epoch"]
    assert 2 <= kept < 8 and not (out / "metrics.json").exists()

    refusals = [(lenet_train, _app(out)), (lenet_train, _app(out, "--resume", model="test_lenet5")),
                (lenet_train, _app(out, "--resume", "--epochs", "9")), (alexnet_train, _app(out, "--resume"))]
    for app, argv in refusals:
        assert app.main(argv) == 2
    err = capsys.readouterr().err
    assert "holds an unfinished run" in err and "pass --resume with the same command" in err
    assert "holds a run of model 'lenet5', not 'test_lenet5'" in err
    assert "--epochs 8 (now 9)" in err and "holds a run of 'lenet_train', not 'alexnet_train'" in err

    assert lenet_train.main(_app(out, "--resume")) == 0
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == list(range(1, 9))  # every epoch once: the first ones from the backup
    metrics = json.loads((out / "metrics.json").read_text())
    # an uninterrupted run of this command reaches 86.7%
    assert metrics["training"]["epochs_run"] == 8 and metrics["test"]["top1"] > 0.75
    assert not (out / "backup").exists()  # finished: nothing left to resume
    assert lenet_train.main(_app(out, "--resume")) == 2
    assert "has finished: there is nothing to resume" in capsys.readouterr().err


# ------------------------------------------------------------------- one iterator per run


class Recorder(keras.layers.Layer):
    """Passes its input on; in an eager step it keeps what it saw (train or validation)."""

    def __init__(self, log):
        super().__init__()
        self.keep = log.append  # a list attribute would become a copy tracked by the layer

    def call(self, x, training=None):
        if hasattr(x, "numpy"):
            self.keep((bool(training), x.numpy()))
        return x


def _id_folder(root, per_class=10):
    """Three classes of 8x8 gray PNGs, each of one value: a unique id (3 * i + class + 1)."""
    import cv2

    for c in range(3):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            cv2.imwrite(str(root / f"c{c}" / f"{i:02d}.png"), np.full((8, 8), 3 * i + c + 1, np.uint8))
    return root


def _recorded_fit(splits, run_dir, epochs):
    log = []
    model = keras.Sequential([keras.Input((8, 8, 1)), Recorder(log), keras.layers.Flatten(),
                              keras.layers.Dense(splits.num_classes, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", run_eagerly=True)
    training.fit(model, splits, run_dir=run_dir, epochs=epochs, verbose=0)
    return ([x for train, x in log if train], [x for train, x in log if not train])


def test_fit_keeps_one_iterator_and_each_epoch_sees_every_file_once(tmp_path, monkeypatch):
    import tensorflow as tf

    from keras_cv_apps import data

    root = _id_folder(tmp_path / "ids")

    def load(augment="none"):
        return data.load(f"dir:{root}", image_size=8, batch_size=4, augment=augment, seed=3, scale="unit")

    splits = load()
    started = []
    original = tf.data.Dataset.__iter__
    monkeypatch.setattr(tf.data.Dataset, "__iter__", lambda ds: started.append(ds) or original(ds))
    train, val = _recorded_fit(splits, tmp_path / "run", epochs=3)
    monkeypatch.undo()
    assert sum(ds is not splits.val for ds in started) == 1  # one train iterator for the whole run

    steps, val_steps = int(splits.train.cardinality()), int(splits.val.cardinality())
    assert len(train) == 3 * steps and len(val) == 3 * val_steps and len(splits.indices["train"]) % 4  # a short batch
    ids = lambda batches: np.rint(np.concatenate(batches)[:, 0, 0, 0] * 255).astype(int).tolist()  # noqa: E731
    expected = sorted(ids([splits.arrays("train")[0]]))
    epochs = [ids(train[e * steps:(e + 1) * steps]) for e in range(3)]
    assert all(sorted(epoch) == expected for epoch in epochs)  # every file once per epoch
    assert len({tuple(epoch) for epoch in epochs}) == 3  # in a new order each epoch
    assert all(sorted(ids(val[e * val_steps:(e + 1) * val_steps])) == sorted(ids([splits.arrays("val")[0]]))
               for e in range(3))
    # the same batches as Keras re-iterating the dataset every epoch would see (same seed, same stream)
    fresh = load().train
    assert epochs == [ids([x for x, _ in fresh.as_numpy_iterator()]) for _ in range(3)]

    augmented, _ = _recorded_fit(load("digits"), tmp_path / "augmented", epochs=2)
    fresh = load("digits").train
    again = [x for _ in range(2) for x, _ in fresh.as_numpy_iterator()]
    assert len(augmented) == len(again) and all(np.array_equal(a, b) for a, b in zip(augmented, again))


def test_the_runs_stream_has_no_autotuning_thread_and_the_same_batches():
    """TensorFlow's iterator destructor often waits for the tf.data autotuning thread's next
    wake-up (up to a minute after a long run): the stream `fit` hands to Keras is built without
    that thread, its batches unchanged."""
    import tensorflow as tf

    stream = training.repeated(tf.data.Dataset.range(10).batch(3))
    assert stream.options().autotune.enabled is False
    assert [b.numpy().tolist() for b in stream.take(5)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9], [0, 1, 2]]
