"""keras_cv_apps.export: TFLite in every quantization mode, ONNX, SavedModel, atomic writes.

A tiny conv + average-pool + dense classifier is trained for a few epochs on scikit-learn's real
digits (16x16), so int8 calibration and top-1 agreement are meaningful.
"""


import importlib.util

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import artifacts, export  # noqa: E402


def _ops(path):
    from ai_edge_litert.interpreter import Interpreter

    return [op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()]


@pytest.fixture(scope="module")
def digits16(digits_8x8):
    """Digits upsampled to 16x16, scaled to [0, 1]: (x_train, y_train, x_test, y_test)."""
    images, labels = digits_8x8
    x = np.kron(images, np.ones((1, 2, 2, 1), "uint8")).astype("float32") / 255.0
    return x[:1400], labels[:1400], x[1400:], labels[1400:]


@pytest.fixture(scope="module")
def classifier(digits16):
    x, y, x_test, y_test = digits16
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 1), name="image")
    h = keras.layers.Conv2D(8, 3, activation="relu")(inputs)        # 14x14x8
    h = keras.layers.AveragePooling2D(2)(h)                          # 7x7x8
    h = keras.layers.Conv2D(16, 3, activation="relu")(h)             # 5x5x16
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(32, activation="relu")(h)                 # most of the ~14k weights
    outputs = keras.layers.Dense(10, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert model.evaluate(x_test, y_test, verbose=0)[1] > 0.85  # learned: int8 agreement means something
    return model


@pytest.fixture(scope="module")
def float32_file(classifier, tmp_path_factory):
    return export.export_tflite(classifier, tmp_path_factory.mktemp("f32") / "model.tflite")


def test_float32_matches_keras(classifier, float32_file, digits16):
    _, _, x_test, y_test = digits16
    report = export.verify_tflite(classifier, float32_file, x_test, y_test)
    assert report["max_abs_diff"] <= 1e-5
    assert report["top1_agreement"] == 1.0
    assert report["accuracy"] == report["keras_accuracy"] > 0.85
    assert report["quantization"] == "float32" and report["n"] == len(x_test)
    assert report["size_bytes"] == float32_file.stat().st_size


@pytest.mark.parametrize("mode, max_size_ratio", [("float16", 0.6), ("dynamic", 0.4)])
def test_float16_and_dynamic_are_smaller_and_close(mode, max_size_ratio, classifier, float32_file, digits16, tmp_path):
    _, _, x_test, y_test = digits16
    path = export.export_tflite(classifier, tmp_path / f"{mode}.tflite", quantization=mode)
    report = export.verify_tflite(classifier, path, x_test, y_test)
    assert report["quantization"] == mode
    assert report["size_bytes"] <= max_size_ratio * float32_file.stat().st_size
    assert report["max_abs_diff"] < 0.05
    assert report["top1_agreement"] >= 0.98


def test_int8_uint8_io_agrees_and_runs_pools_as_depthwise(classifier, float32_file, digits16, tmp_path):
    x, _, x_test, y_test = digits16
    path = export.export_tflite(classifier, tmp_path / "int8.tflite", quantization="int8", representative=x[:200])
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    assert interpreter.get_output_details()[0]["dtype"] == np.uint8
    # [0, 1] inputs calibrate to the full uint8 range: pixel value p/255 -> integer p.
    scale, zero = interpreter.get_input_details()[0]["quantization"]
    assert zero == 0 and scale == pytest.approx(1 / 255, rel=1e-3)
    ops = _ops(path)
    assert "DEPTHWISE_CONV_2D" in ops and "AVERAGE_POOL_2D" not in ops

    report = export.verify_tflite(classifier, path, x_test, y_test)
    assert report["quantization"] == "int8"
    assert report["size_bytes"] <= 0.4 * float32_file.stat().st_size
    assert report["top1_agreement"] >= 0.97
    assert abs(report["accuracy"] - report["keras_accuracy"]) <= 0.02
    assert report["max_abs_diff"] < 0.2

    kept = export.export_tflite(classifier, tmp_path / "pools.tflite", quantization="int8",
                                representative=x[:200], rewrite_avg_pool=False)
    assert "AVERAGE_POOL_2D" in _ops(kept)
    assert export.verify_tflite(classifier, kept, x_test)["top1_agreement"] >= 0.97


@pytest.mark.parametrize("io, dtype", [("int8", np.int8), ("float32", np.float32)])
def test_int8_io_types(io, dtype, classifier, digits16, tmp_path):
    x, _, x_test, _ = digits16
    import tensorflow as tf

    path = export.export_tflite(classifier, tmp_path / "m.tflite", quantization="int8",
                                representative=tf.data.Dataset.from_tensor_slices((x[:128], x[:128, 0, 0, 0]))
                                .batch(32),
                                int8_io=io)
    from ai_edge_litert.interpreter import Interpreter

    assert Interpreter(model_path=str(path)).get_input_details()[0]["dtype"] == dtype
    report = export.verify_tflite(classifier, path, x_test[:100])
    assert report["quantization"] == "int8" and report["top1_agreement"] >= 0.95


def test_fixed_batch_folds_shape_ops_and_still_verifies(classifier, digits16, tmp_path):
    _, _, x_test, _ = digits16
    dynamic = export.export_tflite(classifier, tmp_path / "dyn.tflite")
    fixed = export.export_tflite(classifier, tmp_path / "b1.tflite", batch_size=1)
    assert "SHAPE" in _ops(dynamic)  # Flatten's reshape reads the runtime batch size
    assert "SHAPE" not in _ops(fixed)
    report = export.verify_tflite(classifier, fixed, x_test[:5])
    assert report["n"] == 5 and report["max_abs_diff"] <= 1e-5


def test_verifying_several_models_sets_off_no_retracing_warning(classifier, float32_file, digits16, caplog):
    """An app checks the exports of a few models (probe, fine-tuned, scratch) on a test split whose
    last batch is short; ``model.predict`` traced each model and batch size and TensorFlow warned."""
    import logging

    _, _, x_test, y_test = digits16
    x, y = x_test[:70], y_test[:70]  # a full batch of 64 and one of 6
    with caplog.at_level(logging.WARNING):
        for _ in range(4):
            clone = keras.models.clone_model(classifier)
            clone.set_weights(classifier.get_weights())
            report = export.verify_tflite(clone, float32_file, x, y)
            assert report["n"] == 70 and report["max_abs_diff"] <= 1e-5
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]


