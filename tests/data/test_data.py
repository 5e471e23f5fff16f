"""Tests for keras_cv_apps.data: specs, seeded stratified splits, scaling, pipelines, augmenting."""

import sys
import types

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cv_apps import data
from keras_cv_apps.data import augment


def _first_batch(ds):
    x, y = next(iter(ds))
    return x.numpy(), y.numpy()


def _concat(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", image_size=16, batch_size=32)


# ------------------------------------------------------------------------- splits


def test_digits_split_sizes_are_stratified_and_disjoint(digits):
    from sklearn.datasets import load_digits

    target = load_digits().target
    idx = digits.indices
    assert {s: len(i) for s, i in idx.items()} == {"train": 1257, "val": 180, "test": 360}
    assert len(np.unique(np.concatenate(list(idx.values())))) == len(target)
    for split, fraction in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
        per_class = np.bincount(target[idx[split]], minlength=10)
        expected = np.bincount(target) * fraction
        assert np.all(np.abs(per_class - expected) <= 1.5), (split, per_class, expected)
        assert digits.info["counts"][split] == {str(c): int(n) for c, n in enumerate(per_class)}
    assert digits.class_names == [str(c) for c in range(10)]
    assert digits.num_classes == 10 and digits.image_shape == (16, 16, 1)
    assert digits.preprocessing == {"scale": "unit", "mean": None, "std": None,
                                    "image_size": [16, 16], "channels": 1}


def test_digits_pixels_are_sklearn_values_rescaled_to_uint8():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    splits = data.load("digits", image_size=8)  # native size: no resampling
    x, y = splits.arrays("test", scaled=False)
    idx = splits.indices["test"]
    assert x.dtype == np.uint8 and x.shape == (360, 8, 8, 1)
    np.testing.assert_array_equal(x[..., 0], np.rint(bunch.images[idx] * 255 / 16))
    np.testing.assert_array_equal(y, bunch.target[idx])


def test_same_seed_same_split_and_batch_different_seed_differs():
    a = data.load("digits", image_size=8, seed=3)
    b = data.load("digits", image_size=8, seed=3)
    c = data.load("digits", image_size=8, seed=4)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(a.indices[split], b.indices[split])
    assert not np.array_equal(a.indices["test"], c.indices["test"])
    xa, ya = _first_batch(a.train)
    xb, yb = _first_batch(b.train)
    xc, yc = _first_batch(c.train)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(ya, yc)
    # the train split is reshuffled every epoch, val is not
    assert not np.array_equal(_concat(a.train)[1], _concat(a.train)[1])
    np.testing.assert_array_equal(_concat(a.val)[1], _concat(a.val)[1])


@pytest.mark.parametrize("scale", ["unit", "symmetric", "standardize"])
def test_pipelines_yield_the_scaled_arrays(scale):
    splits = data.load("shapes:2:20", image_size=12, channels=3, scale=scale, batch_size=8)
    x, y = _concat(splits.val)
    ex, ey = splits.arrays("val")
    np.testing.assert_allclose(x, ex, atol=1e-6)
    np.testing.assert_array_equal(y, ey)
    assert x.dtype == np.float32 and y.dtype == np.int32
    raw, _ = splits.arrays("train", scaled=False)
    train = raw.reshape(-1, 3).astype(np.float64)
    if scale == "standardize":
        np.testing.assert_allclose(splits.preprocessing["mean"], train.mean(0), rtol=1e-9)
        np.testing.assert_allclose(splits.preprocessing["std"], train.std(0), rtol=1e-6)
        scaled = splits.arrays("train")[0].reshape(-1, 3)
        np.testing.assert_allclose(scaled.mean(0), 0, atol=1e-4)
        np.testing.assert_allclose(scaled.std(0), 1, atol=1e-4)
    xt, yt = _concat(splits.train)
    assert sorted(yt.tolist()) == sorted(splits.arrays("train")[1].tolist())
    per_image = np.sort(xt.reshape(len(xt), -1).sum(1))
    expected = np.sort(splits.arrays("train")[0].reshape(len(xt), -1).sum(1))
    np.testing.assert_allclose(per_image, expected, atol=1e-3)  # same images, shuffled


def test_scale_images_hand_computed_values_numpy_and_tf():
    x = np.array([[[[0, 51, 255]], [[127.5, 10, 30]]]], np.float32)  # [1, 2, 1, 3]
    cases = {
        "unit": [[0, 0.2, 1], [0.5, 10 / 255, 30 / 255]],
        "symmetric": [[-1, -0.6, 1], [0, 10 / 127.5 - 1, 30 / 127.5 - 1]],
    }
    for scale, expected in cases.items():
        np.testing.assert_allclose(data.scale_images(x, scale)[0, :, 0], expected, atol=1e-6)
        out = data.scale_images(tf.constant(x.astype(np.uint8)), scale)
        assert tf.is_tensor(out) and out.dtype == tf.float32
    std = data.scale_images(x, "standardize", mean=[10, 20, 30], std=[2, 4, 0])  # 0 -> 1
    np.testing.assert_allclose(std[0, :, 0], [[-5, 7.75, 225], [58.75, -2.5, 0]], atol=1e-5)
    with pytest.raises(ValueError, match="mean and std"):
        data.scale_images(x, "standardize")


def test_arrays_representative_and_class_subset(digits):
    rep = digits.representative(50)
    assert rep.shape == (50, 16, 16, 1) and rep.dtype == np.float32
    assert 0 <= rep.min() and rep.max() <= 1
    np.testing.assert_array_equal(rep, digits.representative(50))
    from sklearn.datasets import load_digits

    target = load_digits().target
    sub = data.load("digits", image_size=8, classes=["7", 3])
    assert sub.class_names == ["7", "3"]
    assert sub.info["num_images"] == np.sum(target == 7) + np.sum(target == 3)
    x, y = sub.arrays("train", scaled=False)
    sevens = load_digits().images[target == 7]
    assert set(y.tolist()) == {0, 1}
    assert all(np.any(np.all(np.rint(sevens * 255 / 16) == im[..., 0], axis=(1, 2)))
               for im in x[y == 0][:5])


def test_pipeline_feeds_a_model_that_learns_digits():
    keras.utils.set_random_seed(0)
    splits = data.load("digits", image_size=8, batch_size=32)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(splits.train, epochs=5, verbose=0, shuffle=False)  # the pipeline shuffles
    assert model.evaluate(splits.test, verbose=0)[1] > 0.85


# ------------------------------------------------------------------- augmentation


def test_augmentation_changes_train_batches_only():
    plain = data.load("digits", image_size=16, augment="none", seed=1)
    light = data.load("digits", image_size=16, augment="light", seed=1)
    xp, yp = _first_batch(plain.train)
    xl, yl = _first_batch(light.train)
    np.testing.assert_array_equal(yp, yl)  # same seeded shuffle
    assert xl.shape == xp.shape and xl.dtype == np.float32
    assert 0 <= xl.min() and xl.max() <= 1
    assert np.abs(xl - xp).mean() > 0.05
    np.testing.assert_array_equal(_concat(plain.val)[0], _concat(light.val)[0])
    np.testing.assert_array_equal(_concat(plain.test)[0], _concat(light.test)[0])


@pytest.mark.parametrize("preset", sorted(augment.PRESETS))
def test_every_preset_keeps_shape_and_range(preset):
    fn = data.build_augmenter(preset, seed=0)
    if preset == "none":
        assert fn is None
        return
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (4, 20, 20, 3)), tf.float32)
    out = fn(x).numpy()
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 255
    assert not np.allclose(out, x.numpy())


