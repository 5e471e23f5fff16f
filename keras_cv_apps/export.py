"""Export Keras models for phones and other runtimes, and check the exports against Keras.

TFLite files are converted from a SavedModel that Keras writes itself
(``model.export(format="tf_saved_model")``), which works the same for functional, sequential and
subclassed Keras 3 models. Only built-in TFLite ops are allowed unless ``allow_flex=True``.

Quantization modes of ``export_tflite``:

- ``float32``: the graph as trained.
- ``float16``: weights stored in float16 (half the size), computed in float32.
- ``dynamic``: weights stored in int8; activations stay float and are quantized on the fly.
- ``int8``: full integer model calibrated on a representative sample of training images, with
  ``uint8`` (default), ``int8`` or ``float32`` input/output tensors.

Speed note for ``int8``: LiteRT's XNNPACK delegate (the default CPU path) has no int8
``AVERAGE_POOL_2D`` kernel, so each average pool runs on the slow built-in kernel and splits the
delegated graph in pieces; on LeNet-5 this made int8 slower than float32. A ``valid`` average pool
is exactly a depthwise convolution with constant weights ``1 / (pool_h * pool_w)``, which XNNPACK
does run in int8, so ``export_tflite`` swaps one for the other in int8 exports of functional and
sequential models (``rewrite_avg_pool=False`` keeps the pools).

Classifier files can carry their labels and input normalisation as TFLite model metadata
(`add_classifier_metadata`, which `export_all` applies when given ``class_names``), the form
MediaPipe Tasks' ``ImageClassifier`` reads; `with_rgb_input` gives 1-channel models the RGB input
it needs, and ``export_all(..., tflite_input="rgb")`` applies it to every TFLite file of such a model.

Every artifact is written under a temporary name in the destination folder and renamed into
place, so an interrupted export never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import logging
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from keras_cv_apps._validate import check_choice
from keras_cv_apps.artifacts import atomic_path, write_bytes
from keras_cv_apps.choices import INT8_IO, QUANTIZATIONS, TFLITE_INPUTS

logger = logging.getLogger(__name__)



class ExportError(RuntimeError):
    """A model cannot be converted as asked (for example it needs ops TFLite lacks)."""


# --------------------------------------------------------------------------------------------
# TFLite




def _input_shape(model) -> tuple:
    """``(None, H, W, C)`` of a single-input model: functional/sequential, or subclassed and built."""
    try:
        shape = model.input_shape
    except AttributeError:  # subclassed models only remember the shape they were built with
        built = list((getattr(model, "_build_shapes_dict", None) or {}).values())
        shape = (None, *built[0][1:]) if len(built) == 1 and isinstance(built[0], (tuple, list)) else None
    if not isinstance(shape, tuple) or not shape or isinstance(shape[0], (tuple, list)):
        raise ValueError("This export needs a built model with exactly one input tensor.")
    return tuple(shape)


def _input_dtype(model) -> str:
    inputs = getattr(model, "inputs", None)
    return inputs[0].dtype if inputs else "float32"


def _images(model, x, what: str) -> np.ndarray:
    """Check that ``x`` is a non-empty float batch the model takes; return it as float32."""
    x = np.asarray(x)
    expected = _input_shape(model)[1:]
    if x.ndim != len(expected) + 1 or not len(x) or any(e not in (None, s) for e, s in zip(expected, x.shape[1:])):
        raise ValueError(f"{what} have shape {x.shape}; the model takes a non-empty (N, *{expected}) batch.")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{what} must be scaled float images as the model takes them, got dtype {x.dtype}.")
    return x.astype("float32")


def _representative_array(representative, model) -> np.ndarray:
    """Calibration images as float32 ``(N, *input_shape[1:])`` from an array or a tf.data.Dataset."""
    import tensorflow as tf

    if isinstance(representative, tf.data.Dataset):
        batches = [b[0] if isinstance(b, (tuple, list)) else b for b in representative.as_numpy_iterator()]
        representative = np.concatenate(batches) if batches else np.zeros((0,))
    return _images(model, representative, "representative samples")


def _avg_pools_as_depthwise(model):
    """Return ``model`` with each ``valid`` 2D average pool replaced by the equal depthwise conv.

    Layers are shared with ``model`` (no weights copied); only the pools are new. Models that
    cannot be cloned layer by layer (subclassed) are returned unchanged.
    """
    import keras

    def is_pool(layer):
        return (isinstance(layer, keras.layers.AveragePooling2D) and layer.padding == "valid"
                and layer.data_format == "channels_last")

    def swap(layer):
        if not is_pool(layer):
            return layer
        ph, pw = layer.pool_size
        return keras.layers.DepthwiseConv2D((ph, pw), strides=layer.strides, padding="valid", use_bias=False,
                                            depthwise_initializer=keras.initializers.Constant(1.0 / (ph * pw)),
                                            name=f"{layer.name}_as_depthwise")

    def has_pool(m):
        return any(is_pool(layer) or (isinstance(layer, keras.Model) and has_pool(layer)) for layer in m.layers)

    if not has_pool(model):
        return model
    try:
        return keras.models.clone_model(model, clone_function=swap, recursive=True)
    except (ValueError, TypeError, NotImplementedError) as err:  # subclassed models cannot be cloned
        logger.info("Keeping average pools in the int8 export (%s).", err)
        return model


_UNSUPPORTED_OP = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")


def _conversion_error(err, allow_flex: bool) -> Exception:
    """Turn a TFLite converter error into one clear sentence, naming the ops that blocked it."""
    text = str(err)
    ops = sorted(set(_UNSUPPORTED_OP.findall(text)))
    if ops and "ERROR_NEEDS_FLEX_OPS" in text and not allow_flex:
        return ExportError(
            f"The model needs TensorFlow op(s) {', '.join(ops)} that have no built-in TFLite kernel; "
            "pass allow_flex=True to bundle them as Select TF ops (the app then needs the Flex delegate) "
            "or replace them with supported ops."
        )
    if ops:
        return ExportError(f"The model needs op(s) {', '.join(ops)} that neither TFLite built-ins nor Flex "
                           "(Select TF ops) support; replace them with supported ops.")
    first = next((line.strip() for line in text.splitlines() if "error" in line.lower()), text[:300])
    return ExportError(f"TFLite conversion failed: {first}")


def export_tflite(model, path, *, quantization: str = "float32", representative=None, int8_io: str = "uint8",
                  allow_flex: bool = False, batch_size: int | None = None, rewrite_avg_pool: bool = True,
                  per_channel: bool = True) -> Path:
    """Convert ``model`` to a ``.tflite`` file at ``path`` and return the path.

    Args:
        model: a built single-input Keras model.
        path: destination file; written atomically, parent folders created.
        quantization: one of ``QUANTIZATIONS`` (see the module docstring).
        representative: for ``int8`` only: scaled float32 training images ``(N, H, W, C)``, as the
            model takes them (e.g. ``splits.representative(200)``), or a ``tf.data.Dataset`` of
            such batches (or of ``(x, y)`` batches). Used one image at a time for calibration.
        int8_io: dtype of the input and output tensors of an ``int8`` model: ``uint8`` (raw
            camera pixels map straight onto it for ``unit`` scaling), ``int8``, or ``float32``
            (quantize/dequantize ops inside the model).
        allow_flex: allow TensorFlow ops without a TFLite kernel (Select TF ops / Flex); the
            runtime then needs the Flex delegate. Off by default: such ops raise ``ExportError``.
        batch_size: fix the batch dimension (e.g. 1 for a phone app) so shape computations fold
            into constants; ``None`` keeps it dynamic (resizable in the interpreter).
        rewrite_avg_pool: in ``int8`` exports, replace ``valid`` average pools by the equal
            depthwise convolution so the whole graph runs on XNNPACK.
        per_channel: in ``int8`` and ``dynamic`` exports, one weight scale per output channel
            (default). Each channel then also stores a float32 scale and an int64 zero point,
            12 bytes that weigh on narrow layers (a 3x3 depthwise channel has 9 weights): False
            uses one scale per tensor, which makes mobile CNNs about 15% smaller at some cost in
            accuracy (measure it with ``verify_tflite``); the mobile families' cfg asks for it,
            and `export_all` follows the cfg.
    """
    import tensorflow as tf

    check_choice(quantization, QUANTIZATIONS, "quantization")
    check_choice(int8_io, INT8_IO, "int8_io")
    shape = _input_shape(model)
    if batch_size is not None and int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
    if quantization == "int8":
        if representative is None:
            raise ValueError("int8 quantization needs representative= scaled float32 training images "
                             "(e.g. splits.representative(200)) to calibrate activation ranges.")
        calibration = _representative_array(representative, model)
        if rewrite_avg_pool:
            model = _avg_pools_as_depthwise(model)

    spec = tf.TensorSpec((batch_size, *shape[1:]), tf.as_dtype(_input_dtype(model)))
    with tempfile.TemporaryDirectory(prefix="keras_cv_apps_export_") as saved:
        model.export(saved, format="tf_saved_model", verbose=False, input_signature=[spec])
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if quantization == "int8" else tf.lite.OpsSet.TFLITE_BUILTINS]
        if allow_flex:
            ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
        converter.target_spec.supported_ops = ops
        if quantization != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if not per_channel:
                converter._experimental_disable_per_channel = True  # the converter's only switch for it
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantization == "int8":
            converter.representative_dataset = lambda: ([calibration[i:i + 1]] for i in range(len(calibration)))
            if int8_io != "float32":
                converter.inference_input_type = converter.inference_output_type = tf.as_dtype(int8_io)
        try:
            flatbuffer = converter.convert()
        except Exception as err:  # the converter raises several types, all with the MLIR log as text
            raise _conversion_error(err, allow_flex) from err
    logger.info("Wrote %s TFLite model (%d bytes) to %s", quantization, len(flatbuffer), path)
    return write_bytes(path, flatbuffer)


def _compare(keras_out, other_out, labels) -> dict:
    """Report keys shared by ``verify_tflite`` and ``verify_onnx``."""
    diff = np.abs(keras_out.astype("float64") - other_out.astype("float64"))
    report = {"n": int(len(keras_out)), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
              "top1_agreement": None}
    if keras_out.ndim == 2 and keras_out.shape[1] > 1:
        k_top, o_top = keras_out.argmax(1), other_out.argmax(1)
        report["top1_agreement"] = float(np.mean(k_top == o_top))
        if labels is not None:
            labels = np.asarray(labels).reshape(-1)
            if len(labels) != len(keras_out):
                raise ValueError(f"Got {len(labels)} labels for {len(keras_out)} samples.")
            report["accuracy"] = float(np.mean(o_top == labels))
            report["keras_accuracy"] = float(np.mean(k_top == labels))
    return report


def _existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No exported model at {str(path)!r}.")
    return path


def run_tflite(path, samples, *, num_threads: int = 1, batch_size: int = 64) -> np.ndarray:
    """Run a ``.tflite`` model on float ``samples`` with the LiteRT interpreter; return float outputs
    (`keras_cv_apps.inference.TFLiteModel`: integer models are quantized/dequantized there)."""
    from keras_cv_apps.inference import TFLiteModel

    return TFLiteModel(_existing(path), num_threads=num_threads)(samples, batch_size=batch_size)


def verify_tflite(model, path, samples, labels=None, *, num_threads: int = 1) -> dict:
    """Compare a ``.tflite`` export with ``model`` on ``samples`` (scaled float32, as Keras takes them).
    A file that takes RGB where ``model`` takes one channel (`with_rgb_input`) gets the samples with
    their channel repeated three times, as a camera delivers a gray picture.

    Returns ``n``, ``max_abs_diff``, ``mean_abs_diff``, ``top1_agreement`` (None unless the output
    is a ``(N, K)`` vector), ``accuracy``/``keras_accuracy`` when ``labels`` are given,
    ``size_bytes`` and ``quantization`` (read from the file).
    """
    from keras_cv_apps.inference import TFLiteModel

    x = _images(model, samples, "samples")
    lite = TFLiteModel(_existing(path), num_threads=num_threads)
    keras_out = _keras_outputs(model, x)
    report = _compare(keras_out, lite(_gray_as_rgb(x) if _rgb_front_of(model, lite) else x), labels)
    report["size_bytes"] = lite.path.stat().st_size
    report["quantization"] = lite.quantization
    return report


def _keras_outputs(model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """``model``'s outputs on ``x``, called batch by batch. Not ``model.predict``: each model's first
    ``predict`` traces a graph, and an app that checks a few models (probe, fine-tuned, scratch) with
    batches of several sizes set off TensorFlow's "triggered tf.function retracing" warning."""
    return np.concatenate([np.asarray(model(x[start:start + batch_size], training=False))
                           for start in range(0, len(x), batch_size)])


