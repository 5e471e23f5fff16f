"""Saliency, SmoothGrad, integrated gradients and occlusion against hand computations."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import explain  # noqa: E402
from keras_cv_apps.explain.attribution import ig_nodes  # noqa: E402


@pytest.fixture(scope="module")
def linear():
    """logit_c = x . W[:, c] + b_c on 4x4x2 images, softmax on top."""
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax", bias_initializer="random_normal")])
    kernel = model.layers[-1].kernel.numpy()
    x = np.random.default_rng(1).uniform(0, 1, (3, 4, 4, 2)).astype("float32")
    return model, kernel, x


def test_saliency_and_smoothgrad_of_a_linear_model(linear):
    model, kernel, x = linear
    expected = np.abs(kernel[:, 1].reshape(4, 4, 2)).max(-1)
    np.testing.assert_allclose(explain.saliency(model, x, class_index=1), np.broadcast_to(expected, (3, 4, 4)),
                               rtol=1e-5)
    smooth = explain.saliency(model, x, class_index=1, smooth_samples=3)
    np.testing.assert_allclose(smooth, np.broadcast_to(expected, (3, 4, 4)), rtol=1e-5)


@pytest.mark.parametrize("rule", ["trapezoid", "midpoint", "gauss_legendre"])
def test_integrated_gradients_of_a_linear_model(linear, rule):
    model, kernel, x = linear
    baseline = np.full_like(x, 0.25)
    attr = explain.integrated_gradients(model, x, class_index=2, baseline=baseline, steps=5, rule=rule, batch_size=4)
    np.testing.assert_allclose(attr, (x - baseline) * kernel[:, 2].reshape(4, 4, 2), rtol=1e-5, atol=1e-6)


def test_integration_rules_are_exact_where_they_should_be():
    for rule in ("trapezoid", "midpoint", "gauss_legendre"):
        a, w = ig_nodes(7, rule)
        assert abs(w.sum() - 1) < 1e-6 and abs((w * a).sum() - 0.5) < 1e-6  # linear integrands
    a, w = ig_nodes(4, "gauss_legendre")
    assert abs((w * a ** 7).sum() - 1 / 8) < 1e-6  # degree 2n - 1
    assert np.isclose(ig_nodes(4, "trapezoid")[0], [0, 0.25, 0.5, 0.75, 1]).all()


def test_completeness_on_a_nonlinear_model(seq_no_input, images):
    target = explain.class_score(seq_no_input, images, 1) - explain.class_score(seq_no_input, np.zeros_like(images), 1)
    for rule, steps, tol in (("gauss_legendre", 16, 1e-3), ("trapezoid", 64, 1e-2), (None, 64, 1e-2)):
        kwargs = {"rule": rule} if rule else {}  # None: the default rule (midpoint)
        attr = explain.integrated_gradients(seq_no_input, images, class_index=1, steps=steps, **kwargs)
        err = np.abs(attr.sum(axis=(1, 2, 3)) - target) / np.abs(target)
        assert err.max() < tol, (rule, err)


def test_batching_does_not_change_results(nested_model, images):
    a = explain.integrated_gradients(nested_model, images, steps=6, batch_size=5)
    b = explain.integrated_gradients(nested_model, images, steps=6, batch_size=64)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


def test_occlusion_of_a_linear_model(linear):
    model, kernel, x = linear
    w = kernel[:, 0].reshape(4, 4, 2)
    drop = explain.occlusion(model, x, class_index=0, patch=2, stride=2, fill=0.0)
    contrib = (x * w).sum(-1)  # occluding with 0 removes x . w over the patch
    expected = contrib.reshape(3, 2, 2, 2, 2).sum(axis=(2, 4))
    np.testing.assert_allclose(drop, np.repeat(np.repeat(expected, 2, 1), 2, 2), rtol=1e-4, atol=1e-5)


def test_occlusion_patches_reach_the_edges(linear):
    model, kernel, x = linear
    drop = explain.occlusion(model, x, class_index=0, patch=3, stride=2, fill=0.0)  # starts 0, 1 (the edge)
    assert np.isfinite(drop).all() and drop.shape == (3, 4, 4)


def test_bad_arguments(linear):
    model, _, x = linear
    with pytest.raises(ValueError, match="baseline must be None or a finite array shaped like images"):
        explain.integrated_gradients(model, x, baseline=np.zeros((1, 4, 4, 2)))
    with pytest.raises(ValueError, match="Unknown integration rule 'left'"):
        explain.integrated_gradients(model, x, rule="left")
    with pytest.raises(ValueError, match="channel"):
        explain.saliency(model, x[..., :1])
    with pytest.raises(ValueError, match="class_index"):
        explain.class_score(model, x, -1)