def test_register_preset_and_layer_lists():
    name = "test_only_flip"
    augment.register_preset(name, [lambda s: keras.layers.RandomFlip("horizontal", seed=s)])
    try:
        with pytest.raises(ValueError, match="already exists"):
            augment.register_preset(name, [])
        splits = data.load("digits", image_size=8, augment=name)
        assert [type(la).__name__ for la in splits.augmenter.layers] == ["RandomFlip"]
    finally:
        augment.PRESETS.pop(name)
    fn = data.build_augmenter([keras.layers.RandomFlip("horizontal", seed=0)])
    x = tf.constant(np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1))
    out = fn(x).numpy()
    for i in range(2):  # each image is either itself or its mirror
        assert np.array_equal(out[i], x[i]) or np.array_equal(out[i], x[i, :, ::-1])


# -------------------------------------------------------------------------- sources


def test_shapes_spec_is_seeded_and_sized():
    a = data.load("shapes:3:15", image_size=(20, 24), channels=3, seed=5)
    b = data.load("shapes", num_classes=3, per_class=15, image_size=(20, 24), channels=3, seed=5)
    c = data.load("shapes:3:15", image_size=(20, 24), channels=3, seed=6)
    assert a.class_names == ["circle", "square", "triangle"] and a.info["num_images"] == 45
    assert a.image_shape == (20, 24, 3)
    np.testing.assert_array_equal(a.arrays("val", False)[0], b.arrays("val", False)[0])
    assert not np.array_equal(a.arrays("val", False)[0], c.arrays("val", False)[0])
    x = a.arrays("train", False)[0].astype(float)
    assert x.std(axis=(1, 2, 3)).min() > 20  # a shape stands out from its background
    with pytest.raises(ValueError, match="2..8 classes"):
        data.load("shapes:9")
    with pytest.raises(ValueError, match="shapes:NUM_CLASSES"):
        data.load("shapes:many")


