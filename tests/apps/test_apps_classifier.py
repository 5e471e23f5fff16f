"""lenet_train / alexnet_train end to end with tiny settings, and their bad-input paths."""

import json

import pytest

pytest.importorskip("keras")

from apps import alexnet_train, lenet_train  # noqa: E402
from keras_cv_apps import export  # noqa: E402

TINY = ["--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "32", "--quiet"]


def test_lenet_app_trains_exports_and_verifies(tmp_path, capsys):
    out = tmp_path / "run"
    rc = lenet_train.main(TINY + ["--model", "test_lenet5", "--image-size", "16", "--output", str(out)])
    assert rc == 0
    for name in ("model.keras", "model.tflite", "model_int8.tflite", "labels.txt", "config.json",
                 "metrics.json", "history.json", "training_curves.png", "confusion_matrix.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["n"] == 360
    assert metrics["exports"]["model.tflite"]["max_abs_diff"] <= 1e-5
    assert metrics["exports"]["model.tflite"]["top1_agreement"] == 1.0
    assert metrics["exports"]["model_int8.tflite"]["quantization"] == "int8"
    assert (out / "labels.txt").read_text().split() == [str(i) for i in range(10)]
    for name, std in (("model.tflite", [255.0] * 3), ("model_int8.tflite", [1.0] * 3)):  # metadata inside each file
        assert metrics["exports"][name]["metadata"]["std"] == std
        assert metrics["exports"][name]["metadata"]["color_space"] == "RGB"  # what MediaPipe's classifier takes
        assert "mediapipe_image_classifier" not in metrics["exports"][name]["metadata"]
        assert {k: metrics["exports"][name][k] for k in ("tflite_input", "input_channels", "rgb_front")} == \
            {"tflite_input": "rgb", "input_channels": 3, "rgb_front": True}
        written = export.read_classifier_metadata(out / name)
        assert written["labels"] == (out / "labels.txt").read_text().split() and written["color_space"] == "RGB"
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"]["scale"] == "unit" and config["model"]["name"] == "test_lenet5"
    assert config["model"]["kwargs"]["num_classes"] == 10
    assert config["options"]["tflite_input"] == "rgb" and config["dataset"]["channels"] == 1
    assert "test top-1" in capsys.readouterr().out
    _rgb_files_agree_with_keras(out, metrics)


def _rgb_files_agree_with_keras(out, metrics):
    """The default (RGB-input) files of a gray model, run the phone way (`inference.ExportedModel`, from
    config.json) on the gray test images, give Keras' outputs; colour and gray pixels are both taken."""
    import numpy as np

    import keras_cv_apps
    from keras_cv_apps import data
    from keras_cv_apps.inference import ExportedModel

    model = keras_cv_apps.load_model(out / "model.keras")
    assert model.input_shape == (None, 16, 16, 1)  # the .keras file stays as trained
    splits = data.load("digits", image_size=16, channels=1, scale="unit", seed=0)
    pixels, _ = splits.arrays("test", scaled=False)
    keras_out = model.predict(splits.arrays("test")[0], verbose=0)
    lite = ExportedModel(out / "model.tflite")
    assert lite.model.input_shape == (16, 16, 3) and lite.preprocessing.channels == 3
    np.testing.assert_allclose(lite(pixels), keras_out, atol=1e-5)  # gray pixels, replicated by the runner
    np.testing.assert_allclose(lite(np.repeat(pixels, 3, -1)), keras_out, atol=1e-5)  # gray-replicated RGB
    int8 = ExportedModel(out / "model_int8.tflite")
    assert int8.model.input_shape == (16, 16, 3) and int8.model.input["dtype"] == np.uint8
    scores = int8(np.repeat(pixels, 3, -1))
    assert np.array_equal(int8(pixels), scores)
    agreement = float(np.mean(scores.argmax(1) == keras_out.argmax(1)))
    assert agreement == metrics["exports"]["model_int8.tflite"]["top1_agreement"]
    # the RGB front costs nothing in int8: a 1-channel export with the same calibration scores alike
    native = export.export_tflite(model, out / "native_int8.tflite", quantization="int8",
                                  representative=splits.representative(200))
    assert np.array_equal(export.run_tflite(native, splits.arrays("test")[0]), scores)


def test_lenet_app_keeps_one_channel_with_native_tflite_input(tmp_path):
    out = tmp_path / "native"
    rc = lenet_train.main(TINY + ["--model", "test_lenet5", "--image-size", "16", "--quantize", "int8",
                                  "--tflite-input", "native", "--output", str(out)])
    assert rc == 0
    entry = json.loads((out / "metrics.json").read_text())["exports"]["model_int8.tflite"]
    assert (entry["tflite_input"], entry["input_channels"], entry["rgb_front"]) == ("native", 1, False)
    assert entry["metadata"]["color_space"] == "GRAYSCALE"
    assert json.loads((out / "config.json").read_text())["options"]["tflite_input"] == "native"
    from keras_cv_apps.inference import ExportedModel

    assert ExportedModel(out / "model_int8.tflite").model.input_shape == (16, 16, 1)


def test_alexnet_app_runs_with_lrn(tmp_path):
    out = tmp_path / "alex"
    rc = alexnet_train.main(TINY + ["--model", "test_alexnet", "--image-size", "16", "--norm", "lrn",
                                    "--quantize", "float32", "--output", str(out)])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["exports"]["model.tflite"]["max_abs_diff"] <= 1e-5


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "lenet"], "Unknown model 'lenet'; lenet_train trains classifier models: alexnet, bit_m_r101x1, "
                               "bit_m_r50x1, bit_s_r50x1, bit_tiny, cct_small, effnet_b0, effnet_b1, effnet_b2, "
                               "effnet_b3, ghostnet, lenet5, mobilenetv2, vit_b16, vit_s16, vit_ti16."),
        (["--model", "vae"], "Model 'vae' is a vae model; lenet_train trains classifier models"),
        (["--dataset", "digitz"], "digitz"),
        (["--image-size", "8"], "at least 10 px"),
        (["--model", "mobilenetv2"], "lenet_train builds its model with activation, batch_norm, dropout, padding, "
                                     "pooling, which mobilenetv2 does not take; models lenet_train can train: "
                                     "lenet5 (or train mobilenetv2"),
    ],
)
def test_bad_input_fails_fast_with_one_sentence(tmp_path, capsys, extra, message):
    rc = lenet_train.main(TINY + ["--output", str(tmp_path / "x")] + extra)
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and err.startswith("error: ") and "test_" not in err
    assert not (tmp_path / "x").exists()  # nothing was written, no empty folder is left


