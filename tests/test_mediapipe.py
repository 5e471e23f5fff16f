"""MediaPipe Tasks' ImageClassifier, offline, on classifier files exported with metadata by
`export.export_all` and on the files a default `lenet_train` run writes (a grayscale model whose
files take RGB): labels and normalisation come from the file alone, and its top-1 equals Keras on
the digits test split. MediaPipe cannot be a dependency (it needs the non-headless OpenCV), so
this runs where it is installed: `make mediapipe-check` builds such a venv; elsewhere it is skipped."""

import numpy as np
import pytest

mp = pytest.importorskip("mediapipe")
keras = pytest.importorskip("keras")

from keras_cv_apps import data, export, models  # noqa: E402
from keras_cv_apps.inference import TFLiteModel  # noqa: E402

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def classify(path, pixels):
    """MediaPipe's top category (index, name) and the full score vector for each uint8 RGB image."""
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(path)), max_results=-1)
    top, names, scores = [], [], []
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for image in pixels:
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
            categories = result.classifications[0].categories
            top.append(categories[0].index)
            names.append(categories[0].category_name)
            row = np.zeros(len(NAMES))
            for c in categories:
                row[c.index] = c.score
            scores.append(row)
    return np.array(top), names, np.array(scores)


def _trained_lenet(channels):
    """A tiny LeNet-5 trained four epochs on digits at 16x16 with ``channels``, and its splits."""
    splits = data.load("digits", image_size=16, channels=channels, scale="unit", seed=0)
    x, y = splits.arrays("train")
    keras.utils.set_random_seed(0)
    model = models.create("test_lenet5", num_classes=10, image_shape=(16, 16, channels))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    return splits, model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny RGB LeNet-5 trained a few epochs on digits, exported in float32 and int8 with metadata."""
    splits, model = _trained_lenet(channels=3)
    out = tmp_path_factory.mktemp("mediapipe")
    x_test, y_test = splits.arrays("test")
    reports = export.export_all(model, out, ["float32", "int8"], samples=x_test, labels=y_test,
                                representative=splits.representative(200), class_names=NAMES,
                                preprocessing=splits.preprocessing, compiled_model=0)
    pixels, _ = splits.arrays("test", scaled=False)
    return model, out, reports, pixels, x_test, y_test


def test_float32_top1_equals_keras_on_the_digits_test_split(exported):
    model, out, reports, pixels, x_test, y_test = exported
    keras_scores = model.predict(x_test, verbose=0)
    assert np.mean(keras_scores.argmax(1) == y_test) > 0.5  # learned something: agreement is not trivial
    top, names, scores = classify(out / "model.tflite", pixels)
    assert np.array_equal(top, keras_scores.argmax(1))  # every one of the 360 test images
    assert names == [NAMES[i] for i in top]  # the labels came from the file's metadata
    assert np.max(np.abs(scores - keras_scores)) < 1e-5  # (pixel - 0) / 255 is the training scaling


def test_int8_top1_equals_the_litert_interpreter(exported):
    model, out, reports, pixels, x_test, _ = exported
    top, _, _ = classify(out / "model_int8.tflite", pixels)
    interpreter_top = TFLiteModel(out / "model_int8.tflite")(x_test).argmax(1)
    assert np.array_equal(top, interpreter_top)  # MediaPipe feeds the raw pixels the uint8 input takes
    assert np.mean(top == model.predict(x_test, verbose=0).argmax(1)) >= 0.95


def test_files_without_metadata_or_with_one_channel_are_refused(exported, tmp_path):
    _, out, _, _, _, _ = exported
    plain = export.export_tflite(models.create("test_lenet5", num_classes=10, image_shape=(16, 16, 3)),
                                 tmp_path / "plain.tflite")
    with pytest.raises(Exception, match="NormalizationOptions"):  # a float input needs the normalisation
        classify(plain, np.zeros((1, 16, 16, 3), np.uint8))
    gray = export.export_tflite(models.create("test_lenet5", num_classes=10, image_shape=(16, 16, 1)),
                                tmp_path / "gray.tflite")
    written = export.add_classifier_metadata(gray, NAMES, {"scale": "unit", "mean": None, "std": None})
    assert "refuses" in written["mediapipe_image_classifier"]
    with pytest.raises(Exception, match="RGB color space|depth = 3 or 4"):  # 1 channel: not taken
        classify(gray, np.zeros((1, 16, 16, 3), np.uint8))


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    """A default `lenet_train` run (grayscale LeNet-5 at 32x32, default exports), trained briefly."""
    from apps import lenet_train

    out = tmp_path_factory.mktemp("lenet_train") / "run"
    assert lenet_train.main(["--epochs", "4", "--quiet", "--output", str(out)]) == 0
    splits = data.load("digits", image_size=32, channels=1, scale="unit", seed=0)  # the app's test split
    x_test, y_test = splits.arrays("test")
    keras_top = keras.models.load_model(out / "model.keras").predict(x_test, verbose=0).argmax(1)
    return out, splits.arrays("test", scaled=False)[0], x_test, y_test, keras_top


def test_default_lenet_train_float32_file_gives_keras_top1(lenet_run):
    """What `lenet_train` writes by default is taken by MediaPipe (RGB input) and agrees with Keras."""
    out, pixels, _, y_test, keras_top = lenet_run
    assert np.mean(keras_top == y_test) > 0.5
    top, names, _ = classify(out / "model.tflite", np.repeat(pixels, 3, -1))  # gray digits as a camera gives them
    assert np.array_equal(top, keras_top)  # every one of the 360 test images
    assert [names[k] for k in range(len(top))] == [str(i) for i in top]  # digits' labels come from the file


def test_default_lenet_train_int8_file_gives_the_interpreter_top1(lenet_run):
    out, pixels, x_test, _, keras_top = lenet_run
    top, _, _ = classify(out / "model_int8.tflite", np.repeat(pixels, 3, -1))
    assert np.array_equal(top, TFLiteModel(out / "model_int8.tflite")(np.repeat(x_test, 3, -1)).argmax(1))
    assert np.mean(top == keras_top) >= 0.95
