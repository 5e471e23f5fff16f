"""Run exported models the way a phone app does: LiteRT only, no TensorFlow or Keras.

- `TFLiteModel`: a ``.tflite`` file on the LiteRT interpreter. It takes float inputs scaled as
  the model was trained and returns float outputs; integer (int8/uint8) models get their inputs
  quantized and their outputs dequantized with the tensors' own scale and zero point.
- `Preprocessing`: the pixel contract recorded in a run's ``config.json`` (image size, channels,
  scaling), applied with `keras_cv_apps.image.ops`, the same functions the training pipeline uses.
- `ExportedModel`: both together, read from a run folder: ``model(path_or_pixels)``. A classifier
  trained on gray images whose files take RGB (the apps' default ``--tflite-input rgb``) is fed RGB:
  gray pictures with the channel repeated, colour pictures as they are (the file's front turns them
  to gray with the luma weights the readers use).
- `find_model`: the newest run of an app under ``runs/``, else the committed reference under
  ``saved_models/``, so phone-side apps can say which model they use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from keras_cv_apps.artifacts import CONFIG, read_json
from keras_cv_apps.image import io as image_io
from keras_cv_apps.image import ops

__all__ = ["ExportedModel", "Preprocessing", "TFLiteModel", "find_model"]


def check_tflite_file(path) -> Path:
    """``path`` as a Path if it is a TFLite flatbuffer (``TFL3`` at byte 4), else one clear error.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is something else (a ``.keras`` archive, a SavedModel file, text...).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No exported model at {str(path)!r}.")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[4:8] != b"TFL3":
        kind = "a Keras .keras archive" if head[:2] == b"PK" else "not a TFLite flatbuffer"
        raise ValueError(f"{str(path)!r} is {kind}; this needs a .tflite file that the training apps export "
                         "(model.tflite, embedding.tflite...).")
    return path


class TFLiteModel:
    """A ``.tflite`` model on the LiteRT interpreter (one input, one output tensor)."""

    def __init__(self, path, *, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.path = check_tflite_file(path)
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        except ValueError as err:
            raise ValueError(f"{str(self.path)!r} is not a valid TFLite model ({str(err).splitlines()[0]}).") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        signature = self.input["shape_signature"]
        self.fixed_batch = int(signature[0]) if signature[0] > 0 else None
        self._allocated = None

    @property
    def input_shape(self) -> tuple:
        """``(H, W, C)`` (or the per-example shape) the model takes."""
        return tuple(int(d) for d in self.input["shape"][1:])

    @property
    def quantization(self) -> str:
        """``int8``, ``float16``, ``dynamic`` or ``float32``, read from the tensor types and ops."""
        op_names = {op["op_name"] for op in self.interpreter._get_ops_details()}
        dtypes = {t["dtype"] for t in self.interpreter.get_tensor_details()}
        if np.issubdtype(self.input["dtype"], np.integer) or "QUANTIZE" in op_names:
            return "int8"
        if np.float16 in dtypes:
            return "float16"
        if np.int8 in dtypes:
            return "dynamic"
        return "float32"

    def _encode(self, x: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if np.issubdtype(dtype, np.integer):
            scale_, zero = self.input["quantization"]
            return ops.quantize(x, scale_, zero, dtype)
        return np.asarray(x, dtype)

    def _decode(self, y: np.ndarray) -> np.ndarray:
        if np.issubdtype(self.output["dtype"], np.integer):
            scale_, zero = self.output["quantization"]
            return ops.dequantize(y, scale_, zero)
        return y.astype(np.float32)

    def __call__(self, x, *, batch_size: int = 64) -> np.ndarray:
        """Float inputs ``(N, ...)`` scaled as the model takes them -> float outputs ``(N, ...)``."""
        x = np.asarray(x, np.float32)
        if x.shape[1:] != self.input_shape:
            raise ValueError(f"Inputs of shape {x.shape[1:]} do not fit {self.path.name}, which takes "
                             f"{self.input_shape}.")
        step = self.fixed_batch or batch_size
        results = []
        for start in range(0, len(x), step):
            chunk = x[start:start + step]
            real = len(chunk)
            if self.fixed_batch and real < self.fixed_batch:  # pad the last chunk
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.fixed_batch - real, axis=0)])
            if self._allocated != len(chunk):
                if not self.fixed_batch:
                    self.interpreter.resize_tensor_input(self.input["index"], [len(chunk), *self.input_shape])
                self.interpreter.allocate_tensors()
                self._allocated = len(chunk)
            self.interpreter.set_tensor(self.input["index"], self._encode(chunk))
            self.interpreter.invoke()
            results.append(self._decode(self.interpreter.get_tensor(self.output["index"]))[:real])
        return np.concatenate(results) if results else np.zeros((0,), np.float32)


