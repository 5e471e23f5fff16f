"""MediaPipe Tasks reads the classifier metadata this package writes: an offline check.

Trains `lenet5` on `digits` as RGB (MediaPipe's ImageClassifier takes only RGB inputs) for a few
epochs, exports float32 and int8 files with `export.export_all` (which writes the labels
and input normalisation as TFLite metadata), then, with MediaPipe installed:

- parses the metadata with MediaPipe's own reader (``MetadataDisplayer``: the schema's generated
  Python code plus MediaPipe's C flatbuffer parser) and lists the files packed in the model;
- runs MediaPipe's ``ImageClassifier`` on every test image (uint8 RGB, labels and normalisation
  taken from the file alone) and compares its top-1 with Keras (float32) and with the LiteRT
  interpreter (int8, which takes the same uint8 pixels);
- runs `lenet_train` with its defaults (a grayscale `lenet5` whose .tflite files take
  RGB through the app's default ``--tflite-input rgb``: a fixed RGB -> luma 1x1 convolution in front)
  and checks the files it wrote the same way, feeding the gray test digits as RGB with three equal
  channels; the int8 file is also compared with a 1-channel int8 export of the same ``model.keras``
  and calibration, and that 1-channel file (``--tflite-input native``) is shown to MediaPipe.

MediaPipe's own metadata writer (``mediapipe.tasks.python.metadata``) imports a compiled module,
``mediapipe.tasks.cc.metadata.python._pywrap_metadata_version``, that the 0.10.35 wheel lacks; it
only computes ``min_parser_version``. This script puts a stand-in module answering ``1.0.0`` in its
place so the displayer imports; that is where the stand-in ends.

    make mediapipe-check          # builds a side venv with mediapipe --no-deps, runs the test and this
    python -m benchmarks.check_mediapipe [--epochs 5] [--app-epochs N]   # in an environment with mediapipe
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

from benchmarks._util import write_result

MISSING = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"


def _stand_in_version_module():
    """Register the compiled module the 0.10.35 wheel lacks (see the module docstring)."""
    parts = MISSING.split(".")
    for i in range(3, len(parts)):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    module = types.ModuleType(MISSING)
    module.GetMinimumMetadataParserVersion = lambda buffer: "1.0.0"
    sys.modules[MISSING] = module


def mediapipe_reads(path) -> dict:
    """The metadata of ``path`` as MediaPipe's displayer sees it."""
    import json

    from mediapipe.tasks.python.metadata import metadata

    shown = metadata.MetadataDisplayer.with_model_file(str(path))
    meta = json.loads(shown.get_metadata_json())
    tensor_in = meta["subgraph_metadata"][0]["input_tensor_metadata"][0]
    tensor_out = meta["subgraph_metadata"][0]["output_tensor_metadata"][0]
    norm = next(u["options"] for u in tensor_in.get("process_units", []) if u["options_type"] == "NormalizationOptions")
    labels = tensor_out["associated_files"][0]
    return {"packed_files": shown.get_packed_associated_file_list(), "min_parser_version": meta["min_parser_version"],
            "color_space": tensor_in["content"]["content_properties"]["color_space"],
            "mean": norm["mean"], "std": norm["std"], "labels_file": labels["name"], "labels_type": labels["type"],
            "labels": shown.get_associated_file_buffer(labels["name"]).decode().split()}


def classify(path, pixels) -> np.ndarray:
    """MediaPipe ImageClassifier's top-1 class index for each uint8 RGB image."""
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(path)), max_results=1)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        return np.array([classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                      data=np.ascontiguousarray(p))).classifications[0]
                         .categories[0].index for p in pixels])


def train(splits, channels: int, epochs: int):
    import keras

    from keras_cv_apps import models

    x, y = splits.arrays("train")
    keras.utils.set_random_seed(0)
    model = models.create("lenet5", num_classes=splits.num_classes, image_shape=(32, 32, channels))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model


def compare(keras_top, path, pixels, x_test, y_test) -> dict:
    """MediaPipe's top-1 on ``pixels`` against Keras' and the LiteRT interpreter's on ``x_test``."""
    from keras_cv_apps import export
    from keras_cv_apps.inference import TFLiteModel

    top = classify(path, pixels)
    return {"n": len(top), "written": export.read_classifier_metadata(path), "mediapipe_reads": mediapipe_reads(path),
            "top1_equal_keras": float(np.mean(top == keras_top)),
            "top1_equal_interpreter": float(np.mean(top == TFLiteModel(path)(x_test).argmax(1))),
            "mediapipe_accuracy": float(np.mean(top == y_test)), "keras_accuracy": float(np.mean(keras_top == y_test))}


