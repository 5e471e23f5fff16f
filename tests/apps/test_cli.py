"""What every app shares (apps/_cli.py, apps/_runs.py): safe default outputs, refusing to mix runs,
model/task checks, one-sentence errors for bad input, Ctrl-C messages, quiet start-up."""

import json
import os
import sys

import numpy as np
import pytest

pytest.importorskip("keras")

from apps import (  # noqa: E402
    _cli,
    alexnet_train,
    autoencoder_train,
    dataset_audit,
    dedup,
    lenet_train,
    siamese_identify,
    siamese_train,
    siamese_verify,
    vae_train,
)

APPS = (alexnet_train, autoencoder_train, dataset_audit, dedup, lenet_train, siamese_identify, siamese_train,
        siamese_verify, vae_train)
TINY = ["--model", "test_lenet5", "--image-size", "16", "--epochs", "1", "--steps-per-epoch", "2",
        "--batch-size", "32", "--quiet", "--quantize", "none"]


def _write_images(folder, n, value=0):
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (20, 20), dtype=np.uint8))


def test_default_output_is_a_new_run_folder_and_references_stay_untouched(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reference = tmp_path / "saved_models" / "lenet_train"
    reference.mkdir(parents=True)
    (reference / "model.tflite").write_bytes(b"reference")
    assert lenet_train.main(TINY) == 0
    assert lenet_train.main(TINY) == 0
    runs = sorted((tmp_path / "runs" / "lenet_train").iterdir())
    assert len(runs) == 2 and all((r / "metrics.json").exists() for r in runs)
    assert sorted(p.name for p in reference.iterdir()) == ["model.tflite"]
    assert (reference / "model.tflite").read_bytes() == b"reference"
    assert not (tmp_path / "saved_models" / "MANIFEST.json").exists()


def test_an_existing_run_is_refused_unless_overwritten(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert lenet_train.main(TINY + ["--output", out]) == 0
    before = (tmp_path / "run" / "best.keras").read_bytes()
    assert lenet_train.main(TINY + ["--output", out]) == 2
    assert "already holds a run; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "run" / "best.keras").read_bytes() == before
    assert lenet_train.main(TINY + ["--output", out, "--overwrite", "--seed", "1"]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["seed"] == 1


def test_keras_datasets_offline_is_one_sentence(tmp_path, capsys, monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3]")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    assert lenet_train.main(TINY + ["--dataset", "keras:mnist", "--output", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Could not load keras:mnist") and "mnist.npz" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "m").exists()


def test_tfds_without_the_extra_is_one_sentence(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    assert lenet_train.main(TINY + ["--dataset", "tfds:mnist", "--output", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'keras-cv-apps[datasets]'" in err and len(err.splitlines()) == 1


def test_oversampling_works_with_the_default_schedule(tmp_path):
    """--balance oversample/undersample with the app's cosine schedule (steps known up front)."""
    flags = [f for f in TINY if f not in ("--steps-per-epoch", "2")]
    for mode in ("oversample", "undersample"):
        out = tmp_path / mode
        assert lenet_train.main(flags + ["--balance", mode, "--output", str(out)]) == 0
        assert json.loads((out / "metrics.json").read_text())["training"]["epochs_run"] == 1


def test_ctrl_c_before_the_first_epoch_says_nothing_was_kept(tmp_path, capsys, monkeypatch):
    import keras

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "fit", interrupted)
    assert lenet_train.main(TINY + ["--output", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err
    assert "no epoch had finished, so no checkpoint was saved" in err and "best checkpoint" not in err


def test_autoencoders_train_on_a_one_class_folder(tmp_path):
    _write_images(tmp_path / "normal" / "good", 30)
    out = tmp_path / "ae"
    rc = autoencoder_train.main(["--model", "test_autoencoder_conv", "--dataset", f"dir:{tmp_path / 'normal'}",
                                 "--image-size", "16", "--epochs", "1", "--batch-size", "8", "--quiet",
                                 "--output", str(out)])
    assert rc == 0
    assert json.loads((out / "config.json").read_text())["dataset"]["class_names"] == ["good"]


@pytest.mark.parametrize("app", APPS, ids=lambda m: m.__name__.split(".")[-1])
def test_help_shows_real_defaults(app, capsys):
    with pytest.raises(SystemExit) as info:
        app._parser().parse_args(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "(default: None)" not in text and "--output" in text


def test_vision_apps_refuse_bad_flags_and_an_output_under_a_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _write_images(tmp_path / "imgs", 3)
    assert dataset_audit.main([str(tmp_path / "imgs"), "--out", str(blocker / "audit")]) == 2
    assert "is a file" in capsys.readouterr().err
    for argv in (["--threshold", "nan"], ["--workers", "-3"]):
        with pytest.raises(SystemExit) as info:
            dedup._parser().parse_args([str(tmp_path / "imgs"), *argv])
        assert info.value.code == 2


def test_a_cache_flag_naming_a_file_is_refused_by_the_parser(tmp_path, capsys):
    from apps import lenet_train

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as info:
        lenet_train.parse_args(["--cache", str(tmp_path / "notes.txt")])
    assert info.value.code == 2 and "--cache: expected a folder, got the file" in capsys.readouterr().err
    assert lenet_train.parse_args(["--cache", str(tmp_path / "new")]).cache == str(tmp_path / "new")


@pytest.mark.parametrize("text", ["-5", "2147483648", "1.5"])
def test_a_seed_out_of_range_names_the_flag(text, capsys):
    from apps import lenet_train

    with pytest.raises(SystemExit):
        lenet_train.parse_args(["--seed", text])
    assert "argument --seed: expected" in capsys.readouterr().err


def test_quiet_stderr_drops_known_notices_only(capfd):
    with _cli.quiet_stderr():
        os.write(2, b"I0000 00:00:1 port.cc:153] oneDNN custom operations are on. You may see ...\n")
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"E0000 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n")
        os.write(2, b"a real warning\nprogress 10%\r")
        print("error: a real error", file=sys.stderr)
    err = capfd.readouterr().err
    assert "oneDNN" not in err and "XNNPACK" not in err and "cuInit" not in err
    assert "a real warning" in err and "progress 10%" in err and "error: a real error" in err
