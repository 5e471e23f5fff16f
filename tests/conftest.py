"""Shared test set-up: quiet TensorFlow, the `large` marker, small real data."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--large", action="store_true", help="also run tests marked `large` (slow or network)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--large"):
        return
    skip = pytest.mark.skip(reason="large test: run with --large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def digits_8x8():
    """scikit-learn's real 8x8 digits as uint8 images (N, 8, 8, 1) and int labels."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    images = np.round(x.reshape(-1, 8, 8, 1) * 255.0 / 16.0).astype("uint8")
    return images, y.astype("int32")


@pytest.fixture(scope="session")
def digits16(digits_8x8):
    """The digits resized to 16x16 in [0, 1], a seeded 1,200 / 300 train/test draw:
    (x_train, y_train, x_test, y_test)."""
    import tensorflow as tf

    images, labels = digits_8x8
    x = tf.image.resize(images / 255.0, (16, 16)).numpy().astype("float32")
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1200], order[1200:1500]
    return x[train], labels[train], x[test], labels[test]
