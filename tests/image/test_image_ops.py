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


def test_fit_many_fills_one_array_as_fit_does_image_by_image():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), np.uint8) for h, w in ((20, 30), (8, 8), (50, 12))]
    out = ops.fit_many(images, (16, 24), 1)
    assert out.shape == (3, 16, 24, 1) and out.dtype == np.uint8
    for k, image in enumerate(images):
        np.testing.assert_array_equal(out[k], ops.fit(image, (16, 24), 1))


def test_check_fits_in_memory_counts_bytes_against_what_is_available(monkeypatch):
    monkeypatch.setattr(ops, "available_memory", lambda: 10_000)
    ops.check_fits_in_memory(10, (20, 20), 2)  # 8,000 bytes = 0.8 of 10,000: allowed
    with pytest.raises(ValueError, match=r"^11 images at 20x20x2 need 0.0 GiB in memory, .*dir:PATH"):
        ops.check_fits_in_memory(11, (20, 20), 2)  # 8,800 bytes
    with pytest.raises(ValueError, match=r"^2 float32 batches at 20x20x1 need .*; smaller\.$"):
        ops.check_fits_in_memory(3, (20, 20), 1, bytes_per_value=8, what="2 float32 batches", advice="smaller")
    monkeypatch.setattr(ops, "available_memory", lambda: None)  # unknown: no check
    ops.check_fits_in_memory(10**9, (10**4, 10**4), 3)
    with pytest.raises(ValueError, match="need"):  # and fit_many asks before allocating
        monkeypatch.setattr(ops, "available_memory", lambda: 100)
        ops.fit_many([np.zeros((4, 4), np.uint8)] * 3, (8, 8), 3)


def test_available_memory_is_a_positive_byte_count():
    free = ops.available_memory()
    assert free is None or free > 2**20


def test_image_floor_imports_no_tensorflow():
    code = ("import sys; import keras_cv_apps.image, keras_cv_apps.inference, keras_cv_apps.artifacts;"
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
