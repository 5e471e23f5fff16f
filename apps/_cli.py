"""What the apps share: flag groups an app opts into, argument types that refuse bad values in
one sentence, quiet TensorFlow start-up, and `run`, which turns known failures into one line and
an exit code. No model, data, export or file-writing code lives here (that is the library's).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
from pathlib import Path

from keras_cv_apps.choices import (
    AUGMENT_PRESETS,
    BALANCE_MODES,
    LABEL_MIXING_PRESETS,
    PRECISIONS,
    QUANTIZATIONS,
    STRATEGIES,
    TFLITE_INPUTS,
)

# ------------------------------------------------------------------------- argument types


def _number(text: str, kind=float):
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


MAX_SEED = 2 ** 31 - 1  # room for the offsets some apps add to the seed


def seed(text: str) -> int:
    value = _number(text, int)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed between 0 and {MAX_SEED}, got {value}")
    return value


def finite_float(text: str) -> float:
    return _number(text)


def positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def nonnegative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {value}")
    return value


def folder(text: str) -> str:
    """A folder path that may not exist yet, but is not a file."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"expected a folder, got the file {text!r}")
    return text


def quantize_list(text: str) -> list:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in modes if m not in QUANTIZATIONS + ("none",)]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown quantization {bad[0]!r}; use a comma list of {', '.join(QUANTIZATIONS)} (or 'none')")
    return [m for m in modes if m != "none"]


# ----------------------------------------------------------------------------- flag groups


