"""vit_train end to end with tiny settings, and its bad input."""

import json

import pytest

pytest.importorskip("keras")

from apps import vit_train  # noqa: E402

TINY = ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "32", "--quiet"]


def test_vit_train_trains_a_tiny_transformer_and_exports_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert vit_train.main(TINY + ["--model", "test_cct", "--image-size", "16", "--output", str(out)]) == 0
    for name in ("model.keras", "model.tflite", "model_int8.tflite", "labels.txt", "config.json", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["exports"]["model.tflite"]["max_abs_diff"] <= 1e-4 and metrics["test"]["n"] == 360
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["optimizer"] == "adamw" and config["options"]["augment"] == "digits"
    assert "test_cct (transformer): test top-1" in capsys.readouterr().out


def test_a_vit_image_size_off_the_patch_grid_is_refused_before_any_work(tmp_path, capsys):
    rc = vit_train.main(TINY + ["--model", "test_vit", "--image-size", "18", "--output", str(tmp_path / "x")])
    assert rc == 2
    assert "image size 18x18 is not divisible by the patch size 4" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
