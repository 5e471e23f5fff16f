"""apps.tune: a two-trial KerasTuner search over learning rates on digits whose best configuration
reproduces its score when retrained; knobs a family lacks are refused before any training.
Skipped where KerasTuner (the optional ``tune`` extra) is not installed."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("keras")

from apps import tune  # noqa: E402

TINY = ["--model", "test_lenet5", "--widths", "1", "--depths", "1", "--image-sizes", "16", "--epochs", "2",
        "--steps-per-epoch", "6", "--batch-size", "32", "--trials", "2", "--quiet"]


def test_search_writes_the_best_config_and_its_score_reproduces(tmp_path):
    pytest.importorskip("keras_tuner", reason="apps.tune needs the optional keras-tuner package")
    out = tmp_path / "run"
    # a fresh process: the app turns on TensorFlow's op determinism, which stays on for the process
    done = subprocess.run([sys.executable, "-m", "apps.tune", *TINY, "--learning-rates", "0.0001,0.01",
                           "--output", str(out)], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(float(r["learning_rate"]) for r in rows) == [0.0001, 0.01]
    metrics = json.loads((out / "metrics.json").read_text())
    search = metrics["search"]
    scores = {float(r["learning_rate"]): float(r["val_accuracy"]) for r in rows}
    assert scores[0.01] > scores[0.0001]  # 12 steps at 1e-4 barely move LeNet; 1e-2 learns
    assert search["best_val_accuracy"] == pytest.approx(max(scores.values()), abs=1e-4)
    assert search["reproduced"] and search["retrained_val_accuracy"] == pytest.approx(search["best_val_accuracy"])
    config = json.loads((out / "config.json").read_text())
    assert config["options"]["best"]["learning_rate"] == 0.01 and metrics["test"]["n"] == 360
    assert "best of 2 trials" in done.stdout


def test_a_knob_the_family_lacks_is_refused_before_training(tmp_path, capsys):
    argv = TINY[:2] + ["--widths", "0.5,1", "--output", str(tmp_path / "x")]
    assert tune.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no width_multiplier" in err and "--widths 1" in err
    assert not (tmp_path / "x").exists()
