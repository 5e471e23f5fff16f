"""What every training app shares: the common flags, error handling, and the classifier path
(data.load -> models.create -> training.fit -> evaluation -> TFLite export + verification).

An app adds only its own flags, defaults and report; no app holds model, loss, data or export code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
STRATEGIES = ("default", "mirrored", "multiworker")
BALANCE_MODES = ("none", "weights", "oversample", "undersample", "focal")
# File name of each exported TFLite variant beside model.keras.
TFLITE_NAMES = {q: ("{stem}.tflite" if q == "float32" else "{stem}_" + q + ".tflite") for q in QUANTIZATIONS}


def _quantize_list(text: str) -> list:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in modes if m not in QUANTIZATIONS + ("none",)]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown quantization {bad[0]!r}; use a comma list of {', '.join(QUANTIZATIONS)} (or 'none')."
        )
    return [m for m in modes if m != "none"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}.") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}.")
    return value


def common_parser(doc: str, *, app: str, dataset="digits", model=None, epochs=20, batch_size=64,
                  image_size=None, learning_rate=1e-3, quantize="float32,int8") -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the flags every training app shares (DESIGN.md §9)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m apps.{app}", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--dataset", default=dataset, help="digits | shapes | lfw_subset | dir:PATH | tfds:NAME | keras:mnist ... (default: %(default)s)")
    add("--model", default=model, help="registered model name (default: %(default)s)")
    add("--epochs", type=_positive_int, default=epochs, help="maximum epochs (default: %(default)s)")
    add("--batch-size", type=_positive_int, default=batch_size, help="(default: %(default)s)")
    add("--image-size", type=_positive_int, default=image_size, help="square input size; default: the model's")
    add("--learning-rate", type=float, default=learning_rate, help="peak learning rate (default: %(default)s)")
    add("--output", default=f"saved_models/{app}", help="run folder (default: %(default)s)")
    add("--seed", type=int, default=0, help="seed for the split, initialisation and shuffling (default: %(default)s)")
    add("--quantize", type=_quantize_list, default=_quantize_list(quantize),
        help=f"comma list of TFLite exports among {', '.join(QUANTIZATIONS)}, or none (default: {quantize})")
    add("--strategy", choices=STRATEGIES, default="default", help="tf.distribute strategy (default: %(default)s)")
    add("--steps-per-epoch", type=_positive_int, default=None, help="limit steps per epoch (quick runs)")
    add("--balance", choices=BALANCE_MODES, default="none", help="class-imbalance handling (default: %(default)s)")
    add("--quiet", action="store_true", help="no Keras progress bar")
    return parser


def run(main_body, argv=None, parser=None) -> int:
    """Parse ``argv`` and call ``main_body(args)``; turn known failures into one line and an exit code.

    Bad input (ValueError, FileNotFoundError, PermissionError) exits 2; Ctrl-C exits 130 and keeps what
    was already saved; a diverged training run exits 1.
    """
    args = parser.parse_args(argv)
    try:
        return int(main_body(args) or 0)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the best checkpoint so far is kept in {args.output}", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, PermissionError, NotADirectoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        if type(err).__name__ != "TrainingDivergedError":
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1


def prepare_output(path) -> Path:
    """Create the run folder and check it is writable, before any long work starts."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-check-"):
            pass
    except OSError as err:
        raise PermissionError(f"Output folder {str(out)!r} is not writable ({err.strerror or err}).") from None
    return out


