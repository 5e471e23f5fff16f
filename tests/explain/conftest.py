"""Tiny models shared by the explanation tests (built once per session)."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")


@pytest.fixture(scope="session")
def images():
    return np.random.default_rng(0).uniform(0, 1, (4, 12, 12, 3)).astype("float32")


@pytest.fixture(scope="session")
def cam_model():
    """conv (same, stride 1) -> GAP -> softmax dense: Grad-CAM is the class activation map here."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((12, 12, 3))
    a = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="features")(inp)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(a)
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(h)
    return keras.Model(inp, out, name="cam_model")


@pytest.fixture(scope="session")
def seq_no_input(images):
    """A Sequential built by calling it (no Input layer), ending in a separate Softmax layer."""
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
                              keras.layers.Conv2D(5, 3, activation="tanh", name="c2"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, name="logits"),
                              keras.layers.Softmax(name="softmax")], name="seq_no_input")
    model(images)
    return model


@pytest.fixture(scope="session")
def nested_model():
    """A backbone model used as a layer, then a head."""
    keras.utils.set_random_seed(3)
    backbone = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="b1"),
                                 keras.layers.Conv2D(6, 3, activation="relu", name="b2")], name="backbone")
    inp = keras.Input((12, 12, 3))
    h = keras.layers.GlobalAveragePooling2D()(backbone(inp))
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="head")(h), name="nested")
