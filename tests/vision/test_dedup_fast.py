"""The batched pHash path equals the plain one (one resize and DCT per crop), and tiny images still
find their duplicates."""

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

from keras_cv_apps.vision import dedup, fingerprint, hashing  # noqa: E402


def _gray(name):
    img = getattr(skdata, name)()
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img


@pytest.mark.parametrize("name", ["camera", "astronaut", "coffee", "brick"])
def test_batched_phash_equals_plain_path(name):
    gray = _gray(name)
    for image in (gray, gray[37:150, 20:230], cv2.resize(gray, (70, 96), interpolation=cv2.INTER_AREA),
                  cv2.resize(gray, (128, 128), interpolation=cv2.INTER_AREA), gray[:40, :64]):
        fast = fingerprint.variant_hashes(image, "phash")
        plain = fingerprint.reference_variant_hashes(image, "phash")
        assert fast.shape == (17,) and np.array_equal(fast, plain)
    # and the whole-image hash is the public image_hash
    assert fingerprint.variant_hashes(gray, "phash")[0] == hashing.image_hash(gray)


def test_phash_grid_equals_region_hashes_on_any_spans():
    square = cv2.resize(_gray("coffee"), (128, 128), interpolation=cv2.INTER_AREA)
    rows, cols = [(0, 128, False), (5, 100, False)], [(10, 128, False), (0, 77, True)]
    grid = hashing.phash_grid(square, rows, cols)
    for r, (y0, y1, _) in enumerate(rows):
        for c, (x0, x1, mirrored) in enumerate(cols):
            crop = square[y0:y1, x0:x1]
            crop = np.ascontiguousarray(crop[:, ::-1]) if mirrored else crop
            assert grid[r, c] == hashing.region_hashes(crop, "phash", [(0.0, 1.0, 0.0, 1.0)])[0]


def test_area_matrix_is_opencv_inter_area():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (119, 101)).astype(np.float32)
    shrunk = hashing.area_matrix(119, 32) @ x @ hashing.area_matrix(101, 32).T
    assert np.allclose(shrunk, cv2.resize(x, (32, 32), interpolation=cv2.INTER_AREA), atol=1e-3)


def test_planted_duplicate_among_tiny_images(tmp_path):
    """40 tiny (64-112 px) images of disjoint 100 px tiles of four photos; the smallest (65 px) is saved
    again flipped as JPEG q60: that pair is the one group."""
    rng = np.random.default_rng(3)
    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    for k in range(40):
        photo = photos[k % 4]
        cells = [(y, x) for y in range(0, photo.shape[0] - 99, 100) for x in range(0, photo.shape[1] - 99, 100)]
        y, x = cells[(k // 4) * len(cells) // 10]
        side = int(rng.integers(64, 113))
        tile = cv2.resize(photo[y : y + 100, x : x + 100], (side, side), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(tmp_path / f"tile{k:02d}.png"), tile[..., ::-1])
    twin = cv2.imread(str(tmp_path / "tile08.png"))[:, ::-1]
    cv2.imwrite(str(tmp_path / "twin.jpg"), twin, [cv2.IMWRITE_JPEG_QUALITY, 60])
    result = dedup.find_duplicates(tmp_path, progress=False, workers=2)
    assert [sorted(p.name for p in g.files) for g in result.groups] == [["tile08.png", "twin.jpg"]]


def test_ecc_on_half_size_thumbnails_finds_the_full_size_shift():
    """The warp fitted at 32x32 is scaled back to 64x64 pixels: a known shift is recovered."""
    from keras_cv_apps.vision import verify

    square = cv2.resize(_gray("astronaut"), (80, 80), interpolation=cv2.INTER_AREA)
    a = verify.thumbnail(square[8:72, 8:72])
    b = verify.thumbnail(square[5:69, 11:75])  # the window moved 3 px up and 3 px right
    warp = verify._ecc_warp(a, b, 2)
    assert warp is not None
    assert np.allclose(warp[:, :2], np.eye(2), atol=0.05)
    assert np.allclose(warp[:, 2], [-3.0, 3.0], atol=0.6)  # a(x, y) = b(x - 3, y + 3)
    assert verify.ssim(a, b) < 0.6 <= verify.aligned_ssim(a, b, shifted=True, min_ssim=0.6)
    other = verify.thumbnail(cv2.resize(_gray("coffee"), (64, 64), interpolation=cv2.INTER_AREA))
    assert verify.aligned_ssim(a, other, shifted=True, min_ssim=0.6) < 0.6


def test_phash_grid_refuses_spans_it_cannot_shrink():
    square = np.zeros((128, 128), np.uint8)
    with pytest.raises(ValueError, match="at least 32 pixels"):
        hashing.phash_grid(square, [(0, 20, False)], [(0, 128, False)])
    with pytest.raises(ValueError, match="lie in 0..128"):
        hashing.phash_grid(square, [(0, 128, False)], [(100, 140, False)])