def _gray_as_rgb(x: np.ndarray) -> np.ndarray:
    """``(N, H, W, 1)`` images as ``(N, H, W, 3)`` with three equal channels."""
    return np.repeat(x, 3, axis=-1)


def _rgb_front_of(model, lite) -> bool:
    """Whether the TFLite file ``lite`` takes RGB images where ``model`` takes one channel."""
    return _input_shape(model)[-1] == 1 and len(lite.input_shape) == 3 and lite.input_shape[-1] == 3


def xnnpack_report(path) -> dict:
    """Which ops of a ``.tflite`` file LiteRT's default XNNPACK delegate takes over.

    Returns ``partitions`` (delegated subgraphs: 1 means one piece, more means the graph is cut
    by ops XNNPACK cannot run) and ``fallback`` (``{op name: count}`` of the ops left to the
    built-in kernels, e.g. an int8 ``AVERAGE_POOL_2D`` or ``HARD_SWISH``). The interpreter
    keeps the replaced nodes in its node list, so the fallbacks are found by walking back from
    the graph outputs and every delegate's inputs through tensors no delegate produces.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(_existing(path)), num_threads=1)
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    producer = {int(t): op for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    delegated = {int(t) for op in delegates for t in op["outputs"]}
    pending = [int(d["index"]) for d in interpreter.get_output_details()]
    pending += [int(t) for op in delegates for t in op["inputs"]]
    fallback, seen = {}, set()
    while pending:
        tensor = pending.pop()
        op = producer.get(tensor)
        if tensor in delegated or op is None or op["index"] in seen:
            continue
        seen.add(op["index"])
        fallback[op["op_name"]] = fallback.get(op["op_name"], 0) + 1
        pending.extend(int(t) for t in op["inputs"] if t >= 0)
    return {"partitions": len(delegates), "fallback": dict(sorted(fallback.items()))}


def _single(details: dict, what: str, path) -> dict:
    if len(details) != 1:
        raise ValueError(f"{path} has {len(details)} {what} tensors; the CompiledModel check takes one input "
                         "and one output.")
    return next(iter(details.values()))


def verify_compiled_model(path, inputs) -> dict:
    """Run a single-input, single-output ``.tflite`` file with LiteRT's ``CompiledModel`` API (CPU
    accelerator) and with its ``Interpreter`` on the same ``inputs``, given in the file's input dtype
    (``uint8`` pixels for an int8 export), one image at a time.

    Returns ``n``, ``max_abs_diff`` between the two runtimes' raw outputs, ``top1_agreement`` (None
    unless the output is a vector) and ``fully_accelerated`` (no op left off the accelerator).
    """
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.interpreter import Interpreter

    path = _existing(path)
    compiled = CompiledModel.from_file(str(path))
    key = next(iter(compiled.get_signature_list()))
    inp = _single(compiled.get_input_tensor_details(key), "input", path)
    out = _single(compiled.get_output_tensor_details(key), "output", path)
    ins, outs = compiled.create_input_buffers(0), compiled.create_output_buffers(0)
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    in_index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(in_index, [1, *inp["shape"][1:]])
    interpreter.allocate_tensors()
    out_index = interpreter.get_output_details()[0]["index"]
    images = np.asarray(inputs, dtype=np.dtype(inp["dtype"]))
    a, b = [], []
    for image in images:
        batch = np.ascontiguousarray(image[None])
        ins[0].write(batch)
        compiled.run_by_index(0, ins, outs)
        a.append(outs[0].read(int(np.prod(out["shape"])), np.dtype(out["dtype"])).reshape(out["shape"][1:]))
        interpreter.set_tensor(in_index, batch)
        interpreter.invoke()
        b.append(interpreter.get_tensor(out_index)[0])
    a, b = np.stack(a).astype("float64"), np.stack(b).astype("float64")
    vector = a.ndim == 2
    return {"n": len(images), "max_abs_diff": float(np.max(np.abs(a - b))) if len(images) else 0.0,
            "top1_agreement": float(np.mean(a.argmax(1) == b.argmax(1))) if vector else None,
            "fully_accelerated": bool(compiled.is_fully_accelerated())}


# Builtin ops that LiteRT's GPU delegate takes (the op table of its compatibility checker,
# tensorflow/lite/tools/versioning/gpu_compatibility.cc); per-op conditions (broadcast shapes,
# strided-slice masks) are not checked here.
GPU_DELEGATE_OPS = frozenset("""
    ABS ADD ADD_N ATAN2 AVERAGE_POOL_2D BATCH_MATMUL CAST CEIL CONCATENATION CONV_2D COS CUMSUM DENSIFY
    DEPTH_TO_SPACE DEPTHWISE_CONV_2D DEQUANTIZE DIV DYNAMIC_UPDATE_SLICE ELU EMBEDDING_LOOKUP EQUAL EXP FLOOR
    FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GELU GREATER GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL
    LOG LOGICAL_AND LOGISTIC LSTM MAX_POOL_2D MAXIMUM MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT PACK PAD
    PADV2 POW PRELU QUANTIZE REDUCE_MAX REDUCE_MIN REDUCE_PROD RELU RELU6 RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR
    RESIZE_NEAREST_NEIGHBOR RSQRT SELECT SELECT_V2 SIGN SIN SLICE SOFTMAX SPACE_TO_DEPTH SPLIT SPLIT_V SQRT
    SQUARE SQUARED_DIFFERENCE STABLEHLO_CLAMP STRIDED_SLICE SUB SUM TANH TILE TRANSPOSE TRANSPOSE_CONV
    """.split())


def gpu_compatibility(path) -> dict:
    """GPU-delegate check of a ``.tflite`` file.

    Returns ``analyzer_compatible`` and ``analyzer_warnings`` (the verdict and the per-node
    warnings of ``tf.lite.experimental.Analyzer.analyze(..., gpu_compatibility=True)``),
    ``unsupported_ops`` (``{op name: count}`` of the ops outside `GPU_DELEGATE_OPS`) and
    ``compatible`` (both checks pass). The op table is checked too because the analyzer in the
    TensorFlow 2.21 and ai-edge-litert 2.3 wheels calls every model compatible, even ones made of
    ``TOPK_V2`` or Flex ops that the delegate's own table rejects.
    """
    import contextlib
    import io

    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    path = _existing(path)
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_path=str(path), gpu_compatibility=True)
    lines = text.getvalue().splitlines()
    warnings = [line.split(":", 1)[1].strip() for line in lines if line.startswith("GPU COMPATIBILITY WARNING")]
    analyzer_ok = not warnings and any("looks compatible with GPU delegate" in line for line in lines)
    unsupported = {}
    for op in Interpreter(model_path=str(path), num_threads=1)._get_ops_details():
        name = op["op_name"]
        if name != "DELEGATE" and name not in GPU_DELEGATE_OPS:
            unsupported[name] = unsupported.get(name, 0) + 1
    return {"compatible": analyzer_ok and not unsupported, "analyzer_compatible": analyzer_ok,
            "analyzer_warnings": warnings, "unsupported_ops": dict(sorted(unsupported.items()))}


def analyze_tflite(path) -> dict:
    """What LiteRT's model analyzer says about a ``.tflite`` file: ``ops`` (the op names, in graph
    order, duplicates removed), ``flex_ops`` (Select TF ops among them) and ``gpu_compatible`` (the
    analyzer's GPU-delegate check passed with no warning), with the ``gpu_warnings`` it printed."""
    import contextlib
    import io

    import tensorflow as tf

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_path=str(_existing(path)), gpu_compatibility=True)
    text = text.getvalue()
    ops = list(dict.fromkeys(re.findall(r"Op#\d+ (\w+)\(", text)))
    warnings = [line.strip() for line in text.splitlines() if "COMPATIBILITY WARNING" in line]
    return {"ops": ops, "flex_ops": [op for op in ops if op.startswith("Flex") or op == "CUSTOM"],
            "gpu_compatible": "looks compatible with GPU delegate" in text and not warnings,
            "gpu_warnings": warnings}


