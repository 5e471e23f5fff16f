"""vision.dedup groups do not chain: a pair joins two groups only if their anchors match too."""

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

from keras_cv_apps.vision import dedup  # noqa: E402


def _write(path, rgb, *params):
    cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), list(params))


def _groups(result):
    return sorted(sorted(p.name for p in g.files) for g in result.groups)


def _iou(shift_a, shift_b, side):
    inter = (side - abs(shift_a - shift_b)) ** 2
    return inter / (2 * side * side - inter)


def test_overlapping_crops_do_not_chain(tmp_path):
    """Crops a, b, c of one photo step diagonally by 7%: a~b and b~c are near-duplicates (IoU 0.76),
    a and c are not (IoU 0.59), so c must not join a's group through b."""
    astro = skdata.astronaut()
    side = 384
    step = int(side * 0.07)
    assert _iou(0, step, side) > 0.75 and _iou(0, 2 * step, side) < 0.6
    for k, name in enumerate("abc"):
        _write(tmp_path / f"{name}.png", astro[k * step:k * step + side, k * step:k * step + side])
    result = dedup.find_duplicates(tmp_path, progress=False, workers=1)
    assert _groups(result) == [["a.png", "b.png"]]
    # the link b~c on its own passes, so single linkage would have put all three in one group
    (tmp_path / "a.png").unlink()
    assert _groups(dedup.find_duplicates(tmp_path, progress=False, workers=1)) == [["b.png", "c.png"]]


def test_edited_copies_still_form_one_group_keeping_the_original(tmp_path):
    astro = skdata.astronaut()
    _write(tmp_path / "zz_original.png", astro)
    _write(tmp_path / "a_q50.jpg", astro, cv2.IMWRITE_JPEG_QUALITY, 50)
    _write(tmp_path / "a_small.png", cv2.resize(astro, (300, 300), interpolation=cv2.INTER_AREA))
    _write(tmp_path / "a_flip_q90.jpg", astro[:, ::-1], cv2.IMWRITE_JPEG_QUALITY, 90)
    _write(tmp_path / "a_flip_small.jpg", cv2.resize(astro[:, ::-1], (400, 400), interpolation=cv2.INTER_AREA))
    _write(tmp_path / "coffee.png", skdata.coffee())
    result = dedup.find_duplicates(tmp_path, progress=False, workers=1)
    assert _groups(result) == [["a_flip_q90.jpg", "a_flip_small.jpg", "a_q50.jpg", "a_small.png",
                               "zz_original.png"]]
    assert result.groups[0].representative.name == "zz_original.png"
    assert min(result.groups[0].scores) > 0.6


def test_candidates_keep_each_pairs_closest_alignment_and_each_images_closest_partners():
    """Hand-made hits (a, b, flip, region, dist): the pair (0, 1) is hit three times and keeps its
    closest alignment (dist 2: unmirrored beats mirrored at equal distance); with two partners
    per image, image 0's five partners are cut to its two closest unless a partner keeps the pair
    among its own two closest."""
    hits = np.array([
        (0, 1, 1, 3, 2), (1, 0, 0, 5, 2), (0, 1, 0, 0, 7),  # pair (0, 1) three times
        (0, 2, 0, 0, 3), (0, 3, 0, 0, 4), (0, 4, 0, 0, 5), (0, 5, 0, 0, 6),
        (4, 6, 0, 0, 1), (4, 7, 0, 0, 1), (5, 8, 0, 0, 9)])
    a, b, flip, region, dist = (hits[:, k] for k in range(5))
    everything = dedup._closest(a, b, flip, region, dist, 10, 100)
    assert len(everything[0]) == 8
    first = [k for k in range(8) if {everything[0][k], everything[1][k]} == {0, 1}][0]
    assert (everything[0][first], everything[1][first], everything[2][first], everything[3][first],
            everything[4][first]) == (1, 0, 0, 5, 2)
    kept = dedup._closest(a, b, flip, region, dist, 10, 2)
    pairs = {tuple(sorted(p)) for p in zip(kept[0].tolist(), kept[1].tolist())}
    # 0's two closest: 1 (2), 2 (3); 3 keeps (0, 3) as one of its own two; 4 has 6 and 7 closer
    # than 0; 5 keeps (0, 5) beside (5, 8)
    assert pairs == {(0, 1), (0, 2), (0, 3), (0, 5), (4, 6), (4, 7), (5, 8)}


def test_a_folder_of_many_near_copies_stays_one_group_with_few_candidates(tmp_path, monkeypatch):
    """30 noisy copies of one photo at JPEG qualities 60-89: about 150 candidate pairs; with three
    partners per image at most 90 are verified, and all 30 still form one group."""
    rng = np.random.default_rng(0)
    photo = cv2.resize(skdata.astronaut(), (160, 160), interpolation=cv2.INTER_AREA)
    for k in range(30):
        noisy = np.clip(photo + rng.normal(0, 5, photo.shape), 0, 255).astype(np.uint8)
        _write(tmp_path / f"{k:02d}.jpg", noisy, cv2.IMWRITE_JPEG_QUALITY, 60 + k)
    seen = []
    original = dedup._verify

    def counting(scan, uf, candidates, pairs, min_ssim, progress, workers):
        seen.append(len(candidates))
        return original(scan, uf, candidates, pairs, min_ssim, progress, workers)

    monkeypatch.setattr(dedup, "_verify", counting)
    for partners in (1000, 3):
        monkeypatch.setattr(dedup, "MAX_PARTNERS", partners)
        result = dedup.find_duplicates(tmp_path, progress=False, workers=1)
        assert [len(g.files) for g in result.groups] == [30]
    assert seen[1] <= 3 * 30 < seen[0]


def test_verifying_on_threads_gives_the_pairs_of_checking_one_pair_at_a_time(tmp_path, monkeypatch):
    """Pairs scored ahead on several threads are applied in order: the same verified pairs and
    groups as one thread checking each pair at its turn, also when a chunk joins its own pairs."""
    rng = np.random.default_rng(1)
    for name in ("astronaut", "coffee", "chelsea"):
        photo = cv2.resize(getattr(skdata, name)(), (160, 160), interpolation=cv2.INTER_AREA)
        for k in range(8):
            y, x = rng.integers(0, 24, 2)
            crop = photo[y : y + 136, x : x + 136]
            noisy = np.clip(crop + rng.normal(0, 4, crop.shape), 0, 255).astype(np.uint8)
            _write(tmp_path / f"{name}_{k}.jpg", noisy, cv2.IMWRITE_JPEG_QUALITY, 70 + k)
    runs = []
    for workers, ahead in ((1, 1), (3, 4), (2, 64)):
        monkeypatch.setattr(dedup, "VERIFY_AHEAD", ahead)
        result = dedup.find_duplicates(tmp_path, progress=False, workers=workers)
        runs.append((result.pairs, sorted(sorted(f.name for f in g.files) for g in result.groups)))
    assert len(runs[0][0]) >= 6 and runs[0] == runs[1] == runs[2]