def test_glyphs_spec_draws_seeded_learnable_classes_stored_like_digits():
    from keras_cv_apps.data.sources import load_source

    a = load_source("glyphs:10:30", image_size=None, channels=1, seed=3)
    b = load_source("glyphs", image_size=None, channels=1, seed=3, num_classes=10, per_class=30)
    c = load_source("glyphs:10:30", image_size=None, channels=1, seed=4)
    assert a.images.shape == (300, 8, 8, 1) and a.images.dtype == np.uint8 and a.class_names[-1] == "glyph9"
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    digits = load_source("digits", image_size=None, channels=1)
    assert set(np.unique(a.images)) <= set(np.unique(digits.images))  # the 17 grey levels of digits
    assert a.images[:, :, [0, -1]].mean() < 20 and a.images.max(axis=(1, 2, 3)).min() >= 191  # ink on black
    # a class is one template drawn many ways: nearest class mean on raw pixels, half the images each side
    x, y = a.images.reshape(300, -1).astype(float), a.labels
    first = np.arange(300) % 30 < 15
    means = np.stack([x[first & (y == k)].mean(0) for k in range(10)])
    nearest = ((x[~first, None] - means) ** 2).sum(-1).argmin(1)
    assert np.mean(nearest == y[~first]) > 0.7  # chance 0.1
    sized = load_source("glyphs:2:3", image_size=(32, 32), channels=3, seed=3)
    assert sized.images.shape == (6, 32, 32, 3)
    with pytest.raises(ValueError, match=">= 2 classes"):
        load_source("glyphs:1", image_size=None, channels=1)
    with pytest.raises(ValueError, match="glyphs:NUM_CLASSES"):
        load_source("glyphs:x", image_size=None, channels=1)


def test_lfw_subset_and_photos_specs():
    lfw = data.load("lfw_subset", image_size=25)
    assert lfw.class_names == ["face", "not_face"] and lfw.info["num_images"] == 200
    photos = data.load("photos", per_class=10, image_size=16, channels=3)
    assert photos.num_classes == 6 and photos.image_shape == (16, 16, 3)
    same = data.load("photos:10", image_size=16, channels=3)
    assert same.info["num_images"] == 60
    np.testing.assert_array_equal(same.arrays("test", False)[0], photos.arrays("test", False)[0])
    with pytest.raises(ValueError, match="photos:PER_CLASS"):
        data.load("photos:many")
    gray = data.load("photos", per_class=10, image_size=16, channels=1)
    rgb, _ = photos.arrays("test", False)
    expected = np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in rgb])
    np.testing.assert_array_equal(gray.arrays("test", False)[0][..., 0], expected)


