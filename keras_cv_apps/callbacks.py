"""Training callbacks shared by every app: what a run leaves in its folder.

`default_callbacks(run_dir)` returns the list `training.fit` uses:

- `LearningRateLogger` puts the optimizer's current learning rate into the epoch logs, so the
  history files show what every schedule did;
- `NanGuard` (Keras' TerminateOnNaN) stops at the first non-finite loss and remembers where;
- `keras.callbacks.EarlyStopping` keeps the best weights and puts them back at the end;
- `BestModelCheckpoint` saves the best model to ``best.keras`` through a temporary file and an
  atomic rename, so an interrupted run never leaves a half-written model;
- `keras.callbacks.ReduceLROnPlateau` when the schedule is ``"plateau"``;
- `HistoryWriter` rewrites ``history.csv`` and ``history.json`` after every epoch and draws
  ``training_curves.png`` every few epochs and at the end;
- `RunBackup` (when a backup folder is given) is Keras' BackupAndRestore carrying the state of
  the callbacks above too, so that a killed run continues where its last epoch ended.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os

import keras
import numpy as np

from keras_cv_apps._figures import new_figure, save_figure
from keras_cv_apps._validate import check_choice
from keras_cv_apps.artifacts import atomic_path, read_json, write_json, write_text
from keras_cv_apps.choices import SCHEDULES

logger = logging.getLogger(__name__)

__all__ = [
    "BestModelCheckpoint",
    "HistoryWriter",
    "LearningRateLogger",
    "NanGuard",
    "RunBackup",
    "default_callbacks",
    "monitor_mode",
    "plot_training_curves",
]

_MAXIMIZED = ("acc", "auc", "f1", "precision", "recall", "iou", "psnr", "ssim")


def monitor_mode(monitor: str) -> str:
    """Return ``"max"`` for metrics that grow when better (accuracy, AUC, ...), else ``"min"``."""
    name = monitor.lower()
    return "max" if any(token in name for token in _MAXIMIZED) else "min"




def _plain(value):
    """A log value as a plain Python float, with NaN/inf stored as None (valid JSON)."""
    value = float(np.asarray(value))
    return value if math.isfinite(value) else None


class LearningRateLogger(keras.callbacks.Callback):
    """Add ``logs["learning_rate"]``: the optimizer's learning rate at the end of each epoch.

    With a schedule this is the value at the optimizer's current step, i.e. the rate the next
    step will use. Put it before the callbacks that read the logs.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.model.optimizer is not None:
            logs["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))


class NanGuard(keras.callbacks.TerminateOnNaN):
    """Keras' TerminateOnNaN that also records where the loss stopped being finite.

    After training, ``diverged`` is ``None`` or a dict with ``epoch`` (0-based), ``batch`` and
    ``loss``; `training.fit` turns it into a `TrainingDivergedError`.
    """

    def on_train_begin(self, logs=None):
        self.diverged = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if self.diverged is None and loss is not None and not np.isfinite(loss):
            self.diverged = {"epoch": self._epoch, "batch": batch, "loss": float(loss)}
        super().on_batch_end(batch, logs)


class BestModelCheckpoint(keras.callbacks.Callback):
    """Save the whole model to ``path`` whenever ``monitor`` improves, atomically.

    The model is first saved to a temporary ``.keras`` file next to ``path`` and then renamed
    over it, so ``path`` always holds a complete model, even after Ctrl-C or a crash mid-save.
    Non-finite monitor values never count as an improvement.
    """

    def __init__(self, path, *, monitor="val_loss", mode="auto"):
        super().__init__()
        check_choice(mode, ("auto", "min", "max"), "checkpoint mode")
        self.path = os.fspath(path)
        self.monitor = monitor
        self.mode = monitor_mode(monitor) if mode == "auto" else mode
        self.best = None
        self.best_epoch = None

    def on_train_begin(self, logs=None):
        self.best = None
        self.best_epoch = None

    def _improved(self, value):
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            logger.warning("Checkpoint monitor %r is not in the logs %s.", self.monitor,
                           sorted(logs or {}))
            return
        value = float(value)
        if not math.isfinite(value) or not self._improved(value):
            return
        with atomic_path(self.path) as tmp:
            self.model.save(tmp)
        self.best, self.best_epoch = value, epoch
        logger.info("Epoch %d: %s improved to %.5g; saved %s", epoch + 1, self.monitor, value,
                    self.path)


class HistoryWriter(keras.callbacks.Callback):
    """Keep ``history.csv``, ``history.json`` and ``training_curves.png`` of a run up to date.

    The CSV and JSON files are rewritten (atomically) after every epoch, so they survive an
    interrupted run; the figure is redrawn every ``plot_every`` epochs and when training ends
    (call `finish` yourself after an exception). ``history.json`` maps each log name to a list
    of plain floats (``null`` for NaN/inf) plus ``"epoch"`` (1-based).
    """

    def __init__(self, run_dir, *, plot_every=5):
        super().__init__()
        self.run_dir = os.fspath(run_dir)
        self.plot_every = plot_every
        self.history = {}

    def on_train_begin(self, logs=None):
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.history.setdefault("epoch", []).append(epoch + 1)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(_plain(value))
        self._write_tables()
        if self.plot_every and (epoch + 1) % self.plot_every == 0:
            self._plot()

    def on_train_end(self, logs=None):
        self.finish()

    def finish(self):
        """Write the tables and draw the curves for the epochs logged so far."""
        if self.history:
            self._write_tables()
            self._plot()

    def _write_tables(self):
        keys = list(self.history)
        n = len(self.history["epoch"])
        columns = {k: v + [None] * (n - len(v)) for k, v in self.history.items()}
        write_json(os.path.join(self.run_dir, "history.json"), columns, indent=1)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(keys)
        for i in range(n):
            writer.writerow(["" if columns[k][i] is None else columns[k][i] for k in keys])
        write_text(os.path.join(self.run_dir, "history.csv"), out.getvalue())

    def _plot(self):
        try:
            plot_training_curves(self.history, os.path.join(self.run_dir, "training_curves.png"))
        except Exception:  # a figure must never stop a training run
            logger.exception("Could not draw the training curves.")


def plot_training_curves(history, path):
    """Draw one panel per logged quantity (train vs ``val_``) plus the learning rate; save PNG.

    ``history`` is a dict of per-epoch lists (``keras.callbacks.History.history`` or the
    content of ``history.json``). Returns ``path``.
    """
    from matplotlib.ticker import MaxNLocator

    names = [k for k in history if k != "epoch" and not k.startswith("val_")
             and not k.startswith("learning_rate")]
    names += [k for k in history if k.startswith("val_") and k[4:] not in history]
    has_lr = "learning_rate" in history
    panels = len(names) + int(has_lr)
    fig = new_figure((4.2 * max(panels, 1), 3.4))
    axes = fig.subplots(1, max(panels, 1), squeeze=False)[0]

    def series(key):
        return np.array([np.nan if v is None else v for v in history[key]], dtype=float)

    n = len(next(iter(history.values()), []))
    epochs = np.asarray(history.get("epoch", range(1, n + 1)))
    for ax, name in zip(axes, names):
        if name in history and not name.startswith("val_"):
            ax.plot(epochs, series(name), marker=".", label="train")
        if f"val_{name}" in history or name.startswith("val_"):
            ax.plot(epochs, series(name if name.startswith("val_") else f"val_{name}"),
                    marker=".", label="val")
        ax.set_title(name)
        ax.legend()
    if has_lr:
        ax = axes[len(names)]
        lr = series("learning_rate")
        ax.plot(epochs, lr, marker=".", color="tab:green")
        ax.set_yscale("log" if np.all(lr[np.isfinite(lr)] > 0) else "linear")
        ax.set_title("learning rate")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    return save_figure(fig, path, dpi=90)


class RunBackup(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore for a whole training run.

    After every epoch it saves, atomically, into ``backup_dir``: the weights with the optimizer
    state (so learning-rate schedules and loss scaling continue), the epoch, and the state of
    ``callbacks`` (early stopping's wait, best value and best weights, the plateau schedule's
    wait, the best checkpoint's value, the history so far). Each file is written under a new name
    and ``training_metadata.json`` names them last, so a run killed at any moment leaves the
    previous complete backup. At the start of training it restores the backup in
    ``restore_dir`` (default ``backup_dir``; a multi-worker worker reads the chief's), when there
    is one, and training continues from the epoch after it. The backup is kept at the end (the
    run folder removes it once the whole run has finished).
    """

    METADATA = "training_metadata.json"
    STATE = {keras.callbacks.EarlyStopping: ("wait", "stopped_epoch", "best", "best_epoch"),
             keras.callbacks.ReduceLROnPlateau: ("wait", "cooldown_counter", "best"),
             BestModelCheckpoint: ("best", "best_epoch"), HistoryWriter: ("history",)}

    def __init__(self, backup_dir, *, restore_dir=None, callbacks=()):
        super().__init__(os.fspath(backup_dir), save_freq="epoch", delete_checkpoint=False)
        self.restore_dir = os.fspath(restore_dir or backup_dir)
        self.callbacks = list(callbacks)
        self.restored_epoch = 0

    def _tracked(self):
        for cb in self.callbacks:
            keys = next((v for k, v in self.STATE.items() if isinstance(cb, k)), None)
            if keys:
                yield type(cb).__name__, cb, keys

    @classmethod
    def saved_epoch(cls, restore_dir, epochs: int) -> int:
        """The epoch a run with a backup in ``restore_dir`` continues after (0 without one; ``epochs``
        when the backed-up run had stopped early)."""
        path = os.path.join(os.fspath(restore_dir), cls.METADATA)
        if not os.path.exists(path):
            return 0
        meta = read_json(path)
        return int(epochs if meta.get("stopped") else meta["epoch"])

    def on_train_begin(self, logs=None):
        path = os.path.join(self.restore_dir, self.METADATA)
        if not os.path.exists(path):
            return
        meta = read_json(path)
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.restore_dir, meta["weights"]))
        for name, cb, keys in self._tracked():
            for key, value in meta["callbacks"].get(name, {}).items():
                setattr(cb, key, value)
            if isinstance(cb, keras.callbacks.EarlyStopping) and meta.get("best_weights"):
                with np.load(os.path.join(self.restore_dir, meta["best_weights"])) as best:
                    cb.best_weights = [best[f"w{i}"] for i in range(len(best.files))]
        epoch = self.saved_epoch(self.restore_dir, self.params.get("epochs", meta["epoch"]))
        self.model._initial_epoch = self._current_epoch = self.restored_epoch = epoch
        logger.info("Restored the backup of epoch %d from %s.", meta["epoch"], self.restore_dir)

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._save_model()

    def _save_model(self):
        epoch = self._current_epoch
        folder = self.backup_dir
        os.makedirs(folder, exist_ok=True)
        weights = f"epoch-{epoch:05d}.weights.h5"
        with atomic_path(os.path.join(folder, weights)) as tmp:
            self.model.save_weights(tmp)
        states, best = {}, None
        for name, cb, keys in self._tracked():
            states[name] = {key: _state_value(getattr(cb, key, None)) for key in keys}
            if isinstance(cb, keras.callbacks.EarlyStopping) and cb.best_weights is not None:
                best = f"epoch-{epoch:05d}.best.npz"
                with atomic_path(os.path.join(folder, best)) as tmp:
                    np.savez(tmp, **{f"w{i}": w for i, w in enumerate(cb.best_weights)})
        write_json(os.path.join(folder, self.METADATA),
                   {"epoch": epoch, "batch": 0, "weights": weights, "best_weights": best,
                    "stopped": bool(self.model.stop_training), "callbacks": states})
        for old in os.listdir(folder):
            if old.startswith("epoch-") and old not in (weights, best):
                os.remove(os.path.join(folder, old))


def _state_value(value):
    """A callback attribute as plain JSON (NumPy scalars become floats/ints)."""
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "numpy"):
        return np.asarray(value).item()
    return value


def default_callbacks(run_dir, *, monitor="val_loss", patience=10, schedule="plateau",
                      plot_every=5, backup_dir=None, restore_dir=None):
    """The callbacks of a training run writing into ``run_dir`` (see the module docstring).

    ``patience`` epochs without improvement of ``monitor`` stop training (with any schedule);
    ``"plateau"`` also halves the learning rate after ``max(1, patience // 3)`` such epochs.
    ``backup_dir`` adds a `RunBackup` (last, so that it saves and restores the others' state).
    """
    check_choice(schedule, SCHEDULES, "schedule")
    mode = monitor_mode(monitor)
    callbacks = [
        LearningRateLogger(),
        NanGuard(),
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience,
                                      restore_best_weights=True),
        BestModelCheckpoint(os.path.join(run_dir, "best.keras"), monitor=monitor, mode=mode),
    ]
    if schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode=mode, factor=0.5, patience=max(1, patience // 3), min_lr=1e-6))
    callbacks.append(HistoryWriter(run_dir, plot_every=plot_every))
    if backup_dir is not None:
        callbacks.append(RunBackup(backup_dir, restore_dir=restore_dir, callbacks=callbacks))
    return callbacks