def test_bad_arguments_fail_fast(classifier, digits16, tmp_path):
    x = digits16[0]
    with pytest.raises(ValueError, match="int8 quantization needs representative="):
        export.export_tflite(classifier, tmp_path / "a.tflite", quantization="int8")
    with pytest.raises(ValueError, match="quantization 'int4'.*'float16'"):
        export.export_tflite(classifier, tmp_path / "a.tflite", quantization="int4")
    with pytest.raises(ValueError, match="int8_io 'int16'.*'uint8'"):
        export.export_tflite(classifier, tmp_path / "a.tflite", quantization="int8", representative=x, int8_io="int16")
    with pytest.raises(ValueError, match=r"representative samples have shape \(4, 8, 8, 1\)"):
        export.export_tflite(classifier, tmp_path / "a.tflite", quantization="int8", representative=x[:4, :8, :8])
    with pytest.raises(ValueError, match="dtype uint8"):
        export.export_tflite(classifier, tmp_path / "a.tflite", quantization="int8",
                             representative=(x[:4] * 255).astype("uint8"))
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        export.verify_tflite(classifier, tmp_path / "missing.tflite", x[:2])
    assert not list(tmp_path.iterdir())


@keras.saving.register_keras_serializable(package="keras_cv_apps_tests")
class CumulativeProduct(keras.layers.Layer):
    """Cumulative product along the last axis: TFLite has no built-in kernel for it (needs Flex)."""

    def call(self, inputs):
        return keras.ops.cumprod(inputs, axis=-1)


