"""--augment on the training apps (recorded in config.json, refused where it cannot work) and
apps.augment_preview's PNG grid."""

import json

import numpy as np
import pytest

pytest.importorskip("keras")

from apps import alexnet_train, augment_preview, autoencoder_train, lenet_train, siamese_train, vae_train  # noqa: E402
from keras_cv_apps.choices import AUGMENT_PRESETS  # noqa: E402

TINY = ["--model", "test_lenet5", "--image-size", "16", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "32",
        "--quiet", "--quantize", "none"]


@pytest.mark.parametrize("app, default", [(lenet_train, "digits"), (alexnet_train, "light"), (siamese_train, "light"),
                                          (autoencoder_train, "none"), (vae_train, "none")])
def test_every_training_app_has_the_augment_flag_with_its_default(app, default):
    assert app.parse_args([]).augment == default
    labels = app in (lenet_train, alexnet_train)
    assert app.parse_args(["--augment", "noisy"]).augment == "noisy"
    if labels:
        assert app.parse_args(["--augment", "strong"]).augment == "strong"


def test_unknown_and_unusable_presets_are_refused_listing_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as info:
        lenet_train.parse_args(["--augment", "heavy"])
    assert info.value.code == 2
    assert "invalid choice: 'heavy'" in capsys.readouterr().err and ", ".join(AUGMENT_PRESETS) in _help(lenet_train)
    with pytest.raises(SystemExit):
        siamese_train.parse_args(["--augment", "strong"])  # metric learning needs hard labels
    for app in (autoencoder_train, vae_train, siamese_train):
        choices = next(a.choices for a in app._parser()._actions if a.dest == "augment")
        assert "strong" not in choices and "none" in choices


def _help(app):
    return " ".join(app._parser().format_help().split())


def test_mixing_preset_trains_the_classifier_and_is_recorded(tmp_path):
    out = tmp_path / "run"
    assert lenet_train.main(TINY + ["--augment", "strong", "--output", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["options"]["augment"] == "strong"
    assert config["options"]["augment_cooldown"] == {"fraction": 0.25, "preset": "light"}
    history = json.loads((out / "history.json").read_text())
    assert np.isfinite(history["loss"]).all() and "val_accuracy" in history


def test_focal_loss_with_a_mixing_preset_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    assert lenet_train.main(TINY + ["--augment", "strong", "--balance", "focal", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --balance focal") and "soft labels" in err and not out.exists()


def test_autoencoder_records_its_augmentation(tmp_path):
    out = tmp_path / "ae"
    assert autoencoder_train.main(["--model", "test_autoencoder_conv", "--image-size", "16", "--epochs", "1",
                                   "--steps-per-epoch", "2", "--quiet", "--quantize", "none", "--augment", "light",
                                   "--output", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["options"]["augment"] == "light"


def test_preview_writes_a_grid_of_originals_and_versions(tmp_path, capsys):
    import cv2

    out = tmp_path / "grid.png"
    assert augment_preview.main(["--augment", "strong", "--samples", "3", "--versions", "2", "--image-size", "16",
                                 "--output", str(out)]) == 0
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 150 and image.shape[1] > 150
    assert "next: train with it: python -m apps.lenet_train --augment strong" in capsys.readouterr().out
    assert augment_preview.main(["--augment", "none", "--dataset", "digits-c:occlusion:5", "--samples", "2",
                                 "--versions", "1", "--output", str(tmp_path / "c.png")]) == 0
    assert augment_preview.main(["--augment", "light", "--output", str(tmp_path / "grid.jpg")]) == 2
    assert "must name a .png file" in capsys.readouterr().err
    assert "--output" in _help(augment_preview) and "(default: None)" not in _help(augment_preview)
