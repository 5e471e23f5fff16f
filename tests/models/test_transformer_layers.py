"""The transformer layers against independent arithmetic: the own self-attention equals Keras'
MultiHeadAttention given the same weights, Locality Self-Attention never attends to itself and
divides by its temperature, sequence pooling and stochastic depth follow their formulas."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import models  # noqa: E402
from keras_cv_apps.layers import StochasticDepth  # noqa: E402
from keras_cv_apps.models.cct_layers import SeqPool  # noqa: E402
from keras_cv_apps.models.vit_layers import ClassToken, Gelu, MultiHeadSelfAttention  # noqa: E402

RNG = np.random.default_rng(0)


def _x(n=2, tokens=5, dim=8):
    return RNG.normal(size=(n, tokens, dim)).astype("float32")


def test_self_attention_equals_keras_multi_head_attention_with_the_same_weights():
    x = _x()
    ours = MultiHeadSelfAttention(num_heads=2)
    ours(x)
    for w in ours.weights:
        w.assign(RNG.normal(0, 0.5, w.shape))
    theirs = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    theirs(x, x)
    for dense, part in ((theirs.query_dense, "query"), (theirs.key_dense, "key"), (theirs.value_dense, "value"),
                        (theirs.output_dense, "out")):
        dense.kernel.assign(getattr(ours, f"{part}_kernel"))
        dense.bias.assign(getattr(ours, f"{part}_bias"))
    np.testing.assert_allclose(ours(x).numpy(), theirs(x, x).numpy(), atol=1e-5)


def test_locality_self_attention_masks_the_diagonal_and_uses_its_temperature():
    x = _x(n=1, tokens=4, dim=4)
    layer = MultiHeadSelfAttention(num_heads=1, locality=True)
    layer(x)
    assert float(layer.temperature.numpy()) == pytest.approx(2.0)  # sqrt(head_dim = 4)
    layer.temperature.assign(0.5)
    q, k, v = (x[0] @ getattr(layer, f"{p}_kernel").numpy()[:, 0] for p in ("query", "key", "value"))
    scores = q @ k.T / 0.5
    np.fill_diagonal(scores, -np.inf)
    weights = np.exp(scores - scores.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    expected = weights @ v @ layer.out_kernel.numpy()[0]
    np.testing.assert_allclose(layer(x).numpy()[0], expected, atol=1e-5)


def test_seq_pool_is_a_softmax_weighted_sum_of_the_tokens():
    x = _x()
    pool = SeqPool()
    pool(x)
    pool.score_bias.assign([0.3])
    scores = x @ pool.score_kernel.numpy() + 0.3
    w = np.exp(scores - scores.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    np.testing.assert_allclose(pool(x).numpy(), (w * x).sum(1), atol=1e-6)


def test_stochastic_depth_drops_whole_examples_and_is_the_identity_at_inference():
    x = np.ones((400, 3, 2), "float32")
    layer = StochasticDepth(rate=0.25, seed=1)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    y = layer(x, training=True).numpy()
    per_example = np.unique(y.reshape(400, -1), axis=1)
    assert per_example.shape[1] == 1 and set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert 0.15 < np.mean(y[:, 0, 0] == 0) < 0.35


def test_class_token_and_tanh_gelu():
    x = _x(n=3)
    token = ClassToken()
    token(x)
    token.cls.assign(np.arange(8, dtype="float32").reshape(1, 1, 8))
    y = token(x).numpy()
    assert y.shape == (3, 6, 8) and np.all(y[:, 0] == np.arange(8)) and np.array_equal(y[:, 1:], x)
    z = np.linspace(-3, 3, 13).astype("float32")
    np.testing.assert_allclose(Gelu(approximate=True)(z).numpy(),
                               0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3))), atol=1e-6)


def test_vit_refuses_an_image_size_that_is_not_a_multiple_of_the_patch():
    with pytest.raises(ValueError, match="image size 30x30 is not divisible by the patch size 16; use a multiple "
                                         "of 16 \\(e.g. 32\\)"):
        models.create("vit_ti16", image_shape=(30, 30, 3))
