"""Factorised convolutions and the bottleneck block: the same function as the full convolution
where the maths says so, the MAC counts of the worked example, and clear errors."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import layers  # noqa: E402
from keras_cv_apps.models import complexity  # noqa: E402

RNG = np.random.default_rng(0)


def _model(layer, shape):
    x = keras.Input(shape)
    return keras.Model(x, layer(x))


def test_worked_example_macs():
    """4x4x3 input, 3x3 kernel, 2 outputs, valid padding: 216, 108 + 24 = 132, and 144 + 48 = 192."""
    shape = (4, 4, 3)
    assert complexity(_model(keras.layers.Conv2D(2, 3), shape))["macs"] == 216
    keras_separable = complexity(_model(keras.layers.SeparableConv2D(2, 3), shape))
    ours = complexity(_model(layers.DepthwiseSeparableConv2D(2, 3, padding="valid", activation=None,
                                                             batch_norm=False), shape))
    assert keras_separable["macs"] == ours["macs"] == 108 + 24
    spatial = complexity(_model(layers.SpatiallySeparableConv2D(2, 3, padding="valid"), shape))
    assert spatial["macs"] == 144 + 48 == 192
    x = keras.Input(shape)
    two_convs = keras.Model(x, keras.layers.Conv2D(2, (1, 3))(keras.layers.Conv2D(2, (3, 1))(x)))
    assert complexity(two_convs)["macs"] == 192


def test_spatially_separable_equals_the_outer_product_kernel():
    """A kh x 1 then 1 x kw pass on one channel is the convolution with kernel column ⊗ row."""
    layer = layers.SpatiallySeparableConv2D(1, 3, padding="valid", use_bias=False)
    model = _model(layer, (6, 7, 1))
    column, row = RNG.normal(size=3), RNG.normal(size=3)
    layer.vertical.set_weights([column.reshape(3, 1, 1, 1)])
    layer.horizontal.set_weights([row.reshape(1, 3, 1, 1)])
    full = _model(keras.layers.Conv2D(1, 3, use_bias=False), (6, 7, 1))
    full.layers[-1].set_weights([np.outer(column, row).reshape(3, 3, 1, 1)])
    x = RNG.normal(size=(2, 6, 7, 1)).astype("float32")
    np.testing.assert_allclose(model(x), full(x), atol=1e-5)
    assert model.output_shape == (None, 4, 5, 1)


def test_depthwise_separable_equals_keras_separable_conv():
    ours = layers.DepthwiseSeparableConv2D(5, 3, activation=None, batch_norm=False)
    model = _model(ours, (8, 8, 3))
    theirs = _model(keras.layers.SeparableConv2D(5, 3, padding="same"), (8, 8, 3))
    depthwise, pointwise, bias = theirs.layers[-1].get_weights()
    ours.depthwise[0].set_weights([depthwise, np.zeros(3, "float32")])
    ours.pointwise[0].set_weights([pointwise, bias + 0.5])
    x = RNG.normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(model(x), theirs(x) + 0.5, atol=1e-5)


def test_depthwise_separable_costs_about_one_over_k2_plus_one_over_n():
    shape, n, k = (16, 16, 32), 64, 3
    full = complexity(_model(keras.layers.Conv2D(n, k, padding="same"), shape))["macs"]
    separable = complexity(_model(layers.DepthwiseSeparableConv2D(n, k), shape))["macs"]
    assert separable / full == pytest.approx(1 / n + 1 / k ** 2)


def test_bottleneck_starts_as_identity_and_projects_when_needed():
    block = layers.BottleneckResidual(4, expansion=4)  # 16 -> 16 channels: identity shortcut
    model = _model(block, (6, 6, 16))
    x = RNG.normal(size=(2, 6, 6, 16)).astype("float32")
    np.testing.assert_allclose(model(x), np.maximum(x, 0), atol=1e-6)  # zero-init last BN: relu(x)
    assert block.shortcut == []
    strided = _model(layers.BottleneckResidual(4, strides=2), (6, 6, 8))
    assert strided.output_shape == (None, 3, 3, 16)
    assert strided.layers[-1].shortcut  # 8 -> 16 channels, stride 2: a projection
    # 1x1 reduce + 3x3 + 1x1 expand + 1x1 projection, stride 2 on the 3x3 and the projection
    assert complexity(strided)["macs"] == 36 * 8 * 4 + 9 * 9 * 4 * 4 + 9 * 4 * 16 + 9 * 8 * 16


@pytest.mark.parametrize("make", [
    lambda: layers.DepthwiseSeparableConv2D(4, 5, padding="valid"),
    lambda: layers.SpatiallySeparableConv2D(4, (5, 3), padding="valid"),
    lambda: layers.GhostModule(4, kernel_size=5, padding="valid"),
    lambda: layers.DynamicConv2D(4, 5, padding="valid"),
])
def test_kernel_larger_than_the_map_in_valid_mode_is_refused(make):
    with pytest.raises(ValueError, match="kernel_size .* larger than the 4x4 feature map"):
        _model(make(), (4, 4, 3))


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="filters"):
        layers.DepthwiseSeparableConv2D(0)
    with pytest.raises(ValueError, match="padding"):
        layers.SpatiallySeparableConv2D(2, padding="full")
    with pytest.raises(ValueError, match="activation"):
        layers.BottleneckResidual(2, activation="tanhh")
