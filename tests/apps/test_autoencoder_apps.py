"""The autoencoder and VAE apps end to end with tiny settings, and their bad-input messages."""

import json

import pytest

pytest.importorskip("tensorflow")

from apps import autoencoder_train, vae_train

TINY = ["--image-size", "16", "--epochs", "1", "--steps-per-epoch", "3", "--batch-size", "16",
        "--quiet"]


def _metrics(out):
    return json.loads((out / "metrics.json").read_text())


def test_denoising_app_writes_verified_encoder_and_decoder(tmp_path):
    out = tmp_path / "den"
    code = autoencoder_train.main(["--variant", "denoising", "--model", "test_autoencoder_denoising",
                                   "--output", str(out), *TINY])
    assert code == 0
    for name in ("model.keras", "encoder.tflite", "decoder.tflite", "config.json",
                 "reconstructions.png", "latent_scatter.png", "history.json"):
        assert (out / name).stat().st_size > 0, name
    metrics = _metrics(out)
    assert metrics["noisy"]["psnr"] < 16.0  # the input really was corrupted
    assert metrics["psnr_gain_db"] == pytest.approx(metrics["test"]["psnr"] - metrics["noisy"]["psnr"])
    for part in ("encoder", "decoder"):
        assert metrics["exports"][f"{part}.tflite"]["max_abs_diff"] < 1e-4
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["kwargs"]["image_shape"] == [16, 16, 1]


def test_anomaly_report_gives_each_score(tmp_path):
    out = tmp_path / "anomaly"
    code = autoencoder_train.main(["--variant", "contractive", "--model",
                                   "test_autoencoder_contractive", "--anomaly-class", "9",
                                   "--output", str(out), *TINY])
    assert code == 0
    anomaly = _metrics(out)["anomaly"]
    assert anomaly["class"] == "9" and anomaly["n_anomalies"] > 0
    assert set(anomaly["roc_auc"]) == {"reconstruction_mse", "latent_knn", "latent_mahalanobis"}
    assert all(0.0 <= v <= 1.0 for v in anomaly["roc_auc"].values())


def test_vae_app_reports_elbo_and_draws_samples(tmp_path):
    out = tmp_path / "vae"
    code = vae_train.main(["--model", "test_vae", "--beta", "0.5", "--output", str(out), *TINY])
    assert code == 0
    metrics = _metrics(out)
    assert metrics["beta"] == 0.5
    assert metrics["elbo_nats"] < 0 and metrics["kl_nats"] >= 0
    assert metrics["reconstruction_nats"] > 0
    for name in ("samples.png", "latent_traversal.png", "encoder.tflite", "decoder.tflite"):
        assert (out / name).stat().st_size > 0, name
    assert metrics["exports"]["encoder.tflite"]["max_abs_diff"] < 1e-4


@pytest.mark.parametrize("argv, words", [
    (["--anomaly-class", "12"], "--anomaly-class 12 is not a class index"),
    (["--model", "autoencoder_cnv"], "Unknown model"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, words):
    code = autoencoder_train.main(["--output", str(tmp_path / "bad"), *TINY, *argv])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv", [["--variant", "pca"], ["--latent-dim", "0"], ["--salt-pepper", "2"],
                                  ["--noise-stddev", "nan"], ["--anomaly-class", "-1"]])
def test_bad_flags_are_rejected_by_the_parser(argv):
    with pytest.raises(SystemExit) as info:
        autoencoder_train.parse_args(argv)
    assert info.value.code == 2


def test_nan_loss_stops_with_a_message_before_exporting(tmp_path, capsys):
    out = tmp_path / "nan"
    code = vae_train.main(["--model", "test_vae", "--output", str(out), "--learning-rate", "1e30",
                           "--image-size", "16", "--epochs", "3", "--batch-size", "16", "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "diverged" in err and "nan" in err
    assert (out / "history.json").exists() and not (out / "encoder.tflite").exists()
