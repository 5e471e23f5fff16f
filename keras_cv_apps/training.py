"""One training loop for every app: `fit` wraps ``model.fit`` with the shared callbacks.

`fit` picks the optimizer and learning-rate schedule, compiles the model (unless it is already
compiled), runs it under a ``tf.distribute`` strategy and leaves a run folder behind:
``best.keras`` (the best epoch, written atomically), ``history.csv``, ``history.json`` and
``training_curves.png``. The model ends with the weights of its best epoch. A training dataset of
known length is `repeated` and each epoch takes one pass of it, so one iterator serves the whole run
(a streamed pipeline is not restarted every epoch).

Scaling out: ``strategy="multiworker"`` trains on every worker named by ``TF_CONFIG`` (see
`cluster`), each reading its own part of the data (a streamed source's own files); ``precision``
sets a Keras mixed-precision policy (the model's outputs stay float32, the returned model is a
float32 copy); ``jit_compile`` compiles the steps with XLA; ``backup_dir`` keeps a
`callbacks.RunBackup` from which a killed run continues.

Schedules (the learning rate per optimizer step, over ``epochs * steps_per_epoch`` steps):

- ``constant``: ``learning_rate`` throughout;
- ``plateau``: starts at ``learning_rate`` and halves when the monitored value stalls;
- ``cosine``: linear warm-up from 0 over the first 5% of the steps, then cosine decay to 0;
- ``onecycle``: linear warm-up from ``learning_rate / 25`` over the first 30% of the steps,
  then cosine decay to ``learning_rate / 25e4``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import sys
import time

import keras
import tensorflow as tf

from keras_cv_apps import callbacks as cbs
from keras_cv_apps._validate import check_choice
from keras_cv_apps.choices import OPTIMIZERS, PRECISIONS, SCHEDULES, STRATEGIES
from keras_cv_apps.losses.classification import SparseCategoricalCrossentropyWithSmoothing

logger = logging.getLogger(__name__)

__all__ = [
    "OPTIMIZERS",
    "PRECISIONS",
    "SCHEDULES",
    "STRATEGIES",
    "SparseCategoricalCrossentropyWithSmoothing",
    "Cluster",
    "FitResult",
    "TrainingDivergedError",
    "build_optimizer",
    "check_soft_label_loss",
    "cluster",
    "fit",
    "get_strategy",
    "learning_rate_schedule",
    "repeated",
    "set_seed",
]

TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}')
_STARTED = {}  # the one MultiWorkerMirroredStrategy of this process


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


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place among the training workers of ``TF_CONFIG``.

    ``workers``: how many train together; ``rank``: 0 for the chief (the ``chief`` task, or
    worker 0 when there is none), which alone writes the run folder; ``task``/``index``: this
    task in ``TF_CONFIG``; ``addresses``: every worker's ``host:port`` in rank order.
    """

    workers: int = 1
    rank: int = 0
    task: str = "worker"
    index: int = 0
    addresses: tuple = ()

    @property
    def is_chief(self) -> bool:
        return self.rank == 0


