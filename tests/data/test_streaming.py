"""Streamed sources: `dir:` folders and `tfrecord:` shards decoded inside tf.data, with the pixel
contract of `image.io` + `image.ops.fit`, one image per file per epoch, decode errors skipped and
counted, an on-disk cache, per-worker shares, and `write_shards` round trips."""

import functools
import io
import json
import types

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_cv_apps import data
from keras_cv_apps.data.streaming import decode_image, png_layout
from keras_cv_apps.image.io import read_image
from keras_cv_apps.image.ops import fit


def _photo(name="astronaut"):
    import skimage.data

    return getattr(skimage.data, name)()


def _jpeg(image, orientation=1, quality=92):
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    Image.fromarray(image).save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def _decode(payload, size, channels):
    return decode_image(tf.constant(payload), size, channels).numpy()


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_stream_decodes_jpegs_as_the_in_memory_reader_does(tmp_path, orientation):
    """EXIF rotation, area shrink, bilinear enlargement, RGB and luma: at most 1 level apart
    (TensorFlow resizes in float, OpenCV in fixed point)."""
    path = tmp_path / "photo.jpg"
    path.write_bytes(_jpeg(_photo()[::2, ::3], orientation))  # 256 x 171, not square
    for size in ((64, 48), (300, 200)):
        for channels in (1, 3):
            ref = fit(read_image(path, mode="gray" if channels == 1 else "rgb"), size, channels)
            got = _decode(path.read_bytes(), size, channels)
            assert got.shape == ref.shape == (*size, channels)
            assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1, (orientation, size, channels)
    upright = _decode(path.read_bytes(), (171, 256) if orientation in (6, 8) else (256, 171), 3)
    assert np.abs(upright.astype(int) - read_image(path).astype(int)).mean() < 0.01


def test_stream_decodes_png_alpha_16_bit_and_gray_exactly(tmp_path):
    rgba = np.zeros((6, 5, 4), np.uint8)
    rgba[..., 2], rgba[..., 3] = 200, 100  # BGRA: red at 100/255 opacity, composited on white
    deep = np.full((4, 4, 3), 40000, np.uint16)
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8)
    for i, array in enumerate((rgba, deep, gray)):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), array)
        for channels in (1, 3):
            ref = fit(read_image(path, mode="gray" if channels == 1 else "rgb"), None, channels)
            np.testing.assert_array_equal(_decode(path.read_bytes(), ref.shape[:2], channels), ref)
    assert _decode((tmp_path / "1.png").read_bytes(), (4, 4), 3)[0, 0, 0] == round(40000 / 257)
    assert _decode((tmp_path / "0.png").read_bytes(), (6, 5), 3)[0, 0].tolist() == [233, 155, 155]


def test_every_png_kind_and_gif_bmp_webp_decode_as_the_in_memory_reader_does(tmp_path):
    """The decoder switches on the format and on the PNG header (8-bit gray / RGB decode in one
    op, the rest through the full path): every kind gives `image.io`'s pixels."""
    rgb = np.random.default_rng(0).integers(0, 256, (7, 9, 3), np.uint8)
    kinds = {"rgb.png": ("RGB", {}), "gray.png": ("L", {}), "palette.png": ("P", {}), "la.png": ("LA", {}),
             "gray-trns.png": ("L", {"transparency": 5}), "rgb-interlaced.png": ("RGB", {"interlace": 1}),
             "rgb.bmp": ("RGB", {}), "rgb.gif": ("RGB", {}), "rgb.webp": ("RGB", {"lossless": True})}
    for name, (mode, options) in kinds.items():
        path = tmp_path / name
        Image.fromarray(rgb).convert(mode).save(path, **options)
        for channels in (1, 3):
            ref = fit(read_image(path, mode="gray" if channels == 1 else "rgb"), None, channels)
            np.testing.assert_array_equal(_decode(path.read_bytes(), ref.shape[:2], channels), ref, err_msg=name)
            small = fit(read_image(path, mode="gray" if channels == 1 else "rgb"), (4, 5), channels)
            assert np.abs(_decode(path.read_bytes(), (4, 5), channels).astype(int) - small).max() <= 1, name


