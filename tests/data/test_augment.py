"""Augmentation presets in the pipeline: every family on 1- and 3-channel batches, reproducible
epochs, soft labels from MixUp/CutMix through training, digits-c, and the errors for bad input."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from keras_cv_apps import choices, data, training  # noqa: E402
from keras_cv_apps.data import augment, corruptions, sources  # noqa: E402


def _epoch(dataset):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(xs), np.concatenate(ys)


def test_presets_are_the_listed_choices_and_cover_every_family():
    assert tuple(augment.PRESETS) == choices.AUGMENT_PRESETS
    assert [p for p in augment.PRESETS if augment.mixes_labels(p)] == list(choices.LABEL_MIXING_PRESETS)
    families = augment.__doc__.split("==========  ===")[1]
    for family in ("geometric", "colour", "noise", "erasing", "elastic", "cutout", "mixup", "cropping"):
        assert f"\n{family} " in families


@pytest.mark.parametrize("preset", [p for p in augment.PRESETS if p != "none"])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_preset_keeps_shape_range_and_dtype_and_is_keyed(preset, channels):
    fn = data.build_augmenter(preset, seed=0)
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (8, 20, 20, channels)), tf.float32)
    out = fn(x, key=tf.constant([1, 2])).numpy()
    assert out.shape == x.shape and out.dtype == np.float32 and out.min() >= 0 and out.max() <= 255
    assert not np.allclose(out, x.numpy())
    np.testing.assert_array_equal(out, data.build_augmenter(preset, seed=5)(x, key=tf.constant([1, 2])).numpy())
    as_bytes = fn(tf.cast(x, tf.uint8), key=tf.constant([1, 2]))
    assert as_bytes.dtype == tf.uint8
    if fn.mixes_labels:
        images, labels = fn.mix(tf.constant(out), tf.one_hot(np.arange(8) % 4, 4), tf.constant([3, 4]))
        assert images.shape == x.shape and labels.shape == (8, 4)
        np.testing.assert_allclose(labels.numpy().sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("preset", ["standard", "strong"])
def test_same_seed_gives_the_same_augmented_epochs(preset):
    first = data.load("photos" if preset == "standard" else "digits", image_size=16, channels=3 if preset == "standard"
                      else 1, augment=preset, seed=4, batch_size=50)
    again = data.load(first.info["spec"], image_size=16, channels=first.preprocessing["channels"], augment=preset,
                      seed=4, batch_size=50)
    epochs = [_epoch(first.train) for _ in range(2)]
    for (x, y), (x2, y2) in zip(epochs, [_epoch(again.train) for _ in range(2)]):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(epochs[0][0], epochs[1][0])  # every epoch is augmented afresh
    other = data.load(first.info["spec"], image_size=16, channels=first.preprocessing["channels"], augment=preset,
                      seed=5, batch_size=50)
    assert not np.array_equal(_epoch(other.train)[0][:50], epochs[0][0][:50])


def test_the_pipeline_draws_a_new_affine_per_image_and_epoch():
    """Train images that are coordinate ramps (x + 1, y + 1, an image id): the rotation fitted back
    from each augmented image spreads uniformly over the `light` preset's +-10 degrees, differs
    between the images of a batch, and an image's rotation in one epoch says nothing about the
    next (keys per batch and epoch, parameters per image)."""
    n, size = 96, 20
    x = np.zeros((n, size, size, 3), np.uint8)
    x[..., 0], x[..., 1] = np.arange(size)[None, None, :] + 1, np.arange(size)[None, :, None] + 1
    x[..., 2] = 100 + np.arange(n)[:, None, None]
    splits = data.load((x, np.arange(n) % 4), image_size=None, channels=3, augment="light", seed=0, batch_size=32,
                       val_fraction=0.125, test_fraction=0.125)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    angles = []
    for _ in range(2):
        epoch = {}
        for batch, _labels in splits.train:
            for image in batch.numpy() * 255.0:
                inside = np.abs(image[..., 2] - image[..., 2].max()) < 1e-3  # sampled wholly inside the input
                design = np.stack([xx[inside], yy[inside], np.ones(inside.sum())], 1)
                back = np.stack([np.linalg.lstsq(design, image[..., k][inside] - 1, rcond=None)[0][:2] for k in (0, 1)])
                forward = np.linalg.inv(back)
                epoch[round(image[..., 2].max())] = np.degrees(np.arctan2(-forward[1, 0], forward[0, 0]))
        angles.append(epoch)
    ids = sorted(angles[0])
    first, second = np.array([angles[0][i] for i in ids]), np.array([angles[1][i] for i in ids])
    assert len(ids) == len(splits.indices["train"]) == 72
    assert np.abs(first).max() <= 10.05 and np.abs(first).max() > 8.5
    assert 0.8 < first.std() / (10 / np.sqrt(3)) < 1.2  # uniform on [-10, 10] degrees
    assert len(np.unique(first.round(3))) == len(ids)  # no two images (of a batch or not) share a draw
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.35 and np.abs(first - second).max() > 5


def test_a_seeded_epoch_is_the_same_in_a_fresh_process():
    code = textwrap.dedent("""
        import hashlib, numpy as np
        from keras_cv_apps import data, training
        training.set_seed(2)
        splits = data.load("digits", image_size=16, augment="strong", seed=2, batch_size=64)
        for epoch in range(2):
            x = np.concatenate([b.numpy() for b, _ in splits.train])
        print(hashlib.sha256(x.tobytes()).hexdigest())
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    from keras_cv_apps import training

    training.set_seed(2)  # tf.data's seeded ops combine their seed with the global one, as apps set it
    splits = data.load("digits", image_size=16, augment="strong", seed=2, batch_size=64)
    for _ in range(2):
        x = _epoch(splits.train)[0]
    import hashlib

    assert done.stdout.split()[-1] == hashlib.sha256(x.tobytes()).hexdigest()


