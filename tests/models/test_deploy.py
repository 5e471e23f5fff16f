"""The transformers and BiT go to phones: their tiny variants convert to TFLite with built-in ops
only (no Flex), LiteRT's analyzer accepts them for the GPU delegate, and they agree with Keras
(the ViT and BiT cases run with --large; the generic tests export them too, and
benchmarks/bench_deploy.py checks all three after training)."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import export, models  # noqa: E402


@pytest.mark.parametrize("name", ["test_cct", pytest.param("test_vit", marks=pytest.mark.large),
                                  pytest.param("test_bit", marks=pytest.mark.large)])
def test_tiny_variants_convert_without_flex_and_pass_the_gpu_check(name, tmp_path):
    model = models.create(name)
    path = export.export_tflite(model, tmp_path / f"{name}.tflite")
    report = export.analyze_tflite(path)
    assert report["flex_ops"] == [] and report["gpu_compatible"], report
    if name != "test_bit":
        assert "BATCH_MATMUL" in report["ops"] and "SOFTMAX" in report["ops"]  # the attention is there
    x = np.random.default_rng(0).uniform(-1, 1, (4, *models.get_cfg(name).image_shape)).astype("float32")
    assert export.verify_tflite(model, path, x)["max_abs_diff"] <= 1e-4


def test_analyzer_lists_the_ops_of_a_model(tmp_path):
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="tanh")(inputs))
    report = export.analyze_tflite(export.export_tflite(model, tmp_path / "m.tflite", batch_size=1))
    assert report["ops"] == ["FULLY_CONNECTED", "TANH"] and report["gpu_compatible"]