class Preprocessing:
    """Pixels -> model inputs as a run's ``config.json`` ``dataset`` section records them."""

    def __init__(self, *, image_size: Sequence[int], channels: int, scale: str, mean=None, std=None):
        self.image_size = tuple(int(v) for v in image_size)
        self.channels = int(channels)
        self.scale = scale
        self.mean = mean
        self.std = std
        ops.scale_params(scale, mean, std)  # validates the mode and statistics now

    @classmethod
    def from_config(cls, config: dict) -> "Preprocessing":
        data = config.get("dataset", {})
        try:
            return cls(image_size=data["image_size"], channels=data["channels"], scale=data["scale"],
                       mean=data.get("mean"), std=data.get("std"))
        except KeyError as err:
            raise ValueError(f"config.json has no dataset {err.args[0]!r} entry; it was not written by this "
                             "package's apps.") from None

    def to_dict(self) -> dict:
        return {"image_size": list(self.image_size), "channels": self.channels, "scale": self.scale,
                "mean": self.mean, "std": self.std}

    def with_channels(self, channels: int) -> "Preprocessing":
        """The same contract for a file that takes ``channels`` (a gray model's RGB-input export: the
        gray scaling applies to each of the three channels alike)."""
        return Preprocessing(image_size=self.image_size, channels=channels, scale=self.scale, mean=self.mean,
                             std=self.std)

    def load(self, path) -> np.ndarray:
        """Read an image file (any format, size, colour mode) as uint8 ``(H, W, C)`` model pixels."""
        image = image_io.read_image(path, mode="gray" if self.channels == 1 else "rgb")
        return ops.fit(image, self.image_size, self.channels)

    def __call__(self, pixels) -> np.ndarray:
        """uint8 pixels ``(..., H, W, C)`` -> float32 inputs scaled as the model was trained."""
        return ops.scale(pixels, self.scale, self.mean, self.std)


class ExportedModel:
    """An exported model with the preprocessing of its run folder (``config.json`` beside it)."""

    def __init__(self, path, *, num_threads: int = 1):
        self.path = check_tflite_file(path)
        config_path = self.path.parent / CONFIG
        if not config_path.is_file():
            raise FileNotFoundError(f"{CONFIG} is missing beside {str(self.path)!r}; the training apps write it "
                                    "next to the .tflite files.")
        self.config = read_json(config_path)
        self.preprocessing = Preprocessing.from_config(self.config)
        self.model = TFLiteModel(self.path, num_threads=num_threads)
        if self.preprocessing.channels == 1 and self.model.input_shape[-1:] == (3,):  # gray model, RGB front
            self.preprocessing = self.preprocessing.with_channels(3)
        expected = (*self.preprocessing.image_size, self.preprocessing.channels)
        if self.model.input_shape != expected:
            raise ValueError(f"{self.path.name} takes {self.model.input_shape} but {CONFIG} says {expected}.")

    def sidecar(self, name: str) -> dict:
        """Another JSON file of the run folder (e.g. ``threshold.json``)."""
        path = self.path.parent / name
        if not path.is_file():
            raise FileNotFoundError(f"{name} is missing beside {str(self.path)!r}.")
        return read_json(path)

    def load(self, path) -> np.ndarray:
        return self.preprocessing.load(path)

    def __call__(self, images) -> np.ndarray:
        """A file path, or uint8 pixels ``(H, W, C)`` / ``(N, H, W, C)`` -> outputs (one row each).
        Pixels with another channel count than the file takes (gray for an RGB file, RGB for a gray
        one) are converted as `Preprocessing.load` converts files."""
        if isinstance(images, (str, Path)):
            images = self.load(images)
        pixels = np.asarray(images)
        single = pixels.ndim == 3
        if pixels.ndim in (3, 4) and pixels.shape[-1] in (1, 3, 4) and pixels.shape[-1] != self.preprocessing.channels:
            pixels = ops.fit_many(pixels[None] if single else pixels, None, self.preprocessing.channels)
            pixels = pixels[0] if single else pixels
        out = self.model(self.preprocessing(pixels[None] if single else pixels))
        return out[0] if single else out


def find_model(app: str, filename: str, *, roots: Sequence = ("runs", "saved_models")) -> Optional[Path]:
    """The newest ``runs/<app>/*/<filename>``, else ``saved_models/<app>/<filename>``, else None."""
    runs = sorted(Path(roots[0], app).glob(f"*/{filename}"), key=lambda p: (p.stat().st_mtime, p.parent.name))
    if runs:
        return runs[-1]
    for root in roots[1:]:
        candidate = Path(root, app, filename)
        if candidate.is_file():
            return candidate
    return None
