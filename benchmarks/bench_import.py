"""Import cost: `import keras_cv_apps` alone, and the whole library minus `import tensorflow`.

Each figure is the median of several fresh interpreter start-ups, measured in one run.

    python -m benchmarks.bench_import [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics

from benchmarks._util import PY, run_timed, table, write_result

CASES = {
    "python (empty)": "pass",
    "import keras_cv_apps": "import keras_cv_apps",
    "import tensorflow, keras": "import tensorflow, keras",
    "library (models, data, training, export, metrics, losses, layers)":
        "import keras_cv_apps.models, keras_cv_apps.data, keras_cv_apps.training, keras_cv_apps.export, "
        "keras_cv_apps.metrics, keras_cv_apps.losses, keras_cv_apps.layers",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    medians = {}
    for label, code in CASES.items():
        times = [run_timed([PY, "-c", code], env={"TF_CPP_MIN_LOG_LEVEL": "3"})[0] for _ in range(args.runs)]
        medians[label] = statistics.median(times)
    base = medians["python (empty)"]
    tf_time = medians["import tensorflow, keras"]
    rows = [{"case": k, "median_s": round(v, 3), "minus_python_s": round(v - base, 3)} for k, v in medians.items()]
    lib = medians["library (models, data, training, export, metrics, losses, layers)"]
    rows.append({"case": "library minus tensorflow+keras", "median_s": round(lib - tf_time, 3), "minus_python_s": ""})
    print(table(rows, ["case", "median_s", "minus_python_s"]))
    print(f"results: {write_result('import', {'runs': args.runs, 'rows': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
