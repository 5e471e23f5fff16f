"""The graph runner: scores before the softmax without touching the model, inner layers of nested
and Sequential models, and only the part of the graph that is needed."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import explain  # noqa: E402
from keras_cv_apps.explain._graph import GraphRunner, ends_in_softmax, feature_maps, graph_of  # noqa: E402


def _logits_by_hand(model, x):
    features = keras.Model(model.inputs, model.get_layer("gap").output)(x).numpy()
    dense = model.get_layer("predictions")
    return features @ dense.kernel.numpy() + dense.bias.numpy()


def test_scores_are_the_logits_and_the_model_is_unchanged(cam_model, images):
    before = cam_model(images).numpy()
    scores = explain.class_score(cam_model, images, 1)
    np.testing.assert_allclose(scores, _logits_by_hand(cam_model, images)[:, 1], rtol=1e-5, atol=1e-6)
    assert cam_model.get_layer("predictions").activation is keras.activations.softmax
    np.testing.assert_array_equal(cam_model(images).numpy(), before)
    predicted = explain.class_score(cam_model, images)
    np.testing.assert_allclose(predicted, _logits_by_hand(cam_model, images).max(axis=1), rtol=1e-5)


def test_a_separate_softmax_layer_is_skipped(seq_no_input, images):
    assert ends_in_softmax(seq_no_input)
    logits = keras.Sequential(seq_no_input.layers[:-1])(images).numpy()
    np.testing.assert_allclose(explain.class_score(seq_no_input, images, 2), logits[:, 2], rtol=1e-5, atol=1e-6)


def test_nested_layers_are_found_and_captured(nested_model, images):
    runner = GraphRunner(nested_model, capture=("b1",))
    scores, captured = runner(images)
    inner = nested_model.get_layer("backbone")
    expected = keras.Model(inner.inputs, inner.get_layer("b1").output)(images).numpy()
    np.testing.assert_allclose(np.asarray(captured["b1"]), expected, rtol=1e-5, atol=1e-6)
    assert scores.shape == (4, 3)
    assert [name for name, _ in feature_maps(nested_model)] == ["b1", "b2"]


def test_only_the_needed_part_runs_on_other_sizes():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    a = keras.layers.Conv2D(2, 3, padding="same", name="conv")(inp)
    out = keras.layers.Dense(2)(keras.layers.Flatten()(a))  # fixed-size head
    model = keras.Model(inp, out)
    _, captured = GraphRunner(model, capture=("conv",), scores=False)(np.zeros((1, 20, 24, 1), "float32"))
    assert tuple(captured["conv"].shape) == (1, 20, 24, 2)


def test_unbuilt_and_subclassed_models_are_refused():
    with pytest.raises(ValueError, match="has not been built yet"):
        graph_of(keras.Sequential([keras.layers.Dense(2)]))

    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="Functional or Sequential"):
        graph_of(Sub())
