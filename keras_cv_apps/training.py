"""One training loop for every app: `fit` wraps ``model.fit`` with the shared callbacks.

`fit` picks the optimizer and learning-rate schedule, compiles the model (unless it is already
compiled), runs it under a ``tf.distribute`` strategy and leaves a run folder behind:
``best.keras`` (the best epoch, written atomically), ``history.csv``, ``history.json`` and
``training_curves.png``. The model ends with the weights of its best epoch.

Schedules (the learning rate per optimizer step, over ``epochs * steps_per_epoch`` steps):

- ``constant``: ``learning_rate`` throughout;
- ``plateau``: starts at ``learning_rate`` and halves when the monitored value stalls;
- ``cosine``: linear warm-up from 0 over the first 5% of the steps, then cosine decay to 0;
- ``onecycle``: linear warm-up from ``learning_rate / 25`` over the first 30% of the steps,
  then cosine decay to ``learning_rate / 25e4``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import tempfile
import time

import keras
import tensorflow as tf

from keras_cv_apps import callbacks as cbs
from keras_cv_apps._validate import check_choice
from keras_cv_apps.choices import OPTIMIZERS, SCHEDULES, STRATEGIES
from keras_cv_apps.losses.classification import SparseCategoricalCrossentropyWithSmoothing

logger = logging.getLogger(__name__)

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "STRATEGIES",
    "SparseCategoricalCrossentropyWithSmoothing",
    "FitResult",
    "TrainingDivergedError",
    "build_optimizer",
    "check_soft_label_loss",
    "fit",
    "get_strategy",
    "learning_rate_schedule",
    "set_seed",
]



class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the model holds the last good (best) weights."""


@dataclasses.dataclass
class FitResult:
    """What `fit` returns: the trained model (best weights), its per-epoch logs and the time."""

    model: keras.Model
    history: dict
    seconds: float

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))


def set_seed(seed):
    """Seed Python, NumPy and TensorFlow at once (``keras.utils.set_random_seed``)."""
    keras.utils.set_random_seed(int(seed))


def get_strategy(name="default"):
    """The ``tf.distribute`` strategy called ``name`` (a Strategy instance passes through).

    ``default``: one device, no distribution; ``mirrored``: every local GPU (or the CPU when
    there is none); ``multiworker``: `tf.distribute.MultiWorkerMirroredStrategy`, configured by
    the ``TF_CONFIG`` environment variable (without it, a single local worker).
    """
    if isinstance(name, tf.distribute.Strategy):
        return name
    check_choice(name, STRATEGIES, "strategy")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def learning_rate_schedule(schedule, learning_rate, total_steps=None):
    """The learning rate for ``optimizer(learning_rate=...)``: a float or a Keras schedule.

    ``plateau`` and ``constant`` give the float ``learning_rate`` (plateau reductions happen in
    a callback); ``cosine`` and ``onecycle`` give a `keras.optimizers.schedules.CosineDecay`
    with linear warm-up spanning ``total_steps`` optimizer steps (see the module docstring).
    """
    check_choice(schedule, SCHEDULES, "schedule")
    if schedule in ("plateau", "constant"):
        return float(learning_rate)
    if not total_steps or total_steps < 2:
        raise ValueError(f"The {schedule!r} schedule needs at least 2 training steps; "
                         f"got total_steps={total_steps}.")
    fraction, start, alpha = (0.05, 0.0, 0.0) if schedule == "cosine" else (0.3, 1 / 25, 1e-4)
    warmup = min(max(1, round(fraction * total_steps)), total_steps - 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=start * learning_rate, decay_steps=total_steps - warmup,
        alpha=alpha / 25 if schedule == "onecycle" else alpha, warmup_target=learning_rate,
        warmup_steps=warmup)


