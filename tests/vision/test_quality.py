"""Quality checks: each flags a constructed bad image, passes clean photos, and matches its formula."""

from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

from keras_cv_apps.vision import quality  # noqa: E402

CLEAN = ("astronaut", "coffee", "chelsea", "rocket")


@pytest.fixture(scope="module")
def photos():
    return {name: getattr(skdata, name)() for name in CLEAN}


def _noisy(image, sigma, seed=0):
    noise = np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


BAD = {
    "dark": lambda im: (im * 0.15).astype(np.uint8),
    "light": lambda im: (200 + im * 0.2).astype(np.uint8),
    "blurry": lambda im: cv2.GaussianBlur(im, (0, 0), 4),
    "low_information": lambda im: _noisy(np.full((240, 320, 3), 128.0), 1.0),
    "odd_aspect_ratio": lambda im: cv2.resize(im, (600, 100), interpolation=cv2.INTER_AREA),
    "grayscale": lambda im: np.dstack([cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)] * 3),
    "noisy": lambda im: _noisy(im, 25.0),
}


@pytest.mark.parametrize("issue", sorted(BAD))
@pytest.mark.parametrize("name", CLEAN)
def test_check_flags_bad_image_and_passes_clean(photos, issue, name):
    clean = photos[name]
    score, flagged = quality.check_image(clean)[issue]
    assert not flagged, f"clean {name} flagged {issue} (score {score:.2f})"
    bad_score, bad_flagged = quality.check_image(BAD[issue](clean))[issue]
    assert bad_flagged and 0.0 <= bad_score <= 1.0 and bad_score > score


