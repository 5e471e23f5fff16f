"""Memory growth of TFLite conversion: the resident set size of one process converting the same
model again and again (about 20 MB per conversion is reported for TensorFlow 2.20/2.21), float32
and int8, each series in its own child process (as `bench_mobile` and the GPU-check test convert).

    python -m benchmarks.bench_conversion_memory [--model lenet5] [--conversions 20] [--quantization float32]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

from benchmarks._util import write_result


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def convert_many(model_name: str, conversions: int, quantization: str) -> dict:
    import numpy as np

    from keras_cv_apps import export, models

    model = models.create(model_name)
    shape = model.input_shape[1:]
    x = np.random.default_rng(0).uniform(0, 1, (16, *shape)).astype("float32")
    rss, seconds = [_rss_mb()], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(conversions):
            start = time.perf_counter()
            export.export_tflite(model, f"{tmp}/m{i}.tflite", quantization=quantization,
                                 representative=x if quantization == "int8" else None)
            seconds.append(time.perf_counter() - start)
            rss.append(_rss_mb())
    growth = [b - a for a, b in zip(rss[1:], rss[2:])]  # after the first conversion (imports, graph caches)
    return {"rss_mb": [round(v, 1) for v in rss], "first_conversion_mb": round(rss[1] - rss[0], 1),
            "growth_mb_per_conversion": round(sum(growth) / max(len(growth), 1), 2),
            "total_growth_mb": round(rss[-1] - rss[1], 1),
            "seconds_per_conversion": round(sum(seconds) / conversions, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--conversions", type=int, default=20)
    parser.add_argument("--quantization", default="float32", choices=("float32", "int8"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(convert_many(args.model, args.conversions, args.quantization)))
        return 0
    results = {}
    for quantization in ("float32", "int8"):
        cmd = [sys.executable, "-m", "benchmarks.bench_conversion_memory", "--child", "--model", args.model,
               "--conversions", str(args.conversions), "--quantization", quantization]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[quantization] = json.loads(done.stdout.strip().splitlines()[-1])
        print(quantization, {k: v for k, v in results[quantization].items() if k != "rss_mb"}, flush=True)
    payload = {"model": args.model, "conversions": args.conversions, "in_one_process": results,
               "note": "bench_mobile and tests/test_gpu_compatibility.py convert in child processes"}
    print(f"results: {write_result('conversion_memory', payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
