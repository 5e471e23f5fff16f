"""LeNet-5 on `digits` exported to TFLite: size, accuracy and single-image latency per quantization.

Trains `lenet5` with the library (`data.load` -> `training.fit`) for a fixed number of epochs,
exports it in each mode with `export.export_tflite`, checks it with `export.verify_tflite` on the
test split, and times one image at a time in the LiteRT interpreter (median of many calls after a
warm-up; each call = set_tensor + invoke + get_tensor on a pre-quantized input), at 1 and 2
threads with the default XNNPACK delegate, and at 1 thread with the delegate off.

Besides the four modes, diagnostic rows show why int8 used to be slower than float32:
``int8 avg-pools kept`` (XNNPACK has no int8 AVERAGE_POOL_2D, so those nodes fall back to
the built-in kernel and split the graph), ``int8 int8-io`` (no uint8->int8 QUANTIZE at the
boundaries) and ``batch 1`` exports (Flatten's SHAPE/STRIDED_SLICE/PACK folded away).

    python -m benchmarks.bench_export [--epochs 15] [--runs 3000] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._util import table, write_result

# name -> export_tflite keyword arguments
VARIANTS = {
    "float32": {"quantization": "float32"},
    "float16": {"quantization": "float16"},
    "dynamic": {"quantization": "dynamic"},
    "int8": {"quantization": "int8"},
    "int8 avg-pools kept": {"quantization": "int8", "rewrite_avg_pool": False},
    "int8 int8-io": {"quantization": "int8", "int8_io": "int8"},
    "float32 batch 1": {"quantization": "float32", "batch_size": 1},
    "int8 batch 1": {"quantization": "int8", "batch_size": 1},
}
QUICK_VARIANTS = ("float32", "float16", "dynamic", "int8", "int8 avg-pools kept")


def latency_us(path, image: np.ndarray, *, threads: int, runs: int, delegate: bool = True) -> float:
    """Median microseconds for one single-image call of the interpreter."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if delegate else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    if inp["shape"][0] != 1:
        interpreter.resize_tensor_input(inp["index"], [1, *inp["shape"][1:]])
    interpreter.allocate_tensors()
    if np.issubdtype(inp["dtype"], np.integer):
        scale, zero = inp["quantization"]
        image = np.clip(np.round(image / scale + zero), np.iinfo(inp["dtype"]).min, np.iinfo(inp["dtype"]).max)
    image = image[None].astype(inp["dtype"])
    times = []
    for i in range(runs + max(runs // 10, 50)):  # the first tenth warms caches and thread pools
        start = time.perf_counter()
        interpreter.set_tensor(inp["index"], image)
        interpreter.invoke()
        interpreter.get_tensor(out["index"])
        times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times[-runs:])


def xnnpack_partitions(path) -> int:
    """How many pieces XNNPACK took over: 1 means the whole graph runs in the delegate."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    return [op["op_name"] for op in interpreter._get_ops_details()].count("DELEGATE")


def call_overhead_us(image_shape, folder: Path, runs: int) -> float:
    """Latency of a model that does almost nothing: the fixed cost of a Python interpreter call."""
    import keras

    from keras_cv_apps import export

    inputs = keras.Input(image_shape)
    trivial = keras.Model(inputs, keras.layers.Activation("relu")(inputs))
    path = export.export_tflite(trivial, folder / "trivial.tflite", batch_size=1)
    return latency_us(path, np.zeros(image_shape, "float32"), threads=1, runs=runs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--runs", type=int, default=3000, help="timed calls per latency figure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, 300 calls, main modes only")
    parser.add_argument("--arch", choices=("app", "plain"), default="app",
                        help="app: lenet_train's default LeNet-5 (relu, max pool, batch-norm); "
                             "plain: the paper's tanh + average pooling (default: %(default)s)")
    args = parser.parse_args(argv)
    epochs, runs = (2, 300) if args.quick else (args.epochs, args.runs)
    variants = {k: v for k, v in VARIANTS.items() if not args.quick or k in QUICK_VARIANTS}

    from keras_cv_apps import data, export, models, training

    training.set_seed(args.seed)
    splits = data.load("digits", image_size=32, seed=args.seed)
    from apps.lenet_train import MODEL_KWARGS

    arch_kwargs = MODEL_KWARGS if args.arch == "app" else {}
    model = models.create("lenet5", num_classes=splits.num_classes, **arch_kwargs)
    x_test, y_test = splits.arrays("test")
    representative = splits.representative(200)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        training.fit(model, splits, run_dir=folder / "run", epochs=epochs, verbose=0)
        for name, kwargs in variants.items():
            path = export.export_tflite(model, folder / f"{name.replace(' ', '_')}.tflite",
                                        representative=representative if kwargs["quantization"] == "int8" else None,
                                        **kwargs)
            report = export.verify_tflite(model, path, x_test, y_test)
            rows.append({
                "variant": name,
                "size_kb": round(report["size_bytes"] / 1024, 1),
                "top1_%": round(100 * report["accuracy"], 2),
                "keras_top1_%": round(100 * report["keras_accuracy"], 2),
                "agree_%": round(100 * report["top1_agreement"], 2),
                "max_abs_diff": report["max_abs_diff"],
                "xnn_parts": xnnpack_partitions(path),
                "us_1t": round(latency_us(path, x_test[0], threads=1, runs=runs), 1),
                "us_2t": round(latency_us(path, x_test[0], threads=2, runs=runs), 1),
                "us_1t_no_xnn": round(latency_us(path, x_test[0], threads=1, runs=runs, delegate=False), 1),
                "size_bytes": report["size_bytes"],
            })
        overhead = call_overhead_us(splits.image_shape, folder, runs)

    by_name = {r["variant"]: r for r in rows}
    f32, int8 = by_name["float32"], by_name["int8"]
    summary = {
        "epochs": epochs,
        "n_test": len(y_test),
        "int8_size_ratio": round(int8["size_bytes"] / f32["size_bytes"], 3),
        "int8_top1_drop_points": round(int8["keras_top1_%"] - int8["top1_%"], 2),
        "float32_max_abs_diff": f32["max_abs_diff"],
        "int8_vs_float32_latency_1t": round(int8["us_1t"] / f32["us_1t"], 3),
        "call_overhead_us": round(overhead, 1),
    }
    summary["goals_met"] = {
        "int8_size_ratio<=0.30": summary["int8_size_ratio"] <= 0.30,
        "int8_top1_drop<=0.5": summary["int8_top1_drop_points"] <= 0.5,
        "float32_max_abs_diff<=1e-5": f32["max_abs_diff"] <= 1e-5,
        "int8_not_slower_1t": int8["us_1t"] <= f32["us_1t"],
    }
    columns = ["variant", "size_kb", "top1_%", "keras_top1_%", "agree_%", "max_abs_diff", "xnn_parts",
               "us_1t", "us_2t", "us_1t_no_xnn"]
    print(table(rows, columns))
    print("\n".join(f"{k}: {v}" for k, v in summary.items()))
    name = "export_quick" if args.quick else ("export" if args.arch == "app" else "export_plain")
    payload = {"model": "lenet5", "arch": args.arch, "model_kwargs": arch_kwargs, "dataset": "digits", **summary}
    print(f"results: {write_result(name, {**payload, 'rows': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
