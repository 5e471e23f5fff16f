"""LeNet-5 and AlexNet follow their papers; the LRN layer matches TensorFlow's kernel."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import models  # noqa: E402
from keras_cv_apps.layers import LocalResponseNormalization  # noqa: E402


def test_lenet5_has_the_1998_layout_and_weight_count():
    model = models.create("lenet5")
    shapes = {layer.name: layer.output.shape[1:] for layer in model.layers}
    assert shapes["c1_act"] == (28, 28, 6)
    assert shapes["s2"] == (14, 14, 6)
    assert shapes["c3_act"] == (10, 10, 16)
    assert shapes["s4"] == (5, 5, 16)
    assert shapes["c5"] == (120,) and shapes["f6"] == (84,)
    # C1 156 + C3 2,416 + C5 48,120 + F6 10,164 + output 850 (a fully connected C3).
    assert model.count_params() == 61_706


def test_lenet5_same_padding_takes_mnist_sized_inputs():
    model = models.create("lenet5", image_shape=(28, 28, 1), padding="same", pooling="max", activation="relu")
    assert model.get_layer("s4").output.shape[1:] == (5, 5, 16)
    assert isinstance(model.get_layer("s2"), keras.layers.MaxPooling2D)


def test_alexnet_with_lrn_has_the_paper_weight_count():
    model = models.create("alexnet", norm="lrn")
    assert model.get_layer("conv1").output.shape[1:] == (55, 55, 96)
    assert model.get_layer("pool5").output.shape[1:] == (6, 6, 256)
    assert model.count_params() == 62_378_344


def test_alexnet_scales_itself_down_for_small_inputs():
    small = models.create("alexnet", image_shape=(32, 32, 1), num_classes=10)
    assert small.get_layer("conv1").get_config()["kernel_size"] == (3, 3)
    assert small.get_layer("pool5").output.shape[1:] == (4, 4, 64)
    assert small.count_params() < 1_000_000
    mid = models.create("alexnet", image_shape=(96, 96, 3), num_classes=10)
    assert mid.get_layer("conv1").get_config()["strides"] == (2, 2)


def test_local_response_normalization_matches_tensorflow():
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(2, 5, 5, 12)).astype("float32") * 30
    ours = keras.ops.convert_to_numpy(LocalResponseNormalization()(x))
    reference = tf.nn.local_response_normalization(x, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75).numpy()
    np.testing.assert_allclose(ours, reference, rtol=1e-5)
    # Hand-computed single channel with neighbours: 1 / (2 + 1e-4 * 1) ** 0.75.
    one = np.zeros((1, 1, 1, 3), "float32")
    one[..., 1] = 1.0
    expected = 1.0 / (2.0 + 1e-4) ** 0.75
    assert keras.ops.convert_to_numpy(LocalResponseNormalization()(one))[0, 0, 0, 1] == pytest.approx(expected)


def test_local_response_normalization_rejects_even_depth():
    with pytest.raises(ValueError, match="odd"):
        LocalResponseNormalization(depth=4)