def parser(doc: str, app: str) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` showing the app's docstring; defaults are shown in each help text."""
    return argparse.ArgumentParser(prog=f"python -m apps.{app}", description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_output(p, app: str, *, out_alias: bool = False, default=None, run_folder: bool = True) -> None:
    """``--output`` (``--out`` kept as an alias where it was the old name) and ``--overwrite``."""
    names = ("--output", "--out") if out_alias else ("--output",)
    shown = default or f"a new folder runs/{app}/<date-time>"
    p.add_argument(*names, dest="output", default=default,
                   help=f"where the results go (default: {shown})")
    if run_folder:
        p.add_argument("--overwrite", action="store_true",
                       help="replace the run already in --output (only the files a run writes are removed)")


def add_data(p, *, dataset="digits", image_size=None, batch_size=64) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=dataset,
                   help="digits | shapes[:K[:N]] | photos | lfw_subset | dir:PATH | tfrecord:GLOB | "
                        "tfds:NAME[:split] | keras:mnist|fashion_mnist|cifar10 (default: %(default)s)")
    g.add_argument("--image-size", type=positive_int, default=image_size,
                   help=f"square input size in pixels (default: {image_size or 'the model’s'})")
    g.add_argument("--batch-size", type=positive_int, default=batch_size, help="(default: %(default)s)")
    g.add_argument("--seed", type=seed, default=0,
                   help="seed of the split, initialisation, shuffling and augmentation (default: %(default)s)")


def add_model(p, *, default: str, tasks, app: str) -> None:
    """``--model``, checked against the app's tasks before any work (`check_model`)."""
    p.add_argument("--model", default=default,
                   help=f"registered {' or '.join(tasks)} model (default: %(default)s)")


def add_training(p, *, epochs: int, learning_rate: float) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=positive_int, default=epochs, help="maximum epochs (default: %(default)s)")
    g.add_argument("--learning-rate", type=positive_float, default=learning_rate,
                   help="peak learning rate (default: %(default)s)")
    g.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="tf.distribute strategy (default: %(default)s)")
    g.add_argument("--steps-per-epoch", type=positive_int, default=None,
                   help="limit the steps per epoch (quick runs; default: one pass over the data)")
    g.add_argument("--quiet", action="store_true", help="no per-epoch progress output")
    g.add_argument("--resume", action="store_true",
                   help="continue the unfinished run in --output from its last completed epoch (same command)")
    g.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="Keras dtype policy while training; exports stay float32/int8 (default: %(default)s)")
    g.add_argument("--jit", action="store_true",
                   help="compile the training steps with XLA (default: Keras decides: on GPUs, not on CPUs)")
    g.add_argument("--cache", metavar="DIR", type=folder, default=None,
                   help="keep the decoded, resized images of a dir:/tfrecord: dataset in DIR for later epochs and runs")
    g.add_argument("--worker-timeout", type=positive_float, default=300.0, metavar="SECONDS",
                   help="multiworker: how long to wait for the other workers (default: %(default)s)")


def add_export(p, *, quantize: str = "float32,int8", classifier: bool = False) -> None:
    """``--quantize``; for classifiers also ``--tflite-input`` (what the .tflite files take)."""
    g = p.add_argument_group("export")
    g.add_argument("--quantize", type=quantize_list, default=quantize_list(quantize),
                   help=f"comma list of TFLite exports among {', '.join(QUANTIZATIONS)}, or none "
                        f"(default: {quantize})")
    if classifier:
        g.add_argument("--tflite-input", choices=TFLITE_INPUTS, default="rgb",
                       help="what the .tflite files take: rgb (a 1-channel model gets a fixed RGB -> gray front, "
                            "so MediaPipe's ImageClassifier and phone cameras can feed it) or native (the model's "
                            "own channels); model.keras stays as trained (default: %(default)s)")


def add_balance(p) -> None:
    g = p.add_argument_group("class balance")
    g.add_argument("--balance", choices=BALANCE_MODES, default="none",
                   help="class-imbalance handling (default: %(default)s)")


def add_augment(p, *, default: str = "none", labels: bool = True) -> None:
    """``--augment PRESET``: the augmentation of the train pipeline. ``labels=False`` (no class
    labels to mix, e.g. autoencoders, metric learning) leaves out the presets that mix labels."""
    presets = tuple(name for name in AUGMENT_PRESETS if labels or name not in LABEL_MIXING_PRESETS)
    g = p.add_argument_group("augmentation")
    g.add_argument("--augment", choices=presets, default=default,
                   help=f"augmentation preset of the train pipeline: {', '.join(presets)} (see them with python -m "
                        "apps.augment_preview --augment PRESET; default: %(default)s)")


def add_classifier(p, *, app: str, model: str, epochs: int, learning_rate: float, augment: str,
                   image_size=None, architecture=None) -> None:
    """The flags the classifier training apps share; ``architecture(p)`` adds an app's own model
    flags between the training and the augmentation groups."""
    add_model(p, default=model, tasks=("classifier",), app=app)
    add_data(p, image_size=image_size, batch_size=64)
    add_training(p, epochs=epochs, learning_rate=learning_rate)
    if architecture is not None:
        architecture(p)
    add_augment(p, default=augment)
    add_balance(p)
    add_export(p, classifier=True)
    add_output(p, app)


def add_reconstruction(p, *, app: str, model_help: str, variants=None, epochs: int = 40) -> None:
    """The flags the autoencoder and VAE apps share."""
    if variants:
        p.add_argument("--variant", choices=variants, default=variants[0], help="which model (default: %(default)s)")
    p.add_argument("--model", default=None, help=f"registered autoencoder or VAE model (default: {model_help})")
    add_data(p, image_size=28, batch_size=32)
    add_training(p, epochs=epochs, learning_rate=1e-3)
    add_augment(p, labels=False)
    g = p.add_argument_group("autoencoder")
    g.add_argument("--latent-dim", type=positive_int, default=None,
                   help="size of the code (default: the model's)")
    g.add_argument("--anomaly-class", type=nonnegative_int, default=None,
                   help="train without this class index and report its detection ROC AUC")
    add_export(p, quantize="float32")
    add_output(p, app)


# --------------------------------------------------------------------------------- running

_HARMLESS = re.compile(
    rb"absl::InitializeLog|oneDNN custom operations|Could not find cuda drivers|failed call to cuInit|"
    rb"cpu_feature_guard|rebuild TensorFlow with the appropriate compiler flags|"
    rb"Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered|"
    rb"Created TensorFlow Lite XNNPACK delegate|use_unbounded_threadpool which is not in the op definition|"
    rb"^fully_quantize: |^(W|I)0000 .*(saved_model|tf_tfl_flatbuffer|"
    rb"flatbuffer_export|loader\.cc|reader\.cc|tf_tfl_translate)")


class quiet_stderr:
    """Pass the process's standard error (fd 2) through a filter that drops the notices TensorFlow,
    the TFLite converter and LiteRT print on every healthy CPU run; everything else, Python
    tracebacks and progress bars included, goes through as it comes."""

    active = None  # the filter in place, if any (see `plain_stderr`)

    def __enter__(self):
        import threading

        quiet_stderr.active = self
        sys.stderr.flush()
        self._saved = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._read = read
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        return self

    def _pump(self):
        pending = b""
        while True:
            chunk = os.read(self._read, 65536)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if not _HARMLESS.search(line):
                    os.write(self._saved, line + b"\n")
            if b"\r" in pending or len(pending) > 8192:  # a progress bar redrawing its line
                os.write(self._saved, pending)
                pending = b""
        if pending and not _HARMLESS.search(pending):
            os.write(self._saved, pending)

    def __exit__(self, *exc):
        quiet_stderr.active = None
        sys.stderr.flush()
        os.dup2(self._saved, 2)  # closes the pipe's last write end: the pump sees the end
        self._thread.join(timeout=5)
        os.close(self._saved)
        os.close(self._read)


@contextlib.contextmanager
def plain_stderr():
    """Standard error unfiltered inside the block: for work during which no Python thread runs
    (TensorFlow joining a cluster), whose messages the filter's thread could not pass on."""
    active = quiet_stderr.active
    if active is None:
        yield
        return
    sys.stderr.flush()
    pipe = os.dup(2)
    os.dup2(active._saved, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(pipe, 2)
        os.close(pipe)


EXPECTED_ERRORS = (ValueError, FileNotFoundError, FileExistsError, PermissionError, NotADirectoryError,
                   IsADirectoryError, ConnectionError)


def run(main_body, argv=None, arg_parser=None) -> int:
    """Parse ``argv`` and call ``main_body(args)``; turn known failures into one line and an exit code.

    Bad input exits 2, a diverged training run 1, Ctrl-C 130 (what was saved is kept and said).
    """
    args = arg_parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with quiet_stderr():
            return int(main_body(args) or 0)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {_kept(args)}", file=sys.stderr)
        return 130
    except EXPECTED_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:  # an optional extra that is not installed says how to get it
        if "pip install" not in str(err):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        from keras_cv_apps.training import TrainingDivergedError

        if not isinstance(err, TrainingDivergedError):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1


def _kept(args) -> str:
    output = getattr(args, "output", None)
    if output and (Path(output) / "best.keras").exists():
        resume = " (add --resume to the same command to continue)" if (Path(output) / "backup").is_dir() else ""
        return f"the best checkpoint so far is kept in {Path(output) / 'best.keras'}{resume}."
    return "no epoch had finished, so no checkpoint was saved."


def next_step(text: str) -> None:
    """The last line an app prints: what to try next."""
    print(f"next: {text}")


def resolve_model(path, *, app: str, filename: str) -> Path:
    """The exported model a phone-side app uses: ``--model`` if given, else the newest run of
    ``app`` under ``runs/``, else its committed reference under ``saved_models/``. Says which on
    stderr, so stdout keeps the app's one-line answer."""
    from keras_cv_apps.inference import find_model

    if path is not None:
        if not Path(path).is_file():
            raise FileNotFoundError(f"No model file {path}; train one with `python -m apps.{app}` or pass another "
                                    "--model.")
        if filename.endswith(".tflite") and Path(path).suffix.lower() != ".tflite":
            raise ValueError(f"--model takes a .tflite file that `python -m apps.{app}` exported (e.g. its "
                             f"{filename}), got {Path(path).name}.")
        return Path(path)
    found = find_model(app, filename)
    if found is None:
        raise FileNotFoundError(f"No {filename} under runs/{app}/ or saved_models/{app}/; run "
                                f"`python -m apps.{app}` first or pass --model.")
    kind = "the reference model" if found.parts[0] == "saved_models" else "the newest run"
    print(f"model: {found} ({kind}; --model chooses another)", file=sys.stderr)
    return found