# --------------------------------------------------------------------------------------------
# Metadata for phone runtimes (MediaPipe Tasks)


def _normalization(scale: str, mean, std, channels: int) -> tuple:
    """Per-channel ``(mean, std)`` in pixel units such that ``(pixel - mean) / std`` is what a float
    model takes (the inverse of `image.ops.scale_params`)."""
    from keras_cv_apps.image.ops import scale_params

    scale_params(scale, mean, std)  # validates the mode and the statistics
    if scale == "unit":
        mean, std = 0.0, 255.0
    elif scale == "symmetric":
        mean, std = 127.5, 127.5
    else:  # standardize: a constant channel (std 0) is only centred, as in training
        std = np.where(np.asarray(std, np.float64) > 0, np.asarray(std, np.float64), 1.0)
    return ([float(v) for v in np.broadcast_to(np.asarray(mean, np.float64), (channels,))],
            [float(v) for v in np.broadcast_to(np.asarray(std, np.float64), (channels,))])


def _pixel_steps(details: dict, scale: str, mean, std) -> float:
    """For an integer input tensor, the largest gap (in integer steps) between a raw pixel value and
    the value the model expects for it: MediaPipe feeds the pixels unchanged into such a tensor."""
    from keras_cv_apps.image.ops import scale as scale_pixels

    q_scale, zero = details["quantization"]
    channels = int(details["shape"][-1])
    pixels = np.repeat(np.arange(256, dtype=np.float64)[:, None], channels, axis=1)
    expected = np.asarray(scale_pixels(pixels, scale, mean, std), np.float64) / q_scale + zero
    shift = 128 if details["dtype"] == np.int8 else 0  # MediaPipe maps [0, 255] onto [-128, 127]
    return float(np.max(np.abs(expected - (pixels - shift))))


