"""transfer_finetune end to end with tiny settings (offline pretraining -> official .npz -> few-shot
LP-FT with a scratch baseline; a given checkpoint with a linear probe), and its bad input."""

import json

import numpy as np
import pytest

pytest.importorskip("keras")

from apps import transfer_finetune  # noqa: E402


def test_offline_demo_pretrains_writes_the_official_layout_and_adapts(tmp_path, capsys):
    out = tmp_path / "run"
    rc = transfer_finetune.main(["--pretrain-steps", "2", "--steps", "2", "--shots", "1", "--quantize", "float32",
                                 "--quiet", "--output", str(out)])
    assert rc == 0
    keys = set(np.load(out / "pretrained.npz").files)
    assert "resnet/root_block/standardized_conv2d/kernel" in keys and "resnet/head/conv2d/kernel" in keys
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["checkpoint"]["skipped"] == ["resnet/head/conv2d/bias", "resnet/head/conv2d/kernel"]
    assert len(metrics["checkpoint"]["loaded"]) == len(keys) - 2 and metrics["labelled_images"] == 5
    assert 0 <= metrics["scratch"]["top1"] <= 1 and metrics["test"]["n"] == 180
    assert metrics["exports"]["model.tflite"]["max_abs_diff"] <= 1e-4
    assert (out / "labels.txt").read_text().split() == ["5", "6", "7", "8", "9"]
    assert "from scratch (same architecture, steps, augmentation)" in capsys.readouterr().out


def test_a_given_checkpoint_is_probed_linearly(tmp_path):
    from keras_cv_apps import models

    weights = models.save_checkpoint(models.create("test_bit", num_classes=7), tmp_path / "w.npz")
    out = tmp_path / "run"
    rc = transfer_finetune.main(["--backbone", "test_bit", "--weights", str(weights), "--mode", "linear",
                                 "--shots", "2", "--no-scratch", "--quantize", "none", "--quiet",
                                 "--output", str(out)])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["scratch"] is None and metrics["labelled_images"] == 20  # every digit class, 2 shots
    assert metrics["linear_probe"]["views"] == 8 and metrics["exports"] == {}


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--weights", "nowhere.npz"], "Weights file 'nowhere.npz' does not exist"),
        (["--backbone", "lenet5"], "lenet5 reads no pretrained checkpoint; transfer_finetune fine-tunes"),
        (["--classes", "3,5"], "digit(s) 3 cannot be a transfer target"),
        (["--from-block", "block9"], "no block 'block9'; choose one of root, block1"),
        (["--backbone", "vit_ti16", "--image-size", "40"], "not divisible by the patch size 16"),
        (["--augment", "wild"], "Unknown augmentation preset 'wild'"),
        (["--shots", "200"], "200 labelled images per class are needed (5 classes x 200 = 1000)"),
    ],
)
def test_bad_input_is_one_sentence_before_long_work(tmp_path, capsys, extra, message):
    rc = transfer_finetune.main(["--quiet", "--output", str(tmp_path / "x")] + extra)
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and message in err, err


@pytest.fixture
def large_folder_run(tmp_path, monkeypatch):
    """``run(*flags)`` -> (rc, run folder, folder): `transfer_finetune` with a ``test_bit`` checkpoint on a
    folder of 6 classes x 20 RGB PNGs while `Splits.arrays` of a streamed split holds just 4 images
    (as a folder far larger than memory would)."""
    import cv2

    from keras_cv_apps import models
    from keras_cv_apps.data import streaming

    monkeypatch.setattr(streaming, "READ_BUDGET", 4 * 4 * 32 * 32 * 3)
    rng, folder = np.random.default_rng(0), tmp_path / "set"
    for c in range(6):  # each class its own colour, with noise
        (folder / f"c{c}").mkdir(parents=True)
        for i in range(20):
            image = np.clip(rng.normal(30 + 35 * c, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"c{c}" / f"{i:02d}.png"), image)
    weights = models.save_checkpoint(models.create("test_bit", num_classes=7), tmp_path / "w.npz")

    def run(*flags):
        out = tmp_path / "run"
        rc = transfer_finetune.main(["--backbone", "test_bit", "--weights", str(weights), "--dataset", f"dir:{folder}",
                                     "--no-scratch", "--quantize", "none", "--quiet", "--output", str(out), *flags])
        return rc, out, folder
    return run


def test_a_large_folder_is_fine_tuned_and_scored_on_every_image_not_a_sample(large_folder_run):
    from keras_cv_apps import data

    rc, out, folder = large_folder_run("--shots", "0", "--steps", "2")
    assert rc == 0
    splits = data.load(f"dir:{folder}", image_size=32, channels=3)
    n_train, n_test = len(splits.indices["train"]), len(splits.indices["test"])
    assert n_train > 4 and n_test > 4
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["labelled_images"] == n_train and metrics["test"]["n"] == n_test
    training = json.loads((out / "config.json").read_text())["training"]
    assert training["images"] == n_train and training["streamed"] is True


def test_few_shot_picks_come_from_every_label_of_a_large_folder(large_folder_run):
    """6 classes x 3 shots = 18 images, more than the 4 a sample of the split would hold."""
    rc, out, _ = large_folder_run("--shots", "3", "--mode", "linear")
    assert rc == 0
    assert json.loads((out / "metrics.json").read_text())["labelled_images"] == 18
