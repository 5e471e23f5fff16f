"""Squeeze-and-excitation against its formula; 2-D self-attention against Keras'
MultiHeadAttention with the same weights and against a numpy implementation."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import layers  # noqa: E402
from keras_cv_apps.models import complexity  # noqa: E402

RNG = np.random.default_rng(1)


def _model(layer, shape):
    x = keras.Input(shape)
    return keras.Model(x, layer(x))


def test_squeeze_excitation_formula():
    layer = layers.SqueezeExcitation(ratio=0.5, gate="sigmoid")
    model = _model(layer, (5, 4, 6))
    x = RNG.normal(size=(3, 5, 4, 6)).astype("float32")
    w1, b1 = layer.squeeze.get_weights()
    w2, b2 = layer.excite.get_weights()
    pooled = x.mean(axis=(1, 2))
    gate = 1 / (1 + np.exp(-(np.maximum(pooled @ w1[0, 0] + b1, 0) @ w2[0, 0] + b2)))
    np.testing.assert_allclose(model(x), x * gate[:, None, None, :], atol=1e-5)
    assert w1.shape == (1, 1, 6, 3)
    assert complexity(model)["macs"] == 6 * 3 + 3 * 6  # the two 1x1 convs on the pooled vector


def test_hard_sigmoid_gate_is_relu6_x_plus_3_over_6():
    layer = layers.SqueezeExcitation(squeeze_channels=2)
    model = _model(layer, (3, 3, 4))
    x = RNG.normal(size=(2, 3, 3, 4)).astype("float32")
    w1, b1 = layer.squeeze.get_weights()
    w2, b2 = layer.excite.get_weights()
    logits = np.maximum(x.mean(axis=(1, 2)) @ w1[0, 0] + b1, 0) @ w2[0, 0] + b2
    np.testing.assert_allclose(model(x), x * (np.clip(logits + 3, 0, 6) / 6)[:, None, None, :], atol=1e-5)


def test_se_ratio_that_leaves_no_channel_is_refused():
    with pytest.raises(ValueError, match="ratio=0.1 .* use ratio >= 0.25"):
        _model(layers.SqueezeExcitation(ratio=0.1), (4, 4, 4))
    with pytest.raises(ValueError, match="se_ratio"):
        _model(layers.InvertedResidual(8, se_ratio=0.1), (4, 4, 4))


def _attention_numpy(layer, x):
    h, w, c = x.shape[1:]
    t = x.reshape(len(x), h * w, c)
    gamma, beta = layer.norm.get_weights()
    mu, var = t.mean(-1, keepdims=True), t.var(-1, keepdims=True)
    y = (t - mu) / np.sqrt(var + 1e-5) * gamma + beta
    heads, d = layer.num_heads, layer.head_dim

    def proj(dense):
        kernel, bias = dense.get_weights()
        return (y @ kernel + bias).reshape(len(x), h * w, heads, d).transpose(0, 2, 1, 3)

    q, k, v = proj(layer.query), proj(layer.key), proj(layer.value)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out = (weights @ v).transpose(0, 2, 1, 3).reshape(len(x), h * w, heads * d)
    kernel, bias = layer.output_dense.get_weights()
    return x + (out @ kernel + bias).reshape(x.shape)


def test_self_attention_matches_numpy_and_keras_multi_head_attention():
    layer = layers.MultiHeadSelfAttention2D(num_heads=2, key_dim=3)
    model = _model(layer, (3, 4, 6))
    x = RNG.normal(size=(2, 3, 4, 6)).astype("float32")
    ours = np.asarray(model(x))
    np.testing.assert_allclose(ours, _attention_numpy(layer, x), atol=1e-4)

    # Keras' MultiHeadAttention on the normalised tokens, with our projections reshaped per head
    mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    tokens = np.asarray(layer.norm(x.reshape(2, 12, 6)))
    mha(tokens, tokens)
    weights = []
    for dense in (layer.query, layer.key, layer.value):
        kernel, bias = dense.get_weights()
        weights += [kernel.reshape(6, 2, 3), bias.reshape(2, 3)]
    kernel, bias = layer.output_dense.get_weights()
    mha.set_weights(weights + [kernel.reshape(2, 3, 6), bias])
    np.testing.assert_allclose(ours, x + np.asarray(mha(tokens, tokens)).reshape(x.shape), atol=1e-4)


def test_self_attention_macs_are_projections_plus_two_products():
    model = _model(layers.MultiHeadSelfAttention2D(num_heads=2), (4, 5, 8))
    tokens, c, heads, d = 20, 8, 2, 4
    expected = 3 * tokens * c * heads * d + tokens * heads * d * c + 2 * heads * tokens * tokens * d
    assert complexity(model)["macs"] == expected
    with_positions = _model(layers.MultiHeadSelfAttention2D(num_heads=4, position_embedding=True), (4, 5, 8))
    assert with_positions.layers[-1].positions.shape == (1, 20, 8)


def test_too_many_heads_is_refused():
    with pytest.raises(ValueError, match="num_heads=16 is larger than the 8 input channels"):
        _model(layers.MultiHeadSelfAttention2D(num_heads=16), (4, 4, 8))