def _folder(root, per_class=6, size=(20, 16)):
    """Two classes of PNGs whose top-left pixel is a unique id (class * 100 + i)."""
    for c, name in enumerate(("cats", "dogs")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = np.full((*size, 3), 50 + 100 * c, np.uint8)
            image[0, 0] = c * 100 + i
            cv2.imwrite(str(root / name / f"{i:02d}.png"), image)
    return root


def test_each_epoch_streams_every_file_once_in_a_new_order(tmp_path):
    root = _folder(tmp_path / "set", per_class=10, size=(20, 16))
    splits = data.load(f"dir:{root}", image_size=(20, 16), channels=3, batch_size=4, val_fraction=0.2,
                       test_fraction=0.2, scale="unit")
    assert splits.streamed and splits.image_shape == (20, 16, 3)
    train = splits.train
    ids = [np.concatenate([np.rint(x[:, 0, 0, 0].numpy() * 255) for x, _ in train]).astype(int) for _ in range(2)]
    expected = sorted(splits.arrays("train", False)[0][:, 0, 0, 0].astype(int))
    assert sorted(ids[0]) == sorted(ids[1]) == expected and ids[0].tolist() != ids[1].tolist()
    assert int(train.cardinality()) == 3  # 12 files in batches of 4: the length is known to fit
    counts = splits.counts("train")
    assert counts.tolist() == [6, 6] and splits.describe()["counts"]["train"] == {"cats": 6, "dogs": 6}


def _next_epoch_after_reading(store, positions, read):
    """The order of a second epoch after the first read ``read`` elements of the passes over the
    files (as much as the parallel decoding happened to read ahead)."""
    ds = store._encoded(positions, shuffle=True, seed=3, shard=None, passes=4)
    assert len(list(ds.take(read).as_numpy_iterator())) == read
    return [int(pos) for pos, _ in ds.take(len(positions)).as_numpy_iterator()]


def test_reading_ahead_into_the_refill_passes_does_not_change_the_next_epochs_order(tmp_path):
    root = _folder(tmp_path / "set", per_class=10)
    splits = data.load(f"dir:{root}", image_size=8, channels=3, batch_size=4, val_fraction=0.2, test_fraction=0.2)
    idx = splits.indices["train"]
    orders = [_next_epoch_after_reading(splits._images, idx, read) for read in (len(idx), len(idx) + 3, 3 * len(idx))]
    assert orders[0] == orders[1] == orders[2] and sorted(orders[0]) == sorted(idx.tolist())

    out = tmp_path / "shards"
    data.write_shards("digits", out, shard_size=300, image_size=8, channels=1)
    shards = data.load(f"tfrecord:{out}/*.tfrecord", image_size=8)
    idx = shards.indices["train"]
    orders = [_next_epoch_after_reading(shards._images, idx, read) for read in (len(idx), len(idx) + 3)]
    assert orders[0] == orders[1] and sorted(orders[0]) == sorted(idx.tolist())


def test_a_file_that_fails_to_decode_is_skipped_counted_and_its_slot_refilled(tmp_path):
    root = _folder(tmp_path / "set", per_class=10)
    good = (root / "cats" / "00.png").read_bytes()
    for i in range(2):  # a real image cut short: the header is fine, the pixels are missing
        (root / "dogs" / f"cut{i}.png").write_bytes(good[: len(good) // 2])
    splits = data.load(f"dir:{root}", image_size=8, channels=3, batch_size=5, val_fraction=0.2, test_fraction=0.2)
    assert splits.info["skipped"] == []  # their first bytes look like PNGs
    sizes = {split: [len(y) for _, y in splits.dataset(split)] for split in ("train", "val", "test")}
    assert {split: sum(s) for split, s in sizes.items()} == {split: len(idx) for split, idx in splits.indices.items()}
    assert all(set(s[:-1]) <= {5} and 0 < s[-1] <= 5 for s in sizes.values())  # full batches but the last
    assert sorted(p.rsplit("/", 1)[-1] for p in splits.skipped()) == ["cut0.png", "cut1.png"]
    assert splits.describe()["skipped"] == 2
    # refill=False (a test report): one pass, the cut files left out and no slot refilled
    names = {split: [splits._images.name(int(i)) for i in idx] for split, idx in splits.indices.items()}
    readable = {split: sum("cut" not in name for name in got) for split, got in names.items()}
    once = {split: sum(len(y) for _, y in splits.dataset(split, refill=False)) for split in ("train", "val", "test")}
    assert once == readable and sum(readable.values()) == sum(map(len, splits.indices.values())) - 2


def test_a_folder_of_unreadable_files_is_one_clear_error(tmp_path):
    root = tmp_path / "bad"
    (root / "a").mkdir(parents=True)
    for i in range(3):
        (root / "a" / f"{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    (root / "a" / "notes.txt").write_text("text")
    with pytest.raises(ValueError, match=r"no readable images \(4 file\(s\) could not be decoded\)"):
        data.load(f"dir:{root}")


def test_arrays_of_a_streamed_split_read_a_bounded_seeded_sample(tmp_path):
    root = _folder(tmp_path / "set", per_class=10)
    splits = data.load(f"dir:{root}", image_size=8, channels=3, val_fraction=0.2, test_fraction=0.2)
    x, y = splits.arrays("train", max_images=5)
    x2, _ = splits.arrays("train", max_images=5)
    assert x.shape == (5, 8, 8, 3) and x.dtype == np.float32 and len(y) == 5
    np.testing.assert_array_equal(x, x2)
    assert splits.representative(3).shape == (3, 8, 8, 3)


def test_disk_cache_holds_the_decoded_split_for_later_epochs(tmp_path):
    root = _folder(tmp_path / "set", per_class=8)
    cache = tmp_path / "cache"
    splits = data.load(f"dir:{root}", image_size=8, channels=3, val_fraction=0.25, test_fraction=0.25,
                       cache=str(cache))
    reference = np.concatenate([x.numpy() for x, _ in splits.val])
    assert sum(len(y) for _, y in splits.train) == len(splits.indices["train"])
    assert len(list(cache.glob("*.index"))) == 2  # train and val are cached on disk
    for path in root.rglob("*.png"):  # from now on only the cache can answer
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"gone" * 8)
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x, _ in splits.dataset("val")]), reference)
    assert sum(len(y) for _, y in splits.dataset("train")) == len(splits.indices["train"])


