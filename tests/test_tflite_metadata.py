"""Classifier metadata in .tflite files (labels + input normalisation, the form MediaPipe Tasks
reads), written by `export.add_classifier_metadata` without MediaPipe and read back here; the
graph must run exactly as before. `tests/test_mediapipe.py` runs MediaPipe itself on such files."""

import io
import zipfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import _tflite_metadata, export  # noqa: E402
from keras_cv_apps.inference import TFLiteModel  # noqa: E402

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))


@pytest.fixture(scope="module")
def float_file(model, tmp_path_factory):
    return export.export_tflite(model, tmp_path_factory.mktemp("meta") / "model.tflite")


def _copy(src, tmp_path, name="copy.tflite"):
    dst = tmp_path / name
    dst.write_bytes(src.read_bytes())
    return dst


def test_labels_and_normalisation_read_back_and_graph_runs_identically(float_file, digits16, tmp_path):
    x_test = digits16[2][:64]
    path = _copy(float_file, tmp_path)
    before = TFLiteModel(path)(x_test)
    written = export.add_classifier_metadata(path, NAMES, {"scale": "unit", "mean": None, "std": None})
    assert written["mean"] == [0.0] and written["std"] == [255.0]  # (pixel - 0) / 255 = the unit scaling
    assert np.array_equal(TFLiteModel(path)(x_test), before)
    meta = export.read_classifier_metadata(path)
    assert meta["labels"] == NAMES and meta["labels_file"] == "labels.txt"
    assert meta["mean"] == [0.0] and meta["std"] == [255.0]
    assert meta["color_space"] == "GRAYSCALE" and meta["size"] == [16, 16] and meta["min_parser_version"] == "1.0.0"
    data = path.read_bytes()
    buffer = _tflite_metadata.metadata_buffer(data)
    assert buffer[4:8] == b"M001"  # the metadata schema's file identifier
    with zipfile.ZipFile(io.BytesIO(data)) as archive:  # labels appended as a plain, uncompressed zip
        assert [(i.filename, i.compress_type) for i in archive.infolist()] == [("labels.txt", zipfile.ZIP_STORED)]
        assert archive.read("labels.txt").decode().split() == NAMES
    assert export.read_classifier_metadata(float_file) is None  # the original file has none


def test_writing_again_replaces_the_metadata(float_file, tmp_path):
    path = _copy(float_file, tmp_path)
    unit = {"scale": "unit", "mean": None, "std": None}
    export.add_classifier_metadata(path, NAMES, unit)
    once = path.stat().st_size
    export.add_classifier_metadata(path, NAMES, unit)
    assert path.stat().st_size == once  # the old buffer and zip were replaced, not kept beside the new ones
    export.add_classifier_metadata(path, [n.upper() for n in NAMES], {"scale": "symmetric", "mean": None,
                                                                       "std": None})
    meta = export.read_classifier_metadata(path)
    assert meta["labels"] == [n.upper() for n in NAMES]
    assert meta["mean"] == [127.5] and meta["std"] == [127.5]  # (pixel - 127.5) / 127.5 in [-1, 1]


def test_standardize_uses_the_training_statistics_and_centres_constant_channels(float_file, tmp_path):
    path = _copy(float_file, tmp_path)
    written = export.add_classifier_metadata(path, NAMES, {"scale": "standardize", "mean": [33.5], "std": [0.0]})
    assert written["mean"] == [33.5] and written["std"] == [1.0]
    meta = export.read_classifier_metadata(path)
    assert meta["mean"] == [33.5] and meta["std"] == [1.0]


def test_uint8_input_takes_raw_pixels(model, digits16, tmp_path):
    x, _, x_test, _ = digits16
    path = export.export_tflite(model, tmp_path / "int8.tflite", quantization="int8", representative=x[:100])
    before = TFLiteModel(path)(x_test[:64])
    written = export.add_classifier_metadata(path, NAMES, {"scale": "unit", "mean": None, "std": None})
    assert written["mean"] == [0.0] and written["std"] == [1.0]
    # calibrated on [0, 1] images, the uint8 input's scale is ~1/255 with zero point 0: pixels as they are
    assert written["pixel_steps"] <= 1.0
    assert np.array_equal(TFLiteModel(path)(x_test[:64]), before)


def test_bad_requests_fail_with_one_sentence(float_file, tmp_path):
    path = _copy(float_file, tmp_path)
    unit = {"scale": "unit", "mean": None, "std": None}
    with pytest.raises(ValueError, match="scores 10 classes"):
        export.add_classifier_metadata(path, NAMES[:9], unit)
    with pytest.raises(ValueError, match="scores 10 classes"):
        export.add_classifier_metadata(path, NAMES[:9] + ["two\nlines"], unit)
    with pytest.raises(ValueError, match="scale"):
        export.add_classifier_metadata(path, NAMES, {"scale": "percent"})
    with pytest.raises(FileNotFoundError):
        export.add_classifier_metadata(tmp_path / "missing.tflite", NAMES, unit)
    inputs = keras.Input((8, 8, 1))
    conv = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same")(inputs))
    with pytest.raises(ValueError, match="not an image classifier"):
        export.add_classifier_metadata(export.export_tflite(conv, tmp_path / "conv.tflite"), NAMES, unit)
    assert export.read_classifier_metadata(path) is None  # nothing was written by the refused calls


def test_export_all_writes_metadata_into_every_tflite_file(model, digits16, tmp_path):
    x, _, x_test, y_test = digits16
    unit = {"scale": "unit", "mean": None, "std": None}
    with pytest.raises(ValueError, match="preprocessing"):
        export.export_all(model, tmp_path, ["float32"], samples=x_test, class_names=NAMES)
    reports = export.export_all(model, tmp_path, ["float32", "int8"], samples=x_test, labels=y_test,
                                representative=x[:100], class_names=NAMES, preprocessing=unit, compiled_model=0)
    assert reports["model.tflite"]["top1_agreement"] == 1.0  # verified against Keras after the metadata
    for name, report in reports.items():
        assert report["metadata"]["num_labels"] == 10 and report["n"] == len(x_test)
        assert export.read_classifier_metadata(tmp_path / name)["labels"] == NAMES
    assert reports["model.tflite"]["metadata"]["std"] == [255.0]
    assert reports["model_int8.tflite"]["metadata"]["std"] == [1.0]


def test_rgb_front_feeds_the_gray_model_its_luma(model, digits16):
    x_test = digits16[2][:32]
    rgb = export.with_rgb_input(model)
    assert rgb.input_shape == (None, 16, 16, 3)
    gray_out = model.predict(x_test, verbose=0)
    np.testing.assert_allclose(rgb.predict(np.repeat(x_test, 3, -1), verbose=0), gray_out, atol=1e-6)
    colour = np.random.default_rng(0).uniform(0, 1, (4, 16, 16, 3)).astype("float32")
    luma = colour @ np.array(export.LUMA, np.float32)
    np.testing.assert_allclose(export.LUMA, (0.299, 0.587, 0.114), atol=2e-3)  # ITU-R 601 ...
    grid = np.array(export.LUMA) / max(export.LUMA) * 127  # ... on the grid of an int8 weight tensor
    assert np.allclose(grid, np.round(grid), atol=1e-9) and abs(sum(export.LUMA) - 1) < 1e-12
    np.testing.assert_allclose(rgb.predict(colour, verbose=0), model.predict(luma[..., None], verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match=r"\(H, W, 1\)"):
        export.with_rgb_input(rgb)