def test_label_mixing_gives_soft_train_labels_and_one_hot_val_labels():
    splits = data.load("digits", image_size=16, augment="strong", seed=0)
    assert splits.mixes_labels
    x, y = _epoch(splits.train)
    assert y.shape == (len(x), 10) and y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    assert 0.03 < (y.max(axis=1) < 1.0).mean() < 0.25  # LabelMix mixes about a tenth of the images
    _, y_val = _epoch(splits.val)
    np.testing.assert_array_equal(y_val, np.eye(10, dtype=np.float32)[splits.labels("val")])
    with pytest.raises(ValueError, match="mixes labels.*use one of none, light, digits, standard, noisy"):
        splits.dataset("train", target="image")


def test_soft_labels_train_with_categorical_cross_entropy_and_learn(tmp_path):
    keras.utils.set_random_seed(0)
    splits = data.load("digits", image_size=8, augment="strong", seed=0, batch_size=64)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    result = training.fit(model, splits, run_dir=tmp_path / "run", epochs=6, learning_rate=0.02, verbose=0,
                          label_smoothing=0.1)
    assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    x_test, y_test = splits.arrays("test")
    accuracy = np.mean(np.argmax(model.predict(x_test, verbose=0), axis=1) == y_test)
    assert accuracy > 0.75 and result.history["val_accuracy"][-1] > 0.75


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", keras.losses.SparseCategoricalCrossentropy(),
                                  "focal"])
def test_a_loss_for_integer_labels_is_refused_before_training(tmp_path, loss):
    from keras_cv_apps.losses.focal import FocalLoss

    splits = data.load("digits", image_size=8, augment="strong", seed=0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    with pytest.raises(ValueError, match="labels are soft.*takes integer class ids"):
        training.fit(model, splits, run_dir=tmp_path / "run", epochs=1, loss=FocalLoss() if loss == "focal" else loss)
    assert not (tmp_path / "run" / "history.csv").exists()


def test_core_layers_are_keyed_and_seed_ignoring_ones_refused():
    fn = augment.Augmenter([keras.layers.RandomFlip("horizontal"), keras.layers.RandomContrast(0.5)])
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (8, 6, 6, 3)), tf.float32)
    a, b, c = (fn(x, key=tf.constant(k)).numpy() for k in ([1, 1], [1, 1], [2, 1]))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError, match="RandAugment draws from its own generator.*keras_cv_apps.layers.RandAugment"):
        augment.Augmenter([keras.layers.RandAugment(value_range=(0, 255))])


def test_bad_presets_name_the_valid_ones():
    with pytest.raises(ValueError, match="Unknown augmentation preset 'heavy'; use one of digits, light, noisy, none"):
        data.load("digits", augment="heavy")
    with pytest.raises(ValueError, match="mixes labels"):
        augment.check_preset("strong", labels=False)


def test_digits_c_is_the_corrupted_test_split_and_worsens_with_severity():
    sets = sources.digits_c(image_size=(16, 16), seed=1, corruptions=("rotation", "occlusion", "jpeg"))
    assert len(sets) == 1 + 3 * 5
    clean_x, clean_y = sets[("clean", 0)]
    splits = data.load("digits", image_size=16, seed=1)
    np.testing.assert_array_equal(clean_x, splits.arrays("test", scaled=False)[0])
    np.testing.assert_array_equal(clean_y, splits.labels("test"))
    for name in ("rotation", "occlusion", "jpeg"):
        change = [np.abs(sets[(name, s)][0].astype(float) - clean_x).mean() for s in corruptions.SEVERITIES]
        assert all(a < b for a, b in zip(change, change[1:])), name
        np.testing.assert_array_equal(sets[(name, 3)][0], corruptions.corrupt(clean_x, name, 3, seed=1))
    source = data.sources.load_source("digits-c:jpeg:2", image_size=(16, 16), channels=1, seed=1)
    np.testing.assert_array_equal(source.images, sets[("jpeg", 2)][0])
    with pytest.raises(ValueError, match="digits-c:CORRUPTION:SEVERITY.*gaussian_noise"):
        data.load("digits-c:snow")