def build_optimizer(name, learning_rate, *, weight_decay=None, ema=False):
    """``adam``, ``adamw`` or ``sgd`` (momentum 0.9, Nesterov) at ``learning_rate``.

    ``learning_rate`` may be a float or a schedule (`learning_rate_schedule`). ``weight_decay``
    is Keras' decoupled weight decay (AdamW's default 0.004 when None); ``ema`` keeps an
    exponential moving average of the weights (momentum 0.99).
    """
    check_choice(name, OPTIMIZERS, "optimizer")
    kwargs = {"learning_rate": learning_rate, "use_ema": bool(ema)}
    if weight_decay is not None:
        kwargs["weight_decay"] = float(weight_decay)
    if name == "adam":
        return keras.optimizers.Adam(**kwargs)
    if name == "adamw":
        return keras.optimizers.AdamW(**kwargs)
    return keras.optimizers.SGD(momentum=0.9, nesterov=True, **kwargs)


def _datasets(splits):
    """(train, val-or-None) from a Splits-like object, a (train, val) pair or one dataset."""
    if isinstance(splits, tf.data.Dataset):
        return splits, None
    if isinstance(splits, (tuple, list)) and len(splits) == 2:
        return splits[0], splits[1]
    if not isinstance(getattr(splits, "train", None), tf.data.Dataset):
        raise TypeError("splits must have a .train tf.data.Dataset (and .val), or be a "
                        f"(train, val) pair or a dataset; got {type(splits).__name__}.")
    return splits.train, getattr(splits, "val", None)


def _prepare_run_dir(run_dir):
    """Create ``run_dir`` and prove it is writable, before any training starts."""
    run_dir = os.fspath(run_dir)
    try:
        os.makedirs(run_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=run_dir, prefix=".write-test-"):
            pass
    except OSError as err:
        raise OSError(f"run_dir {run_dir!r} is not a writable folder: "
                      f"{err.strerror or err}.") from err
    return run_dir