def test_blur_is_judged_at_native_resolution_at_every_size(photos):
    """Sharp photos are not blurry at any size (thumbnails included) or exposure; a Gaussian blur of
    sigma 2 px applied at the image's own resolution is blurry at every size from 128 px up."""
    coffee = photos["coffee"]
    for side in (96, 128, 200, 300, 600):
        scale = side / max(coffee.shape[:2])
        small = cv2.resize(coffee, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        assert not quality.check_image(small)["blurry"][1], side
        if side >= 128:
            assert quality.check_image(cv2.GaussianBlur(small, (0, 0), 2))["blurry"][1], side
    y, x = 120, 200  # a 140 x 180 crop at native resolution, as a thumbnail folder would hold it
    crop = np.ascontiguousarray(photos["astronaut"][y : y + 140, x : x + 180])
    assert not quality.check_image(crop)["blurry"][1]
    for image in (BAD["dark"](photos["astronaut"]), BAD["light"](photos["astronaut"])):
        assert not quality.check_image(image)["blurry"][1]
    # upsampling a small image makes it blurry at pixel level, and it is called so
    up = cv2.resize(crop, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    assert quality.check_image(up)["blurry"][1]


def test_detail_ratio_catches_motion_blur(photos):
    kernel = np.zeros((15, 15), np.float32)
    kernel[7, :] = 1 / 15  # horizontal motion of 15 px
    moved = cv2.filter2D(photos["rocket"], -1, kernel)
    assert quality.check_image(moved)["blurry"][1]
    assert quality.detail_ratio(cv2.cvtColor(moved, cv2.COLOR_RGB2GRAY)) < 0.6 * quality.detail_ratio(
        cv2.cvtColor(photos["rocket"], cv2.COLOR_RGB2GRAY))


def test_scores_match_their_formulas():
    half = np.zeros((40, 80), np.uint8)
    half[:, 40:] = 255  # two equally likely grey levels: entropy 1 bit
    stats = quality.image_stats(half)
    assert stats["entropy"] == pytest.approx(1.0)
    assert quality.issue_scores(stats)["low_information"] == pytest.approx(1 - 1 / 8)
    assert quality.issue_scores(stats)["odd_aspect_ratio"] == pytest.approx(0.5)
    assert quality.issue_scores(stats)["grayscale"] == 1.0
    assert stats["p05"] == 0.0 and stats["p95"] == 1.0
    noise = np.random.default_rng(1).normal(128, 10, (400, 400)).astype(np.float32)
    assert quality.noise_sigma(noise) == pytest.approx(10.0, rel=0.05)


@pytest.mark.parametrize("name", ["grass", "gravel"])
def test_pixel_grain_texture_thumbnail_is_not_noise_but_noise_on_it_still_reads(name):
    # a whole texture photo shrunk to 96 px: its grain is about one pixel, so its detail barely
    # grows from the 2x to the 4x scale (c / b < b / a); with the fixed growth it read 12-13 grey levels
    photo = getattr(skdata, name)()
    thumb = cv2.resize(photo, (96, 96), interpolation=cv2.INTER_AREA)
    assert quality.noise_sigma(thumb) < NOISE_AT_THRESHOLD
    # pure noise on a small image keeps its size: every patch position is used once (no repeats)
    flat = np.random.default_rng(2).normal(128, 10, (64, 85)).astype(np.float32)
    assert quality.noise_sigma(flat) == pytest.approx(10.0, rel=0.1)
    # and strong noise on a smooth small photo is still found
    smooth = cv2.resize(skdata.coffee(), (128, 96), interpolation=cv2.INTER_AREA)[..., 1]
    assert quality.noise_sigma(_noisy(smooth, 20.0)) > 2 * NOISE_AT_THRESHOLD


NOISE_AT_THRESHOLD = quality.NOISE_REF * quality.NOISY_THRESHOLD


def test_odd_size_is_relative_to_the_dataset():
    heights = np.array([480] * 12 + [60])
    widths = np.array([640] * 12 + [80])
    scores = quality.odd_size_scores(heights, widths)
    assert scores[-1] >= quality.ODD_SIZE_THRESHOLD and scores[:-1].max() == 0.0
    near = quality.odd_size_scores(np.array([480] * 12 + [400]), np.array([640] * 12 + [600]))
    assert near.max() < quality.ODD_SIZE_THRESHOLD  # a few percent smaller is not odd


def test_pixel_hash_is_exact():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    assert quality.pixel_hash(a) == quality.pixel_hash(b)
    b[3, 3, 1] = 1
    assert quality.pixel_hash(a) != quality.pixel_hash(b)
    assert quality.pixel_hash(a) != quality.pixel_hash(a.reshape(8, 24))


def _write(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@pytest.fixture()
def folder(tmp_path, photos):
    for name, image in photos.items():
        _write(tmp_path / "a" / f"{name}.png", image)
    _write(tmp_path / "a" / "zz_copy.png", photos["coffee"])
    _write(tmp_path / "b" / "dark.png", BAD["dark"](photos["astronaut"]))
    _write(tmp_path / "b" / "blurry.png", BAD["blurry"](photos["chelsea"]))
    (tmp_path / "b" / "broken.jpg").write_bytes(b"not an image at all")
    return tmp_path


def test_assess_folder(folder):
    from keras_cv_apps.image.io import list_images

    seen = []
    result = quality.assess(list_images(folder), progress=False, features=True,
                            on_image=lambda i, p, im: seen.append(i))
    names = [Path(p).name for p in result.paths]
    assert seen == list(range(len(names))) and "broken.jpg" not in names
    assert [Path(p).name for p, _ in result.unreadable] == ["broken.jpg"]
    flagged = {(Path(p).name, issue) for p, issue, _ in result.flagged()}
    assert ("dark.png", "dark") in flagged and ("blurry.png", "blurry") in flagged
    assert ("zz_copy.png", "exact_duplicate") in flagged
    assert ("coffee.png", "exact_duplicate") not in flagged  # the first copy stays unflagged
    assert [[Path(p).name for p in g] for g in result.duplicate_groups] == [
        ["coffee.png", "zz_copy.png"]]
    assert result.features.shape == (len(names), 462)
    for issue in quality.ISSUES:
        assert result.scores[issue].shape == (len(names),)
        assert np.all((result.scores[issue] >= 0) & (result.scores[issue] <= 1))


def test_assess_rejects_bad_thresholds(folder):
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        quality.assess([folder / "a" / "coffee.png"], thresholds={"dark": 1.5}, progress=False)
    with pytest.raises(ValueError, match="choose from"):
        quality.assess([folder / "a" / "coffee.png"], thresholds={"darkness": 0.5}, progress=False)



def test_per_file_records_are_kept_in_compact_columns():
    """`assess` keeps per-file statistics as float64 columns and features in one float32 matrix
    that grows past its first capacity without losing rows."""
    from keras_cv_apps.vision.quality import _Columns, _Rows

    cols = _Columns()
    for i in range(5):
        cols.append({"a": float(i), "b": i / 2})
    got = cols.arrays(["a", "b", "missing"])
    np.testing.assert_array_equal(got["a"], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(got["b"], [0, 0.5, 1, 1.5, 2])
    assert got["missing"].shape == (0,)
    with pytest.raises(ValueError, match="changed keys"):
        cols.append({"a": 1.0})
    rows = _Rows(capacity=2)
    vectors = np.random.default_rng(0).random((7, 3))
    for v in vectors:
        rows.append(v)
    np.testing.assert_array_equal(rows.matrix(), vectors.astype(np.float32))
    assert _Rows().matrix().shape == (0, 0)