def test_flex_ops_are_refused_unless_allowed(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, CumulativeProduct()(inputs))
    with pytest.raises(export.ExportError, match=r"op\(s\) Cumprod .*allow_flex=True"):
        export.export_tflite(model, tmp_path / "flex.tflite")
    assert not list(tmp_path.iterdir())
    path = export.export_tflite(model, tmp_path / "flex.tflite", allow_flex=True)
    assert b"FlexCumprod" in path.read_bytes()
    if importlib.util.find_spec("ai_edge_litert.compiled_model") is not None:  # CompiledModel has no Flex ops
        report = export._compiled_model_check(path, np.ones((3, 4), "float32"), 3)
        assert report["skipped"].startswith("CompiledModel did not run the file"), report


def test_conversion_error_names_ops_without_any_kernel():
    text = ("error: 'tf.BesselI0e' op is neither a custom op nor a flex op\n"
            "Error code: ERROR_NEEDS_CUSTOM_OPS\n")
    err = export._conversion_error(RuntimeError(text), allow_flex=True)
    assert isinstance(err, export.ExportError)
    assert "BesselI0e" in str(err) and "neither TFLite built-ins nor Flex" in str(err)


def test_failed_write_keeps_previous_file_and_leaves_no_temp(classifier, monkeypatch, tmp_path):
    target = tmp_path / "model.tflite"
    target.write_bytes(b"previous")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(artifacts.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        export.export_tflite(classifier, target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]
    monkeypatch.undo()

    export.export_tflite(classifier, target)
    assert target.read_bytes()[4:8] == b"TFL3"  # FlatBuffer file identifier
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]


def test_verify_non_classifier_outputs(tmp_path):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(4, 3, activation="tanh")(inputs)
    model = keras.Model(inputs, features)  # (N, 6, 6, 4) feature map, e.g. an encoder
    samples = np.random.default_rng(0).uniform(size=(6, 8, 8, 3)).astype("float32")
    report = export.verify_tflite(model, export.export_tflite(model, tmp_path / "enc.tflite"), samples)
    assert report["top1_agreement"] is None and report["max_abs_diff"] <= 1e-5
    with pytest.raises(ValueError, match=r"samples have shape \(6, 8, 8\)"):
        export.verify_tflite(model, tmp_path / "enc.tflite", samples[..., 0])


@keras.saving.register_keras_serializable(package="keras_cv_apps_tests")
class TinySubclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(3, activation="softmax")

    def call(self, inputs):
        return self.dense(self.flatten(inputs))


def test_subclassed_model_exports(tmp_path):
    model = TinySubclassed()
    samples = np.random.default_rng(2).uniform(size=(5, 6, 6, 1)).astype("float32")
    model(samples[:1])
    path = export.export_tflite(model, tmp_path / "s.tflite")
    assert export.verify_tflite(model, path, samples)["max_abs_diff"] <= 1e-5
    int8 = export.export_tflite(model, tmp_path / "s8.tflite", quantization="int8", representative=samples)
    assert export.verify_tflite(model, int8, samples)["max_abs_diff"] < 0.05