def add_classifier_metadata(path, class_names, preprocessing: dict, *, name: str | None = None,
                            description: str | None = None, labels_file: str = "labels.txt") -> dict:
    """Write the labels and input normalisation of an image classifier into its ``.tflite`` file as
    TFLite model metadata, the form MediaPipe Tasks' ``ImageClassifier`` reads; the graph is unchanged.

    ``preprocessing`` is the run's ``{"scale", "mean", "std"}`` (`Splits.preprocessing`). A float
    input gets the per-channel ``mean``/``std`` (pixel units) with ``(pixel - mean) / std`` equal to
    the model's scaling (``unit``: 0 / 255, ``symmetric``: 127.5 / 127.5). An integer (int8-export)
    input takes raw pixels, so it gets mean 0 and std 1, and ``pixel_steps`` reports how far (in
    quantization steps) the file's input quantization is from taking pixels as they are.
    ``class_names`` become ``labels_file`` inside the file. Returns what was written.
    """
    from ai_edge_litert.interpreter import Interpreter

    from keras_cv_apps import _tflite_metadata as md

    path = _existing(path)
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0]["shape"]) != 4 or len(outputs[0]["shape"]) != 2:
        raise ValueError(f"{path} is not an image classifier with one (N, H, W, C) input and one (N, classes) "
                         "output; classifier metadata describes only that form.")
    names = [str(n) for n in class_names]
    n_classes = int(outputs[0]["shape"][-1])
    if len(names) != n_classes or any("\n" in n or "\r" in n or not n.strip() for n in names):
        raise ValueError(f"{path} scores {n_classes} classes; give as many one-line, non-blank class names "
                         f"(got {len(names)}).")
    _, height, width, channels = (int(d) for d in inputs[0]["shape"])
    scale, mean, std = preprocessing.get("scale"), preprocessing.get("mean"), preprocessing.get("std")
    integer = np.issubdtype(inputs[0]["dtype"], np.integer)
    norm_mean, norm_std = ([0.0] * channels, [1.0] * channels) if integer else \
        _normalization(scale, mean, std, channels)
    meta = md.build_metadata(name=name or path.stem, description=description or f"Image classifier ({scale} "
                             "input scaling).", labels_file=labels_file, num_classes=n_classes, height=height,
                             width=width, channels=channels, mean=norm_mean, std=norm_std)
    data = path.read_bytes()
    write_bytes(path, md.populate(data, meta, {labels_file: ("\n".join(names) + "\n").encode("utf-8")}))
    report = {"format": "TFLite metadata (MediaPipe Tasks)", "labels_file": labels_file, "num_labels": n_classes,
              "mean": norm_mean, "std": norm_std, "color_space": "GRAYSCALE" if channels == 1 else "RGB",
              "min_parser_version": md.MIN_PARSER_VERSION, "bytes_added": path.stat().st_size - len(data)}
    if integer:
        report["pixel_steps"] = _pixel_steps(inputs[0], scale, mean, std)
        if report["pixel_steps"] > 1.0:
            logger.warning("%s: its %s input is %.1f steps away from raw pixels; MediaPipe, which feeds raw "
                           "pixels to integer inputs, will see other values than the model was calibrated on.",
                           path.name, np.dtype(inputs[0]["dtype"]).name, report["pixel_steps"])
    if channels not in (3, 4):
        report["mediapipe_image_classifier"] = ("refuses 1-channel inputs (RGB only): export with_rgb_input(model), as "
                                                "export_all(..., tflite_input=\"rgb\") does")
    return report