def test_config_round_trip_of_a_preset_layer_list_is_json():
    fn = data.build_augmenter("strong", seed=3)
    configs = [keras.saving.serialize_keras_object(layer) for layer in fn.layers]
    restored = augment.Augmenter([keras.saving.deserialize_keras_object(json.loads(json.dumps(c))) for c in configs])
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (4, 12, 12, 1)), tf.float32)
    np.testing.assert_array_equal(restored(x, key=tf.constant([5, 5])).numpy(), fn(x, key=tf.constant([5, 5])).numpy())


def test_a_cool_down_trains_the_last_epochs_with_the_lighter_preset(monkeypatch):
    from keras_cv_apps.layers import ClippedGaussianNoise

    monkeypatch.setitem(augment.PRESETS, "noise_then_plain", [
        lambda s: ClippedGaussianNoise(stddev=30.0, minval=0.0, maxval=255.0, seed=s)])
    monkeypatch.setitem(augment.COOLDOWNS, "noise_then_plain", (0.25, "none"))
    assert augment.cooldown_of("noise_then_plain") == {"fraction": 0.25, "preset": "none"}
    assert augment.cooldown_of("digits") is None
    splits = data.load("digits", image_size=8, augment="noise_then_plain", seed=0, batch_size=256)
    steps = int(splits.train.cardinality())
    assert splits.train.cooldown[0] == 0.25
    originals = splits.arrays("train")[0].reshape(-1, 64)
    stream = training._epochs(splits.train, steps=steps, epochs=4)  # round(0.25 * 4) = 1 plain epoch at the end
    plain_epoch = []
    for i, (x, _) in enumerate(stream.take(4 * steps)):
        x = x.numpy().reshape(len(x), 64)
        nearest = np.abs(x[:, None, :] - originals[None]).max(axis=2).min(axis=1)  # distance to the closest original
        if i < 3 * steps:
            assert (nearest > 0.05).all()  # noisy: no image is an original
        else:
            assert (nearest < 1e-6).all()
            plain_epoch.append(x)
    plain_epoch = np.concatenate(plain_epoch)  # the last epoch: every train image once
    np.testing.assert_allclose(np.sort(plain_epoch.sum(axis=1)), np.sort(originals.sum(axis=1)), rtol=1e-5)
    assert training._epochs(splits.train, steps=steps, epochs=1).cardinality() == tf.data.INFINITE_CARDINALITY
    with pytest.raises(ValueError, match="cool-down"):
        augment.register_preset("mixing_cool_down", [], cooldown=(0.2, "strong"))
    assert "mixing_cool_down" not in augment.PRESETS


def test_a_resumed_run_keeps_the_cool_down_of_its_remaining_epochs(monkeypatch, tmp_path):
    from keras_cv_apps import callbacks
    from keras_cv_apps.layers import ClippedGaussianNoise

    monkeypatch.setitem(augment.PRESETS, "noise_then_plain", [
        lambda s: ClippedGaussianNoise(stddev=30.0, minval=0.0, maxval=255.0, seed=s)])
    monkeypatch.setitem(augment.COOLDOWNS, "noise_then_plain", (0.5, "none"))
    splits = data.load("digits", image_size=8, augment="noise_then_plain", seed=0, batch_size=512)
    steps = int(splits.train.cardinality())
    originals = splits.arrays("train")[0].reshape(-1, 64)

    def plain(stream, n):  # per batch: is every image an original?
        return [bool((np.abs(x.numpy().reshape(len(x), 64)[:, None] - originals[None]).max(axis=2).min(axis=1)
                      < 1e-6).all()) for x, _ in stream.take(n)]

    # 4 epochs, the last 2 plain; resumed after epoch 1: one noisy epoch left, then the 2 plain ones
    resumed = training._epochs(splits.train, steps=steps, epochs=4, start=1)
    assert plain(resumed, 3 * steps) == [False] * steps + [True] * 2 * steps
    assert all(plain(training._epochs(splits.train, steps=steps, epochs=4, start=3), steps))
    (tmp_path / callbacks.RunBackup.METADATA).write_text('{"epoch": 3, "weights": "w.h5"}')
    assert callbacks.RunBackup.saved_epoch(tmp_path, 4) == 3 and callbacks.RunBackup.saved_epoch(tmp_path / "x", 4) == 0