def test_onnx_matches_keras(classifier, digits16, tmp_path):
    _, _, x_test, y_test = digits16
    path = export.export_onnx(classifier, tmp_path / "model.onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    report = export.verify_onnx(classifier, path, x_test, y_test)
    assert report["max_abs_diff"] <= 1e-5 and report["top1_agreement"] == 1.0
    assert report["accuracy"] == report["keras_accuracy"]


def test_saved_model_serves_same_outputs_and_replaces_old_folder(classifier, digits16, tmp_path):
    import tensorflow as tf

    x_test = digits16[2][:8]
    target = tmp_path / "saved"
    target.mkdir()
    (target / "stale.txt").write_text("old export")
    export.export_saved_model(classifier, target)
    assert not (target / "stale.txt").exists() and [p.name for p in tmp_path.iterdir()] == ["saved"]
    loaded = tf.saved_model.load(str(target))  # keep a reference: its variables live on it
    served = loaded.serve(tf.constant(x_test)).numpy()
    np.testing.assert_allclose(served, classifier.predict(x_test, verbose=0), atol=1e-6)


def test_export_all_names_verifies_and_reports_every_file(classifier, digits16, tmp_path):
    x, _, x_test, y_test = digits16
    reports = export.export_all(classifier, tmp_path, ["float32", "float16", "int8"], samples=x_test[:64],
                                labels=y_test[:64], representative=x[:100], stem="net")
    assert list(reports) == ["net.tflite", "net_float16.tflite", "net_int8.tflite"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(reports)
    assert reports["net.tflite"]["max_abs_diff"] <= 1e-5 and reports["net.tflite"]["quantization"] == "float32"
    assert reports["net_int8.tflite"]["quantization"] == "int8" and reports["net_int8.tflite"]["top1_agreement"] > 0.9
    # a model the registry did not build: the exporter's own options, recorded where they apply
    assert reports["net_int8.tflite"]["tflite_options"] == {"per_channel": True, "rewrite_avg_pool": True}
    assert reports["net_int8.tflite"]["tflite_options_from"] == "exporter"
    assert "tflite_options" not in reports["net.tflite"]
    compiled_api = importlib.util.find_spec("ai_edge_litert.compiled_model") is not None
    for name, report in reports.items():  # CompiledModel beside the Interpreter on every file
        compiled = report["compiled_model"]
        assert ("skipped" in compiled) is not compiled_api, (name, compiled)
        if compiled_api:
            assert compiled["n"] == 32 and compiled["top1_agreement"] == 1.0, (name, compiled)
            assert compiled["max_abs_diff"] <= (1 if name.endswith("_int8.tflite") else 1e-5), (name, compiled)
    with pytest.raises(ValueError, match="representative"):
        export.export_all(classifier, tmp_path, ["int8"], samples=x_test[:4])



def test_export_all_gives_one_channel_models_an_rgb_input(classifier, digits16, tmp_path):
    """``tflite_input="rgb"``: the files take RGB (a luma front), are calibrated and verified on the gray
    images with the channel repeated, carry RGB metadata, and the int8 file scores exactly as a 1-channel
    export does (the luma weights sit on the int8 grid)."""
    from keras_cv_apps import models
    from keras_cv_apps.inference import TFLiteModel

    x, _, x_test, y_test = digits16
    names, unit = [str(i) for i in range(10)], {"scale": "unit", "mean": None, "std": None}
    common = dict(samples=x_test, labels=y_test, representative=x[:100], class_names=names, preprocessing=unit)
    gray = export.export_all(classifier, tmp_path / "gray", ["float32", "int8"], **common)
    rgb = export.export_all(classifier, tmp_path / "rgb", ["float32", "int8"], tflite_input="rgb", **common)
    for name, report in rgb.items():
        assert (report["tflite_input"], report["input_channels"], report["rgb_front"]) == ("rgb", 3, True)
        assert (gray[name]["tflite_input"], gray[name]["input_channels"], gray[name]["rgb_front"]) == \
            ("native", 1, False)
        assert TFLiteModel(tmp_path / "rgb" / name).input_shape == (16, 16, 3)
        assert report["metadata"]["color_space"] == "RGB" and gray[name]["metadata"]["color_space"] == "GRAYSCALE"
        assert len(report["metadata"]["std"]) == 3
    assert rgb["model.tflite"]["max_abs_diff"] <= 1e-5 and rgb["model.tflite"]["top1_agreement"] == 1.0
    scores = export.run_tflite(tmp_path / "rgb" / "model_int8.tflite", np.repeat(x_test, 3, -1))
    assert np.array_equal(scores, export.run_tflite(tmp_path / "gray" / "model_int8.tflite", x_test))
    assert rgb["model_int8.tflite"]["accuracy"] == gray["model_int8.tflite"]["accuracy"] > 0.85
    # the average pool inside the wrapped model is still swapped and the front stays on XNNPACK
    assert "AVERAGE_POOL_2D" not in _ops(tmp_path / "rgb" / "model_int8.tflite")
    assert export.xnnpack_report(tmp_path / "rgb" / "model_int8.tflite") == \
        export.xnnpack_report(tmp_path / "gray" / "model_int8.tflite")
    if importlib.util.find_spec("ai_edge_litert.compiled_model") is not None:  # fed RGB samples
        assert rgb["model_int8.tflite"]["compiled_model"]["top1_agreement"] == 1.0
    colour = models.create("test_lenet5", image_shape=(16, 16, 3))  # already RGB: nothing in front
    report = export.export_all(colour, tmp_path / "colour", ["float32"], samples=np.repeat(x_test[:8], 3, -1),
                               tflite_input="rgb", compiled_model=0)["model.tflite"]
    assert (report["input_channels"], report["rgb_front"]) == (3, False)
    with pytest.raises(ValueError, match="tflite_input"):
        export.export_all(classifier, tmp_path, ["float32"], samples=x_test, tflite_input="bgr")


def _weight_scales(path) -> set:
    """Numbers of scales of the int8 constant tensors of a file (1: per-tensor, >1: per-channel)."""
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(path)).get_tensor_details()
    return {len(t["quantization_parameters"]["scales"]) for t in details
            if t["dtype"] == np.int8 and len(t["shape"]) == 4}


def test_export_all_takes_the_quantization_options_of_the_model_cfg(tmp_path):
    from keras_cv_apps import models

    rng = np.random.default_rng(0)
    mobile = models.create("test_mobilenetv2")
    assert models.get_cfg("test_mobilenetv2").tflite_options == {"per_channel": False}
    x = rng.uniform(size=(16, 32, 32, 3)).astype("float32")
    report = export.export_all(mobile, tmp_path / "m", ["int8"], samples=x[:8], representative=x)["model_int8.tflite"]
    assert report["tflite_options"]["per_channel"] is False
    assert report["tflite_options_from"] == "cfg test_mobilenetv2"
    assert _weight_scales(tmp_path / "m" / "model_int8.tflite") == {1}  # every conv kernel: one scale
    if importlib.util.find_spec("ai_edge_litert.compiled_model") is not None:
        assert report["compiled_model"]["max_abs_diff"] <= 1, report["compiled_model"]  # uint8 outputs
    report = export.export_all(mobile, tmp_path / "c", ["int8"], samples=x[:8], representative=x,
                               tflite_options={"per_channel": True})["model_int8.tflite"]
    assert report["tflite_options"]["per_channel"] is True and report["tflite_options_from"] == "caller"
    assert max(_weight_scales(tmp_path / "c" / "model_int8.tflite")) > 1
    for name in ("test_lenet5", "test_alexnet"):  # families without a default keep per-channel scales
        model = models.create(name)
        assert not models.get_cfg(name).tflite_options
        g = rng.uniform(size=(16, *model.input_shape[1:])).astype("float32")
        report = export.export_all(model, tmp_path / name, ["int8"], samples=g[:8], representative=g)
        assert report["model_int8.tflite"]["tflite_options_from"] == "exporter"
        assert max(_weight_scales(tmp_path / name / "model_int8.tflite")) > 1, name
    with pytest.raises(ValueError, match="per_chanel"):
        export.export_all(mobile, tmp_path, ["int8"], samples=x[:8], representative=x,
                          tflite_options={"per_chanel": True})
