"""Mobile CNNs on small offline datasets: accuracy vs MACs vs int8 latency, and the MAC counter
against published figures.

Part 1 (``complexity``): `models.complexity` on keras.applications models built with
``weights=None`` (MobileNetV2 1.0/224, MobileNetV3-Large, EfficientNet-B0, ResNet-50) beside
their published MACs, and the registered families at their default sizes, with the MAC growth
per compound-scaling step of ``effnet_b0..b3``.

Part 2 (``train``): LeNet-5, AlexNet, ``mobilenetv2``, ``ghostnet`` (widths 1.0 and 0.75: at
32 px the final maps are 1x1 and GhostNet's width-independent head and SE layers weigh more, so
width 0.75 is the GhostNet-style model at <= 0.6x MobileNetV2's MACs) and ``effnet_b0..b3``
trained with one short recipe (Adam 2e-3, warm-up + cosine, label smoothing 0.1, augmentation in
the pipeline, batch 64) on ``digits`` at 32x32 (30 epochs), on ``shapes`` (all 8 shape classes,
400 images each) at 64x64 (40 epochs) and on ``photos`` (crops of 6 scikit-image photos, 400 each) at
64x64 (30 epochs); the b-family's input grows as ``size * 1.15**phi``
(multiples of 8). Each model is exported to float32,
int8 with per-channel weight scales (the exporter's default) and with per-tensor scales (the
mobile families' default in their cfg, which `export.export_all` and the apps follow; ``goals``
names each model's default as ``default_int8``), verified on the
test split with LiteRT, timed one image at a time (1 thread, XNNPACK; median of interleaved
rounds) and checked for ops XNNPACK leaves to the built-in kernels. Every (dataset, model) runs in
its own process (TensorFlow's converter grows memory with each conversion) and is written to
``benchmarks/results/mobile_runs/`` as it finishes, so ``--resume`` continues a stopped run; the
table, goals and plot cover every stored run, also those not asked for in this call.

    python -m benchmarks.bench_mobile [--part complexity|train|all] [--datasets digits shapes photos]
                                      [--models ...] [--epochs N] [--resume] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._util import PY, RESULTS, table, write_result

MODELS = ("lenet5", "alexnet", "mobilenetv2", "ghostnet", "ghostnet_075", "effnet_b0", "effnet_b1", "effnet_b2",
          "effnet_b3")
MOBILE = MODELS[2:]
# benchmark labels that are a registered model with other arguments
VARIANTS = {"ghostnet_075": ("ghostnet", {"width_multiplier": 0.75})}
DATASETS = {  # name -> (spec, base image size, epochs, augmentation preset)
    "digits": ("digits", 32, 30, "digits"),
    "shapes": ("shapes:8:400", 64, 40, "light"),  # 100 a class for 20 epochs left every model near chance
    "photos": ("photos:400", 64, 30, "light"),  # 6 scikit-image photos, 480 test crops
}
FIT = dict(optimizer="adam", schedule="cosine", label_smoothing=0.1, learning_rate=2e-3, patience=1000)
PUBLISHED = {  # keras.applications name -> (input size, published MACs, source)
    "MobileNetV2": (224, 300e6, "Sandler et al. 2018, 1.0/224"),
    "MobileNetV3Large": (224, 217e6, "Howard et al. 2019 (219M in the paper; 217M as Keras builds it)"),
    "EfficientNetB0": (224, 0.39e9, "Tan and Le 2019"),
    "ResNet50": (224, 3.86e9, "3.8B in He et al. 2015; 3.86B for Keras' stride placement"),
}
RUNS = RESULTS / "mobile_runs"


def image_size(model: str, base: int) -> int:
    from keras_cv_apps.models.efficientnet import compound_scaling, scale_resolution

    if model.startswith("effnet_b"):
        return scale_resolution(base, compound_scaling(int(model[-1]))["resolution"], divisor=8)
    return base


def registry_name(model: str) -> str:
    return VARIANTS.get(model, (model, {}))[0]


def model_kwargs(model: str) -> dict:
    if model in VARIANTS:
        return dict(VARIANTS[model][1])
    if model == "lenet5":
        from apps.lenet_train import MODEL_KWARGS

        return dict(MODEL_KWARGS)
    return {}


# ----------------------------------------------------------------------------------- part 1


def complexity_part() -> dict:
    import keras

    from keras_cv_apps import models

    rows = []
    for name, (size, published, source) in PUBLISHED.items():
        report = models.complexity(getattr(keras.applications, name)(weights=None), input_shape=(size, size, 3))
        rows.append({"model": f"keras.applications.{name}", "input": size, "MACs_M": round(report["macs"] / 1e6, 1),
                     "published_M": round(published / 1e6, 1), "ratio": round(report["macs"] / published, 3),
                     "params": report["params"], "source": source})
    family = []
    for name in ("mobilenetv2", "ghostnet", "effnet_b0", "effnet_b1", "effnet_b2", "effnet_b3"):
        model = models.create(name)
        report = models.complexity(model)
        family.append({"model": name, "input": model.input_shape[1], "MACs_M": round(report["macs"] / 1e6, 1),
                       "params": report["params"]})
    effnet = [r["MACs_M"] for r in family if r["model"].startswith("effnet")]
    steps = [round(b / a, 3) for a, b in zip(effnet, effnet[1:])]
    print(table(rows, ["model", "input", "MACs_M", "published_M", "ratio", "params"]))
    print(table(family, ["model", "input", "MACs_M", "params"]))
    predicted = models.compound_scaling(1)["macs"]
    print(f"effnet MAC growth per phi step: {steps} (compound_scaling predicts {predicted:.3f})")
    return {"published": rows, "families": family, "effnet_steps": steps,
            "goals_met": {"effnet_steps_in_1.8_2.3": all(1.8 <= s <= 2.3 for s in steps),
                          "published_within_3%": all(abs(r["ratio"] - 1) <= 0.03 for r in rows)}}


# ----------------------------------------------------------------------------------- part 2


def latencies(paths: dict, image, runs: int, rounds: int = 5) -> dict:
    """Median single-image latency (µs) per file, measured in interleaved rounds so that load
    from other jobs on a shared machine hits every file alike."""
    from benchmarks.bench_export import latency_us

    samples = {name: [] for name in paths}
    for _ in range(rounds):
        for name, path in paths.items():
            samples[name].append(latency_us(path, image, threads=1, runs=max(runs // rounds, 20)))
    return {name: round(statistics.median(v), 1) for name, v in samples.items()}


def train_one(dataset: str, model: str, *, epochs: int, runs: int, seed: int) -> dict:
    """Train, export, verify and time one model on one dataset (runs in a child process)."""
    from keras_cv_apps import data, export, models, training

    spec, base, _, augment = DATASETS[dataset]
    cfg = models.get_cfg(registry_name(model))
    size = image_size(model, base)
    training.set_seed(seed)
    splits = data.load(spec, image_size=size, channels=cfg.image_shape[2], scale=cfg.scale, seed=seed,
                       batch_size=64, augment=augment)
    kwargs = {**model_kwargs(model), "num_classes": splits.num_classes, "image_shape": splits.image_shape}
    x_test, y_test = splits.arrays("test")
    row = {"dataset": dataset, "model": model, "image_size": size, "n_test": int(len(y_test))}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result = training.fit(lambda: models.create(registry_name(model), **kwargs), splits, run_dir=folder / "run",
                              epochs=epochs, verbose=0, **FIT)
        trained = result.model
        report = models.complexity(trained)
        row.update(macs=report["macs"], params=report["params"], epochs=result.epochs_run,
                   train_s=round(result.seconds, 1))
        variants = {"float32": {}, "int8": {"quantization": "int8"},
                    "int8_per_tensor": {"quantization": "int8", "per_channel": False}}
        paths = {}
        for name, options in variants.items():
            paths[name] = export.export_tflite(trained, folder / f"{name}.tflite",
                                               representative=splits.representative(200) if options else None,
                                               **options)
            check = export.verify_tflite(trained, paths[name], x_test, y_test)
            xnn = export.xnnpack_report(paths[name])
            row[f"{name}_top1"] = round(100 * check["accuracy"], 2)
            row[f"{name}_kb"] = round(check["size_bytes"] / 1024, 1)
            row[f"{name}_xnn_partitions"] = xnn["partitions"]
            row[f"{name}_fallback"] = xnn["fallback"]
            row["keras_top1"] = round(100 * check["keras_accuracy"], 2)
        for name, us in latencies(paths, x_test[0], runs).items():
            row[f"{name}_us"] = us
    for name in ("int8", "int8_per_tensor"):
        row[f"{name}_drop"] = round(row["keras_top1"] - row[f"{name}_top1"], 2)
        row[f"{name}_size_ratio"] = round(row[f"{name}_kb"] / row["float32_kb"], 3)
        row[f"{name}_speedup"] = round(row["float32_us"] / row[f"{name}_us"], 2)
    return row


def run_child(dataset: str, model: str, args, runs_dir: Path) -> dict:
    runs_dir.mkdir(parents=True, exist_ok=True)
    out = runs_dir / f"{dataset}_{model}.json"
    if args.resume and out.exists():
        return json.loads(out.read_text())
    cmd = [PY, "-m", "benchmarks.bench_mobile", "--one", f"{dataset}:{model}", "--seed", str(args.seed),
           "--runs", str(args.runs)] + (["--epochs", str(args.epochs)] if args.epochs else [])
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode != 0:
        raise SystemExit(f"{dataset}/{model} failed:\n{done.stderr[-3000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["wall_s"] = round(time.perf_counter() - start, 1)
    row["load_avg_1_5_15"] = [round(v, 2) for v in os.getloadavg()]
    out.write_text(json.dumps(row, indent=1) + "\n")
    print(f"  {dataset}/{model}: {row['keras_top1']}% at {row['macs'] / 1e6:.2f}M MACs, int8 {row['int8_us']} µs "
          f"vs float32 {row['float32_us']} µs ({row['wall_s']:.0f} s)", flush=True)
    return row


def goals(rows: list) -> dict:
    from keras_cv_apps import models

    out = {}
    for dataset in {r["dataset"] for r in rows}:
        by = {r["model"]: r for r in rows if r["dataset"] == dataset}
        for ghost in ("ghostnet", "ghostnet_075"):
            if ghost in by and "mobilenetv2" in by:
                g, m = by[ghost], by["mobilenetv2"]
                out[f"{dataset}: {ghost} MACs / mobilenetv2"] = round(g["macs"] / m["macs"], 3)
                out[f"{dataset}: {ghost} - mobilenetv2 top-1 (points)"] = round(g["keras_top1"] - m["keras_top1"], 2)
        for name in MOBILE:
            if name in by:
                r = by[name]
                per_channel = models.get_cfg(registry_name(name)).tflite_options.get("per_channel", True)
                out[f"{dataset}/{name}"] = {"default_int8": "int8" if per_channel else "int8_per_tensor"} | {
                    mode: {"drop<=0.5": r[f"{mode}_drop"] <= 0.5, "size<=0.27": r[f"{mode}_size_ratio"] <= 0.27,
                           "not_slower": r[f"{mode}_us"] <= r["float32_us"],
                           "xnnpack_fallback": r[f"{mode}_fallback"]}
                    for mode in ("int8", "int8_per_tensor")}
    return out


def plot(rows: list, path: Path) -> None:
    from keras_cv_apps._figures import new_figure, save_figure

    datasets = [d for d in DATASETS if any(r["dataset"] == d for r in rows)]
    fig = new_figure((6 * len(datasets), 4.5))
    for i, dataset in enumerate(datasets, start=1):
        ax = fig.add_subplot(1, len(datasets), i)
        points = sorted((r for r in rows if r["dataset"] == dataset), key=lambda r: r["macs"])
        span = max(1.0, max(r["keras_top1"] for r in points) - min(r["keras_top1"] for r in points))
        placed = []  # (log10 MACs, top-1, label row) so far: a label takes the first row its close neighbours left
        for r in points:
            x, y = np.log10(r["macs"] / 1e6), r["keras_top1"]
            taken = {prow for px, py, prow in placed if abs(x - px) < 0.4 and abs(y - py) < 0.08 * span}
            row = min(set(range(len(taken) + 1)) - taken)
            placed.append((x, y, row))
            ax.scatter(r["macs"] / 1e6, y, s=20 + 2 * r["int8_us"] ** 0.5 * 4,
                       color="tab:orange" if r["model"].startswith("effnet") else "tab:blue", alpha=0.7)
            ax.annotate(f"{r['model']}\n{r['int8_us'] / 1000:.2f} ms int8", (r["macs"] / 1e6, y), fontsize=7,
                        xytext=(4, 2 - 18 * row), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("MACs per image (millions, log scale)")
        ax.set_ylabel("test top-1 (%)")
        ax.set_title(f"{dataset} (marker area ~ int8 latency, 1 thread)")
        ax.grid(alpha=0.3)
    save_figure(fig, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("complexity", "train", "all"), default="all")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=None, help="override each dataset's epochs (quick checks)")
    parser.add_argument("--runs", type=int, default=300, help="timed calls per latency figure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="reuse rows already in results/mobile_runs/")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 epoch, digits, LeNet + test sizes")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # DATASET:MODEL, the child process
    args = parser.parse_args(argv)
    if args.one:
        dataset, model = args.one.split(":")
        epochs = args.epochs or DATASETS[dataset][2]
        print(json.dumps(train_one(dataset, model, epochs=epochs, runs=args.runs, seed=args.seed),
                         default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))
        return 0
    if args.quick:
        args.datasets, args.models, args.epochs, args.runs = ["digits"], ["lenet5", "ghostnet"], 1, 40
    payload = {}
    if args.part in ("complexity", "all") and not args.quick:
        payload["complexity"] = complexity_part()
    if args.part in ("train", "all"):
        runs_dir = Path(tempfile.mkdtemp()) if args.quick else RUNS
        rows = [run_child(d, m, args, runs_dir) for d in args.datasets for m in args.models]
        if not args.quick:  # the table, goals and plot cover every stored run, not only those asked for now
            asked = {(r["dataset"], r["model"]) for r in rows}
            rows += [json.loads(f.read_text()) for f in sorted(RUNS.glob("*.json"))
                     if tuple(f.stem.split("_", 1)) not in asked]
            rows.sort(key=lambda r: (list(DATASETS).index(r["dataset"]), MODELS.index(r["model"])))
        columns = ["dataset", "model", "image_size", "macs", "params", "keras_top1", "int8_top1",
                   "int8_per_tensor_top1", "float32_kb", "int8_size_ratio", "int8_per_tensor_size_ratio",
                   "float32_us", "int8_us", "int8_per_tensor_us", "train_s"]
        print(table(rows, columns))
        payload.update(rows=rows, recipe=FIT, datasets={k: v[:3] for k, v in DATASETS.items()}, goals=goals(rows))
        print(json.dumps(payload["goals"], indent=1))
        if not args.quick:
            plot(rows, RESULTS / "mobile.png")
    name = "mobile_quick" if args.quick else ("mobile" if args.part == "all" else f"mobile_{args.part}")
    print(f"results: {write_result(name, payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