def test_a_cache_that_is_a_file_is_refused_and_an_unused_one_is_said(tmp_path, caplog):
    root = _folder(tmp_path / "set", per_class=8)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(NotADirectoryError, match="notes.txt' is a file; give a folder"):
        data.load(f"dir:{root}", image_size=8, channels=3, val_fraction=0.25, test_fraction=0.25,
                  cache=str(tmp_path / "notes.txt"))
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with caplog.at_level("WARNING"):
        data.load("digits", image_size=8, cache=str(tmp_path / "cache"))
    assert "is not used: digits is held in memory" in caplog.text and not (tmp_path / "cache").exists()


def test_each_worker_streams_its_own_files(tmp_path):
    root = _folder(tmp_path / "set", per_class=11)
    splits = data.load(f"dir:{root}", image_size=(20, 16), channels=3, batch_size=4, val_fraction=0.2,
                       test_fraction=0.2)
    train = splits.dataset("train")
    shares = []
    for worker in range(2):
        context = types.SimpleNamespace(num_input_pipelines=2, input_pipeline_id=worker,
                                        get_per_replica_batch_size=lambda global_batch: global_batch // 2)
        ds = train.per_worker(context)
        ids = np.concatenate([np.rint(x[:, 0, 0, 0].numpy() * 255) for x, _ in ds]).astype(int)
        assert max(len(x) for x, _ in ds) == 2  # the per-replica batch
        shares.append(ids)
    n = len(splits.indices["train"])
    assert len(shares[0]) == len(shares[1]) == (n + 1) // 2  # equal steps on every worker
    assert set(shares[0]).isdisjoint(shares[1])
    assert set(shares[0]) | set(shares[1]) == set(splits.arrays("train", False)[0][:, 0, 0, 0].astype(int))


def test_write_shards_round_trips_digits_and_keeps_the_split(tmp_path):
    out = tmp_path / "shards"
    index = data.write_shards("digits", out, shard_size=500, image_size=8, channels=1)
    assert {s: len(v["labels"]) for s, v in index["splits"].items()} == {"train": 1257, "val": 180, "test": 360}
    assert len(index["splits"]["train"]["files"]) == 3
    assert json.loads((out / "shards.json").read_text())["class_names"] == [str(i) for i in range(10)]
    memory = data.load("digits", image_size=8)
    shards = data.load(f"tfrecord:{out}/*.tfrecord", image_size=8)
    for split in ("train", "test"):
        a, ya = memory.arrays(split, False)
        b, yb = shards.arrays(split, False)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)
    epoch = np.concatenate([y.numpy() for _, y in shards.train])
    assert np.bincount(epoch).tolist() == np.bincount(shards.labels("train")).tolist()
    some = data.load(f"tfrecord:{out}", image_size=8, classes=["3", "5"])
    assert some.class_names == ["3", "5"] and some.counts("train").sum() == len(some.indices["train"])
    over = np.concatenate([y.numpy() for _, y in some.dataset("train", balance="oversample")])
    assert np.bincount(over).tolist() == [some.counts("train").max()] * 2
    with pytest.raises(FileExistsError, match="overwrite=True"):
        data.write_shards("digits", out)
    with pytest.raises(FileNotFoundError, match="matches no files"):
        data.load(f"tfrecord:{tmp_path}/none-*.tfrecord")


