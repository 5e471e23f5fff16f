"""The small-data transformer on digits 32x32: accuracy over seeds, time per seed, a plain ViT, ablations.

``cct_small`` is trained by ``vit_train``'s own path (`apps._runs.train_classifier` with the app's
defaults) on the seeded 70/10/20 digits split of each seed, and scored on the 360 test images.

The plain ViT is the keras-io example "Image classification with Vision Transformer" scaled to the
same 32x32 input: a Normalization layer adapted to the training images, 4x4 patches (64 of them)
projected to 64 with a learned position embedding, 8 pre-norm blocks of Keras' MultiHeadAttention
(4 heads, key_dim 64) and a GELU MLP (128, 64) with dropout 0.1, the flattened tokens through a
GELU head (2048, 1024) with dropout 0.5; AdamW 1e-3 with weight decay 1e-4 at a constant rate,
random rotation of 0.02 turns and zoom of 20% (the example's horizontal flip is left out: a mirrored
digit is another symbol). It trains on the same split, batch size and number of epochs.

The ablation trains cct_small with one ingredient taken away at a time (3 seeds each).

Time per seed is the app's training time (wall clock; the machine may be shared) and the CPU time
of the whole seed divided by the number of cores, which is what an otherwise idle machine of that
size would need at best.

    python -m benchmarks.bench_vit [--seeds 0 1 2 3 4] [--ablation-seeds 0 1 2] [--quick] [--runs-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._util import table, write_result

ABLATIONS = {  # key -> (name, model kwargs, fit kwargs, augmentation) replacing the app's defaults
    "patch": ("patch tokenizer (no convolutions)", {"tokenizer": "patch", "patch_size": 4}, {}, None),
    "cls": ("class token instead of SeqPool", {"pooling": "cls"}, {}, None),
    "noaug": ("no augmentation", {}, {}, "none"),
    "nols": ("no label smoothing", {}, {"label_smoothing": 0.0}, None),
    "nosd": ("no stochastic depth", {"drop_path": 0.0}, {}, None),
    "lsa": ("+ Locality Self-Attention", {"locality": True}, {}, None),
}


def _finished_run(folder: Path, args, model_kwargs: dict, fit_kwargs: dict, augment: str):
    """The metrics of a finished run of exactly this configuration kept in ``folder`` (``--runs-dir``)."""
    for config_path in sorted(folder.glob(f"cct_{args.seed}_*/config.json")):
        if not config_path.with_name("metrics.json").is_file():
            continue  # interrupted
        config = json.loads(config_path.read_text())
        kwargs = {k: v for k, v in config["model"]["kwargs"].items() if k not in ("num_classes", "image_shape")}
        want = {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                **fit_kwargs}
        same = (config["seed"] == args.seed and config["model"]["name"] == args.model
                and config["dataset"]["spec"] == args.dataset and kwargs == json.loads(json.dumps(model_kwargs))
                and config["options"]["augment"] == augment
                and all(config["training"].get(k) == v for k, v in want.items()))
        if same:
            return json.loads(config_path.with_name("metrics.json").read_text()), config_path.parent
    return None


def run_cct(seed: int, folder: Path, *, model_kwargs=None, fit_kwargs=None, augment=None, epochs=None) -> dict:
    """One seed of cct_small through vit_train's training path; test top-1 and training seconds. A
    finished run of the same configuration in ``folder`` is read back instead of trained again."""
    from apps import _runs, vit_train

    argv = ["--output", str(folder / f"cct_{seed}_{time.time_ns()}"), "--seed", str(seed), "--quiet",
            "--quantize", "none"] + (["--epochs", str(epochs)] if epochs else [])
    args = vit_train.parse_args(argv)
    model_kwargs = {**vit_train.MODEL_KWARGS, **(model_kwargs or {})}
    fit_kwargs = {**vit_train.FIT_KWARGS, **(fit_kwargs or {})}
    augment = augment or args.augment  # the app's default
    done = _finished_run(folder, args, model_kwargs, fit_kwargs, augment)
    if done is not None:
        metrics, path = done
        return {"seed": seed, "top1": metrics["test"]["top1"], "seconds": metrics["training"]["train_seconds"],
                "cpu_seconds": None, "load": None, "read_back_from": path.name}
    cpu = time.process_time()
    metrics, _ = _runs.train_classifier(args, app=vit_train.APP, model_kwargs=model_kwargs, fit_kwargs=fit_kwargs,
                                        augment=augment)
    print(f"cct seed {seed}: top-1 {100 * metrics['test']['top1']:.2f}%", flush=True)
    return {"seed": seed, "top1": metrics["test"]["top1"], "seconds": metrics["training"]["train_seconds"],
            "cpu_seconds": round(time.process_time() - cpu, 1), "load": round(os.getloadavg()[0], 1)}


def keras_io_vit(image_shape, num_classes, train_images):
    """The keras-io ViT example at 32x32 (see the module docstring), ending in a softmax."""
    import keras
    from keras import layers

    from keras_cv_apps.models.vit_layers import PositionEmbedding

    inputs = keras.Input(image_shape)
    norm = layers.Normalization()
    norm.adapt(train_images)
    x = layers.Conv2D(64, 4, strides=4)(norm(inputs))  # patch extraction + projection, as one op
    x = layers.Reshape((64, 64))(x)
    x = PositionEmbedding()(x)  # keras-io: an Embedding of the 64 positions, added
    for _ in range(8):
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        y = layers.MultiHeadAttention(num_heads=4, key_dim=64, dropout=0.1)(y, y)
        x = layers.Add()([y, x])
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        for units in (128, 64):
            y = layers.Dropout(0.1)(layers.Dense(units, activation="gelu")(y))
        x = layers.Add()([y, x])
    x = layers.Dropout(0.5)(layers.Flatten()(layers.LayerNormalization(epsilon=1e-6)(x)))
    for units in (2048, 1024):
        x = layers.Dropout(0.5)(layers.Dense(units, activation="gelu")(x))
    return keras.Model(inputs, layers.Dense(num_classes, activation="softmax")(x), name="keras_io_vit")


def run_plain_vit(seed: int, folder: Path, *, epochs: int, batch_size: int) -> dict:
    """One seed of the keras-io ViT; its row is kept as ``vit_<seed>/plain.json`` in ``folder`` and a
    finished run of the same epochs and batch size there is read back instead of trained again."""
    import keras

    from keras_cv_apps import data, training

    kept = folder / f"vit_{seed}" / "plain.json"
    if kept.is_file():
        row = json.loads(kept.read_text())
        if row.get("epochs") == epochs and row.get("batch_size") == batch_size:
            row = {k: v for k, v in row.items() if k not in ("epochs", "batch_size")}
            return {**row, "read_back_from": kept.parent.name}
    training.set_seed(seed)
    cpu = time.process_time()
    augment = [keras.layers.RandomRotation(0.02, seed=seed), keras.layers.RandomZoom(0.2, 0.2, seed=seed + 1)]
    splits = data.load("digits", image_size=32, seed=seed, batch_size=batch_size, augment=augment)
    model = keras_io_vit(splits.image_shape, splits.num_classes, splits.arrays("train")[0])
    result = training.fit(model, splits, run_dir=folder / f"vit_{seed}", epochs=epochs, optimizer="adamw",
                          learning_rate=1e-3, weight_decay=1e-4, schedule="constant", patience=10 ** 6,
                          monitor="val_accuracy", verbose=0)
    x, y = splits.arrays("test")
    top1 = float(np.mean(model.predict(x, verbose=0).argmax(1) == y))
    row = {"seed": seed, "top1": top1, "seconds": round(result.seconds, 1),
           "cpu_seconds": round(time.process_time() - cpu, 1), "load": round(os.getloadavg()[0], 1)}
    kept.write_text(json.dumps({**row, "epochs": epochs, "batch_size": batch_size}))
    return row


def _summary(runs: list) -> dict:
    top1 = np.array([r["top1"] for r in runs])
    half = 1.96 * top1.std(ddof=1) / np.sqrt(len(top1)) if len(top1) > 1 else float("nan")
    return {"mean_top1_%": round(100 * top1.mean(), 2), "ci95_pts": round(100 * half, 2),
            "min_top1_%": round(100 * top1.min(), 2), "mean_error_%": round(100 * (1 - top1.mean()), 2),
            "max_seconds": max(r["seconds"] for r in runs),
            "max_cpu_seconds_per_core": max((round(r["cpu_seconds"] / (os.cpu_count() or 1), 1) for r in runs
                                             if r["cpu_seconds"] is not None), default=None),
            "runs": runs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--ablation-seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--ablations", nargs="*", default=list(ABLATIONS), choices=list(ABLATIONS),
                        help="which ablations to run (default: all)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["cct", "plain", "ablation"])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, seed 0, no ablation")
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="keep the run folders here (default: a temporary folder); cct and plain-ViT runs of "
                             "the same configuration already finished there are read back, so an interrupted run "
                             "resumes")
    args = parser.parse_args(argv)
    from apps import vit_train

    epochs = 2 if args.quick else vit_train.parse_args([]).epochs
    seeds = [0] if args.quick else args.seeds
    rows, out = [], {"epochs": epochs}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.runs_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if "cct" not in args.skip:
            out["cct_small"] = _summary([run_cct(s, folder, epochs=epochs) for s in seeds])
            rows.append({"model": "cct_small (vit_train defaults)", **out["cct_small"]})
        if "plain" not in args.skip:
            out["plain_vit"] = _summary([run_plain_vit(s, folder, epochs=epochs, batch_size=64) for s in seeds])
            rows.append({"model": "plain ViT (keras-io recipe, 32x32)", **out["plain_vit"]})
        out["ablation"] = {}
        chosen = [] if args.quick or "ablation" in args.skip else args.ablations
        for name, mk, fk, aug in (ABLATIONS[key] for key in chosen):
            out["ablation"][name] = _summary([run_cct(s, folder, model_kwargs=mk, fit_kwargs=fk, augment=aug,
                                                      epochs=epochs) for s in args.ablation_seeds])
            rows.append({"model": f"cct_small, {name}", **out["ablation"][name]})
    print(table(rows, ["model", "mean_top1_%", "ci95_pts", "min_top1_%", "mean_error_%", "max_seconds",
                       "max_cpu_seconds_per_core"]))
    if "cct_small" in out:
        cct = out["cct_small"]
        goals = {"mean_top1>=99.0": cct["mean_top1_%"] >= 99.0,
                 "seconds_per_seed<=180 (wall, shared machine)": cct["max_seconds"] <= 180}
        if cct["max_cpu_seconds_per_core"] is not None:
            goals["cpu_seconds_per_core_per_seed<=180"] = cct["max_cpu_seconds_per_core"] <= 180
        if "plain_vit" in out:
            goals["error<=half_plain_vit"] = cct["mean_error_%"] <= out["plain_vit"]["mean_error_%"] / 2
        out["goals_met"] = goals
        print("\n".join(f"{k}: {v}" for k, v in goals.items()))
    name = "vit_quick" if args.quick else "vit" if not args.skip else "vit_" + "_".join(
        part for part in ("cct", "plain", "ablation") if part not in args.skip)
    print(f"results: {write_result(name, out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
