"""Classical features, enhancement, outlier ranking and the EDA report on real photos."""

import json

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

from keras_cv_apps.vision import eda, enhance, features, outliers, quality  # noqa: E402


@pytest.fixture(scope="module")
def astronaut():
    return skdata.astronaut()


def test_feature_shapes(astronaut):
    assert features.hog(astronaut).shape == (1764,)
    assert features.hog(astronaut, size=32).shape == (324,)
    lbp = features.lbp_histogram(astronaut)
    hsv = features.hsv_histogram(astronaut)
    assert lbp.shape == (10,) and hsv.shape == (128,)
    assert lbp.sum() == pytest.approx(1.0) and hsv.sum() == pytest.approx(1.0)
    assert features.hu_moments(astronaut).shape == (7,)
    points, desc = features.orb(astronaut, n_features=200)
    assert points.shape[1] == 2 and desc.shape == (len(points), 32) and desc.dtype == np.uint8
    assert 50 < len(points) <= 200
    assert features.orb(np.zeros((64, 64), np.uint8))[1].shape == (0, 32)
    edges = features.canny(astronaut)
    assert edges.shape == astronaut.shape[:2] and set(np.unique(edges)) <= {0, 255}
    assert features.sobel(astronaut).shape == astronaut.shape[:2]
    assert features.classical_embedding(astronaut).shape == (462,)


def test_features_respond_to_the_image(astronaut):
    flipped = np.ascontiguousarray(astronaut[:, ::-1])
    assert np.allclose(features.hog(astronaut), features.hog(astronaut.copy()))
    assert np.abs(features.hog(astronaut) - features.hog(flipped)).mean() > 0.02
    # colour histogram ignores a mirror; an all-blue image puts its mass in other bins
    assert np.allclose(features.hsv_histogram(flipped), features.hsv_histogram(astronaut), atol=1e-6)
    blue = np.zeros_like(astronaut)
    blue[..., 2] = 255
    assert features.hsv_histogram(blue).max() == 1.0
    flat = np.full((64, 64), 100, np.uint8)
    assert features.canny(flat).max() == 0 and features.sobel(flat).max() == 0


def test_hu_moments_rotation_invariant():
    shape = np.zeros((300, 300), np.uint8)
    cv2.ellipse(shape, (150, 150), (90, 40), 0, 0, 360, 255, -1)
    cv2.rectangle(shape, (140, 100), (200, 130), 128, -1)
    turn = cv2.warpAffine(shape, cv2.getRotationMatrix2D((150, 150), 33, 1.0), (300, 300))
    hu, hu_turned = features.hu_moments(shape), features.hu_moments(turn)
    assert np.allclose(hu[:4], hu_turned[:4], rtol=0.02)
    squashed = cv2.resize(shape, (300, 150))
    assert not np.allclose(hu[:2], features.hu_moments(squashed)[:2], rtol=0.02)


def test_haar_cascade_finds_the_astronauts_face(astronaut):
    faces = features.detect_faces(astronaut)
    assert len(faces) >= 1
    x, y, w, h = faces[0]
    assert 150 < x + w / 2 < 280 and 50 < y + h / 2 < 170  # her face, top centre-left
    eyes = features.detect_eyes(astronaut, faces[:1])
    assert len(eyes) >= 1
    assert all(x <= ex and ex + ew <= x + w and y <= ey <= y + h for ex, ey, ew, eh in eyes)
    assert len(features.detect_faces(skdata.coffee())) == 0


def test_enhancements(astronaut):
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    assert enhance.gamma(gray, 2.0)[gray == 64][0] == round(255 * (64 / 255) ** 0.5)
    assert enhance.gamma(gray, 2.0).mean() > gray.mean() > enhance.gamma(gray, 0.5).mean()
    flat = (gray * 0.2 + 100).astype(np.uint8)
    assert enhance.clahe(flat).std() > 2 * flat.std()
    assert enhance.clahe(astronaut).shape == astronaut.shape
    noisy = np.clip(gray + np.random.default_rng(0).normal(0, 20, gray.shape), 0, 255).astype(np.uint8)
    assert quality.noise_sigma(enhance.denoise(noisy, strength=20)) < 0.5 * quality.noise_sigma(noisy)
    soft = cv2.GaussianBlur(gray, (0, 0), 2)
    lap = lambda im: cv2.Laplacian(im.astype(np.float32), cv2.CV_32F).var()  # noqa: E731
    assert lap(enhance.unsharp_mask(soft, amount=1.5)) > 2 * lap(soft)
    with pytest.raises(ValueError, match="gamma must be > 0"):
        enhance.gamma(gray, 0)


