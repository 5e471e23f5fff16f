"""vision.dedup / vision.hashing and apps.dedup: planted near-duplicates, exact search, app."""

import csv
import itertools

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

from keras_cv_apps.vision import dedup, hashing  # noqa: E402

PLANTED = {  # near-duplicate -> its source
    "astronaut_small.jpg": "astronaut.png",
    "coffee_q30.jpg": "coffee.png",
    "rocket_bright.png": "rocket.png",
    "chelsea_crop.png": "chelsea.png",
    "camera_flip.png": "camera.png",
}


def _save(path, rgb_or_gray, quality=95):
    img = cv2.cvtColor(rgb_or_gray, cv2.COLOR_RGB2BGR) if rgb_or_gray.ndim == 3 else rgb_or_gray
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix == ".jpg" else []
    cv2.imwrite(str(path), img, params)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Five sources with one planted near-duplicate each, plus distinct images, two of them
    neighbouring crops of one photo, and one corrupt file."""
    root = tmp_path_factory.mktemp("dups")
    photos = {n: getattr(skdata, n)() for n in
              ("astronaut", "coffee", "rocket", "chelsea", "camera", "coins", "moon", "brick")}
    for name, img in photos.items():
        _save(root / f"{name}.png", img)
    _save(root / "astronaut_small.jpg", cv2.resize(photos["astronaut"], (200, 200),
                                                   interpolation=cv2.INTER_AREA))
    _save(root / "coffee_q30.jpg", photos["coffee"], quality=30)
    _save(root / "rocket_bright.png", cv2.convertScaleAbs(photos["rocket"], alpha=1.0, beta=35))
    _save(root / "chelsea_crop.png", photos["chelsea"][12:-12, 18:-18])
    _save(root / "camera_flip.png", photos["camera"][:, ::-1])
    hubble = skdata.hubble_deep_field()
    _save(root / "hubble_left.png", hubble[100:500, 0:400])
    _save(root / "hubble_right.png", hubble[100:500, 200:600])
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    return root


def _group_names(result):
    return sorted(sorted(p.name for p in g.files) for g in result.groups)


@pytest.mark.parametrize("method", hashing.HASH_METHODS)
def test_each_hash_finds_planted_duplicates(folder, method):
    result = dedup.find_duplicates(folder, method=method, progress=False, workers=2)
    assert _group_names(result) == sorted(sorted(pair) for pair in PLANTED.items())
    assert [p.name for p, _ in result.unreadable] == ["broken.jpg"]
    for g in result.groups:  # representative: the larger (or equal-size sharper) source
        assert g.representative.name in PLANTED.values()
        assert all(0.0 <= s <= 1.0 for s in g.scores) and max(g.scores) == 1.0


@pytest.mark.parametrize("name", ["camera", "astronaut", "coffee", "coins"])
def test_hashes_agree_with_opencv_img_hash(name):
    """Independent oracle: cv2.img_hash (its bytes hold the bits least significant first)."""
    img = getattr(skdata, name)()
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img

    def ours(method):
        return np.unpackbits(np.array([hashing.image_hash(gray, method)], ">u8").view(np.uint8))

    def theirs(fn, image):
        return np.unpackbits(fn(image).ravel(), bitorder="little")

    square = cv2.resize(gray, (128, 128), interpolation=cv2.INTER_AREA)
    thumb = cv2.resize(square, (8, 8), interpolation=cv2.INTER_AREA)
    # same 8x8 thumbnail: only rounding ties may differ (cv2 averages uint8 pixels)
    assert (ours("ahash") != theirs(cv2.img_hash.averageHash, thumb)).sum() <= 2
    # cv2 shrinks with bilinear interpolation and thresholds differently: close, not equal
    assert (ours("phash") != theirs(cv2.img_hash.pHash, square)).sum() <= 8


def test_flip_and_crop_need_their_variants():
    """A whole-image pHash alone misses the flip; the mirror hash gets it within threshold."""
    cam = skdata.camera()
    direct = hashing.image_hash(cam) ^ hashing.image_hash(np.ascontiguousarray(cam[:, ::-1]))
    assert int(hashing.popcount(np.uint64(direct))) > dedup.DEFAULT_THRESHOLDS["phash"]
    v_a = dedup._variant_hashes(cam, "phash")
    v_b = dedup._variant_hashes(np.ascontiguousarray(cam[:, ::-1]), "phash")
    assert int(hashing.popcount(v_a[0] ^ v_b[1])) <= 2


def _brute_pairs(q, idx, t, self_search):
    d = hashing.popcount(q[:, None] ^ idx[None, :])
    return {(i, j) for i, j in zip(*np.nonzero(d <= t)) if not self_search or j > i}


@pytest.mark.parametrize("m", [1, 3, 4, 8])
def test_hamming_search_equals_brute_force(monkeypatch, m):
    rng = np.random.default_rng(m)
    x = rng.integers(0, 2**64 - 1, size=1500, dtype=np.uint64, endpoint=True)
    noise = rng.integers(0, 2**64 - 1, size=400, dtype=np.uint64, endpoint=True)
    for k in range(400):  # plant close pairs: keep only a few random bits of the noise
        keep = np.uint64(0)
        for b in rng.choice(64, int(rng.integers(0, 12)), replace=False):
            keep |= np.uint64(1) << np.uint64(int(b))
        x[1100 + k] = x[k] ^ (noise[k] & keep)
    monkeypatch.setattr(hashing, "_plan", lambda *a: m)
    for t in ((0, 4, 8) if m == 3 else (0, 3, 6, 9, 12)):  # m=3 probes many keys: keep it quick
        qi, ii, d = hashing.hamming_search(x, threshold=t)
        found = list(zip(qi.tolist(), ii.tolist()))
        assert len(found) == len(set(found)) and set(found) == _brute_pairs(x, x, t, True)
        assert (d == hashing.popcount(x[qi] ^ x[ii])).all()
        qi, ii, _ = hashing.hamming_search(x[:300], x[200:], threshold=t)
        assert set(zip(qi.tolist(), ii.tolist())) == _brute_pairs(x[:300], x[200:], t, False)


@pytest.mark.parametrize("m", [1, 4])
def test_hamming_search_blocks_cover_the_whole_search(monkeypatch, m):
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2**64 - 1, size=900, dtype=np.uint64, endpoint=True)
    x[600:] = x[:300] ^ np.uint64(0b1011)  # planted pairs 3 bits apart
    monkeypatch.setattr(hashing, "_plan", lambda *a: m)
    whole = hashing.hamming_search(x[:500], x, threshold=6)
    for block in (64, 500, 1000):
        parts = list(hashing.hamming_search_blocks(x[:500], x, threshold=6, block=block))
        assert len(parts) == -(-500 // block)
        got = [np.concatenate(c) for c in zip(*parts)]
        for a, b in zip(got, whole):
            np.testing.assert_array_equal(a, b)


def test_cosine_pairs_equal_brute_force():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(300, 8)).astype(np.float32)
    emb[150:200] = emb[:50] + 0.05 * rng.normal(size=(50, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    sims = emb @ emb.T
    expected = {(i, j) for i, j in itertools.combinations(range(300), 2) if sims[i, j] >= 0.9}
    assert set(dedup.cosine_pairs(emb, 0.9, chunk=64)) == expected and len(expected) >= 50


def test_bad_arguments():
    with pytest.raises(ValueError, match="choose one of"):
        dedup.find_duplicates([], method="md5")
    with pytest.raises(ValueError, match="0..64"):
        dedup.find_duplicates([], method="phash", threshold=70)
    with pytest.raises(ValueError, match="cosine"):
        dedup.find_duplicates([], method="cnn", threshold=1.5)


def test_groups_csv(folder, tmp_path):
    result = dedup.find_duplicates(folder, progress=False)
    out = dedup.write_groups_csv(result, tmp_path / "d.csv", folder)
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["group", "file", "representative", "score", "kept", "reason", "format",
                             "link_target"]
    assert {r["file"] for r in rows} == set(PLANTED) | set(PLANTED.values())
    assert all(r["representative"] == PLANTED.get(r["file"], r["file"]) for r in rows)
    assert all((r["kept"] == "yes") == (r["file"] == r["representative"]) for r in rows)
    assert all(r["reason"].startswith("kept" if r["kept"] == "yes" else "copy; the kept file wins on") for r in rows)


def _copy_folder(src, dst):
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_app_dry_run_move_and_delete(folder, tmp_path, capsys):
    from apps import dedup as app

    work = _copy_folder(folder, tmp_path / "work")
    before = sorted(p.name for p in work.iterdir())
    assert app.main([str(work), "--out", str(tmp_path / "dry.csv")]) == 0
    assert sorted(p.name for p in work.iterdir()) == before  # a dry run changes nothing
    assert "5 duplicate groups" in capsys.readouterr().out

    assert app.main([str(work), "--out", str(tmp_path / "m.csv"), "--move-to",
                     str(tmp_path / "moved")]) == 0
    assert sorted(p.name for p in (tmp_path / "moved").iterdir()) == sorted(PLANTED)
    assert all((work / src).exists() for src in PLANTED.values())
    other = _copy_folder(folder, tmp_path / "other")  # same names: refused before any move
    assert app.main([str(other), "--out", str(tmp_path / "m2.csv"), "--move-to",
                     str(tmp_path / "moved")]) == 2
    assert sorted(p.name for p in other.iterdir()) == before
    (tmp_path / "notes.txt").write_text("mine")  # a file as the --move-to folder: refused by the parser
    with pytest.raises(SystemExit) as info:
        app.main([str(other), "--move-to", str(tmp_path / "notes.txt")])
    assert info.value.code == 2 and "expected a folder, got the file" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == before

    again = _copy_folder(folder, tmp_path / "again")
    assert app.main([str(again), "--out", str(tmp_path / "x.csv"), "--delete"]) == 2  # no --yes
    assert "--yes" in capsys.readouterr().err
    assert app.main([str(again), "--out", str(tmp_path / "x.csv"), "--delete", "--yes"]) == 0
    left = {p.name for p in again.iterdir()}
    assert left == set(before) - set(PLANTED)  # every representative (last copy) survives


def test_app_bad_input(tmp_path, capsys):
    from apps import dedup as app

    assert app.main([str(tmp_path / "missing")]) == 2
    (tmp_path / "empty").mkdir()
    assert app.main([str(tmp_path / "empty"), "--out", str(tmp_path / "o.csv")]) == 2
    assert app.main([str(tmp_path), "--threshold", "65"]) == 2
    assert app.main([str(tmp_path), "--method", "cnn", "--threshold", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 4 and "does not exist" in err and "is empty" in err


@pytest.mark.large
def test_cnn_embeddings_group_copies(folder):
    result = dedup.find_duplicates(folder, method="cnn", model="test_lenet5", threshold=0.995,
                                   progress=False)
    names = _group_names(result)
    assert ["coffee.png", "coffee_q30.jpg"] in names
    assert ["astronaut.png", "astronaut_small.jpg"] in names
