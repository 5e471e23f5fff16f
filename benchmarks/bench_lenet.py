"""LeNet-5 accuracy with the app's defaults on `digits`, seeds 0 and 1.

Runs `python -m apps.lenet_train --seed S` as a user would (wall time includes start-up, training,
evaluation and export) and reads its metrics.json.

    python -m benchmarks.bench_lenet [--seeds 0 1] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from benchmarks._util import PY, run_timed, table, write_result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=None, help="override the app default (quick checks)")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            out = Path(tmp) / f"seed{seed}"
            cmd = [PY, "-m", "apps.lenet_train", "--seed", str(seed), "--output", str(out), "--quiet"]
            if args.epochs:
                cmd += ["--epochs", str(args.epochs)]
            seconds, done = run_timed(cmd, env={"TF_CPP_MIN_LOG_LEVEL": "2"})
            if done.returncode != 0:
                raise SystemExit(f"seed {seed} failed:\n{done.stderr[-2000:]}")
            m = json.loads((out / "metrics.json").read_text())
            n = m["test"]["n"]
            rows.append({
                "seed": seed,
                "test_top1_%": round(100 * m["test"]["top1"], 2),
                "test_errors": round(n * (1 - m["test"]["top1"])),
                "n_test": n,
                "int8_top1_%": (round(100 * m["exports"]["model_int8.tflite"]["accuracy"], 2)
                                if "model_int8.tflite" in m["exports"] else ""),
                "epochs": m["training"]["epochs_run"],
                "train_s": m["training"]["train_seconds"],
                "wall_s": round(seconds, 1),
            })
    columns = ["seed", "test_top1_%", "test_errors", "n_test", "int8_top1_%", "epochs", "train_s", "wall_s"]
    print(table(rows, columns))
    print(f"results: {write_result('lenet', {'rows': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