# ITU-R 601 luma (0.299, 0.587, 0.114, the weights OpenCV's RGB -> gray uses, and so this package's
# image readers) on the grid of an int8 weight tensor: (65, 127, 25) / 217 differ from it by less than
# 0.002 and are stored exactly by an int8 export (scale 1/217, the largest weight at 127), so the
# weights still sum to 1 there and three equal channels give an int8 model its gray value unchanged.
LUMA = (65 / 217, 127 / 217, 25 / 217)


def with_rgb_input(model):
    """``model`` (one 1-channel image input) behind a fixed RGB -> luma 1x1 convolution (`LUMA`): a
    Keras model taking ``(H, W, 3)`` images, for runtimes that feed only RGB (MediaPipe's
    ``ImageClassifier``, phone cameras). The weights sum to 1 (also in int8 exports), so an image
    whose three channels are equal gives the model its own input; the scalings of `image.ops` are
    per-pixel affine maps with one mean and std for the gray channel, so scaling the RGB pixels first
    gives the same result."""
    import keras

    shape = _input_shape(model)
    if len(shape) != 4 or shape[-1] != 1:
        raise ValueError(f"with_rgb_input takes a model with one (H, W, 1) image input; this one takes {shape[1:]}.")
    rgb = keras.Input((*shape[1:3], 3), name="rgb_image")
    luma = keras.layers.Conv2D(1, 1, use_bias=False, trainable=False, name="rgb_to_luma")
    outputs = model(luma(rgb))
    luma.set_weights([np.asarray(LUMA, np.float32).reshape(1, 1, 3, 1)])
    return keras.Model(rgb, outputs, name=f"{model.name}_rgb")


