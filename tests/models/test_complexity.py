"""`models.complexity`: MACs and parameters by the documented convention, on hand-computed
cases, nested and subclassed models, and (large) keras.applications against published figures."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import models  # noqa: E402
from keras_cv_apps.models import complexity, complexity_table  # noqa: E402


def _chain(shape, *layers_):
    x = keras.Input(shape)
    y = x
    for layer in layers_:
        y = layer(y)
    return keras.Model(x, y)


def test_convolutions_by_hand():
    # grouped: 6x6 positions x 9 taps x (8 / 4 inputs per group) x 12 outputs
    grouped = _chain((6, 6, 8), keras.layers.Conv2D(12, 3, padding="same", groups=4))
    assert complexity(grouped)["macs"] == 36 * 9 * 2 * 12
    # depthwise with multiplier 2: 4x4 outputs x 3x3 taps x 6 output channels
    assert complexity(_chain((6, 6, 3), keras.layers.DepthwiseConv2D(3, depth_multiplier=2)))["macs"] == 16 * 9 * 6
    # strided: the output grid counts (3x3 positions)
    assert complexity(_chain((6, 6, 2), keras.layers.Conv2D(4, 2, strides=2)))["macs"] == 9 * 4 * 2 * 4
    # transposed: input positions x taps x outputs
    assert complexity(_chain((3, 3, 2), keras.layers.Conv2DTranspose(5, 2, strides=2)))["macs"] == 9 * 4 * 2 * 5
    assert complexity(_chain((10, 3), keras.layers.Conv1D(4, 3)))["macs"] == 8 * 3 * 3 * 4


def test_dense_counts_every_token_and_zero_cost_layers_count_zero():
    model = _chain((7, 5), keras.layers.Dense(3), keras.layers.LayerNormalization(), keras.layers.Softmax())
    assert complexity(model)["macs"] == 7 * 5 * 3
    free = _chain((8, 8, 3), keras.layers.BatchNormalization(), keras.layers.ReLU(), keras.layers.MaxPooling2D(),
                  keras.layers.AveragePooling2D(2), keras.layers.GlobalAveragePooling2D(), keras.layers.Dropout(0.5))
    assert complexity(free)["macs"] == 0


def test_keras_multi_head_attention_is_projections_plus_two_products():
    x = keras.Input((6, 8))
    model = keras.Model(x, keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(x, x))
    tokens, dim, heads, key = 6, 8, 2, 4
    projections = 3 * tokens * dim * heads * key + tokens * heads * key * dim
    assert complexity(model)["macs"] == projections + 2 * heads * tokens * tokens * key


def test_nested_and_shared_models_are_counted_in_full():
    inner = _chain((4, 4, 3), keras.layers.Conv2D(2, 3, name="conv"))
    inner.name = "inner"
    a, b = keras.Input((4, 4, 3)), keras.Input((4, 4, 3))
    outer = keras.Model([a, b], keras.layers.Add(name="add")([inner(a), inner(b)]))
    report = complexity(outer)
    assert report["macs"] == 2 * 216 and report["params"] == outer.count_params() == 56
    rows = {r["name"]: r for r in report["layers"]}
    assert rows["inner/conv"]["macs"] == 432 and rows["inner/conv"]["params"] == 56
    sequential = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 3), keras.layers.Flatten(),
                                   keras.layers.Dense(3)])
    assert complexity(sequential)["macs"] == 216 + 8 * 3


@pytest.mark.parametrize("name", ["test_siamese_contrastive", "test_autoencoder_conv", "test_vae", "test_effnet"])
def test_registry_models_sum_to_their_totals(name):
    model = models.create(name)
    report = complexity(model)
    assert report["params"] == model.count_params() == sum(r["params"] for r in report["layers"])
    assert report["macs"] == sum(r["macs"] for r in report["layers"]) > 0
    if name == "test_siamese_contrastive":  # both branches of the shared embedding are computed
        embedding = complexity(model.embedding)["macs"]
        assert report["macs"] == 2 * embedding
    table = complexity_table(report)
    assert f"{report['macs']:,}" in table.splitlines()[-2] and f"{report['params']:,}" in table.splitlines()[-2]


def test_unknown_input_size_needs_input_shape():
    model = _chain((None, None, 3), keras.layers.Conv2D(2, 3))
    with pytest.raises(ValueError, match="input_shape"):
        complexity(model)
    assert complexity(model, input_shape=(4, 4, 3))["macs"] == 216
    with pytest.raises(ValueError, match="keras.Model"):
        complexity(keras.layers.Dense(2))


def test_print_complexity_prints_one_row_per_layer_with_weights():
    lines = []
    report = models.print_complexity(_chain((4, 4, 3), keras.layers.Conv2D(2, 3, name="c"), keras.layers.ReLU()),
                                     print_fn=lines.append)
    text = lines[0].splitlines()
    assert report["macs"] == 216
    assert any(line.startswith("c ") and "216" in line for line in text)
    assert not any(line.startswith("re_lu") for line in text)  # skip_zero: no MACs and no params


@pytest.mark.large
@pytest.mark.parametrize("name,published", [("MobileNetV2", 300e6), ("MobileNetV3Large", 217e6),
                                            ("EfficientNetB0", 0.39e9), ("ResNet50", 3.86e9)])
def test_keras_applications_match_published_macs(name, published):
    model = getattr(keras.applications, name)(weights=None)
    report = complexity(model, input_shape=(224, 224, 3))
    assert report["params"] == model.count_params()
    assert abs(report["macs"] / published - 1) < 0.02, report["macs"]
    assert np.isclose(sum(r["macs"] for r in report["layers"]), report["macs"])
