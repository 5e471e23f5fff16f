"""image.ops: the one implementation of uint8 conversion, fitting, scaling and quantisation,
checked on hand-computed values; and the promise that it needs no TensorFlow."""

import subprocess
import sys

import numpy as np
import pytest

from keras_cv_apps.image import ops


def test_to_uint8_rounding_rules():
    np.testing.assert_array_equal(ops.to_uint8(np.array([0, 128, 129, 65535], np.uint16)), [0, 0, 1, 255])
    np.testing.assert_array_equal(ops.to_uint8(np.array([0.0, 0.5, 1.0, 2.0, -1.0, np.nan])),
                                  [0, 128, 255, 255, 0, 0])
    np.testing.assert_array_equal(ops.to_uint8(np.array([True, False])), [255, 0])
    np.testing.assert_array_equal(ops.to_uint8(np.array([-5, 300], np.int32)), [0, 255])


@pytest.mark.parametrize("mode, expected", [("unit", [0.0, 0.5, 1.0]), ("symmetric", [-1.0, 0.0, 1.0])])
def test_scale_and_unscale_are_inverse(mode, expected):
    pixels = np.array([0, 127.5, 255], np.float32)
    np.testing.assert_allclose(ops.scale(pixels, mode), expected, atol=1e-6)
    np.testing.assert_allclose(ops.unscale(ops.scale(pixels, mode), mode), pixels, atol=1e-4)


def test_standardize_per_channel_with_a_constant_channel():
    x = np.array([[[10, 20, 30], [14, 28, 30]]], np.uint8)
    out = ops.scale(x, "standardize", mean=[12, 24, 30], std=[2, 4, 0])
    np.testing.assert_allclose(out, [[[-1, -1, 0], [1, 1, 0]]])
    np.testing.assert_allclose(ops.unscale(out, "standardize", [12, 24, 30], [2, 4, 0]), x)
    with pytest.raises(ValueError, match="needs per-channel mean and std"):
        ops.scale(x, "standardize")
    with pytest.raises(ValueError, match="Unknown scale 'minmax'"):
        ops.scale(x, "minmax")


def test_scale_works_on_tensors_with_their_own_arithmetic():
    tf = pytest.importorskip("tensorflow")
    out = ops.scale(tf.constant([0.0, 255.0]), "symmetric")
    assert tf.is_tensor(out)
    np.testing.assert_allclose(out.numpy(), [-1.0, 1.0])


def test_quantize_matches_the_tflite_formula():
    q = ops.quantize([0.0, 0.51, 1.0, 2.0], 1 / 255, 0, np.uint8)
    np.testing.assert_array_equal(q, [0, 130, 255, 255])
    q = ops.quantize([-1.0, 0.0, 0.99], 1 / 127.5, -1, np.int8)
    np.testing.assert_array_equal(q, [-128, -1, 125])  # 0.99 * 127.5 = 126.2 -> 126, plus -1
    np.testing.assert_allclose(ops.dequantize(q, 1 / 127.5, -1), [-1.0, 0.0, 0.99], atol=1 / 127.5)


def test_fit_converts_size_channels_and_alpha():
    rgba = np.zeros((40, 20, 4), np.uint8)
    rgba[..., 0] = 255
    gray = ops.fit(rgba, (10, 5), 1)
    assert gray.shape == (10, 5, 1) and gray.dtype == np.uint8
    assert int(gray[0, 0, 0]) == 76  # ITU-R 601 luma of pure red
    rgb = ops.fit(np.full((4, 4), 200, np.uint16) * 257, (8, 8), 3)
    assert rgb.shape == (8, 8, 3) and np.all(rgb == 200)
    assert ops.fit_max_side(np.zeros((10, 40), np.uint8), 20).shape == (5, 20)
    assert ops.fit_max_side(np.zeros((10, 40), np.uint8), 100).shape == (10, 40)  # never enlarged


def test_image_floor_imports_no_tensorflow():
    code = ("import sys; import keras_cv_apps.image, keras_cv_apps.inference, keras_cv_apps.artifacts;"
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