def read_classifier_metadata(path) -> dict | None:
    """The classifier metadata of a ``.tflite`` file (labels, normalisation ``mean``/``std``, colour
    space, input ``size``, ``min_parser_version``), or None when the file carries none."""
    from keras_cv_apps import _tflite_metadata as md

    return md.read_metadata(_existing(path).read_bytes())


# --------------------------------------------------------------------------------------------
# ONNX and SavedModel


def export_onnx(model, path, *, opset: int | None = None) -> Path:
    """Export ``model`` to ONNX with Keras' exporter (tf2onnx underneath; dynamic batch size)."""
    import warnings

    import tensorflow as tf

    inputs = getattr(model, "inputs", None)
    name = inputs[0].name if inputs else "input"
    spec = tf.TensorSpec((None, *_input_shape(model)[1:]), tf.as_dtype(_input_dtype(model)), name=name)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # tf2onnx probes np.object under numpy 2
        model.export(str(tmp), format="onnx", verbose=False, input_signature=[spec], opset_version=opset)
    logger.info("Wrote ONNX model to %s", path)
    return Path(path)


def verify_onnx(model, path, samples, labels=None) -> dict:
    """Compare an ONNX export with ``model`` on ``samples`` using onnxruntime; same keys as TFLite."""
    import onnxruntime as ort

    x = _images(model, samples, "samples")
    path = _existing(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x})[0]
    keras_out = _keras_outputs(model, x)
    report = _compare(keras_out, np.asarray(onnx_out), labels)
    report["size_bytes"] = path.stat().st_size
    return report


