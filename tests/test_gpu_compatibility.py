"""LiteRT's CompiledModel API agrees with the Interpreter on float32 and int8 exports, and
GPU-delegate compatibility of the exports: the checker flags ops outside the delegate's table
(the wheel's analyzer is shown to flag nothing), every classifier's int8 export passes (1-channel ones
also behind the RGB front the apps put in by default), and (large)
every exported part of every `test_*` variant passes in float32. Exports are made in a fresh
process (conversions grow the converter's memory) at batch size 1, as phones run them: with a
dynamic batch size, Flatten / Reshape keep a ``SHAPE`` op that the GPU delegate leaves to the CPU."""

import json
import subprocess
import sys
import textwrap

import pytest

tf = pytest.importorskip("tensorflow")

from keras_cv_apps import export, models  # noqa: E402


def _tflite(fn, shape, path):
    f = tf.function(fn, input_signature=[tf.TensorSpec(shape, tf.float32)])
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f).convert())
    return path


def test_checker_flags_ops_outside_the_gpu_table_and_passes_supported_ones(tmp_path):
    topk = export.gpu_compatibility(_tflite(lambda x: tf.math.top_k(x, 2).values, [1, 8], tmp_path / "topk.tflite"))
    assert topk["unsupported_ops"] == {"TOPK_V2": 1} and not topk["compatible"]
    assert topk["analyzer_compatible"]  # the bundled analyzer misses it: why the op table is checked too
    conv = _tflite(lambda x: tf.nn.relu6(tf.nn.conv2d(x, tf.ones([3, 3, 2, 4]), 1, "SAME")), [1, 8, 8, 2],
                   tmp_path / "conv.tflite")
    assert export.gpu_compatibility(conv) == {"compatible": True, "analyzer_compatible": True,
                                              "analyzer_warnings": [], "unsupported_ops": {}}


def _check_in_fresh_process(names, quantization, tmp_path, rgb_front=False):
    """``{name/part: gpu_compatibility report}`` of batch-1 exports made in a fresh process; with
    ``rgb_front`` 1-channel parts are also exported behind `export.with_rgb_input` (``name/part rgb``),
    as the classifier apps write them by default."""
    script = textwrap.dedent(f"""
        import json
        import numpy as np
        from keras_cv_apps import export, models
        from keras_cv_apps.models._tasks import task_of
        found = {{}}
        for name in {names!r}:
            shape = models.get_cfg(name).test_image_shape
            model = models.create(name, image_shape=shape)
            x = np.random.default_rng(0).uniform(0, 1, (8, *shape)).astype("float32")
            for part, sub in task_of(model).parts(model).items():
                path = export.export_tflite(sub, {str(tmp_path)!r} + f"/{{name}}_{{part}}.tflite", batch_size=1,
                                            quantization={quantization!r}, representative=x)
                found[f"{{name}}/{{part}}"] = export.gpu_compatibility(path)
                if {rgb_front!r} and export._input_shape(sub)[-1] == 1:
                    rgb = path.with_name(f"{{name}}_{{part}}_rgb.tflite")
                    path = export.export_tflite(export.with_rgb_input(sub), rgb, batch_size=1,
                                                quantization={quantization!r}, representative=np.repeat(x, 3, -1))
                    found[f"{{name}}/{{part}} rgb"] = export.gpu_compatibility(path)
        dynamic = export.export_tflite(models.create("test_lenet5"), {str(tmp_path)!r} + "/dynamic.tflite")
        found["dynamic batch"] = export.gpu_compatibility(dynamic)
        print(json.dumps(found))
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found.pop("dynamic batch")["unsupported_ops"] == {"SHAPE": 1}
    assert {key.split("/")[0] for key in found} == set(names)
    assert not rgb_front or any(key.endswith(" rgb") for key in found)
    for key, report in found.items():
        assert report["compatible"] and not report["analyzer_warnings"], (key, report)


def test_int8_exports_of_every_classifier_pass_the_gpu_check(tmp_path):
    names = [n for n in models.list_models("test_*") if models.get_cfg(n).task == "classifier"]
    _check_in_fresh_process(names, "int8", tmp_path, rgb_front=True)


@pytest.mark.large
def test_float32_exports_of_every_variant_pass_the_gpu_check(tmp_path):
    _check_in_fresh_process(models.list_models("test_*"), "float32", tmp_path)


def test_compiled_model_agrees_with_the_interpreter(tmp_path):
    pytest.importorskip("ai_edge_litert.compiled_model")
    import numpy as np

    model = models.create("test_lenet5")
    x = np.random.default_rng(0).uniform(0, 1, (6, 16, 16, 1)).astype("float32")
    float32 = export.export_tflite(model, tmp_path / "f.tflite", batch_size=1)
    int8 = export.export_tflite(model, tmp_path / "q.tflite", batch_size=1, quantization="int8", representative=x)
    report = export.verify_compiled_model(float32, x)
    assert report["n"] == 6 and report["max_abs_diff"] <= 1e-6 and report["top1_agreement"] == 1.0, report
    report = export.verify_compiled_model(int8, np.round(x * 255).astype("uint8"))
    assert report["max_abs_diff"] <= 1 and report["top1_agreement"] == 1.0, report  # uint8 outputs
    np.testing.assert_allclose(export.run_tflite(float32, x), model.predict(x, verbose=0), atol=1e-5)