def cluster(environ=None) -> Cluster:
    """Read and check ``TF_CONFIG`` (one local worker when it is unset or empty).

    Raises ``ValueError`` with one sentence when it is not valid JSON, lacks ``cluster`` or
    ``task``, names a task type that does not train (only ``chief`` and ``worker`` do) or an
    index out of range.
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        return Cluster()
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON ({err.msg} at character {err.pos}); set it like "
                         f"{TF_CONFIG_EXAMPLE}.") from None
    jobs = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(jobs, dict) or not isinstance(task, dict):
        raise ValueError(f"TF_CONFIG needs a 'cluster' and a 'task' object; set it like {TF_CONFIG_EXAMPLE}.")
    unknown = sorted(set(jobs) - {"chief", "worker"})
    listed = all(isinstance(v, list) and v and all(isinstance(a, str) and ":" in a for a in v) for v in jobs.values())
    if unknown or not listed:
        raise ValueError(f"TF_CONFIG's cluster must list 'chief' and/or 'worker' addresses as 'host:port' strings; "
                         f"got {jobs} (parameter servers and evaluators are not used here).")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in jobs:
        raise ValueError(f"TF_CONFIG's task type {kind!r} is not in its cluster; use one of {sorted(jobs)}.")
    if not isinstance(index, int) or not 0 <= index < len(jobs[kind]):
        raise ValueError(f"TF_CONFIG's task index {index!r} is out of range for the {len(jobs[kind])} {kind} "
                         f"address(es); use 0..{len(jobs[kind]) - 1}.")
    addresses = tuple(jobs.get("chief", [])) + tuple(jobs.get("worker", []))
    rank = index if kind == "chief" else len(jobs.get("chief", [])) + index
    return Cluster(workers=len(addresses), rank=rank, task=kind, index=index, addresses=addresses)


def get_strategy(name="default", *, timeout: float = 300.0):
    """The ``tf.distribute`` strategy called ``name`` (a Strategy instance passes through).

    ``default``: one device, no distribution; ``mirrored``: every local GPU (or the CPU when
    there is none); ``multiworker``: `tf.distribute.MultiWorkerMirroredStrategy` over the
    workers of ``TF_CONFIG`` (without it, a single local worker). It must be created before any
    other TensorFlow work of the program and is created once per process. TensorFlow's wait for
    the other workers cannot be interrupted, so a worker that cannot reach them within ``timeout``
    seconds writes one ``error:`` sentence to standard error and the process exits with status 2.
    """
    if isinstance(name, tf.distribute.Strategy):
        return name
    check_choice(name, STRATEGIES, "strategy")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "multiworker" not in _STARTED:
            _STARTED["multiworker"] = _join_cluster(cluster(), timeout)
        return _STARTED["multiworker"]
    return tf.distribute.get_strategy()


def _join_cluster(place: Cluster, timeout: float):
    """Create the MultiWorkerMirroredStrategy; exit the process (status 2) after ``timeout`` s."""
    if place.workers == 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    others = [a for i, a in enumerate(place.addresses) if i != place.rank]
    message = (f"Worker {place.rank} of {place.workers} could not reach the other worker(s) at {', '.join(others)} "
               f"within {timeout:g} s; start every worker with the same TF_CONFIG cluster and its own task index, "
               "or check the addresses, ports and firewall.")
    # all gradients of a step in one all-reduce instead of one per variable
    options = tf.distribute.experimental.CommunicationOptions(bytes_per_pack=64 * 2 ** 20)
    with _watchdog(timeout, message):
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        except Exception as err:  # noqa: BLE001 - reported in one sentence
            raise ConnectionError(f"Worker {place.rank} could not start on {place.addresses[place.rank]} "
                                  f"({str(err).strip() or type(err).__name__}); is the port free?") from err
    logger.info("Joined a cluster of %d workers as worker %d.", place.workers, place.rank)
    return strategy


# Runs beside a worker that joins its cluster: TensorFlow waits for the other workers inside C++
# while holding the interpreter lock, so no Python thread or signal handler of that process can
# act. Unless told (a line, or the end of its input) within the time, it writes the message and
# sends SIGINT, whose handler is then the C library's _exit: the process ends with status 2.
_WATCHDOG = """import os, select, signal, sys
parent, timeout, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if not select.select([sys.stdin], [], [], timeout)[0]:
    sys.stderr.write("error: " + message + "\\n")
    sys.stderr.flush()
    os.kill(parent, signal.SIGINT)
    if not select.select([sys.stdin], [], [], 10)[0]:  # the parent's end closes when it exits
        os.kill(parent, signal.SIGKILL)
"""


@contextlib.contextmanager
def _watchdog(timeout: float, message: str):
    """Exit this process with status 2, after writing ``message``, unless the block ends in time."""
    import ctypes
    import signal
    import subprocess

    previous = signal.getsignal(signal.SIGINT)
    libc = ctypes.CDLL(None)
    libc.signal.restype = ctypes.c_void_p
    libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
    libc.signal(signal.SIGINT, ctypes.cast(libc._exit, ctypes.c_void_p))  # _exit(SIGINT) is _exit(2)
    dog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(timeout), message],
                           stdin=subprocess.PIPE)
    try:
        yield
    finally:
        dog.stdin.close()
        dog.wait()
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def num_workers(strategy) -> int:
    """How many workers train together under ``strategy`` (1 unless multiworker)."""
    extended = getattr(strategy, "extended", None)
    return int(getattr(extended, "_num_workers", 1) or 1)


@contextlib.contextmanager
def _policy(precision):
    """Set Keras' global dtype policy to ``precision`` for the layers built inside."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _retyped(config, precision):
    """A serialised model config with every layer's dtype policy set to ``precision`` (input
    dtypes are left alone, so the model still takes float32)."""
    if isinstance(config, list):
        return [_retyped(c, precision) for c in config]
    if not isinstance(config, dict):
        return config
    out = {k: _retyped(v, precision) for k, v in config.items()}
    dtype = out.get("dtype")
    if isinstance(dtype, dict) and dtype.get("class_name") == "DTypePolicy":
        out["dtype"] = {**dtype, "config": {**dtype.get("config", {}), "name": precision}}
    return out