@pytest.fixture(scope="module")
def crops_with_outlier():
    """30 random crops of one photo plus one planted outlier (a flat magenta card) last."""
    rng = np.random.default_rng(0)
    photo = skdata.chelsea()
    images = []
    for _ in range(30):
        y, x = rng.integers(0, 120), rng.integers(0, 250)
        images.append(np.ascontiguousarray(photo[y : y + 160, x : x + 160]))
    card = np.zeros((160, 160, 3), np.uint8)
    card[..., 0], card[..., 2] = 230, 200
    images.append(card)
    return images


@pytest.mark.parametrize("method", ["zscore", "iforest", "ocsvm"])
def test_each_detector_ranks_the_planted_outlier_first(crops_with_outlier, method):
    paths = [f"img{i}.png" for i in range(len(crops_with_outlier))]
    feats = np.stack([features.classical_embedding(im) for im in crops_with_outlier])
    rows = [quality.image_stats(im) for im in crops_with_outlier]
    stats = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    result = outliers.find_outliers(paths, features=feats, stats=stats, methods=[method])
    ranked = result.ranked()
    assert ranked[0][0] == paths[-1]
    assert ranked[0][1] >= outliers.OUTLIER_THRESHOLD
    assert ranked[len(paths) // 2][1] < min(ranked[0][1] - 0.1, outliers.OUTLIER_THRESHOLD + 0.01)
    assert all(0.0 <= s <= 1.0 for _, s in ranked)


def test_reconstruction_scores_and_robust_z():
    z = outliers.robust_z([1.0, 2.0, 3.0, 4.0, 100.0])
    assert z[-1] == pytest.approx(97 / 1.4826) and z[2] == 0.0
    errors = np.array([0.01, 0.012, 0.011, 0.009, 0.2, 0.01])
    scores = outliers.reconstruction_scores(errors)
    assert int(np.argmax(scores)) == 4 and scores[4] > 0.9
    with pytest.raises(ValueError, match="choose from"):
        outliers.find_outliers(["a", "b", "c"], errors=errors[:3], methods=["lof"])
    with pytest.raises(ValueError, match="needs its input"):
        outliers.find_outliers(["a", "b", "c"], errors=errors[:3], methods=["iforest"])
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        outliers.find_outliers(["a", "b", "c"], errors=errors[:3], threshold=2)


@pytest.mark.large
def test_autoencoder_errors_with_a_keras_model(tmp_path, crops_with_outlier):
    import keras

    from keras_cv_apps.image.io import list_images

    for i, im in enumerate(crops_with_outlier):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    paths = list_images(tmp_path)
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.AveragePooling2D(16)(inputs) * keras.ops.ones((1, 16, 16, 3)))
    errors = outliers.autoencoder_errors(model, paths)  # error = variance within each image
    assert errors.shape == (len(paths),)
    assert int(np.argmin(errors)) == len(paths) - 1  # the flat card is rebuilt perfectly


