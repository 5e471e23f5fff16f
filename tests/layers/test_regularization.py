"""Stochastic depth keeps the expected output and is the identity at inference; DropBlock drops
the asked fraction in contiguous squares on square and non-square maps."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import layers  # noqa: E402


def test_stochastic_depth_keeps_the_mean_over_10k_draws():
    layer = layers.StochasticDepth(0.3, seed=0)
    x = np.ones((10_000, 2, 2, 3), "float32")
    y = np.asarray(layer(x, training=True))
    assert abs(y.mean() / x.mean() - 1) <= 0.02
    per_sample = y.reshape(len(y), -1)
    assert np.all((per_sample == 0).all(1) | np.isclose(per_sample, 1 / 0.7).all(1))  # whole branch or nothing
    assert abs((per_sample[:, 0] == 0).mean() - 0.3) < 0.02
    np.testing.assert_array_equal(layer(x, training=False), x)


def _dropped(layer, shape, draws=20, seed=0):
    x = np.ones(shape, "float32")
    return np.stack([np.asarray(layer(x, training=True)) == 0 for _ in range(draws)])


@pytest.mark.parametrize("shape", [(8, 16, 16, 8), (8, 12, 32, 8), (8, 40, 6, 8)], ids=["square", "wide", "tall"])
@pytest.mark.parametrize("rate,block", [(0.1, 3), (0.25, 5)])
def test_dropblock_drops_rate_within_10_percent(shape, rate, block):
    dropped = _dropped(layers.DropBlock(rate, block, seed=1), shape)
    assert abs(dropped.mean() / rate - 1) <= 0.10, dropped.mean()


def test_dropblock_drops_squares_and_rescales():
    layer = layers.DropBlock(0.2, 4, per_channel=False, seed=2)
    x = np.ones((4, 20, 12, 3), "float32")
    y = np.asarray(layer(x, training=True))
    dropped = y == 0
    assert np.all(dropped.all(-1) == dropped.any(-1))  # one mask shared by the channels
    np.testing.assert_allclose(y.reshape(4, -1).mean(1), 1.0, rtol=1e-5)  # kept values rescaled
    assert _union_of_blocks(dropped[..., 0], 4)  # every dropped pixel lies in a dropped 4x4 square
    assert dropped.any()
    np.testing.assert_array_equal(layer(x, training=False), x)


def _union_of_blocks(dropped, size):
    """Whether ``dropped`` (N, H, W) is exactly a union of size x size squares clipped to the map."""
    _, h, w = dropped.shape
    covered = np.zeros_like(dropped)
    for i in range(1 - size, h):
        for j in range(1 - size, w):
            rows, cols = slice(max(i, 0), min(i + size, h)), slice(max(j, 0), min(j + size, w))
            full = dropped[:, rows, cols].all((1, 2))
            covered[:, rows, cols] |= full[:, None, None]
    return np.array_equal(covered, dropped)


def test_dropblock_gamma_gives_rate_exactly_in_expectation():
    layer = layers.DropBlock(0.3, 7)
    assert 1 - (1 - layer.gamma) ** 49 == pytest.approx(0.3)


def test_bad_rates_are_refused():
    with pytest.raises(ValueError, match="DropBlock rate"):
        layers.DropBlock(1.0)
    with pytest.raises(ValueError, match="block_size"):
        layers.DropBlock(0.1, 0)
    with pytest.raises(ValueError, match="StochasticDepth rate"):
        layers.StochasticDepth(-0.1)