def _float32_outputs(model):
    """Compute the model's output layers in float32 (softmax, sigmoid and losses stay stable
    under a mixed policy); nested models are followed to their own last layers."""
    for tensor in getattr(model, "outputs", None) or []:
        layer = tensor._keras_history[0]
        if isinstance(layer, keras.Model):
            _float32_outputs(layer)
        else:
            layer.dtype_policy = "float32"


def plain_copy(model):
    """The same model in float32 outside any ``tf.distribute`` strategy (weights copied): what
    evaluation and export use after mixed-precision or multi-worker training."""
    config = _retyped(keras.saving.serialize_keras_object(model), "float32")
    config.pop("compile_config", None)
    with _policy("float32"):
        clone = keras.saving.deserialize_keras_object(config)
    clone.set_weights(model.get_weights())
    return clone


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
    from keras_cv_apps.artifacts import probe_writable

    run_dir = os.fspath(run_dir)
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe_writable(run_dir)
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


def _model_in_scope(model_or_builder, strategy, precision="float32"):
    """A model whose variables belong to ``strategy`` and whose layers compute in ``precision``
    (built in its scope under that policy, or rebuilt there)."""
    if not isinstance(model_or_builder, keras.Model):
        if not callable(model_or_builder):
            raise TypeError("model_or_builder must be a keras.Model or a zero-argument callable "
                            f"returning one; got {type(model_or_builder).__name__}.")
        with strategy.scope(), _policy(precision):
            model = model_or_builder()
        if not isinstance(model, keras.Model):
            raise TypeError(f"The model builder returned {type(model).__name__}, "
                            "not a keras.Model.")
        return model
    model = model_or_builder
    if model.distribute_strategy is strategy and model.dtype_policy.name == precision:
        return model
    logger.info("Rebuilding %s inside the %s scope (%s).", model.name, type(strategy).__name__, precision)
    config = _retyped(keras.saving.serialize_keras_object(model), precision)
    with strategy.scope(), _policy(precision):
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