def test_channels_gray_to_rgb_repeats():
    rgb = data.load("digits", image_size=8, channels=3).arrays("val", False)[0]
    assert rgb.shape[-1] == 3
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])


def _write_class_folders(root):
    """Two classes of 10 images in varied formats, plus a corrupt JPEG and a text file."""
    for name, bgr in (("red", (0, 0, 255)), ("blue", (255, 0, 0))):
        folder = root / name
        folder.mkdir()
        for i in range(8):
            cv2.imwrite(str(folder / f"{i}.png"), np.full((12 + i, 10, 3), bgr, np.uint8))
        cv2.imwrite(str(folder / "gray.jpg"), np.full((9, 9), 200, np.uint8))
        rgba = np.zeros((10, 10, 4), np.uint8)
        rgba[..., :3], rgba[..., 3] = bgr, 100
        cv2.imwrite(str(folder / "alpha.png"), rgba)
    cv2.imwrite(str(root / "red" / "deep.png"), np.full((8, 8, 3), 65535, np.uint16))
    (root / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (root / "blue" / "notes.txt").write_text("not an image")
    (root / "empty").mkdir()


def test_dir_spec_decodes_formats_and_skips_unreadable_files(tmp_path):
    _write_class_folders(tmp_path)
    splits = data.load(f"dir:{tmp_path}", image_size=8, channels=3, val_fraction=0.15,
                       test_fraction=0.15)
    assert splits.class_names == ["blue", "red"] and splits.streamed
    # a text file is no image: left out when the folder is listed
    assert [p.rsplit("/", 1)[-1] for p in splits.info["skipped"]] == ["notes.txt"]
    x, y = np.concatenate([splits.arrays(s, False)[0] for s in ("train", "val", "test")]), \
        np.concatenate([splits.arrays(s, False)[1] for s in ("train", "val", "test")])
    assert len(x) == 21 and np.bincount(y).tolist() == [10, 11]  # the truncated JPEG is left out
    for split in ("train", "val", "test"):  # streaming meets the truncated JPEG: skipped and counted
        assert sum(len(b) for b, _ in splits.dataset(split)) == len(splits.indices[split])
    assert sorted(p.rsplit("/", 1)[-1] for p in splits.skipped()) == ["broken.jpg", "notes.txt"]
    assert splits.describe()["skipped"] == 2
    colours = {tuple(int(v) for v in im[0, 0]) for im in x}
    # RGB order; alpha 100/255 composited on white: 0 -> 255 * 155 / 255 = 155
    assert colours == {(255, 0, 0), (0, 0, 255), (200, 200, 200), (255, 255, 255),
                       (255, 155, 155), (155, 155, 255)}
    gray = data.load(f"dir:{tmp_path}", image_size=8, channels=1, workers=2, val_fraction=0.15,
                     test_fraction=0.15)
    red = gray.arrays("train", False)[0][gray.arrays("train", False)[1] == 1]
    assert 76 in red[:, 0, 0, 0]  # ITU-R 601 luma of pure red: 0.299 * 255


def test_dir_spec_bad_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load(f"dir:{tmp_path / 'missing'}")
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders"):
        data.load(f"dir:{tmp_path}")
    (tmp_path / "a" / "x.txt").write_text("text")
    with pytest.raises(ValueError, match="no readable images"):
        data.load(f"dir:{tmp_path}")


def test_numpy_arrays_spec():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (40, 6, 6)).astype(np.float32)
    y = np.repeat([3, 7], 20)
    splits = data.load((x, y), image_size=None)
    assert splits.class_names == ["3", "7"] and splits.image_shape == (6, 6, 1)
    raw, labels = splits.arrays("train", False)
    np.testing.assert_array_equal(raw[..., 0], np.rint(x[splits.indices["train"]]))
    assert set(labels.tolist()) == {0, 1}
    named = data.load((x, np.repeat([0, 1], 20)), image_size=None, class_names=["cat", "dog"])
    assert named.class_names == ["cat", "dog"]
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        data.load((x / 255.0, y))
    with pytest.raises(ValueError, match="equal N"):
        data.load((x, y[:-1]))
    with pytest.raises(ValueError, match="at least 2 classes"):
        data.load((x, np.zeros(40, int)))
    with pytest.raises(ValueError, match=r"\['0'\] have fewer than 10 images"):
        data.load((x[:16], np.repeat([0, 1], [4, 12])))