def export_saved_model(model, path) -> Path:
    """Export ``model``'s inference function as a TensorFlow SavedModel folder (atomic rename)."""
    with atomic_path(path, directory=True) as tmp:
        model.export(str(tmp), format="tf_saved_model", verbose=False)
    return Path(path)


# --------------------------------------------------------------------------------------------
# Every export of a run, verified


def export_name(stem: str, quantization: str) -> str:
    """File name of one TFLite variant: ``model.tflite`` (float32), ``model_int8.tflite``, ..."""
    check_choice(quantization, QUANTIZATIONS, "quantization")
    return f"{stem}.tflite" if quantization == "float32" else f"{stem}_{quantization}.tflite"


def _tflite_options(model, override) -> tuple:
    """``(options, source)``: the quantization options of ``model``'s registry cfg (``tflite_options``)
    with ``override`` on top, and where they came from (``exporter``, ``cfg <name>``, ``caller``)."""
    from keras_cv_apps.models._cfg import TFLITE_OPTIONS
    from keras_cv_apps.models._registry import cfg_of

    override = dict(override or {})
    unknown = sorted(set(override) - set(TFLITE_OPTIONS))
    if unknown:
        raise ValueError(f"tflite_options {unknown} are not among {TFLITE_OPTIONS}.")
    cfg = cfg_of(model)
    options = dict(cfg.tflite_options) if cfg is not None else {}
    source = f"cfg {cfg.name}" if options else "exporter"
    if override:
        options.update(override)
        source = "caller"
    return options, source


# which options change which quantization mode's file, and export_tflite's own defaults for them
_APPLIES = {"per_channel": ("int8", "dynamic"), "rewrite_avg_pool": ("int8",)}
_EXPORTER_DEFAULTS = {k: inspect.signature(export_tflite).parameters[k].default for k in _APPLIES}