def _computes_no_loss(model):
    """The model (or model class) leaves the loss to ``compile``: no custom step, no add_loss."""
    cls = model if isinstance(model, type) else type(model)
    return (cls.train_step is keras.Model.train_step and cls.compute_loss is keras.Model.compute_loss
            and (isinstance(model, type) or not model.losses))


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
        label_smoothing=0.0, ema=False, monitor=None, precision="float32", jit_compile="auto",
        backup_dir=None, restore_dir=None):
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

    ``precision`` (``float32``, ``mixed_float16``, ``mixed_bfloat16``) is the Keras dtype policy
    the model is built (or rebuilt) under; its output layers compute in float32, Keras adds loss
    scaling for ``mixed_float16``, and ``result.model`` is a float32 copy. ``jit_compile``:
    ``True`` compiles the steps with XLA, ``"auto"`` lets Keras decide (on GPUs, not on CPUs).
    Under a multi-worker strategy a streamed dataset (one with ``per_worker``) gives each worker
    its own files, and ``result.model`` is a copy outside the strategy.
    ``backup_dir`` adds a `callbacks.RunBackup` there: the weights, optimizer, epoch, history
    and callback state after every epoch; a later call with a backup in ``restore_dir``
    (default ``backup_dir``) continues from its last completed epoch.

    Raises ``TrainingDivergedError`` when the loss becomes NaN/inf (after restoring the best
    weights), ``ConnectionError`` when another worker is lost during multi-worker training; on
    Ctrl-C restores the best weights, keeps the files written so far and re-raises
    ``KeyboardInterrupt``.
    """
    check_choice(optimizer, OPTIMIZERS, "optimizer")
    check_choice(schedule, SCHEDULES, "schedule")
    if int(epochs) < 1 or not learning_rate > 0:
        raise ValueError(f"epochs must be >= 1 and learning_rate > 0; got epochs={epochs}, "
                         f"learning_rate={learning_rate}.")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1); got {label_smoothing}.")
    check_choice(precision, PRECISIONS, "precision")
    if jit_compile not in (True, False, "auto"):
        raise ValueError(f"jit_compile must be True, False or 'auto'; got {jit_compile!r}.")
    strategy = get_strategy(strategy)
    train, val = _datasets(splits)
    run_dir = _prepare_run_dir(run_dir)
    steps = _steps_per_epoch(train, steps_per_epoch, schedule)
    # One iterator for the whole run: a dataset of known length is repeated and each epoch takes
    # exactly its `steps` batches (or `steps_per_epoch`, walking on through the data), so Keras does
    # not restart the pipeline every epoch (Keras' evaluate starts the validation pipeline anew
    # every time whatever it is given). A one-epoch run iterates the dataset once.
    repeat = int(train.cardinality()) > 0 and (steps_per_epoch is not None or int(epochs) > 1)
    label_kind = _label_kind(train)  # from the dataset, before it is distributed
    start = cbs.RunBackup.saved_epoch(restore_dir or backup_dir, int(epochs)) if backup_dir else 0
    stream = functools.partial(_epochs, steps=steps, epochs=int(epochs), start=start) if repeat else None
    train, val = _per_worker(train, strategy, stream), _per_worker(val, strategy, None)
    if precision == "mixed_float16" and not tf.config.list_physical_devices("GPU"):
        logger.warning("mixed_float16 on a CPU is slow: CPUs compute float16 in software; use float32 or "
                       "mixed_bfloat16 there.")

    model = _model_in_scope(model_or_builder, strategy, precision)
    if precision != "float32":
        _float32_outputs(model)
    multi_worker = num_workers(strategy) > 1
    if multi_worker:
        _build_from_local_batch(model)
    soft = label_kind == "soft"
    if soft and (loss is not None or model.compiled):
        check_soft_label_loss(loss if loss is not None else model.loss)
    classifier = label_kind is not None and _computes_no_loss(model)
    if classifier:
        _check_classes(model, splits)
    if not model.compiled:
        if loss is None and classifier and soft:
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
            if metrics is None:
                metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
        elif loss is None and classifier:
            loss = (SparseCategoricalCrossentropyWithSmoothing(label_smoothing=label_smoothing)
                    if label_smoothing else keras.losses.SparseCategoricalCrossentropy())
            if metrics is None:
                metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        rate = learning_rate_schedule(schedule, learning_rate,
                                      None if steps is None else steps * int(epochs))
        with strategy.scope():
            model.compile(optimizer=build_optimizer(optimizer, rate, weight_decay=weight_decay,
                                                    ema=ema),
                          loss=loss, metrics=metrics, jit_compile=jit_compile)
    else:
        if loss is not None or metrics is not None or label_smoothing:
            logger.warning("The model is already compiled; ignoring the loss, metrics and "
                           "label_smoothing given to fit.")
        if jit_compile is True:
            model.jit_compile = True

    lr_is_schedule = isinstance(getattr(model.optimizer, "_learning_rate", None),
                                keras.optimizers.schedules.LearningRateSchedule)
    monitor = monitor or ("val_loss" if val is not None else "loss")
    callbacks = list(extra_callbacks) + cbs.default_callbacks(
        run_dir, monitor=monitor, patience=patience,
        schedule="constant" if schedule == "plateau" and lr_is_schedule else schedule,
        backup_dir=backup_dir, restore_dir=restore_dir)
    if getattr(model.optimizer, "use_ema", False):
        # Validation, early stopping and the checkpoint all see the averaged weights.
        callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))

    start = time.time()
    try:
        with _step_logs_averaged(multi_worker):
            history = model.fit(train, validation_data=val, epochs=int(epochs),
                                steps_per_epoch=steps if repeat or steps_per_epoch is not None else None,
                                class_weight=class_weight, shuffle=False, callbacks=callbacks,
                                verbose=progress_verbosity(verbose))
    except tf.errors.UnavailableError as err:
        if not multi_worker:
            raise
        raise ConnectionError("Lost another worker during training (it stopped or cannot be reached); restart every "
                              "worker with the same command and --resume to continue from the last completed "
                              "epoch.") from err
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
    logs = dict(history.history)
    backup = next((cb for cb in callbacks if isinstance(cb, cbs.RunBackup)), None)
    if backup is not None and backup.restored_epoch:  # Keras' History holds only the epochs run now
        logs = {k: v for k, v in _find(callbacks, cbs.HistoryWriter).history.items() if k != "epoch"}
    if precision != "float32" or num_workers(strategy) > 1:
        model = plain_copy(model)
    return FitResult(model=model, history=logs, seconds=time.time() - start)


@contextlib.contextmanager
def _step_logs_averaged(multi_worker):
    """Keras 3 averages a multi-worker step's logs (loss, metrics) with ``strategy.reduce(...,
    axis=0)``, which fails for the scalar logs (keras-team/keras#20585). While ``fit`` runs on
    several workers, average each log over all replicas of all workers instead, so that every
    worker sees the same figures (and its callbacks take the same decisions)."""
    if not multi_worker:
        yield
        return
    from keras.src.backend.tensorflow import trainer as keras_trainer

    original = keras_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean"):
            return original(values, strategy, reduction)
        flat = keras.tree.flatten(values)
        which = [i for i, v in enumerate(flat) if isinstance(v, tf.distribute.DistributedValues)]
        if not which:
            return values
        # one collective for all logs: this worker's mean over its replicas, averaged over workers
        local = tf.stack([tf.reduce_mean(tf.cast(tf.stack(strategy.experimental_local_results(flat[i])), tf.float32),
                                         axis=0) for i in which])
        packed = strategy.experimental_distribute_values_from_function(lambda context: local)
        means = tf.unstack(strategy.reduce("MEAN", packed, axis=None))
        for i, mean in zip(which, means):
            flat[i] = tf.cast(mean, strategy.experimental_local_results(flat[i])[0].dtype)
        return keras.tree.pack_sequence_as(values, flat)

    keras_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        keras_trainer.reduce_per_replica = original


def _build_from_local_batch(model):
    """Keras 3 builds a distributed model's metrics from a sample batch that it first averages
    over the replicas with ``strategy.reduce``, which MultiWorkerMirroredStrategy refuses for
    per-replica batches (keras-team/keras#20585). Build from this worker's local batch instead."""
    strategy = model.distribute_strategy

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(local, next(batches))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = build


def repeated(dataset):
    """``dataset`` repeated, with a prefetch after the repeat, so the next pass starts while the
    model still trains on the last batches of the current one: what `fit` hands to ``model.fit``
    (with ``steps_per_epoch`` = the batches of one pass) so that one iterator serves every epoch."""
    return _whole_run(dataset.repeat().prefetch(tf.data.AUTOTUNE))


def _whole_run(stream):
    """``stream`` without ``tf.data``'s autotuning thread. That thread sleeps between tunings in
    periods doubling from 10 ms to 60 s, and TensorFlow 2.21's iterator destructor often waits for
    its next wake-up instead of waking it: ``model.fit`` then returned up to a minute after the
    last step (16 s after a 27-s run here; ``benchmarks/bench_streaming.py``). Without it, each
    ``AUTOTUNE`` map keeps ``min(16, cores)`` parallel calls and the prefetch buffers still grow
    on demand; the run's one iterator lives for the whole run, so its parallelism is the one thing
    autotuning would have changed."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return stream.with_options(options)


def _epochs(dataset, *, steps, epochs, start=0):
    """The whole run's stream of train batches, for one iterator: ``dataset`` repeated, or, when it
    carries a cool-down (``cooldown = (fraction, build)``, see `data.Splits.dataset`) and the
    number of steps is known, ``dataset`` for the first ``epochs - round(fraction * epochs)``
    epochs and ``build()`` (the same data, lighter augmentation) for the rest. A run resumed
    after epoch ``start`` gets the epochs from there on (its augmentation keys start anew)."""
    cool = getattr(dataset, "cooldown", None)
    if cool is not None and steps is None:
        logger.warning("The augmentation's cool-down needs the number of steps per epoch, which this dataset does "
                       "not know; every epoch trains with the main augmentation (pass steps_per_epoch).")
    last = 0 if cool is None or steps is None else min(epochs, round(cool[0] * epochs))
    if not last:
        return repeated(dataset)
    logger.info("augmentation cool-down: the last %d of %d epochs train with the lighter augmentation", last, epochs)
    cooled, main = cool[1]().repeat(), max(0, epochs - last - start)
    stream = dataset.repeat().take(steps * main).concatenate(cooled) if main else cooled
    return _whole_run(stream.prefetch(tf.data.AUTOTUNE))


def _per_worker(dataset, strategy, stream):
    """``dataset`` for ``strategy``, turned into the run's stream (`_epochs`) by ``stream`` unless
    None. Under a distribution strategy a dataset that can build one worker's part of itself
    (``per_worker(input_context)``, as streamed `data.Splits` datasets do) is distributed that
    way: each worker reads its own files at the per-replica batch size."""
    build = getattr(dataset, "per_worker", None)
    if build is None or strategy is tf.distribute.get_strategy():
        return stream(dataset) if stream else dataset

    def per_worker(context):
        ds = build(context)
        return stream(ds) if stream else ds
    return strategy.distribute_datasets_from_function(per_worker)


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

