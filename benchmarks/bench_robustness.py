"""Does augmentation make a classifier robust to corrupted images? Clean vs. digits-c accuracy per preset.

For every augmentation preset and seed, the training app runs with its defaults (``--augment
PRESET --seed S``) and its model is evaluated on the clean digits test split and on ``digits-c``
(`keras_cv_apps.data.corruptions`: 7 corruptions x 5 severities of the same test images). Reported
per preset, as the mean over seeds: clean accuracy, mean corruption accuracy (mCA, the mean over
the 35 corrupted sets) and the accuracy per corruption. Targets: ``strong`` raises mCA by >= 8
points over ``none`` with clean accuracy within 0.3 points of the best preset.

It also checks reproducibility: the first run is repeated with the same seed and the two trained
models must have identical weights (``--strategy default`` on CPU).

``--runs`` names the apps (and models) to train, ``APP[:MODEL]``; any classifier app that takes
``--augment --seed --output`` works, so the small-data transformer joins with
``--runs lenet_train,<its app>[:<model>]`` once it exists.

    python -m benchmarks.bench_robustness [--presets none,digits,strong] [--seeds 0,1,2] [--runs lenet_train]
    python -m benchmarks.bench_robustness --evaluate FOLDER   # finished runs of preset variants, one per sub-folder
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks._util import PY, run_timed, table, write_result

PRESETS = ("none", "light", "digits", "standard", "noisy", "strong")


def train(app, model, preset, seed, out, epochs=None):
    cmd = [PY, "-m", f"apps.{app}", "--augment", preset, "--seed", str(seed), "--quantize", "none", "--quiet",
           "--output", str(out)] + (["--model", model] if model else []) + (["--epochs", str(epochs)] if epochs else [])
    seconds, done = run_timed(cmd, env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return seconds


def _done(run_dir, preset, seed, epochs) -> bool:
    """Whether ``run_dir`` holds a finished run of ``preset`` (with its cool-down) and ``seed``, and of
    ``epochs`` when given (a ``--keep`` folder)."""
    from keras_cv_apps.artifacts import read_json
    from keras_cv_apps.data import augment

    try:
        config = read_json(Path(run_dir) / "config.json")
    except (OSError, ValueError):
        return False
    options = config.get("options", {})
    return ((Path(run_dir) / "model.keras").exists() and config.get("seed") == seed and options.get("augment") == preset
            and options.get("augment_cooldown") == augment.cooldown_of(preset)
            and (epochs is None or config.get("training", {}).get("epochs") == epochs))


def _recorded_seconds(run_dir) -> float:
    from keras_cv_apps.artifacts import read_json

    return float(read_json(Path(run_dir) / "metrics.json")["training"]["train_seconds"])


def evaluate(run_dir, seed):
    """Accuracy of a run's model.keras on clean and corrupted digits: {(name, severity): acc}."""
    import keras_cv_apps
    from keras_cv_apps.artifacts import read_json
    from keras_cv_apps.data import sources
    from keras_cv_apps.data.pipelines import scale_images

    config = read_json(Path(run_dir) / "config.json")["dataset"]
    model = keras_cv_apps.load_model(Path(run_dir) / "model.keras")
    sets = sources.digits_c(image_size=tuple(config["image_size"]), channels=config["channels"], seed=seed)
    scores = {}
    for key, (x, y) in sets.items():
        probs = model.predict(scale_images(x, config["scale"], config["mean"], config["std"]), verbose=0,
                              batch_size=512)
        scores[key] = float(np.mean(np.argmax(probs, axis=1) == y))
    return scores, model.get_weights()


def summarise(scores_per_seed):
    from keras_cv_apps.data.corruptions import CORRUPTIONS

    mean = {key: float(np.mean([s[key] for s in scores_per_seed])) for key in scores_per_seed[0]}
    corrupted = [v for k, v in mean.items() if k[0] != "clean"]
    per_seed_mca = [float(np.mean([v for k, v in s.items() if k[0] != "clean"])) for s in scores_per_seed]
    return {"clean": mean[("clean", 0)], "mca": float(np.mean(corrupted)),
            "clean_per_seed": [s[("clean", 0)] for s in scores_per_seed], "mca_per_seed": per_seed_mca,
            "per_corruption": {c: float(np.mean([v for k, v in mean.items() if k[0] == c])) for c in CORRUPTIONS},
            "per_severity": {str(k): float(np.mean([v for (c, sev), v in mean.items() if sev == k and c != "clean"]))
                             for k in range(1, 6)}}


