"""apps.tune: a two-trial KerasTuner search over learning rates on digits whose best configuration
reproduces its score when retrained; knobs a family lacks are refused before any training.
Skipped where KerasTuner (the optional ``tune`` extra) is not installed."""

import csv
import json

import pytest

pytest.importorskip("keras")

from apps import tune  # noqa: E402

TINY = ["--model", "test_lenet5", "--widths", "1", "--depths", "1", "--image-sizes", "16", "--epochs", "2",
        "--steps-per-epoch", "6", "--batch-size", "32", "--trials", "2", "--quiet"]


def test_search_writes_the_best_config_and_its_score_reproduces(tmp_path, capsys):
    pytest.importorskip("keras_tuner", reason="apps.tune needs the optional keras-tuner package")
    out = tmp_path / "run"
    assert tune.main(TINY + ["--learning-rates", "0.0001,0.01", "--output", str(out)]) == 0
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
    assert "best of 2 trials" in capsys.readouterr().out


def test_a_knob_the_family_lacks_is_refused_before_training(tmp_path, capsys):
    argv = TINY[:2] + ["--widths", "0.5,1", "--output", str(tmp_path / "x")]
    assert tune.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no width_multiplier" in err and "--widths 1" in err
    assert not (tmp_path / "x").exists()
