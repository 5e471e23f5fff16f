"""training.fit on real 8x8 digits (`data.load("digits")`): it learns, leaves a complete run folder, restores the best
weights, follows each learning-rate schedule, survives Ctrl-C and NaN losses, and rejects bad
arguments before training starts."""

import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cv_apps import callbacks, training

LN10 = math.log(10.0)  # cross-entropy of a uniform prediction over 10 classes


@pytest.fixture(scope="module")
def splits():
    from keras_cv_apps import data

    return data.load("digits", image_size=8, val_fraction=0.2, test_fraction=0.1, seed=0)


def dense_model():
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])


class ZeroWeightsFrom(keras.callbacks.Callback):
    """From epoch ``start`` on, zero every weight after each batch: the model then predicts
    the uniform distribution, so its validation loss is exactly ln(10) - a planted bad epoch."""

    def __init__(self, start):
        super().__init__()
        self.start = start

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch >= self.start:
            self.model.set_weights([np.zeros_like(w) for w in self.model.get_weights()])


def val_loss_of(model, splits):
    x, y = splits.arrays("val")
    probs = model.predict(x, verbose=0)
    return float(np.mean(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0))))


def test_fit_learns_digits_and_writes_run_folder(splits, tmp_path):
    training.set_seed(0)
    history = training.fit(dense_model, splits, run_dir=tmp_path, epochs=6, learning_rate=1e-2,
                           schedule="constant", verbose=0)
    assert max(history.history["val_accuracy"]) > 0.85  # chance is 0.1
    assert sorted(os.listdir(tmp_path)) == [
        "best.keras", "history.csv", "history.json", "training_curves.png"]
    logged = json.loads((tmp_path / "history.json").read_text())
    assert logged["epoch"] == [1, 2, 3, 4, 5, 6]
    assert logged["learning_rate"] == pytest.approx([1e-2] * 6)
    assert logged["val_loss"] == pytest.approx(history.history["val_loss"])
    assert len((tmp_path / "history.csv").read_text().strip().splitlines()) == 7
    assert (tmp_path / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    best = keras.models.load_model(tmp_path / "best.keras")
    assert val_loss_of(best, splits) == pytest.approx(min(logged["val_loss"]), rel=1e-4)


def test_early_stopping_restores_the_best_epoch(splits, tmp_path):
    training.set_seed(0)
    model = dense_model()
    history = training.fit(model, splits, run_dir=tmp_path, epochs=20, learning_rate=1e-2,
                           schedule="constant", patience=2, verbose=0,
                           extra_callbacks=[ZeroWeightsFrom(3)])
    val = history.history["val_loss"]
    assert len(val) == 5  # best at epoch 3, two epochs of patience, stop
    assert val[3:] == pytest.approx([LN10, LN10], rel=1e-5)
    assert val_loss_of(model, splits) == pytest.approx(min(val), rel=1e-4) and min(val) < 1.0


def test_plateau_halves_the_learning_rate_when_val_loss_stalls(splits, tmp_path):
    history = training.fit(dense_model, (splits.train, splits.val), run_dir=tmp_path, epochs=6,
                           learning_rate=1e-2, schedule="plateau", patience=6, verbose=0,
                           extra_callbacks=[ZeroWeightsFrom(1)])
    # patience 6 -> plateau patience 2: epochs 2 and 3 stall, the rate halves after epoch 3
    # (the log shows the rate each epoch trained with), again after epoch 5.
    assert history.history["learning_rate"] == pytest.approx(
        [1e-2, 1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3])


def linear_model():
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(10, activation="softmax")])


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_warmup_schedules_follow_their_formula(splits, tmp_path, schedule):
    lr, steps, epochs = 0.01, 5, 4  # 20 steps in all
    history = training.fit(linear_model, splits, run_dir=tmp_path, epochs=epochs,
                           learning_rate=lr, schedule=schedule, steps_per_epoch=steps, verbose=0)
    # Logged at the end of epoch e: the rate at optimizer step 5 * (e + 1).
    if schedule == "cosine":  # warm-up from 0 over 1 step, cosine to 0 over the other 19
        expected = [lr * 0.5 * (1 + math.cos(math.pi * (s - 1) / 19)) for s in (5, 10, 15, 20)]
        assert expected[-1] == 0.0
    else:  # warm-up from lr/25 over 6 steps, cosine to lr/25e4 over the other 14
        low, final = lr / 25, lr / 25e4
        expected = [low + (lr - low) * 5 / 6] + [
            final + (lr - final) * 0.5 * (1 + math.cos(math.pi * (s - 6) / 14))
            for s in (10, 15, 20)]
    assert history.history["learning_rate"] == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_mirrored_strategy_trains_a_rebuilt_model(splits, tmp_path):
    model = linear_model()
    before = model.get_weights()[0].copy()
    history = training.fit(model, splits, run_dir=tmp_path, epochs=2, learning_rate=1e-2,
                           strategy="mirrored", verbose=0)
    trained = history.model
    assert isinstance(trained.distribute_strategy, tf.distribute.MirroredStrategy)
    assert history.history["loss"][1] < history.history["loss"][0]
    # The model passed in receives the trained (best) weights.
    np.testing.assert_array_equal(model.get_weights()[0], trained.get_weights()[0])
    assert not np.allclose(model.get_weights()[0], before)


