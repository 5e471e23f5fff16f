"""Transfer learning API: frozen weights stay bit-identical through a fit step (BatchNorm statistics
too), fine-tuning from a named block trains only what follows it, the linear probe's head computes
scikit-learn's probabilities, and the recipes' learning rates match their published rules."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import models, transfer  # noqa: E402


def _fit_once(model, x, y):
    """Two full-batch SGD steps (a zero head passes no gradient back until it has moved once)."""
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=len(x), verbose=0)


def _weights(model):
    return {w.path: w.numpy().copy() for w in model.weights}


def test_frozen_backbone_is_bit_identical_after_a_fit_step_and_the_head_learns():
    model = models.create("test_bit")
    x = np.random.default_rng(0).uniform(-1, 1, (6, 32, 32, 3)).astype("float32")
    y = np.arange(6) % 3
    transfer.freeze_backbone(model)
    before = _weights(model)
    _fit_once(model, x, y)
    after = _weights(model)
    changed = sorted(p for p in before if not np.array_equal(before[p], after[p]))
    assert changed == ["head/bias", "head/kernel"]
    assert sorted(w.path for w in model.trainable_weights) == changed


def test_frozen_batch_norm_keeps_its_statistics_in_inference_mode(digits16):
    x, y = digits16[0][:32], digits16[1][:32]
    model = models.create("test_lenet5", image_shape=(16, 16, 1), num_classes=10, batch_norm=True)
    transfer.freeze_backbone(model, head="predictions")
    before = _weights(model)
    _fit_once(model, x, y)
    after = _weights(model)
    changed = sorted(p for p in before if not np.array_equal(before[p], after[p]))
    assert any("moving" in p for p in before) and changed == sorted(p for p in before if "predictions" in p)


def test_unfreeze_from_a_block_trains_only_that_block_and_what_follows():
    model = models.create("test_vit")
    assert transfer.block_names(model)[:4] == ["embedding", "cls", "posembed", "encoderblock_0"]
    transfer.unfreeze(model, from_block="encoderblock_1")
    x = np.random.default_rng(0).uniform(-1, 1, (6, 16, 16, 3)).astype("float32")
    before = _weights(model)
    _fit_once(model, x, np.arange(6) % 3)
    after = _weights(model)
    for path in before:
        moved = not np.array_equal(before[path], after[path])
        late = any(k in path for k in ("encoderblock_1", "encoder_norm", "head"))
        assert moved == late, path
    with pytest.raises(ValueError, match="no block 'block9'; choose one of embedding, cls"):
        transfer.unfreeze(model, from_block="block9")
    transfer.unfreeze(model)
    assert len(model.trainable_weights) == len(model.weights)


@pytest.mark.parametrize("classes, standardize", [(2, False), (3, False), (3, True)])
def test_linear_probe_head_computes_the_logistic_regression_probabilities(classes, standardize):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(classes)
    centres = rng.normal(0, 2, (classes, 4))
    y = np.repeat(np.arange(classes), 20)
    x = (centres[y] + rng.normal(0, 1, (len(y), 4))).astype("float32")
    inputs = keras.Input((4,))
    features = keras.layers.Dense(6, activation="tanh", name="features")(inputs)
    head = keras.layers.Dense(classes, name="head")(features)
    model = keras.Model(inputs, keras.layers.Softmax()(head))
    report = transfer.linear_probe(model, x, y, C=0.5, layer="features", standardize=standardize)
    f = transfer.extract_features(model, x, layer="features").astype("float64")
    if standardize:
        f = (f - f.mean(0)) / (f.std(0) + 1e-6)
    expected = LogisticRegression(C=0.5, max_iter=2000).fit(f, y).predict_proba(f)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)
    assert report["num_features"] == 6 and report["train_accuracy"] > 0.8
    with pytest.raises(ValueError, match="all 3 classes|Labels must be"):
        transfer.linear_probe(model, x, np.full(len(x), 5), layer="features")


def test_bit_hyperrule_follows_the_published_rule():
    r = transfer.bit_hyperrule(1_000, (32, 32), batch_size=512)
    assert (r.steps, r.warmup_steps, r.boundaries, r.mixup, r.image_size, r.resize_to) == \
        (500, 100, (200, 300, 400), 0.0, 128, 160)
    assert [r.rate(s) for s in (0, 50, 150, 250, 350, 450)] == pytest.approx([0, 0.0015, 0.003, 3e-4, 3e-5, 3e-6])
    big = transfer.bit_hyperrule(50_000, (224, 224), batch_size=64)
    assert (big.steps, big.warmup_steps, big.mixup, big.image_size) == (10_000, 500, 0.1, 480)
    assert big.learning_rate == pytest.approx(0.003 * 64 / 512) and "bit_hyperrule.py" in big.source
    assert transfer.bit_hyperrule(600_000, (224, 224)).steps == 20_000


def test_vit_recipe_is_cosine_after_warm_up_with_clipping():
    r = transfer.vit_finetune(50_000, batch_size=512)
    assert (r.steps, r.warmup_steps, r.clip_global_norm, r.momentum) == (10_000, 500, 1.0, 0.9)
    assert [r.rate(s) for s in (250, 500, 5250, 10_000)] == pytest.approx([0.015, 0.03, 0.015, 0.0], abs=1e-9)
    short = transfer.vit_finetune(500).with_steps(100)
    assert (short.steps, short.warmup_steps) == (100, 10)
    assert r.optimizer().global_clipnorm == 1.0 and "common.py" in r.source


def test_recipe_callback_sets_each_steps_rate():
    recipe = transfer.bit_hyperrule(100, (16, 16), batch_size=8).with_steps(10)
    model = models.create("test_vit")
    recipe.compile(model)
    x = np.zeros((8, 16, 16, 3), "float32")
    model.fit(x, np.arange(8) % 3, batch_size=2, epochs=1, verbose=0, callbacks=[recipe.callback()])  # steps 0..3
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(recipe.rate(3))
    assert int(model.optimizer.iterations.numpy()) == 4


def test_few_shot_draws_and_refuses_too_few_labels():
    labels = np.array([0] * 5 + [1] * 3 + [2] * 9)
    idx = transfer.few_shot_indices(labels, 3, seed=0)
    assert np.bincount(labels[idx]).tolist() == [3, 3, 3]
    assert np.array_equal(idx, transfer.few_shot_indices(labels, 3, seed=0))
    with pytest.raises(ValueError, match=r"5 labelled images per class are needed \(3 classes x 5 = 15\), "
                                         r"but class\(es\) b \(3\)"):
        transfer.check_shots(labels, 5, ["a", "b", "c"])


def test_balanced_indices_share_the_limit_between_classes():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 9)
    idx = transfer.balanced_indices(labels, 9, seed=0)  # a share of 3; class 1 has only 2
    assert np.bincount(labels[idx]).tolist() == [3, 2, 3] and np.all(np.diff(idx) > 0)
    assert np.array_equal(idx, transfer.balanced_indices(labels, 9, seed=0))
    assert np.bincount(labels[transfer.balanced_indices(labels, 1, seed=0)]).tolist() == [1, 1, 1]  # one each at least


def test_feed_streams_a_dataset_of_raw_batches_repeated(tmp_path):
    import cv2

    from keras_cv_apps import data

    for c in range(2):
        (tmp_path / f"c{c}").mkdir()
        for i in range(10):
            cv2.imwrite(str(tmp_path / f"c{c}" / f"{i}.png"), np.full((8, 8), 200 * c, np.uint8))
    splits = data.load(f"dir:{tmp_path}", image_size=8, channels=1, batch_size=3, scale="unit", augment="none")
    raw = splits.dataset("train", raw=True)
    x, y = next(iter(raw))
    assert x.dtype == np.uint8 and set(np.unique(x.numpy())) <= {0, 200}
    assert np.array_equal(x.numpy()[:, 0, 0, 0] == 200, y.numpy() == 1)
    feed = transfer.feed(raw, None, batch_size=3, preprocessing=splits.preprocessing)
    per_pass = int(raw.cardinality())
    seen = [(x.numpy(), y.numpy()) for x, y in feed.take(2 * per_pass)]  # every train image, twice
    labels = np.concatenate([y for _, y in seen])
    assert np.bincount(labels).tolist() == (2 * splits.counts("train")).tolist()
    assert all(np.allclose(x[:, 0, 0, 0], 200 / 255 * y) for x, y in seen)  # scaled to [0, 1], still labelled


def test_feed_mixes_up_pairs_with_one_hot_labels():
    images = np.stack([np.zeros((4, 4, 1)), np.full((4, 4, 1), 255)]).astype("uint8")
    feed = transfer.feed(images, [0, 1], batch_size=2, preprocessing={"scale": "unit"}, mixup=0.4, num_classes=2)
    x, y = next(iter(feed))
    x, y = x.numpy(), y.numpy()
    assert y.shape == (2, 2) and np.allclose(y.sum(1), 1)
    np.testing.assert_allclose(x.reshape(2, -1).mean(1), y[:, 1], atol=1e-5)  # pixels mixed as the labels


@pytest.mark.parametrize("mixup", [0.0, 0.4])
def test_feed_batches_depend_on_the_seed_alone(mixup):
    from keras_cv_apps import data

    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (12, 16, 16, 1), dtype=np.uint8), np.arange(12) % 3
    augmenter = data.build_augmenter("digits", seed=0)  # one augmenter for every feed, as the app shares it

    def batches(seed):
        feed = transfer.feed(images, labels, batch_size=4, preprocessing={"scale": "symmetric"}, augmenter=augmenter,
                             seed=seed, mixup=mixup, num_classes=3)
        return [(x.numpy(), y.numpy()) for x, y in feed.take(5)]

    first = batches(7)
    augmenter(images.astype("float32"))  # an unkeyed use in between (the linear probe's views) changes nothing
    for (x1, y1), (x2, y2) in zip(first, batches(7)):
        assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, batches(8)))


def test_offline_source_turns_each_source_digit_into_four_classes_adds_glyphs_and_keeps_the_target_out():
    from keras_cv_apps.data.sources import load_source

    images, labels, names = transfer.offline_source(image_size=16, channels=1, shapes_per_class=4, glyph_classes=3,
                                                    glyphs_per_class=2)
    assert len(names) == 8 + 4 * 5 + 3 and names[8:10] == ["digit:0", "digit:1"] and names[-4] == "digit:4@270"
    assert names[-3:] == ["glyph:0", "glyph:1", "glyph:2"] and np.array_equal(labels[-6:], [28, 28, 29, 29, 30, 30])
    assert np.array_equal(np.unique(labels), np.arange(len(names))) and images.dtype == np.uint8
    digits = load_source("digits", image_size=(16, 16), channels=1)
    three = digits.images[digits.labels == 3]
    turned = images[labels == names.index("digit:3@90")]
    assert np.array_equal(turned, np.rot90(three, 1, axes=(1, 2)))  # a quarter turn, image by image
    assert len(images) == 8 * 4 + 4 * np.isin(digits.labels, range(5)).sum() + 3 * 2  # no digit 5-9 in the source
    plain = transfer.offline_source(image_size=16, channels=1, shapes_per_class=4, turns=(0,), glyph_classes=0)
    assert len(plain[2]) == 13
