"""inference: exported models run with LiteRT and the run folder's preprocessing, no TensorFlow;
the same pixels through Keras and through the phone path give the same outputs."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
cv2 = pytest.importorskip("cv2")

from keras_cv_apps import artifacts, export, inference  # noqa: E402


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A tiny model exported like an app does, with its config.json (symmetric scaling, RGB)."""
    root = tmp_path_factory.mktemp("run")
    keras.utils.set_random_seed(0)
    x = keras.Input((12, 10, 3))
    model = keras.Model(x, keras.layers.Dense(4)(keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(x))))
    export.export_tflite(model, root / "model.tflite")
    rng = np.random.default_rng(0)
    export.export_tflite(model, root / "model_int8.tflite", quantization="int8",
                         representative=rng.uniform(-1, 1, (50, 12, 10, 3)).astype("float32"))
    artifacts.write_json(root / "config.json", {"dataset": {"image_size": [12, 10], "channels": 3,
                                                            "scale": "symmetric", "mean": None, "std": None}})
    return root, model


def test_pixels_through_the_phone_path_match_keras(run_folder):
    root, model = run_folder
    pixels = np.random.default_rng(1).integers(0, 256, (5, 12, 10, 3)).astype(np.uint8)
    expected = model.predict(pixels.astype("float32") / 127.5 - 1.0, verbose=0)
    lite = inference.ExportedModel(root / "model.tflite")
    np.testing.assert_allclose(lite(pixels), expected, atol=1e-5)
    np.testing.assert_allclose(lite(pixels[0]), expected[0], atol=1e-5)
    int8 = inference.ExportedModel(root / "model_int8.tflite")
    assert int8.model.quantization == "int8"
    assert np.abs(int8(pixels) - expected).max() < 0.1 * np.abs(expected).max()


def test_files_of_any_size_and_mode_are_fitted(run_folder, tmp_path):
    root, model = run_folder
    image = np.random.default_rng(2).integers(0, 256, (48, 40), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "gray.png"), image)
    lite = inference.ExportedModel(root / "model.tflite")
    pixels = lite.load(tmp_path / "gray.png")
    assert pixels.shape == (12, 10, 3) and pixels.dtype == np.uint8
    np.testing.assert_allclose(lite(tmp_path / "gray.png"), lite(pixels), atol=1e-6)


def test_gray_model_with_rgb_files_takes_gray_and_colour_pictures(tmp_path):
    """A 1-channel model exported with ``tflite_input="rgb"`` (the classifier apps' default): the runner
    reads config.json (channels 1, standardize) and feeds the file RGB; gray and colour pictures, as
    pixels or files, give what Keras gives on their gray version."""
    keras.utils.set_random_seed(0)
    x = keras.Input((12, 10, 1))
    model = keras.Model(x, keras.layers.Dense(4)(keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(x))))
    stats = {"scale": "standardize", "mean": [100.0], "std": [50.0]}
    rng = np.random.default_rng(3)
    samples = (rng.uniform(0, 255, (8, 12, 10, 1)).astype("float32") - 100) / 50
    export.export_all(model, tmp_path, ["float32"], samples=samples, tflite_input="rgb")
    artifacts.write_json(tmp_path / "config.json", {"dataset": {"image_size": [12, 10], "channels": 1, **stats}})
    lite = inference.ExportedModel(tmp_path / "model.tflite")
    assert lite.model.input_shape == (12, 10, 3) and lite.preprocessing.channels == 3
    gray = rng.integers(0, 256, (5, 12, 10, 1)).astype(np.uint8)
    expected = model.predict((gray.astype("float32") - 100) / 50, verbose=0)
    np.testing.assert_allclose(lite(gray), expected, atol=1e-4)
    np.testing.assert_allclose(lite(gray[0]), expected[0], atol=1e-4)
    np.testing.assert_allclose(lite(np.repeat(gray, 3, -1)), expected, atol=1e-4)
    colour = rng.integers(0, 256, (5, 12, 10, 3)).astype(np.uint8)
    luma = colour.astype("float32") @ np.array(export.LUMA, np.float32)
    np.testing.assert_allclose(lite(colour), model.predict((luma[..., None] - 100) / 50, verbose=0), atol=1e-4)
    cv2.imwrite(str(tmp_path / "colour.png"), cv2.cvtColor(colour[0], cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "gray.png"), gray[0])
    np.testing.assert_allclose(lite(tmp_path / "colour.png"), lite(colour[0]), atol=1e-5)
    np.testing.assert_allclose(lite(tmp_path / "gray.png"), expected[0], atol=1e-4)


def test_missing_sidecars_and_bad_files_are_one_sentence(run_folder, tmp_path):
    root, model = run_folder
    lonely = tmp_path / "m.tflite"
    lonely.write_bytes((root / "model.tflite").read_bytes())
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        inference.ExportedModel(lonely)
    (tmp_path / "bad.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(ValueError, match="is not a TFLite flatbuffer; this needs a .tflite file"):
        inference.TFLiteModel(tmp_path / "bad.tflite")
    (tmp_path / "cut.tflite").write_bytes((root / "model.tflite").read_bytes()[:64])
    with pytest.raises(ValueError, match="not a valid TFLite model"):
        inference.TFLiteModel(tmp_path / "cut.tflite")
    keras_file = root / "model.keras"  # the .keras beside the export, given where a .tflite is needed
    model.save(keras_file)
    with pytest.raises(ValueError, match="is a Keras .keras archive; this needs a .tflite file"):
        inference.ExportedModel(keras_file)
    with pytest.raises(ValueError, match="do not fit"):
        inference.TFLiteModel(root / "model.tflite")(np.zeros((1, 5, 5, 3), np.float32))


def test_find_model_prefers_the_newest_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert inference.find_model("app", "m.tflite") is None
    ref = tmp_path / "saved_models" / "app"
    ref.mkdir(parents=True)
    (ref / "m.tflite").write_bytes(b"x")
    assert str(inference.find_model("app", "m.tflite")) == "saved_models/app/m.tflite"
    for stamp in ("20260101-000000", "20260102-000000"):
        run = tmp_path / "runs" / "app" / stamp
        run.mkdir(parents=True)
        (run / "m.tflite").write_bytes(b"x")
    assert inference.find_model("app", "m.tflite").parent.name == "20260102-000000"