def evaluate_folder(root) -> dict:
    """Clean accuracy, mCA and accuracy per corruption of every finished run in the sub-folders of
    ``root`` (exploratory runs, e.g. preset variants), by folder name; ``root/variants.json``, when
    there, describes the variants and is copied into the result."""
    from keras_cv_apps.artifacts import read_json

    runs = {}
    for run_dir in sorted(p for p in Path(root).iterdir() if (p / "model.keras").exists()):
        config = read_json(run_dir / "config.json")
        scores, _ = evaluate(run_dir, config["seed"])
        summary = summarise([scores])
        runs[run_dir.name] = {"seed": config["seed"], "augment": config["options"].get("augment"),
                              "cooldown": config["options"].get("augment_cooldown"), "clean": summary["clean"],
                              "mca": summary["mca"], "per_corruption": summary["per_corruption"]}
    variants = Path(root) / "variants.json"
    return {"runs": runs, "variants": read_json(variants) if variants.exists() else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--runs", default="lenet_train", help="comma list of APP[:MODEL]")
    parser.add_argument("--epochs", type=int, default=None, help="override the apps' default epochs (quick looks)")
    parser.add_argument("--no-repeat", action="store_true", help="skip the reproducibility re-run")
    parser.add_argument("--jobs", type=int, default=2, help="training runs at once")
    parser.add_argument("--keep", default=None, help="keep the run folders in KEEP/<app>-<model>-<preset>-<seed> and "
                        "reuse those already there (same code, flags and seed give the same weights; the repeat "
                        "check re-trains the first run)")
    parser.add_argument("--evaluate", default=None, help="only evaluate the finished runs in the sub-folders of this "
                        "folder (exploratory variants of a preset) and write robustness_runs.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.evaluate:
        found = evaluate_folder(args.evaluate)
        rows = [{"run": name, "clean %": round(100 * r["clean"], 2), "mCA %": round(100 * r["mca"], 2),
                 **{c: round(100 * v, 1) for c, v in r["per_corruption"].items()}} for name, r in found["runs"].items()]
        text = table(rows, list(rows[0]) if rows else ["run"])
        path = write_result("robustness_runs", {**found, "date_time": time.strftime("%Y-%m-%d %H:%M"),
                                                "load_average": os.getloadavg(), "table": text})
        print(f"{text}\nwrote {path}")
        return 0
    presets = args.presets.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    from keras_cv_apps.data import augment

    results, rows, repeat = {}, [], None
    runs = [(app, model) for app, _, model in (entry.partition(":") for entry in args.runs.split(","))]
    with tempfile.TemporaryDirectory(prefix="bench_robustness_") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        folder = {job: root / "-".join(map(str, job)) for job in
                  [(app, model, preset, seed) for app, model in runs for preset in presets for seed in seeds]}
        first = next(iter(folder))
        if not args.no_repeat:  # the first run again, to check that the weights come out identical
            folder[("repeat",) + first[1:]] = Path(tmp) / "repeat"
        reused = {job for job, out in folder.items() if job[0] != "repeat" and _done(out, job[2], job[3], args.epochs)}
        with ThreadPoolExecutor(args.jobs) as pool:  # training runs in parallel, evaluation after
            seconds = {job: pool.submit(train, first[0] if job[0] == "repeat" else job[0], *job[1:], out, args.epochs)
                       for job, out in folder.items() if job not in reused}
            seconds = {job: future.result() for job, future in seconds.items()}
        for job in reused:
            seconds[job] = _recorded_seconds(folder[job])
        scores, weights = {}, {}
        for job, out in folder.items():
            scores[job], weights[job] = evaluate(out, job[3])
        if not args.no_repeat:
            again = ("repeat",) + first[1:]
            repeat = {"run": f"{first[0]} --augment {first[2]} --seed {first[3]}, twice",
                      "identical_weights": all(np.array_equal(a, b) for a, b in zip(weights[first], weights[again])),
                      "identical_accuracy": scores[first] == scores[again]}
        for app, model in runs:
            name = model or app
            results[name] = {}
            for preset in presets:
                jobs = [(app, model, preset, seed) for seed in seeds]
                summary = {**summarise([scores[j] for j in jobs]), "cooldown": augment.cooldown_of(preset),
                           "train_seconds": float(np.mean([seconds[j] for j in jobs]))}
                results[name][preset] = summary
                rows.append({"model": name, "preset": preset, "clean %": round(100 * summary["clean"], 2),
                             "mCA %": round(100 * summary["mca"], 2),
                             **{c: round(100 * v, 1) for c, v in summary["per_corruption"].items()}})
    goals = {}
    for name, by_preset in results.items():
        if {"none", "strong"} <= set(by_preset):
            gain = 100 * (by_preset["strong"]["mca"] - by_preset["none"]["mca"])
            gap = 100 * (max(p["clean"] for p in by_preset.values()) - by_preset["strong"]["clean"])
            goals[name] = {"mca_gain_points": round(gain, 2), "mca_gain_met": gain >= 8.0,
                           "clean_gap_points": round(gap, 2), "clean_gap_met": gap <= 0.3}
    from keras_cv_apps.data.corruptions import CORRUPTIONS

    text = table(rows, ["model", "preset", "clean %", "mCA %", *CORRUPTIONS])
    path = write_result("robustness", {"seeds": seeds, "presets": presets, "epochs": args.epochs or "app default",
                                       "reused_runs": sorted("-".join(map(str, job)) for job in reused),
                                       "results": results, "goals": goals, "reproducibility": repeat,
                                       "date_time": time.strftime("%Y-%m-%d %H:%M"), "table": text})
    print(text)
    print(f"goals: {goals}\nreproducibility: {repeat}\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