def test_an_image_size_that_cannot_fit_in_memory_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    from keras_cv_apps.image import ops

    monkeypatch.setattr(ops, "available_memory", lambda: 2**30)  # 1 GiB free, whatever this machine has
    rc = lenet_train.main(TINY + ["--image-size", "1000", "--output", str(tmp_path / "x")])
    err = capsys.readouterr().err
    # 1,797 digits at 1000x1000x1 = 1.7 GiB > 0.8 x 1 GiB
    assert rc == 2
    assert err.startswith("error: 1,797 images at 1000x1000x1 need 1.7 GiB in memory, more than the 1.0 GiB")
    assert "dir:PATH" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_unwritable_output_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rc = lenet_train.main(TINY + ["--output", str(blocker / "run")])
    assert rc == 2
    assert "not writable" in capsys.readouterr().err


def test_one_class_and_empty_folders_are_refused(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    empty = tmp_path / "empty"
    empty.mkdir()
    assert lenet_train.main(TINY + ["--dataset", f"dir:{empty}", "--output", str(tmp_path / "a")]) == 2
    one = tmp_path / "one" / "cats"
    one.mkdir(parents=True)
    for i in range(5):
        Image.fromarray(np.full((20, 20), i * 40, "uint8")).save(one / f"{i}.png")
    assert lenet_train.main(TINY + ["--dataset", f"dir:{tmp_path / 'one'}", "--output", str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err.count("error: ") == 2


def test_bad_flag_value_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        lenet_train.main(["--quantize", "int4"])
    assert exc.value.code == 2
    assert "int4" in capsys.readouterr().err


def test_ctrl_c_keeps_the_best_checkpoint(tmp_path, monkeypatch, capsys):
    import keras

    from keras_cv_apps import metrics

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(metrics, "evaluate_classifier", interrupt)
    out = tmp_path / "run"
    rc = lenet_train.main(TINY + ["--model", "test_lenet5", "--image-size", "16", "--output", str(out)])
    assert rc == 130
    assert "best checkpoint" in capsys.readouterr().err
    assert keras.models.load_model(out / "best.keras").output_shape == (None, 10)


def test_balance_flag_trains_with_the_focal_loss(tmp_path):
    import keras_cv_apps

    out = tmp_path / "focal"
    rc = lenet_train.main(TINY + ["--model", "test_lenet5", "--image-size", "16", "--balance", "focal",
                                  "--quantize", "none", "--output", str(out)])
    assert rc == 0
    assert json.loads((out / "config.json").read_text())["options"]["balance"] == "focal"
    checkpoint = keras_cv_apps.load_model(out / "best.keras")
    assert type(checkpoint.loss).__name__ == "FocalLoss"
    assert keras_cv_apps.load_model(out / "model.keras").output_shape == (None, 10)


@pytest.mark.parametrize("kwargs", [{}, {"norm": "batchnorm", "dropout": 0.1}, lenet_train.MODEL_KWARGS])
def test_architecture_check_agrees_with_a_real_build(kwargs):
    """The app's check reads the builder's keyword binding without building; a tiny real build
    must take exactly the same keyword sets (the tiny test variants stand for their families)."""
    from apps._runs import _builds
    from keras_cv_apps import models
    from keras_cv_apps.models._registry import get_cfg

    for name in models.list_models(task="classifier", include_test=True):
        if not name.startswith("test_"):
            continue
        try:
            models.create(name, image_shape=get_cfg(name).test_image_shape, num_classes=2, **kwargs)
            built = True
        except TypeError:
            built = False
        assert _builds(name, kwargs) == built, name


def test_a_streamed_test_split_is_scored_on_every_image_not_a_sample(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from keras_cv_apps import data
    from keras_cv_apps.data import streaming

    rng = np.random.default_rng(0)
    for c in range(3):
        (tmp_path / "set" / f"c{c}").mkdir(parents=True)
        for i in range(20):
            Image.fromarray(rng.integers(0, 256, (16, 16), "uint8")).save(tmp_path / "set" / f"c{c}" / f"{i}.png")
    monkeypatch.setattr(streaming, "READ_BUDGET", 5 * 4 * 16 * 16)  # arrays() holds 5 images of a split
    out = tmp_path / "run"
    rc = lenet_train.main(TINY + ["--model", "test_lenet5", "--image-size", "16", "--quantize", "none",
                                  "--dataset", f"dir:{tmp_path / 'set'}", "--output", str(out)])
    assert rc == 0
    n_test = len(data.load(f"dir:{tmp_path / 'set'}", image_size=16).indices["test"])
    test = json.loads((out / "metrics.json").read_text())["test"]
    assert n_test > 5 and test["n"] == n_test
