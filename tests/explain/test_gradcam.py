"""Grad-CAM and Grad-CAM++ against their formulas, on every kind of model."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import explain, models  # noqa: E402


def _features_and_weights(model, x, c):
    a = keras.Model(model.inputs, model.get_layer("features").output)(x).numpy()
    w = model.get_layer("predictions").kernel.numpy()[:, c]
    return a, w


def _normalise(m):
    peak = m.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, m / np.where(peak > 0, peak, 1), 0)


def test_grad_cam_is_the_class_activation_map_on_a_gap_network(cam_model, images):
    # dS/dA_ijk = w_kc / (h w) for a GAP-dense head, so Grad-CAM = relu(sum_k w_kc A_k), normalised
    a, w = _features_and_weights(cam_model, images, 2)
    expected = _normalise(np.maximum((a * w).sum(-1), 0))
    np.testing.assert_allclose(explain.grad_cam(cam_model, images, class_index=2), expected, atol=1e-5)


def test_grad_cam_plus_plus_formula(cam_model, images):
    a, w = _features_and_weights(cam_model, images, 0)
    g = np.broadcast_to(w / (12 * 12), a.shape)
    denom = 2 * g ** 2 + a.sum(axis=(1, 2), keepdims=True) * g ** 3
    alpha = np.where(denom != 0, g ** 2 / np.where(denom != 0, denom, 1), 0)
    weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    expected = _normalise(np.maximum((a * weights[:, None, None, :]).sum(-1), 0))
    got = explain.grad_cam_plus_plus(cam_model, images, class_index=0)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_all_negative_evidence_gives_zeros_not_nan(images):
    inp = keras.Input((12, 12, 3))
    a = keras.layers.Conv2D(2, 1, activation="relu", kernel_initializer="ones", name="features")(inp)
    out = keras.layers.Dense(2, activation="softmax", kernel_initializer=keras.initializers.Constant(-1.0))(
        keras.layers.GlobalAveragePooling2D()(a))
    model = keras.Model(inp, out)
    for fn in (explain.grad_cam, explain.grad_cam_plus_plus):
        maps = fn(model, images, class_index=0)
        assert np.isfinite(maps).all() and not maps.any()


@pytest.mark.parametrize("fixture, layer", [("seq_no_input", "c2"), ("nested_model", "b2")])
def test_default_layer_on_sequential_and_nested_models(request, images, fixture, layer):
    model = request.getfixturevalue(fixture)
    assert explain.default_layer(model) == layer
    maps = explain.grad_cam(model, images)
    assert maps.shape == (4, 12, 12) and maps.max() <= 1 and maps.min() >= 0
    np.testing.assert_allclose(maps, explain.grad_cam(model, images, layer=layer))


def test_a_layer_inside_a_nested_model_by_name(nested_model, images):
    maps = explain.grad_cam(nested_model, images, layer="b1")
    assert maps.shape == (4, 12, 12) and np.isfinite(maps).all()


def test_registry_model_falls_back_from_a_dense_feature_layer():
    model = models.create("test_lenet5")  # cfg feature_layer f6 is a Dense layer
    assert models.cfg_of(model).feature_layer == "f6"
    assert explain.default_layer(model) == "c3_act"
    x = np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 1)).astype("float32")
    assert explain.grad_cam(model, x).shape == (2, 16, 16)


def test_keras_applications_model():
    # MobileNet ends in a 1x1 convolution, a reshape and a softmax layer: 1x1 maps are passed over
    model = keras.applications.MobileNet(weights=None, input_shape=(64, 64, 3), alpha=0.25, classes=4)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    assert explain.default_layer(model) == "conv_pw_13_relu"
    maps = explain.grad_cam(model, x)
    assert maps.shape == (2, 64, 64) and np.isfinite(maps).all()


def test_bad_input_is_one_sentence(cam_model, images):
    dense = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="has no layer with a 4-D output"):
        explain.grad_cam(dense, images)
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        explain.grad_cam(cam_model, images, layer="nope")
    with pytest.raises(ValueError, match="no 4-D output"):
        explain.grad_cam(cam_model, images, layer="gap")
    with pytest.raises(ValueError, match=r"out of range .* 0\.\.2"):
        explain.grad_cam(cam_model, images, class_index=3)
    with pytest.raises(ValueError, match="must be float"):
        explain.grad_cam(cam_model, (images * 255).astype("uint8"))
    with pytest.raises(ValueError, match="NaN"):
        explain.grad_cam(cam_model, np.full_like(images, np.nan))
