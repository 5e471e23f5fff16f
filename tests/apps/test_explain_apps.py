"""apps.explain and apps.deepdream end to end on tiny models, and their bad-input paths."""

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from apps import deepdream, explain  # noqa: E402
from keras_cv_apps import artifacts, models  # noqa: E402
from keras_cv_apps.explain.overlay import save_png  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder as a training app leaves it: model.keras, config.json, labels.txt."""
    root = tmp_path_factory.mktemp("run")
    model = models.create("test_lenet5", image_shape=(16, 16, 1), num_classes=3)
    model.save(root / "model.keras")
    artifacts.write_json(root / "config.json", {"app": "lenet_train", "dataset": {
        "image_size": [16, 16], "channels": 1, "scale": "unit", "mean": None, "std": None}})
    artifacts.write_labels(root / "labels.txt", ["a", "b", "c"])
    photo = np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    save_png(root / "photo.png", photo)
    (root / "broken.png").write_bytes(b"\x89PNG not really")
    return root


def test_explain_writes_overlays_and_scores(run_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc = explain.main(["--model", str(run_dir / "model.keras"), str(run_dir / "photo.png"), str(run_dir / "photo.png"),
                       "--method", "gradcam,gradcam++,saliency,smoothgrad,ig,occlusion", "--samples", "2",
                       "--steps", "4", "--output", str(out)])
    assert rc == 0
    scores = json.loads((out / "scores.json").read_text())
    assert len(scores["images"]) == 2
    entry = scores["images"][0]
    assert entry["predicted_name"] in ("a", "b", "c") and 0 < entry["probability"] <= 1
    for method, info in entry["methods"].items():
        assert (out / info["overlay"]).is_file(), method
    assert len(entry["methods"]) == 6 and "next:" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["missing.png"], "does not exist"),
    (["broken.png"], "not a decodable image"),
    (["photo.png", "--class-index", "7"], "out of range"),
    (["photo.png", "--layer", "nope"], "has no layer 'nope'"),
    (["photo.png", "--method", "saliency", "--steps", "3"], "--steps applies to --method ig"),
])
def test_explain_bad_input(run_dir, tmp_path, capsys, extra, message):
    args = ["--model", str(run_dir / "model.keras"), "--output", str(tmp_path / "x")]
    args += [str(run_dir / e) if e.endswith(".png") else e for e in extra]
    assert explain.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_explain_grad_cam_needs_a_feature_map(tmp_path, run_dir, capsys):
    dense = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(), keras.layers.Dense(3)], name="mlp")
    dense.save(tmp_path / "model.keras")
    (tmp_path / "config.json").write_text((run_dir / "config.json").read_text())
    rc = explain.main(["--model", str(tmp_path / "model.keras"), str(run_dir / "photo.png"),
                       "--output", str(tmp_path / "x")])
    assert rc == 2 and "no layer with a 4-D output" in capsys.readouterr().err


def test_deepdream_writes_a_picture_a_video_and_the_objective(run_dir, tmp_path):
    out = tmp_path / "dream"
    rc = deepdream.main([str(run_dir / "photo.png"), "--model", str(run_dir / "model.keras"), "--steps", "3",
                         "--octaves", "2", "--video", "--output", str(out)])
    assert rc == 0
    assert (out / "dream.png").is_file() and (out / "dream.mp4").stat().st_size > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [o["steps"] for o in metrics["objective"]] == [3, 3]
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["kwargs"]["layers"] == {"c1_act": 1.0, "c3_act": 1.5}


@pytest.mark.parametrize("make, message", [
    (lambda src, dst: dst.write_bytes(src.read_bytes()[:3000]), "is not a valid .keras file"),  # truncated
    (lambda src, dst: dst.write_bytes(b"\x00" * 64), "is not a valid .keras file"),
    (lambda src, dst: dst.with_suffix(".tflite").write_bytes(b"TFL3"), "is a TFLite export"),
])
def test_explain_and_deepdream_refuse_a_damaged_or_foreign_model_file(run_dir, tmp_path, capsys, make, message):
    bad = tmp_path / "model.keras"
    make(run_dir / "model.keras", bad)
    bad = bad if bad.exists() else bad.with_suffix(".tflite")
    photo = str(run_dir / "photo.png")
    assert explain.main(["--model", str(bad), photo, "--output", str(tmp_path / "x")]) == 2
    assert deepdream.main([photo, "--model", str(bad), "--output", str(tmp_path / "y")]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all(e.startswith("error: ") and message in e and bad.name in e for e in errors)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.parametrize("extra, message", [
    (["missing.png"], "does not exist"),
    (["photo.png", "--layers", "mixed5:1"], "has no layer 'mixed5'"),
    (["photo.png", "--model", "inception_v3"], "needs --weights FILE"),
    (["photo.png", "--model", "inception_v3", "--weights", "w.npy"], "takes Keras' InceptionV3 ImageNet weights"),
    (["photo.png", "--model", "inception_v3", "--weights", "w_notop.h5"], "does not load into InceptionV3"),
])
def test_deepdream_bad_input(run_dir, tmp_path, capsys, extra, message):
    for name in ("w.npy", "w_notop.h5"):
        (tmp_path / name).write_text("not weights")
    args = [str(run_dir / e) if e.endswith(".png") else str(tmp_path / e) if e.startswith("w") else e
            for e in extra]
    if "--model" not in args:
        args += ["--model", str(run_dir / "model.keras")]
    assert deepdream.main(args + ["--output", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert not (tmp_path / "x").exists()