def _steps_per_epoch(train, steps_per_epoch, schedule):
    """Steps per epoch from the argument or the dataset's cardinality (None when unknown)."""
    if steps_per_epoch is not None:
        if int(steps_per_epoch) < 1:
            raise ValueError(f"steps_per_epoch must be >= 1; got {steps_per_epoch}.")
        return int(steps_per_epoch)
    cardinality = int(train.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError("The training dataset repeats forever; pass steps_per_epoch.")
    if cardinality == tf.data.UNKNOWN_CARDINALITY:
        if schedule in ("cosine", "onecycle"):
            raise ValueError(f"The {schedule!r} schedule needs the number of steps, but the "
                             "training dataset's length is unknown; pass steps_per_epoch.")
        return None
    if cardinality == 0:
        raise ValueError("The training dataset is empty.")
    return cardinality


def _model_in_scope(model_or_builder, strategy):
    """A model whose variables belong to ``strategy`` (built in its scope, or rebuilt there)."""
    if not isinstance(model_or_builder, keras.Model):
        if not callable(model_or_builder):
            raise TypeError("model_or_builder must be a keras.Model or a zero-argument callable "
                            f"returning one; got {type(model_or_builder).__name__}.")
        with strategy.scope():
            model = model_or_builder()
        if not isinstance(model, keras.Model):
            raise TypeError(f"The model builder returned {type(model).__name__}, "
                            "not a keras.Model.")
        return model
    model = model_or_builder
    if model.distribute_strategy is strategy:
        return model
    logger.info("Rebuilding %s inside the %s scope.", model.name, type(strategy).__name__)
    config = keras.saving.serialize_keras_object(model)
    with strategy.scope():
        clone = keras.saving.deserialize_keras_object(config)
        clone.set_weights(model.get_weights())
        if model.compiled:
            clone.compile_from_config(model.get_compile_config())
    return clone


def _label_kind(train):
    """``sparse`` (integer class ids), ``soft`` (float rows over the classes: one-hot, or mixed
    by MixUp/CutMix) or None, from the training dataset's element spec."""
    spec = train.element_spec
    labels = spec[1] if isinstance(spec, tuple) and len(spec) >= 2 else None
    if not isinstance(labels, tf.TensorSpec):
        return None
    if labels.dtype.is_integer:
        return "sparse"
    return "soft" if labels.dtype.is_floating and labels.shape.rank == 2 else None


def _wants_classifier_loss(model, train):
    """True when the default classifier loss fits: the dataset yields class labels (integer or
    soft) and the model does not compute its loss itself (custom train_step / compute_loss,
    add_loss)."""
    cls = type(model)
    return (_label_kind(train) is not None and cls.train_step is keras.Model.train_step
            and cls.compute_loss is keras.Model.compute_loss and not model.losses)


def check_soft_label_loss(loss):
    """Raise ``ValueError`` when ``loss`` takes integer class ids only (sparse cross-entropy, the
    focal loss), so it cannot train on the soft labels MixUp/CutMix make."""
    from keras_cv_apps.losses.focal import FocalLoss

    name = loss if isinstance(loss, str) else getattr(loss, "name", None) or getattr(loss, "__name__", "")
    sparse = (isinstance(loss, (keras.losses.SparseCategoricalCrossentropy, FocalLoss,
                                SparseCategoricalCrossentropyWithSmoothing))
              or "sparse" in str(name).lower())
    if sparse:
        raise ValueError(f"The training labels are soft (MixUp/CutMix mix them), but the loss {name!r} takes integer "
                         "class ids; train with categorical cross-entropy (the default loss) or an augmentation "
                         "that does not mix labels.")


def _find(callbacks, cls):
    return next(cb for cb in callbacks if isinstance(cb, cls))


def _check_classes(model, splits):
    """A classifier must have one output per class of the dataset it trains on."""
    num_classes = getattr(splits, "num_classes", None)
    try:
        outputs = model.output_shape
    except (AttributeError, ValueError):
        return
    if num_classes and isinstance(outputs, tuple) and len(outputs) == 2 and outputs[-1] not in (None, num_classes):
        raise ValueError(f"{model.name} has {outputs[-1]} outputs but the dataset has {num_classes} classes; "
                         f"create it with num_classes={num_classes}.")


def progress_verbosity(verbose="auto"):
    """Keras ``verbose`` for ``fit``: ``"auto"`` is a progress bar on a terminal and one line per
    epoch otherwise (a bar redrawn into a pipe or log file is mostly noise)."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return verbose


def fit(model_or_builder, splits, *, run_dir, epochs=20, learning_rate=1e-3, optimizer="adam",
        schedule="plateau", loss=None, metrics=None, class_weight=None, steps_per_epoch=None,
        patience=10, strategy="default", verbose="auto", extra_callbacks=(), weight_decay=None,
        label_smoothing=0.0, ema=False, monitor=None):
    """Train a model into ``run_dir`` and return a `FitResult` (the model, its logs, the time).

    ``model_or_builder`` is a ``keras.Model`` or a zero-argument callable that builds one (it
    is called inside the strategy's scope; a built model is rebuilt there for a non-default
    strategy). The trained model is ``result.model``; a model passed in also receives the
    best weights. A classifier whose output count differs from ``splits.num_classes`` is refused.
    ``splits`` is a `data.Splits` (only ``.train`` and ``.val`` are used), a
    ``(train, val)`` pair or one training dataset; datasets yield ``(x, y)`` or
    ``(x, y, sample_weight)``.

    An uncompiled model is compiled with ``optimizer`` / ``schedule`` and ``loss``. The
    default loss - sparse categorical cross-entropy on softmax outputs, smoothed by
    ``label_smoothing``, with an accuracy metric - is used only when the data yields integer
    labels and the model does not compute its own loss (custom ``train_step`` /
    ``compute_loss``, ``add_loss``); otherwise no loss is added. When the data yields soft
    labels (float rows ``[B, classes]``, as a MixUp/CutMix augmentation makes them) the default
    is categorical cross-entropy with a categorical accuracy, and a loss that takes integer ids
    only (sparse cross-entropy, focal) is refused before training. A compiled model is trained
    as it is.
    ``monitor`` (default ``val_loss``, or ``loss`` without validation data) drives early
    stopping after ``patience`` stalled epochs, the checkpoint and the plateau schedule.

    Raises ``TrainingDivergedError`` when the loss becomes NaN/inf (after restoring the best
    weights); on Ctrl-C restores the best weights, keeps the files written so far and
    re-raises ``KeyboardInterrupt``.
    """
    check_choice(optimizer, OPTIMIZERS, "optimizer")
    check_choice(schedule, SCHEDULES, "schedule")
    if int(epochs) < 1 or not learning_rate > 0:
        raise ValueError(f"epochs must be >= 1 and learning_rate > 0; got epochs={epochs}, "
                         f"learning_rate={learning_rate}.")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1); got {label_smoothing}.")
    strategy = get_strategy(strategy)
    train, val = _datasets(splits)
    run_dir = _prepare_run_dir(run_dir)
    steps = _steps_per_epoch(train, steps_per_epoch, schedule)
    if steps_per_epoch is not None and int(train.cardinality()) > 0:
        train = train.repeat()  # epochs of `steps` batches walk on through the data

    model = _model_in_scope(model_or_builder, strategy)
    soft = _label_kind(train) == "soft"
    if soft and (loss is not None or model.compiled):
        check_soft_label_loss(loss if loss is not None else model.loss)
    if _wants_classifier_loss(model, train):
        _check_classes(model, splits)
    if not model.compiled:
        if loss is None and _wants_classifier_loss(model, train) and soft:
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
            if metrics is None:
                metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
        elif loss is None and _wants_classifier_loss(model, train):
            loss = (SparseCategoricalCrossentropyWithSmoothing(label_smoothing=label_smoothing)
                    if label_smoothing else keras.losses.SparseCategoricalCrossentropy())
            if metrics is None:
                metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        rate = learning_rate_schedule(schedule, learning_rate,
                                      None if steps is None else steps * int(epochs))
        with strategy.scope():
            model.compile(optimizer=build_optimizer(optimizer, rate, weight_decay=weight_decay,
                                                    ema=ema),
                          loss=loss, metrics=metrics)
    elif loss is not None or metrics is not None or label_smoothing:
        logger.warning("The model is already compiled; ignoring the loss, metrics and "
                       "label_smoothing given to fit.")

    lr_is_schedule = isinstance(getattr(model.optimizer, "_learning_rate", None),
                                keras.optimizers.schedules.LearningRateSchedule)
    monitor = monitor or ("val_loss" if val is not None else "loss")
    callbacks = list(extra_callbacks) + cbs.default_callbacks(
        run_dir, monitor=monitor, patience=patience,
        schedule="constant" if schedule == "plateau" and lr_is_schedule else schedule)
    if getattr(model.optimizer, "use_ema", False):
        # Validation, early stopping and the checkpoint all see the averaged weights.
        callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))

    start = time.time()
    try:
        history = model.fit(train, validation_data=val, epochs=int(epochs),
                            steps_per_epoch=None if steps_per_epoch is None else steps,
                            class_weight=class_weight, shuffle=False, callbacks=callbacks,
                            verbose=progress_verbosity(verbose))
    except KeyboardInterrupt:
        # Keras skips on_train_end here: restore the best weights and draw the curves ourselves.
        best = _find(callbacks, keras.callbacks.EarlyStopping).best_weights
        if best is not None:
            model.set_weights(best)
        _find(callbacks, cbs.HistoryWriter).finish()
        _copy_back(model, model_or_builder)
        logger.warning("Training interrupted; the best model so far is in %s.", run_dir)
        raise
    _copy_back(model, model_or_builder)
    _raise_if_diverged(callbacks, learning_rate)
    return FitResult(model=model, history=dict(history.history), seconds=time.time() - start)


def _copy_back(trained, model_or_builder):
    """Give a model passed in (and rebuilt for a strategy) the trained weights."""
    if isinstance(model_or_builder, keras.Model) and model_or_builder is not trained:
        model_or_builder.set_weights(trained.get_weights())


def _raise_if_diverged(callbacks, learning_rate):
    """Turn the NanGuard's record into a `TrainingDivergedError` saying what was kept."""
    diverged = _find(callbacks, cbs.NanGuard).diverged
    if diverged is None:
        return
    saved = _find(callbacks, cbs.BestModelCheckpoint).best_epoch
    kept = (f"the model was restored to epoch {saved + 1}, saved in best.keras"
            if saved is not None else "no epoch finished with a finite loss")
    raise TrainingDivergedError(
        f"Training diverged: the loss became {diverged['loss']} at epoch "
        f"{diverged['epoch'] + 1}, batch {diverged['batch'] + 1}; {kept}; try a lower "
        f"learning rate than {learning_rate}.")

