"""Transformers and BiT on a phone: TFLite conversion, GPU-delegate check, int8 accuracy, size, latency.

Part 1 (digits): the small-data transformer (``cct_small``, ``vit_train``'s default run) and the
tiny ViT and BiT variants (``test_vit`` at 16x16, ``test_bit`` at 32x32, trained by the same app
for a few epochs) are exported by the app to float32 and full-int8 TFLite and verified on the
digits test split (max |float32 - Keras|, top-1 of Keras / float32 / int8); LiteRT's analyzer
lists the ops (no Flex op may appear) and runs its GPU-delegate compatibility check.

Part 2 (224x224): ``vit_ti16`` and ``bit_m_r50x1`` (random weights; int8 calibrated on random
[-1, 1] images) exported to float32 and int8: file size and the median 1-thread latency of one
image in the LiteRT interpreter (XNNPACK on).

    python -m benchmarks.bench_deploy [--quick] [--runs 30] [--parts digits large]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks._util import table, write_result

DIGITS = {  # model -> vit_train arguments besides the defaults
    "cct_small": [],
    "test_vit": ["--model", "test_vit", "--image-size", "16", "--epochs", "30", "--learning-rate", "1e-3"],
    "test_bit": ["--model", "test_bit", "--image-size", "32", "--epochs", "30", "--learning-rate", "1e-3"],
}
LARGE = ("vit_ti16", "bit_m_r50x1")


def digits_rows(folder: Path, quick: bool) -> list:
    from apps import vit_train
    from keras_cv_apps import export

    rows = []
    for name, extra in DIGITS.items():
        out = folder / name
        argv = ["--output", str(out), "--quiet", *extra] + (["--epochs", "2"] if quick else [])
        if vit_train.main(argv) != 0:
            raise RuntimeError(f"vit_train failed for {name}")
        metrics = json.loads((out / "metrics.json").read_text())
        f32, int8 = metrics["exports"]["model.tflite"], metrics["exports"]["model_int8.tflite"]
        a32, a8 = export.analyze_tflite(out / "model.tflite"), export.analyze_tflite(out / "model_int8.tflite")
        rows.append({
            "model": name, "params": _params(out / "model.keras"),
            "keras_top1_%": round(100 * f32["keras_accuracy"], 2), "f32_top1_%": round(100 * f32["accuracy"], 2),
            "int8_top1_%": round(100 * int8["accuracy"], 2),
            "int8_drop_pts": round(100 * (int8["keras_accuracy"] - int8["accuracy"]), 2),
            "f32_max_abs_diff": f32["max_abs_diff"], "flex_ops": len(a32["flex_ops"]) + len(a8["flex_ops"]),
            "gpu_ok_f32": a32["gpu_compatible"], "gpu_ok_int8": a8["gpu_compatible"],
            "f32_kb": round(f32["size_bytes"] / 1024, 1), "int8_kb": round(int8["size_bytes"] / 1024, 1),
            "ops": a32["ops"],
        })
    return rows


def _params(path) -> int:
    import keras_cv_apps

    return int(keras_cv_apps.load_model(path).count_params())


def large_rows(folder: Path, runs: int) -> list:
    from benchmarks.bench_export import latency_us
    from keras_cv_apps import export, models

    rng = np.random.default_rng(0)
    rows = []
    for name in LARGE:
        model = models.create(name)
        image = rng.uniform(-1, 1, (224, 224, 3)).astype("float32")
        calibration = rng.uniform(-1, 1, (8, 224, 224, 3)).astype("float32")
        for mode in ("float32", "int8"):
            path = export.export_tflite(model, folder / f"{name}_{mode}.tflite", quantization=mode,
                                        representative=calibration if mode == "int8" else None, batch_size=1)
            analysis = export.analyze_tflite(path)
            rows.append({"model": name, "quantization": mode, "params_M": round(model.count_params() / 1e6, 2),
                         "size_MB": round(path.stat().st_size / 2 ** 20, 2),
                         "ms_1thread": round(latency_us(path, image, threads=1, runs=runs) / 1000, 1),
                         "flex_ops": len(analysis["flex_ops"]), "gpu_ok": analysis["gpu_compatible"]})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="timed single-image calls per latency figure")
    parser.add_argument("--parts", nargs="+", default=["digits", "large"], choices=["digits", "large"])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, 3 calls")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    with tempfile.TemporaryDirectory() as tmp:
        digits = digits_rows(Path(tmp), args.quick) if "digits" in args.parts else []
        large = large_rows(Path(tmp), runs) if "large" in args.parts else []
    print(table(digits, ["model", "params", "keras_top1_%", "f32_top1_%", "int8_top1_%", "int8_drop_pts",
                         "f32_max_abs_diff", "flex_ops", "gpu_ok_f32", "gpu_ok_int8", "f32_kb", "int8_kb"]))
    print(table(large, ["model", "quantization", "params_M", "size_MB", "ms_1thread", "flex_ops", "gpu_ok"]))
    goals = {f"{r['model']}: no Flex, GPU check, f32 max|diff|<=1e-4, int8 drop<=1.0":
             r["flex_ops"] == 0 and r["gpu_ok_f32"] and r["f32_max_abs_diff"] <= 1e-4 and r["int8_drop_pts"] <= 1.0
             for r in digits}
    print("\n".join(f"{k}: {v}" for k, v in goals.items()))
    name = "deploy_quick" if args.quick else "deploy" + ("" if len(args.parts) == 2 else f"_{args.parts[0]}")
    print(f"results: {write_result(name, {'digits': digits, 'large_224': large, 'goals_met': goals})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