def _write(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@pytest.mark.parametrize("embedding", ["pca", pytest.param("tsne", marks=pytest.mark.large)])
def test_eda_report_writes_html_and_json(tmp_path, crops_with_outlier, embedding):
    root = tmp_path / "data"
    for i, im in enumerate(crops_with_outlier[:12]):
        _write(root / "cats" / f"{i}.png", im)
    for i, im in enumerate(crops_with_outlier[12:16]):
        _write(root / "more" / f"{i}.jpg", (im * 0.1).astype(np.uint8))  # dark
    (root / "more" / "bad.png").write_bytes(b"\x89PNG broken")
    from keras_cv_apps.image.io import list_images

    samples = eda.SampleCollector(root, per_class=3)
    q = quality.assess(list_images(root), features=True, progress=False, on_image=samples)
    out = outliers.find_outliers(q.paths, features=q.features, stats=q.stats)
    summary = eda.write_report(tmp_path / "out", q, root, samples=samples, outliers=out,
                               embedding=embedding)
    saved = json.loads((tmp_path / "out" / "eda.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert {"num_images", "num_unreadable", "unreadable", "classes", "imbalance_ratio", "size",
            "per_class", "issue_counts", "thresholds", "embedding"} <= set(saved)
    assert saved["classes"] == {"cats": 12, "more": 4} and saved["imbalance_ratio"] == 3.0
    assert saved["num_unreadable"] == 1 and saved["issue_counts"]["dark"] == 4
    assert saved["embedding"]["method"] == embedding
    assert saved["per_class"]["more"]["brightness"] < 0.5 * saved["per_class"]["cats"]["brightness"]
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("data:image/jpeg;base64,") >= 3 + 3 + 4  # samples, worst dark examples
    assert page.count("data:image/png;base64,") == 4  # counts, sizes, per-class stats, map
    assert "bad.png" in page and "<h3 id='issue-dark'>dark: 4 files</h3>" in page
    assert len(samples.samples["cats"]) == 3


def test_dataset_audit_app_end_to_end(tmp_path):
    import csv
    import subprocess
    import sys

    from apps import dataset_audit

    root = tmp_path / "imgs"
    photos = {n: getattr(skdata, n)() for n in ("astronaut", "coffee", "chelsea", "rocket")}
    for name, im in photos.items():
        _write(root / "a" / f"{name}.png", im)
    _write(root / "a" / "coffee_copy.png", photos["coffee"])
    _write(root / "a" / "astronaut_small.jpg", cv2.resize(photos["astronaut"], (200, 200)))
    _write(root / "b" / "dark.png", (skdata.retina()[::3, ::3] * 0.1).astype(np.uint8))
    _write(root / "b" / "blurry.png", cv2.GaussianBlur(skdata.immunohistochemistry(), (0, 0), 4))
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    out = tmp_path / "out"
    code = ("import sys; from apps.dataset_audit import main;"  # a fresh process: TF not loaded
            f"assert main([{str(root)!r}, '--out', {str(out)!r}, '--quiet']) == 0;"
            "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, capture_output=True)
    with open(out / "flags.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["file", "issue", "score", "detail"]
    flags = {(r["file"], r["issue"]) for r in rows}
    assert {("b/dark.png", "dark"), ("b/blurry.png", "blurry"), ("b/broken.jpg", "corrupt"),
            ("a/coffee_copy.png", "exact_duplicate"),
            ("a/astronaut_small.jpg", "near_duplicate")} <= flags
    assert {issue for _, issue in flags} <= set(dataset_audit.FLAG_ISSUES)
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_images"] == 8 and summary["num_unreadable"] == 1
    assert summary["issue_counts"]["corrupt"] == 1 and summary["classes"] == {"a": 6, "b": 2}
    with open(out / "duplicates.csv", newline="") as f:
        dup = list(csv.DictReader(f))
    assert {"a/coffee.png", "a/coffee_copy.png"} <= {r["file"] for r in dup}
    with open(out / "outliers.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 8
    assert "broken.jpg" in (out / "report.html").read_text()


def test_dataset_audit_app_bad_paths(tmp_path, capsys):
    from apps import dataset_audit

    assert dataset_audit.main([str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    assert dataset_audit.main([str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no images" in capsys.readouterr().err
    assert dataset_audit.main([str(tmp_path / "empty"), "--autoencoder", "nope.keras"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.large
def test_dataset_audit_app_on_the_demo_set(tmp_path):
    import csv

    from apps import dataset_audit

    assert dataset_audit.main(["--out", str(tmp_path), "--quiet"]) == 0
    with open(tmp_path / "flags.csv", newline="") as f:
        flags = {(r["file"], r["issue"]) for r in csv.DictReader(f)}
    assert {("photos/dark_immunohistochemistry.jpg", "dark"), ("science/blurry_retina.jpg", "blurry"),
            ("science/moon_copy.png", "exact_duplicate"),
            ("textures/corrupt_gravel.jpg", "corrupt")} <= flags


def test_a_large_embedding_map_is_fitted_on_a_sample_and_maps_every_image(monkeypatch):
    """Past MAP_FIT_ROWS images the PCA map is fitted on a seeded sample: on features with real
    structure (three clusters) its axes match the full fit's (up to sign) and every image gets a point."""
    from keras_cv_apps.vision import eda

    rng = np.random.default_rng(1)
    centres = rng.normal(0, 3, (3, 30))
    x = (centres[rng.integers(0, 3, 5000)] + rng.normal(0, 1, (5000, 30))).astype(np.float32)
    full = eda.embed_2d(x)
    monkeypatch.setattr(eda, "MAP_FIT_ROWS", 800)
    sampled = eda.embed_2d(x)
    assert sampled["points"].shape == (5000, 2) and sampled["fitted_on"] == 800
    for axis in range(2):
        assert abs(np.corrcoef(sampled["points"][:, axis], full["points"][:, axis])[0, 1]) > 0.99
    np.testing.assert_allclose(sampled["explained_variance"], full["explained_variance"], rtol=0.1)
