"""Do two images show the same thing? One-shot verification with an exported siamese embedding.

The embedding model that ``apps.siamese_train`` exported maps an image to a unit vector; two
images are "same" when the Euclidean distance between their vectors is at most the threshold
saved beside the model (threshold.json, chosen on validation pairs). Runs on the LiteRT
interpreter alone, as a phone app would: no TensorFlow or Keras is imported.

Each image is read with OpenCV (Pillow as fallback; EXIF rotation applied), converted to the
model's channels (RGB or gray), resized to its input size and scaled as config.json says,
so images of any size or colour mode can be compared. An int8 model (``uint8`` input) gets the
same pixels quantized with its input scale and zero point.

Usage:
    python -m apps.siamese_verify a.png b.png
    python -m apps.siamese_verify a.png b.png --model saved_models/siamese_train/embedding_int8.tflite
    python -m apps.siamese_verify a.png b.png --threshold 0.8

Prints one line: ``distance=<float> verdict=same|different``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

DEFAULT_MODEL = "saved_models/siamese_train/embedding.tflite"


class Embedder:
    """An exported embedding model with its preprocessing (config.json) and threshold.json,
    both read from the model's folder."""

    def __init__(self, model_path):
        from ai_edge_litert.interpreter import Interpreter

        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"No embedding model at {str(path)!r}; run "
                                    "`python -m apps.siamese_train` first or pass --model.")
        config = _read_json(path.parent / "config.json")
        self.threshold = float(_read_json(path.parent / "threshold.json")["threshold"])
        self.preprocessing = config["preprocessing"]
        self.size = tuple(self.preprocessing["image_size"])
        self.channels = int(self.preprocessing["channels"])
        self.interpreter = Interpreter(model_path=str(path))
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.interpreter.resize_tensor_input(self.input["index"], [1, *self.size, self.channels])
        self.interpreter.allocate_tensors()

    def load(self, path) -> np.ndarray:
        """Read an image file as the model's uint8 input: channels converted, resized."""
        import cv2

        from keras_cv_apps.vision import io

        image = io.read_image(path, mode="gray" if self.channels == 1 else "rgb")
        h, w = self.size
        shrink = h * w < image.shape[0] * image.shape[1]
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return image.reshape(h, w, self.channels)

    def _scale(self, pixels):
        p, x = self.preprocessing, pixels.astype(np.float32)
        if p["scale"] == "unit":
            return x / 255.0
        if p["scale"] == "symmetric":
            return x / 127.5 - 1.0
        return (x - np.asarray(p["mean"], np.float32)) / np.asarray(p["std"], np.float32)

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """One uint8 HWC image (as `load` returns it) -> its embedding vector."""
        x = self._scale(pixels)[None]
        detail = self.input
        if np.issubdtype(detail["dtype"], np.integer):
            scale, zero = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        self.interpreter.set_tensor(detail["index"], x.astype(detail["dtype"]))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])[0].astype(np.float32)
        if np.issubdtype(self.output["dtype"], np.integer):
            scale, zero = self.output["quantization"]
            y = (y - zero) * scale
        return y

    def embed_file(self, path) -> np.ndarray:
        return self.embed(self.load(path))


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path.name} is missing beside the model ({str(path)!r}); "
                                "siamese_train writes it next to the .tflite files.")
    return json.loads(path.read_text())


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m apps.siamese_verify", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image_a")
    parser.add_argument("image_b")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="exported embedding .tflite (default: %(default)s)")
    parser.add_argument("--threshold", type=float, default=None, help="override the saved distance threshold")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        embedder = Embedder(args.model)
        a, b = (embedder.embed_file(p) for p in (args.image_a, args.image_b))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    threshold = embedder.threshold if args.threshold is None else args.threshold
    distance = float(np.linalg.norm(a - b))
    print(f"distance={distance:.4f} verdict={'same' if distance <= threshold else 'different'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