def test_keras_mnist_spec_with_mocked_loader(monkeypatch):
    rng = np.random.default_rng(0)
    train = (rng.integers(0, 255, (60, 28, 28), dtype=np.uint8), np.arange(60) % 10)
    test = (rng.integers(0, 255, (20, 28, 28), dtype=np.uint8), np.arange(20) % 10)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: (train, test))
    splits = data.load("keras:mnist", image_size=32, val_fraction=0.125, test_fraction=0.25)
    assert splits.info["num_images"] == 80 and splits.image_shape == (32, 32, 1)
    assert splits.class_names == [str(i) for i in range(10)]

    def offline():
        raise Exception("URL fetch failure on https://storage.googleapis.com/mnist.npz")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(ConnectionError, match="mnist.npz"):
        data.load("keras:mnist")


def test_tfds_spec_with_fake_module(monkeypatch):
    rng = np.random.default_rng(0)
    examples = [(rng.integers(0, 255, (10 + i % 3, 9, 3), dtype=np.uint8), i % 2)
                for i in range(30)]
    calls = {}

    def load(name, split, as_supervised, with_info, data_dir):
        calls.update(name=name, split=split)
        label = types.SimpleNamespace(names=["cats", "dogs"], num_classes=2)
        info = types.SimpleNamespace(supervised_keys=("image", "label"),
                                     features={"label": label})
        return examples, info

    fake = types.SimpleNamespace(load=load, as_numpy=iter)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    splits = data.load("tfds:cats_vs_dogs:train[:30]", image_size=8, channels=3)
    assert calls == {"name": "cats_vs_dogs", "split": "train[:30]"}
    assert splits.class_names == ["cats", "dogs"] and splits.info["num_images"] == 30

    def offline(*args, **kwargs):
        raise OSError("Failed to establish a new connection")

    fake.load = offline
    with pytest.raises(ConnectionError, match="tfds build cats_vs_dogs"):
        data.load("tfds:cats_vs_dogs")
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(ImportError, match=r"keras-cv-apps\[datasets\]"):
        data.load("tfds:mnist")


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("kwargs, error, match", [
    ({"spec": "imagenet"}, ValueError, "Unknown dataset spec 'imagenet'.*digits.*dir:PATH"),
    ({"spec": 42}, ValueError, "Unknown dataset spec of type int"),
    ({"scale": "minmax"}, ValueError, "'unit', 'symmetric', 'standardize'"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, ValueError, "sum below 1"),
    ({"test_fraction": 0}, ValueError, r"in \(0, 1\)"),
    ({"channels": 2}, ValueError, "1 \\(grayscale\\) or 3"),
    ({"image_size": (0, 4)}, ValueError, "positive int"),
    ({"batch_size": 0}, ValueError, "positive integer"),
    ({"augment": "heavy"}, ValueError, "light.*none.*standard"),
    ({"classes": ["11"]}, ValueError, "Unknown class '11'"),
    ({"classes": ["1", 1]}, ValueError, "names a class twice"),
    ({"spec": "photos", "photo_names": ["nope"]}, ValueError, "scikit-image photo names"),
    ({"per_class": 3}, TypeError, "does not take option"),
])
def test_bad_arguments_raise_one_clear_error(kwargs, error, match):
    with pytest.raises(error, match=match):
        data.load(**kwargs)


def test_unknown_split_name(digits):
    with pytest.raises(ValueError, match="'train', 'val', 'test'"):
        digits.arrays("validation")