def test_ctrl_c_keeps_the_best_checkpoint_and_history(splits, tmp_path):
    class CtrlC(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        training.fit(linear_model, splits, run_dir=tmp_path, epochs=10, learning_rate=1e-2,
                     verbose=0, extra_callbacks=[CtrlC()])
    assert sorted(os.listdir(tmp_path)) == [  # no temporary file left
        "best.keras", "history.csv", "history.json", "training_curves.png"]
    logged = json.loads((tmp_path / "history.json").read_text())
    assert logged["epoch"] == [1, 2]
    best = keras.models.load_model(tmp_path / "best.keras")
    assert val_loss_of(best, splits) == pytest.approx(min(logged["val_loss"]), rel=1e-4)


def test_nan_loss_raises_diverged_and_restores_good_weights(splits, tmp_path):
    class Poison(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch == 2 and batch == 1:
                kernel = self.model.layers[-1].kernel
                kernel.assign(np.full(kernel.shape, np.nan, "float32"))

    model = linear_model()
    with pytest.raises(training.TrainingDivergedError, match="epoch 3, batch 2.*epoch 2"):
        training.fit(model, splits, run_dir=tmp_path, epochs=10, learning_rate=1e-2,
                     schedule="constant", verbose=0, extra_callbacks=[Poison()])
    assert all(np.isfinite(w).all() for w in model.get_weights())
    logged = json.loads((tmp_path / "history.json").read_text())
    assert logged["loss"][2] is None  # NaN is stored as null, the JSON stays valid
    best = keras.models.load_model(tmp_path / "best.keras")
    assert val_loss_of(best, splits) == pytest.approx(logged["val_loss"][1], rel=1e-4)


def test_own_loss_models_are_not_given_the_classifier_loss(splits, tmp_path):
    class AutoEncoder(keras.Model):
        """Reconstructs its input; computes and tracks its loss in train_step/test_step."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.tracker = keras.metrics.Mean(name="loss")

        @property
        def metrics(self):
            return [self.tracker]

        def _loss(self, data):
            x = data[0] if isinstance(data, tuple) else data
            loss = keras.ops.mean(keras.ops.square(self(x, training=True) - x))
            self.tracker.update_state(loss)
            return loss

        def train_step(self, data):
            with tf.GradientTape() as tape:
                loss = self._loss(data)
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply(grads, self.trainable_weights)
            return {"loss": self.tracker.result()}

        def test_step(self, data):
            self._loss(data)
            return {"loss": self.tracker.result()}

    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Reshape((8, 8, 1))(keras.layers.Dense(64, activation="sigmoid")(
        keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inputs))))
    model = AutoEncoder(inputs, outputs)
    history = training.fit(model, splits, run_dir=tmp_path, epochs=3, learning_rate=1e-2,
                           verbose=0)
    assert model.loss is None
    assert sorted(k for k in history.history if k != "learning_rate") == ["loss", "val_loss"]
    assert history.history["val_loss"][-1] < history.history["val_loss"][0]


def test_given_loss_is_used_for_image_targets(splits, tmp_path):
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Reshape((8, 8, 1))(
        keras.layers.Dense(64, activation="sigmoid")(keras.layers.Flatten()(inputs)))
    model = keras.Model(inputs, outputs)
    pairs = splits.train.map(lambda x, y: (x, x)), splits.val.map(lambda x, y: (x, x))
    history = training.fit(model, pairs, run_dir=tmp_path, epochs=2, learning_rate=1e-2,
                           loss="mse", verbose=0)
    assert model.loss == "mse" and "accuracy" not in history.history
    assert history.history["val_loss"][-1] < history.history["val_loss"][0]


def test_label_smoothing_ema_adamw_recipe_learns(splits, tmp_path):
    training.set_seed(1)
    model = dense_model()
    history = training.fit(model, splits, run_dir=tmp_path, epochs=8, learning_rate=1e-2,
                           optimizer="adamw", weight_decay=1e-4, schedule="cosine",
                           label_smoothing=0.1, ema=True, verbose=0)
    assert model.optimizer.use_ema and model.optimizer.weight_decay == pytest.approx(1e-4)
    assert model.loss.label_smoothing == 0.1
    assert history.history["val_accuracy"][-1] > 0.7


def test_smoothed_loss_matches_hand_formula_and_round_trips():
    loss = training.SparseCategoricalCrossentropyWithSmoothing(label_smoothing=0.1)
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]], "float32")
    # Targets smoothed to 0.9 * onehot + 0.1 / 3.
    on, off = 0.9 + 0.1 / 3, 0.1 / 3
    rows = [-(on * math.log(0.7) + off * math.log(0.2) + off * math.log(0.1)),
            -(off * math.log(0.1) + on * math.log(0.6) + off * math.log(0.3))]
    assert float(loss(np.array([0, 1]), probs)) == pytest.approx(np.mean(rows), rel=1e-5)
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert clone.get_config() == loss.get_config()
    assert float(clone(np.array([0, 1]), probs)) == pytest.approx(np.mean(rows), rel=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    ({"optimizer": "adagrad"}, "Unknown optimizer 'adagrad'; choose one of 'adam', 'adamw', 'sgd'"),
    ({"schedule": "step"}, "Unknown schedule 'step'; choose one of 'plateau', 'cosine'"),
    ({"strategy": "tpu"}, "Unknown strategy 'tpu'; choose one of 'default', 'mirrored'"),
    ({"label_smoothing": 1.5}, "label_smoothing"),
    ({"epochs": 0}, "epochs must be >= 1"),
])
def test_bad_arguments_raise_before_training(splits, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        training.fit(linear_model, splits, run_dir=tmp_path / "run", **kwargs)
    assert not (tmp_path / "run").exists()


def test_unwritable_run_dir_is_reported(splits, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="run_dir .* is not a writable folder"):
        training.fit(linear_model, splits, run_dir=blocker / "run", verbose=0)


def test_default_callbacks_per_schedule(tmp_path):
    kinds = {s: [type(c).__name__ for c in callbacks.default_callbacks(tmp_path, schedule=s)]
             for s in training.SCHEDULES}
    assert "ReduceLROnPlateau" in kinds["plateau"]
    assert all("ReduceLROnPlateau" not in kinds[s] for s in ("cosine", "onecycle", "constant"))
    assert {"EarlyStopping", "BestModelCheckpoint", "HistoryWriter", "NanGuard"} <= set(
        kinds["cosine"])
    assert callbacks.monitor_mode("val_accuracy") == "max"
    assert callbacks.monitor_mode("val_loss") == "min"


def test_checkpoint_interrupted_mid_save_keeps_the_previous_file(tmp_path):
    model = linear_model()
    checkpoint = callbacks.BestModelCheckpoint(tmp_path / "best.keras", monitor="val_loss")
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    checkpoint.on_epoch_end(0, {"val_loss": 1.0})
    saved = (tmp_path / "best.keras").read_bytes()

    def half_save(path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a model")
        raise KeyboardInterrupt

    model.save = half_save
    with pytest.raises(KeyboardInterrupt):
        checkpoint.on_epoch_end(1, {"val_loss": 0.5})
    assert os.listdir(tmp_path) == ["best.keras"]
    assert (tmp_path / "best.keras").read_bytes() == saved
    checkpoint.on_epoch_end(2, {"val_loss": float("nan")})  # never counts as an improvement
    assert checkpoint.best == 1.0 and checkpoint.best_epoch == 0


@pytest.mark.large
def test_multiworker_strategy_runs_as_a_single_worker(tmp_path):
    import subprocess
    import sys

    script = (
        "import numpy as np, keras, tensorflow as tf\n"
        "from keras_cv_apps import training\n"
        "x = np.random.default_rng(0).normal(size=(256, 4)).astype('float32')\n"
        "y = (x[:, 0] > 0).astype('int32')\n"
        "ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)\n"
        "build = lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, "
        "activation='softmax')])\n"
        f"h = training.fit(build, (ds, ds), run_dir={str(tmp_path)!r}, epochs=3, "
        "learning_rate=0.05, strategy='multiworker', verbose=0)\n"
        "print(type(h.model.distribute_strategy).__name__, h.history['val_accuracy'][-1])\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=300, check=True).stdout.split()
    assert out[-2] == "CollectiveAllReduceStrategy" and float(out[-1]) > 0.8


def test_a_classifier_must_match_the_dataset_classes(splits, tmp_path):
    wrong = keras.Sequential([keras.Input(splits.image_shape), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    with pytest.raises(ValueError, match="has 3 outputs but the dataset has 10 classes"):
        training.fit(wrong, splits, run_dir=tmp_path / "run", epochs=1)


def test_progress_is_a_line_per_epoch_when_not_on_a_terminal(monkeypatch):
    import io

    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert training.progress_verbosity("auto") == 2
    assert training.progress_verbosity(0) == 0