def save_keras(model, path) -> Path:
    """Save the trained model for inference (no optimizer state, about a third of the size; the
    run's ``best.keras`` keeps it for resuming) to a temporary name, then rename it, so an
    interrupted save never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    inference = model.__class__.from_config(model.get_config())  # same graph, not compiled
    inference.set_weights(model.get_weights())
    inference.save(tmp)
    os.replace(tmp, path)
    return path


def export_and_verify(model, out: Path, modes, *, samples, labels=None, representative=None,
                      stem: str = "model") -> dict:
    """Export ``model`` to TFLite in each mode, verify each against Keras, return the reports by mode."""
    from keras_cv_apps import export

    reports = {}
    for mode in modes:
        path = out / TFLITE_NAMES[mode].format(stem=stem)
        export.export_tflite(model, path, quantization=mode,
                             representative=representative if mode == "int8" else None)
        reports[mode] = {"file": path.name, **export.verify_tflite(model, path, samples, labels)}
    return reports


def train_classifier(args, *, app: str, model_kwargs: dict, fit_kwargs: dict, augment: str) -> dict:
    """The whole classifier path for ``lenet_train``/``alexnet_train``; returns metrics.json's content."""
    from keras_cv_apps import data, export, metrics, models, training

    start = time.time()
    cfg = models.get_cfg(args.model)                      # unknown model: clear error, nothing trained
    out = prepare_output(args.output)
    size = args.image_size or cfg.image_shape[0]
    if size < cfg.min_image_size:
        raise ValueError(f"{args.model} needs images of at least {cfg.min_image_size} px; got --image-size {size}.")
    training.set_seed(args.seed)
    splits = data.load(args.dataset, image_size=size, channels=cfg.image_shape[2], scale=cfg.scale,
                       seed=args.seed, batch_size=args.batch_size, augment=augment)
    kwargs = {**model_kwargs, "num_classes": splits.num_classes, "image_shape": splits.image_shape}
    train_ds, class_weight, loss = splits.train, None, None
    if args.balance != "none":
        from keras_cv_apps.data import balance

        plan = balance.prepare(splits, args.balance, seed=args.seed)
        train_ds, class_weight, loss = plan.train, plan.class_weight, plan.loss

    fit_splits = splits if train_ds is splits.train else _with_train(splits, train_ds)
    model_holder = {}

    def build():
        model_holder["model"] = models.create(args.model, **kwargs)
        return model_holder["model"]

    history = training.fit(build, fit_splits, run_dir=out, epochs=args.epochs, learning_rate=args.learning_rate,
                           steps_per_epoch=args.steps_per_epoch, strategy=args.strategy, loss=loss,
                           class_weight=class_weight, verbose=0 if args.quiet else "auto", **fit_kwargs)
    model = model_holder["model"]
    train_seconds = time.time() - start

    x_test, y_test = splits.arrays("test", scaled=True)
    report = metrics.evaluate_classifier(model, x_test, y_test, splits.class_names)
    metrics.plot_confusion_matrix(report["confusion_matrix"], splits.class_names, out / "confusion_matrix.png")
    save_keras(model, out / "model.keras")
    tflite = export_and_verify(model, out, args.quantize, samples=x_test, labels=y_test,
                               representative=splits.representative(200))
    export.write_labels(splits.class_names, out / "labels.txt")
    config = {
        "app": app,
        "command": "python -m apps." + app + " " + " ".join(sys.argv[1:]),
        "model": args.model,
        "model_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
        "dataset": args.dataset,
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "augment": augment,
        "balance": args.balance,
        "strategy": args.strategy,
        "fit": fit_kwargs,
        "preprocessing": splits.preprocessing,
        "class_names": splits.class_names,
        "input": {"shape": list(splits.image_shape), "dtype_float": "float32 scaled as preprocessing.scale",
                  "int8_model_input": "uint8 pixels quantized with the input tensor's scale/zero point"},
    }
    export.write_json(config, out / "config.json")
    result = {
        "test": {k: report[k] for k in ("top1", "top5", "macro_f1", "n") if k in report},
        "per_class": report.get("per_class"),
        "confusion_matrix": report["confusion_matrix"],
        "epochs_run": len(history.history.get("loss", [])),
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - start, 1),
        "tflite": tflite,
        "data": splits.info,
    }
    export.write_json(result, out / "metrics.json")
    summary = {"test_top1": result["test"]["top1"],
               **{f"tflite_{m}_accuracy": r.get("accuracy") for m, r in tflite.items()}}
    update_manifest(out, app=app, command=config["command"], summary=summary)
    return result


class _with_train:
    """A view of ``splits`` with another training dataset (used by the balance modes)."""

    def __init__(self, splits, train):
        self._splits, self.train = splits, train

    def __getattr__(self, name):
        return getattr(self._splits, name)


def print_summary(title: str, result: dict, out) -> None:
    """The short human summary every classifier app prints at the end."""
    test = result["test"]
    lines = [f"{title}: test top-1 {100 * test['top1']:.2f}% (n={test['n']}), macro-F1 {test['macro_f1']:.4f}, "
             f"{result['epochs_run']} epochs in {result['train_seconds']:.0f}s"]
    for mode, rep in result["tflite"].items():
        acc = rep.get("accuracy")
        acc_text = f", accuracy {100 * acc:.2f}%" if acc is not None else ""
        lines.append(f"  {rep['file']:<24} {rep['size_bytes'] / 1024:7.1f} KiB  max|diff| {rep['max_abs_diff']:.2e}, "
                     f"top-1 agreement {100 * rep['top1_agreement']:.2f}%{acc_text}")
    lines.append(f"  saved to {out}/ (model.keras, labels.txt, config.json, metrics.json, history.json, plots)")
    print("\n".join(lines))


# Keras files (checkpoints, full models with their weights) are regenerated by running the app;
# the committed reference exports are the TFLite files, labels, configs, metrics and plots.
NOT_IN_MANIFEST = (".keras",)


def update_manifest(out, *, app: str, command: str, summary: dict) -> Path | None:
    """Record a run saved under a ``saved_models/`` folder in its ``MANIFEST.json``: the command,
    headline metrics and the sha256 of every file, so the committed exports can be checked."""
    import hashlib

    out = Path(out).resolve()
    root = next((p for p in out.parents if p.name == "saved_models"), None)
    if root is None:
        return None
    manifest_path = root / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        if path.suffix in NOT_IN_MANIFEST or path.name.startswith("."):
            continue
        files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest[out.relative_to(root).as_posix()] = {"app": app, "command": command, "metrics": summary, "files": files}
    tmp = manifest_path.with_name(".MANIFEST.json.tmp")
    tmp.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")
    os.replace(tmp, manifest_path)
    return manifest_path