def check_rgb_model(splits, folder, epochs: int) -> dict:
    """An RGB `lenet5` exported in float32 and int8 with metadata by `export.export_all`."""
    from keras_cv_apps import export

    model = train(splits, 3, epochs)
    x_test, y_test = splits.arrays("test")
    pixels, _ = splits.arrays("test", scaled=False)
    export.export_all(model, folder, ["float32", "int8"], samples=x_test, labels=y_test,
                      representative=splits.representative(200), class_names=splits.class_names,
                      preprocessing=splits.preprocessing, compiled_model=0)
    keras_top = model.predict(x_test, verbose=0).argmax(1)
    return {name: compare(keras_top, Path(folder) / name, pixels, x_test, y_test)
            for name in ("model.tflite", "model_int8.tflite")}


def check_lenet_train(folder, epochs) -> tuple:
    """The files of a default `lenet_train` run (gray model, RGB-input files), and what MediaPipe says
    about a 1-channel export of the same model."""
    from apps import lenet_train
    from keras_cv_apps import data, export, load_model
    from keras_cv_apps.inference import TFLiteModel

    out = Path(folder) / "lenet_train"
    if lenet_train.main(["--quiet", "--output", str(out)] + (["--epochs", str(epochs)] if epochs else [])) != 0:
        raise SystemExit("lenet_train failed")
    splits = data.load("digits", image_size=32, channels=1, scale="unit", seed=0)  # the app's split and scaling
    x_test, y_test = splits.arrays("test")
    pixels = np.repeat(splits.arrays("test", scaled=False)[0], 3, -1)  # gray digits as a camera delivers them
    model = load_model(out / "model.keras")
    keras_top = model.predict(x_test, verbose=0).argmax(1)
    rgb_x = np.repeat(x_test, 3, -1)
    rows = {name: compare(keras_top, out / name, pixels, rgb_x, y_test)
            for name in ("model.tflite", "model_int8.tflite")}
    native = export.export_tflite(model, out / "native_int8.tflite", quantization="int8",
                                  representative=splits.representative(200))
    native_scores = TFLiteModel(native)(x_test)
    rows["model_int8.tflite"]["top1_equal_native_int8"] = float(np.mean(
        classify(out / "model_int8.tflite", pixels) == native_scores.argmax(1)))
    rows["model_int8.tflite"]["scores_equal_native_int8"] = bool(np.array_equal(
        TFLiteModel(out / "model_int8.tflite")(rgb_x), native_scores))
    export.add_classifier_metadata(native, splits.class_names, splits.preprocessing)
    try:
        classify(native, pixels[:1])
        refused = "ran"
    except Exception as err:  # MediaPipe raises ValueError/RuntimeError with its status text
        refused = f"refused: {err}"
    return rows, refused


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the RGB lenet5")
    parser.add_argument("--app-epochs", type=int, default=None, help="lenet_train's --epochs (default: the app's)")
    args = parser.parse_args(argv)

    import mediapipe

    from keras_cv_apps import data

    _stand_in_version_module()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        splits = data.load("digits", image_size=32, channels=3, scale="unit", seed=0)
        rows["lenet5 32x32x3"] = check_rgb_model(splits, Path(tmp, "rgb"), args.epochs)
        app_rows, native = check_lenet_train(tmp, args.app_epochs)
        rows["lenet_train default run (lenet5 32x32x1, RGB-input files)"] = app_rows
    out = write_result("mediapipe", {"mediapipe": mediapipe.__version__, "epochs": args.epochs,
                                     "lenet_train_epochs": args.app_epochs or "app default", "models": rows,
                                     "one_channel_int8_file": native})
    for model, files in rows.items():
        for name, row in files.items():
            print(f"{model} {name}: MediaPipe top-1 = Keras on {row['top1_equal_keras']:.2%}, = interpreter on "
                  f"{row['top1_equal_interpreter']:.2%} of {row['n']} test images "
                  f"(accuracy {row['mediapipe_accuracy']:.2%}, Keras {row['keras_accuracy']:.2%})"
                  + (f"; = 1-channel int8 on {row['top1_equal_native_int8']:.2%}, scores identical: "
                     f"{row['scores_equal_native_int8']}" if "top1_equal_native_int8" in row else ""))
    print(f"1-channel int8 file (--tflite-input native): {native}\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
