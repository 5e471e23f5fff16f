"""MediaPipe Tasks reads the classifier metadata this package writes: an offline check.

Trains `lenet5` on `digits` as RGB (MediaPipe's ImageClassifier takes only RGB inputs) for a few
epochs, exports float32 and int8 files with `export.export_all` (which writes the labels
and input normalisation as TFLite metadata), then, with MediaPipe installed:

- parses the metadata with MediaPipe's own reader (``MetadataDisplayer``: the schema's generated
  Python code plus MediaPipe's C flatbuffer parser) and lists the files packed in the model;
- runs MediaPipe's ``ImageClassifier`` on every test image (uint8 RGB, labels and normalisation
  taken from the file alone) and compares its top-1 with Keras (float32) and with the LiteRT
  interpreter (int8, which takes the same uint8 pixels);
- trains the `lenet_train` default, grayscale `lenet5`, records what MediaPipe says about its file
  and checks it again behind `export.with_rgb_input` (a fixed RGB -> luma 1x1 convolution).

MediaPipe's own metadata writer (``mediapipe.tasks.python.metadata``) imports a compiled module,
``mediapipe.tasks.cc.metadata.python._pywrap_metadata_version``, that the 0.10.35 wheel lacks; it
only computes ``min_parser_version``. This script puts a stand-in module answering ``1.0.0`` in its
place so the displayer imports; that is where the stand-in ends.

    make mediapipe-check          # builds a side venv with mediapipe --no-deps, runs the test and this
    python -m benchmarks.check_mediapipe [--epochs 5]      # in an environment with mediapipe
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


def check(model, splits, folder, *, rgb_front: bool = False) -> dict:
    """Export ``model`` (behind `export.with_rgb_input` when asked) in float32 and int8 with metadata
    and compare MediaPipe's top-1 on the test split with Keras and with the interpreter."""
    from keras_cv_apps import export
    from keras_cv_apps.inference import TFLiteModel

    x_test, y_test = splits.arrays("test")
    pixels, _ = splits.arrays("test", scaled=False)
    keras_top = model.predict(x_test, verbose=0).argmax(1)
    exported, representative = model, splits.representative(200)
    if rgb_front:  # gray images become RGB with three equal channels, as MediaPipe gets them
        exported = export.with_rgb_input(model)
        x_test, pixels, representative = (np.repeat(a, 3, -1) for a in (x_test, pixels, representative))
    reports = export.export_all(exported, folder, ["float32", "int8"], samples=x_test, labels=y_test,
                                representative=representative, class_names=splits.class_names,
                                preprocessing=splits.preprocessing, compiled_model=0)
    rows = {}
    for name, report in reports.items():
        path = Path(folder) / name
        top = classify(path, pixels)
        rows[name] = {"n": len(top), "written": report["metadata"], "mediapipe_reads": mediapipe_reads(path),
                      "top1_equal_keras": float(np.mean(top == keras_top)),
                      "top1_equal_interpreter": float(np.mean(top == TFLiteModel(path)(x_test).argmax(1))),
                      "mediapipe_accuracy": float(np.mean(top == y_test)),
                      "keras_accuracy": float(np.mean(keras_top == y_test))}
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)

    import mediapipe

    from keras_cv_apps import data, export

    _stand_in_version_module()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        splits = data.load("digits", image_size=32, channels=3, scale="unit", seed=0)
        rows["lenet5 32x32x3"] = check(train(splits, 3, args.epochs), splits, Path(tmp, "rgb"))
        splits = data.load("digits", image_size=32, channels=1, scale="unit", seed=0)  # the lenet_train default
        gray = train(splits, 1, args.epochs)
        path = export.export_tflite(gray, Path(tmp) / "gray.tflite")
        export.add_classifier_metadata(path, splits.class_names, splits.preprocessing)
        try:
            classify(path, np.zeros((1, 32, 32, 3), np.uint8))
            gray_result = "ran"
        except Exception as err:  # MediaPipe raises ValueError/RuntimeError with its status text
            gray_result = f"refused: {err}"
        rows["lenet5 32x32x1 behind with_rgb_input"] = check(gray, splits, Path(tmp, "gray"), rgb_front=True)
    out = write_result("mediapipe", {"mediapipe": mediapipe.__version__, "epochs": args.epochs, "models": rows,
                                     "grayscale_lenet5_as_is": gray_result})
    for model, files in rows.items():
        for name, row in files.items():
            print(f"{model} {name}: MediaPipe top-1 = Keras on {row['top1_equal_keras']:.2%}, = interpreter on "
                  f"{row['top1_equal_interpreter']:.2%} of {row['n']} test images "
                  f"(accuracy {row['mediapipe_accuracy']:.2%}, Keras {row['keras_accuracy']:.2%})")
    print(f"grayscale lenet5 as is: {gray_result}\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