@contextlib.contextmanager
def _native_stderr_to_log():
    """Send what native code writes to file descriptor 2 (LiteRT's CompiledModel logs ~25 INFO
    lines per model there) to this module's debug log instead of the terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            logger.debug("LiteRT: %s", sink.read().decode("utf-8", "replace"))


def _compiled_model_check(path, samples, limit: int) -> dict:
    """`verify_compiled_model` on the first ``limit`` samples encoded in the file's input dtype, or
    ``{"skipped": reason}`` when CompiledModel is not installed or does not take the file."""
    from keras_cv_apps.inference import TFLiteModel

    try:
        import ai_edge_litert.compiled_model  # noqa: F401
    except ImportError as err:
        return {"skipped": f"LiteRT's CompiledModel API is not available ({err})."}
    try:
        inputs = TFLiteModel(path)._encode(np.asarray(samples[:limit], np.float32))
        with _native_stderr_to_log():
            report = verify_compiled_model(path, inputs)
            gc.collect()  # the runtime's environment logs again when it is freed
        return report
    except Exception as err:  # CompiledModel raises RuntimeError/ValueError for types or ops it does not take
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return {"skipped": f"CompiledModel did not run the file: {first}"}


def export_all(model, out_dir, quantizations: Sequence[str], *, samples, labels=None, representative=None,
               stem: str = "model", onnx: bool = False, tflite_options=None, compiled_model: int = 32,
               class_names=None, preprocessing=None, tflite_input: str = "native") -> dict:
    """Export ``model`` once per quantization (and to ONNX when asked) into ``out_dir``, verify
    every file against Keras on ``samples``, and return ``{file name: verification report}``.

    ``representative`` (scaled float32 training images) is required when ``int8`` is asked.
    ``tflite_options`` (``per_channel``, ``rewrite_avg_pool``) override the defaults of the
    model's registry cfg (``ModelCfg.tflite_options``; the mobile families use per-tensor weight
    scales); each TFLite report records the options that shaped its file (``tflite_options`` and
    ``tflite_options_from``). Each TFLite file is also run by LiteRT's ``CompiledModel`` beside
    its ``Interpreter`` on the first ``compiled_model`` samples (`verify_compiled_model`; 0 skips):
    the report's ``compiled_model`` holds that result, or ``skipped`` with the reason.

    With ``class_names`` and ``preprocessing`` (the run's ``{"scale", "mean", "std"}``) every TFLite
    file gets classifier metadata (`add_classifier_metadata`: labels and input normalisation for
    MediaPipe Tasks) before it is verified; the report's ``metadata`` says what was written.

    ``tflite_input="rgb"`` makes the TFLite files of a 1-channel model take RGB images
    (`with_rgb_input`; MediaPipe's ``ImageClassifier`` and phone cameras give RGB): int8 calibration
    and every check feed them the gray images with the channel repeated three times, and each report
    records ``tflite_input``, ``input_channels`` and ``rgb_front``. ``native`` (default) keeps the
    model's own input; a 3-channel model takes RGB either way. ONNX files keep the model's input.
    """
    if class_names is not None and preprocessing is None:
        raise ValueError("Classifier metadata needs preprocessing= (the run's scale, mean and std) with class_names=.")
    check_choice(tflite_input, TFLITE_INPUTS, "tflite_input")
    out_dir = Path(out_dir)
    options, source = _tflite_options(model, tflite_options)
    front = tflite_input == "rgb" and _input_shape(model)[-1] == 1
    lite_model, lite_samples = (with_rgb_input(model), _gray_as_rgb(_images(model, samples, "samples"))) if front \
        else (model, samples)
    if front and representative is not None and "int8" in quantizations:
        representative = _gray_as_rgb(_representative_array(representative, model))
    reports = {}
    for mode in quantizations:
        path = out_dir / export_name(stem, mode)
        applied = {k: v for k, v in options.items() if mode in _APPLIES[k]}
        export_tflite(lite_model, path, quantization=mode,
                      representative=representative if mode == "int8" else None, **applied)
        written = None if class_names is None else add_classifier_metadata(path, class_names, preprocessing)
        report = verify_tflite(model, path, samples, labels)
        report.update(tflite_input=tflite_input, input_channels=int(_input_shape(lite_model)[-1]), rgb_front=front)
        if written is not None:
            report["metadata"] = written
        used = {k: applied.get(k, _EXPORTER_DEFAULTS[k]) for k in _APPLIES if mode in _APPLIES[k]}
        if used:
            report.update(tflite_options=used, tflite_options_from=source if applied else "exporter")
        report["compiled_model"] = (_compiled_model_check(path, lite_samples, compiled_model) if compiled_model
                                    else {"skipped": "not asked (compiled_model=0)."})
        reports[path.name] = report
    if onnx:
        path = export_onnx(model, out_dir / f"{stem}.onnx")
        reports[path.name] = verify_onnx(model, path, samples, labels)
    return reports


def save_keras(model, path) -> Path:
    """Save ``model`` for inference as a ``.keras`` file: the same graph and weights without the
    optimizer state (about a third of the size; a run's ``best.keras`` keeps that for resuming),
    written atomically."""
    inference = model.__class__.from_config(model.get_config())  # same graph, not compiled
    inference.set_weights(model.get_weights())
    with atomic_path(path) as tmp:
        inference.save(tmp)
    return Path(path)