def test_write_shards_copies_streamable_files_and_reencodes_the_others(tmp_path):
    root = _folder(tmp_path / "set", per_class=10)
    tiff = root / "dogs" / "scan.tif"
    Image.fromarray(np.full((12, 10, 3), 77, np.uint8)).save(tiff)
    out = tmp_path / "shards"
    data.write_shards(f"dir:{root}", out, shard_size=8, channels=3)
    records = {}
    for path in out.glob("*.tfrecord"):
        for raw in tf.data.TFRecordDataset(str(path)):
            example = tf.train.Example.FromString(raw.numpy())
            name = example.features.feature["name"].bytes_list.value[0].decode()
            records["/".join(name.split("/")[-2:])] = example.features.feature["image"].bytes_list.value[0]
    assert len(records) == 21 and records["dogs/00.png"] == (root / "dogs" / "00.png").read_bytes()
    assert records["dogs/scan.tif"].startswith(b"\x89PNG")  # TIFF is not streamable: stored as a lossless PNG
    assert _decode(records["dogs/scan.tif"], (12, 10), 3)[5, 5].tolist() == [77, 77, 77]
    loaded = data.load(f"tfrecord:{out}", image_size=8, channels=3)
    assert loaded.info["num_images"] == 21



def _gray_pngs(root, sizes, seed=0):
    """Random 8-bit gray PNGs of ``sizes`` alternating between class folders a and b, and a file
    ``b/cut.png`` cut short (its header is a PNG's)."""
    rng = np.random.default_rng(seed)
    for i, (h, w) in enumerate(sizes):
        path = root / "ab"[i % 2] / f"{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), rng.integers(0, 256, (h, w), np.uint8))
    good = (root / "a" / "00.png").read_bytes()
    (root / "b" / "cut.png").write_bytes(good[: len(good) // 2])
    return root


def _check_streams(splits):
    """Every split streams each readable file once (the cut file's slot goes to another file),
    with the pixels of the general decoder (`decode_image`, format switch and all) and its label;
    returns the train order of file positions."""
    store, size = splits._images, splits.image_shape[:2]
    orders = {}
    for split, idx in splits.indices.items():
        files = {}
        for i in idx:
            name = store.name(int(i))
            if not name.endswith("cut.png"):
                files[int(i)] = (_decode(open(name, "rb").read(), size, 1)[..., 0], "ab".index(name.split("/")[-2]))
        order = []
        for x, y in splits.dataset(split):
            for image, label in zip(np.rint(x.numpy()[..., 0] * 255).astype(np.uint8), y.numpy()):
                match = [i for i, (ref, _) in files.items() if np.array_equal(ref, image)]
                assert len(match) == 1 and files[match[0]][1] == label
                order.append(match[0])
        assert len(order) == len(idx) and set(order) == set(files)
        assert len(order) == len(files) + (len(files) < len(idx))  # at most the cut file's slot repeats one
        orders[split] = order
    assert [p.rsplit("/", 1)[-1] for p in splits.skipped()] == ["cut.png"]
    return orders["train"]


@pytest.mark.parametrize("image_size", [20, 5])
def test_a_one_size_png_folder_is_resized_per_batch_to_the_general_decoders_pixels(tmp_path, image_size):
    """Plain PNGs of one size decode in one op and are resized once per batch (enlarged, shrunk)."""
    root = _gray_pngs(tmp_path / "set", [(8, 8)] * 16)
    load = functools.partial(data.load, f"dir:{root}", image_size=image_size, channels=1, batch_size=4,
                             val_fraction=0.2, test_fraction=0.2)
    splits = load()
    assert (splits._images.plain, splits._images.native) == (True, (8, 8))
    order = _check_streams(splits)
    assert _check_streams(load()) == order  # same seed, same order


def test_a_folder_of_png_sizes_and_formats_streams_the_general_decoders_pixels(tmp_path):
    """Plain PNGs of several sizes decode in one op and are resized one by one; one other format
    sends the whole folder through the general decoder: the same pixels, counts and order."""
    root = _gray_pngs(tmp_path / "set", [(8, 8), (6, 10), (12, 12), (8, 8), (5, 7)] * 3)
    load = functools.partial(data.load, f"dir:{root}", image_size=8, channels=1, batch_size=4,
                             val_fraction=0.2, test_fraction=0.2)
    splits = load()
    assert (splits._images.plain, splits._images.native) == (True, None)
    order = _check_streams(splits)
    assert _check_streams(load()) == order
    Image.fromarray(np.full((8, 8), 7, np.uint8)).convert("RGB").save(root / "a" / "rgb.png")
    splits = load()
    assert not splits._images.plain and splits.counts("train").sum() == len(splits.indices["train"])
    _check_streams(splits)


def test_png_layout_reads_the_header_bytes_of_a_listing():
    def head(depth, colour, h=8, w=6):
        return (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + w.to_bytes(4, "big") + h.to_bytes(4, "big")
                + bytes([depth, colour]))

    assert png_layout([head(8, 0)] * 3, 1) == (True, (8, 6))
    assert png_layout([head(8, 0), head(8, 0, h=9)], 1) == (True, None)
    assert png_layout([head(8, 0), head(8, 2)], 1) == (False, None)  # RGB into gray: luma, not one op
    assert png_layout([head(8, 0), head(8, 2)], 3) == (True, (8, 6))
    for other in (head(16, 0), head(8, 4), head(8, 3), b"\xff\xd8\xff\xe0" + bytes(22), head(8, 0)[:20]):
        assert png_layout([head(8, 0), other], 3) == (False, None)
    assert png_layout([], 1) == (False, None)


def test_read_png_group_gives_decode_pngs_pixels_and_flags_what_it_cannot_read(tmp_path):
    """The grouped reader of small one-size PNG folders: the pixels ``tf.io.decode_png`` gives for
    gray and RGB files (from two encoders, with a transparent colour), ok False for a file cut
    short, of another size, missing, or empty."""
    from keras_cv_apps.data.streaming import read_png_group

    rng = np.random.default_rng(0)
    gray, rgb = rng.integers(0, 256, (7, 9), np.uint8), rng.integers(0, 256, (7, 9, 3), np.uint8)
    files = {"gray.png": lambda p: Image.fromarray(gray).save(p),
             "gray_opencv.png": lambda p: cv2.imwrite(str(p), gray, [cv2.IMWRITE_PNG_STRATEGY, 3]),
             "gray_trns.png": lambda p: Image.fromarray(gray).save(p, transparency=int(gray[0, 0])),
             "rgb.png": lambda p: Image.fromarray(rgb).save(p),
             "rgb_trns.png": lambda p: Image.fromarray(rgb).save(p, transparency=tuple(int(v) for v in rgb[0, 0]))}
    for name, write in files.items():
        write(tmp_path / name)
    good = (tmp_path / "gray.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    Image.fromarray(gray[:6]).save(tmp_path / "other_size.png")
    (tmp_path / "empty.png").write_bytes(b"")
    for channels, names in ((1, ["gray.png", "gray_opencv.png", "gray_trns.png"]),
                            (3, list(files))):
        bad = ["cut.png", "other_size.png", "missing.png", "empty.png"]
        paths = [str(tmp_path / n).encode() for n in names + bad]
        ok, images = read_png_group(paths, (7, 9, channels))
        assert ok.tolist() == [True] * len(names) + [False] * len(bad)
        assert images.shape == (len(paths), 7, 9, channels) and images.dtype == np.uint8
        for name, image in zip(names, images):
            want = tf.io.decode_png((tmp_path / name).read_bytes(), channels=channels).numpy()
            np.testing.assert_array_equal(image, want, err_msg=name)
        assert not images[len(names):].any()
