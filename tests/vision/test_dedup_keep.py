"""vision.dedup on real collections: the best copy is kept (and why), symlinks, huge groups, hostile
files, the OpenCV SSIM against scikit-image's, and the app's whole-run errors."""

import csv
import os
import sys
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

from keras_cv_apps.vision import dedup, keep, verify  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "image"))
from test_hostile_files import build_hostile_folder, lock  # noqa: E402


def _bgr(rgb):
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


@pytest.fixture()
def copies(tmp_path):
    """A PNG original with JPEG q40/q90 and downscaled copies; a 16-bit PNG with its 8-bit twin."""
    root = tmp_path / "c"
    root.mkdir()
    astro = skdata.astronaut()
    cv2.imwrite(str(root / "zz_original.png"), _bgr(astro))
    cv2.imwrite(str(root / "a_q40.jpg"), _bgr(astro), [cv2.IMWRITE_JPEG_QUALITY, 40])
    cv2.imwrite(str(root / "a_q90.jpg"), _bgr(astro), [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(str(root / "a_small.png"), _bgr(cv2.resize(astro, (256, 256), interpolation=cv2.INTER_AREA)))
    coffee16 = skdata.coffee().astype(np.uint16) * 257 + 100
    cv2.imwrite(str(root / "zz_coffee16.png"), coffee16[..., ::-1])
    cv2.imwrite(str(root / "coffee8.png"), _bgr(skdata.coffee()))
    cv2.imwrite(str(root / "camera.png"), skdata.camera())  # no copies
    return root


def _by_name(result):
    return {Path(f).name: (g, k) for g in result.groups for k, f in enumerate(g.files)}


def test_the_best_copy_is_kept_and_the_reason_given(copies):
    result = dedup.find_duplicates(copies, progress=False, workers=2)
    groups = sorted(sorted(p.name for p in g.files) for g in result.groups)
    assert groups == [["a_q40.jpg", "a_q90.jpg", "a_small.png", "zz_original.png"],
                      ["coffee8.png", "zz_coffee16.png"]]
    names = _by_name(result)
    assert names["a_q40.jpg"][0].representative.name == "zz_original.png"
    assert names["coffee8.png"][0].representative.name == "zz_coffee16.png"
    why = {n: g.reasons[k] for n, (g, k) in names.items()}
    assert why["zz_original.png"].startswith("kept (best copy): ")
    assert "lossless PNG over lossy JPEG" in why["a_q40.jpg"] and "lossless" in why["a_q90.jpg"]
    assert "512x512 pixels over 256x256" in why["a_small.png"]
    assert "16-bit over 8-bit" in why["coffee8.png"]
    assert names["a_q40.jpg"][0].labels[names["a_q40.jpg"][1]].startswith("JPEG q~40")


def test_a_true_colour_original_beats_its_palette_copies(tmp_path):
    """A 256-colour PNG, GIF and 8-bit BMP look lossless by format; the true-colour PNG must win
    although every palette copy has the shorter name, and the sniffer must say which are palettes."""
    from PIL import Image

    from keras_cv_apps.image.headers import sniff

    astro = Image.fromarray(skdata.astronaut())
    astro.save(tmp_path / "zz_original.png")
    quantised = astro.quantize(256)
    quantised.save(tmp_path / "p.png")
    quantised.save(tmp_path / "g.gif")
    quantised.save(tmp_path / "b.bmp")
    astro.save(tmp_path / "rgb.bmp")
    palette = {p.name: sniff(p.read_bytes()).palette for p in tmp_path.iterdir()}
    assert palette == {"zz_original.png": False, "p.png": True, "g.gif": True, "b.bmp": True, "rgb.bmp": False}
    result = dedup.find_duplicates([tmp_path / n for n in ("p.png", "g.gif", "b.bmp", "zz_original.png")],
                                   progress=False, root=tmp_path)
    (group,) = result.groups
    assert group.representative.name == "zz_original.png"
    why = dict(zip((p.name for p in group.files), group.reasons))
    assert "lossless PNG over 256-colour palette PNG" in why["p.png"]
    assert "palette GIF" in why["g.gif"] and "palette BMP" in why["b.bmp"]
    assert group.labels[[p.name for p in group.files].index("p.png")].startswith("PNG palette")


def test_keep_rules(copies):
    now = 1_700_000_000
    for k, name in enumerate(("a_q40.jpg", "a_q90.jpg", "a_small.png", "zz_original.png")):
        os.utime(copies / name, (now + 100 * k, now + 100 * k))  # a_q40 oldest, original newest

    def kept(rule):
        result = dedup.find_duplicates(copies, progress=False, keep_rule=rule)
        return _by_name(result)["a_q40.jpg"][0].representative.name

    assert kept("oldest") == "a_q40.jpg"
    assert kept("newest") == "zz_original.png"
    assert kept("largest") == "zz_original.png"
    assert kept("pattern:a_q9*") == "a_q90.jpg"
    with pytest.raises(ValueError, match="pattern:GLOB"):
        keep.check_rule("biggest")
    # among JPEGs alone the less compressed copy wins, and the reason names the qualities
    facts = [keep.Facts("x.jpg", False, "JPEG", False, 8, 100, 100, 3000, 40, 50.0, 0.0),
             keep.Facts("y.jpg", False, "JPEG", False, 8, 100, 100, 9000, 90, 50.0, 0.0)]
    best, reasons = keep.choose(facts)
    assert best == 1 and "JPEG quality ~90 over ~40" in reasons[0]


def test_sharpness_ignores_contrast_but_sees_blur(tmp_path):
    """Same size, same format: a contrast-stretched copy does not beat its original, a blurred one loses."""
    from keras_cv_apps.vision import fingerprint

    coffee = skdata.coffee()
    gray = cv2.resize(cv2.cvtColor(coffee, cv2.COLOR_RGB2GRAY), (128, 128), interpolation=cv2.INTER_AREA)
    base = fingerprint.sharpness(gray)
    stretched = fingerprint.sharpness(cv2.convertScaleAbs(gray, alpha=1.3, beta=-20))
    assert base / keep.SHARPNESS_STEP < stretched < base * keep.SHARPNESS_STEP  # a tie (clipping moves it a bit)
    assert fingerprint.sharpness(cv2.GaussianBlur(gray, (0, 0), 1.5)) < base / 2
    root = tmp_path / "s"
    root.mkdir()
    cv2.imwrite(str(root / "original.png"), _bgr(coffee))
    cv2.imwrite(str(root / "a_brighter.png"), _bgr(cv2.convertScaleAbs(coffee, alpha=1.3, beta=-20)))
    cv2.imwrite(str(root / "a_blurred.png"), _bgr(cv2.GaussianBlur(coffee, (0, 0), 2)))
    now = 1_700_000_000
    for k, name in enumerate(("original.png", "a_brighter.png", "a_blurred.png")):
        os.utime(root / name, (now + 10 * k, now + 10 * k))
    (group,) = dedup.find_duplicates(root, progress=False).groups
    assert group.representative.name == "original.png"
    why = dict(zip((f.name for f in group.files), group.reasons))
    assert "sharper" in why["a_blurred.png"] and "older" in why["a_brighter.png"]


def test_noise_or_a_watermark_does_not_make_a_copy_win():
    """Sharpness is judged against the group's median: extra edges tie, blur loses."""
    def png(name, sharp):
        return keep.Facts(name, False, "PNG", True, 8, 100, 100, 20000, None, sharp, 1_700_000_000.0)

    facts = [png("b__noise.png", 2.6), png("b__watermark.png", 1.7), png("b.png", 1.0), png("b__blur.png", 0.3)]
    best, reasons = keep.choose(facts)
    assert best == 2, reasons
    assert "sharper" in reasons[3] and "shorter" in reasons[0] and "shorter" in reasons[1]
    best, reasons = keep.choose([png("c.png", 1.0), png("c__blur.png", 0.4)])
    assert best == 0 and "sharper" in reasons[1]


def test_symlinks_keep_their_own_name_and_dangling_links_are_reported(copies, tmp_path, capsys):
    from apps import dedup as app

    os.symlink("camera.png", copies / "link_camera.png")
    os.symlink("missing.png", copies / "dangling.png")
    out = tmp_path / "d.csv"
    assert app.main([str(copies), "--out", str(out), "--delete", "--yes"]) == 0
    rows = {r["file"]: r for r in csv.DictReader(out.open())}
    assert rows["link_camera.png"]["link_target"] == "camera.png"
    assert rows["camera.png"]["kept"] == "yes"  # the real file, not the link
    assert "a real file over a symlink" in rows["camera.png"]["reason"]
    skipped = list(csv.DictReader((tmp_path / "d_skipped.csv").open()))
    assert skipped == [{"file": "dangling.png", "reason": "dangling symlink to missing.png"}]
    assert (copies / "camera.png").is_file() and not os.path.lexists(copies / "link_camera.png")
    assert {p.name for p in copies.iterdir()} == {"zz_original.png", "zz_coffee16.png", "camera.png",
                                                  "dangling.png"}
    assert "dangling symlink" in capsys.readouterr().out


def test_a_kept_symlink_protects_its_target(copies, tmp_path):
    """When a link is the copy kept (pattern rule), the file it points to is never deleted."""
    from apps import dedup as app

    os.symlink("camera.png", copies / "keep_me.png")
    assert app.main([str(copies), "--out", str(tmp_path / "d.csv"), "--keep", "pattern:keep_*",
                     "--delete", "--yes"]) == 0
    assert (copies / "camera.png").is_file() and (copies / "keep_me.png").is_file()


def test_huge_group_of_copies_is_not_verified_pair_by_pair(tmp_path, monkeypatch):
    root = tmp_path / "many"
    root.mkdir()
    ok, png = cv2.imencode(".png", skdata.camera()[::4, ::4])
    for k in range(300):
        (root / f"copy{k:03d}.png").write_bytes(png.tobytes())
    for k, name in enumerate(("astronaut", "coffee", "rocket", "chelsea")):
        cv2.imwrite(str(root / f"other{k}.png"), _bgr(getattr(skdata, name)()[::4, ::4]))
    cv2.imwrite(str(root / "camera_q50.jpg"), skdata.camera()[::4, ::4], [cv2.IMWRITE_JPEG_QUALITY, 50])
    calls = []
    real = verify.aligned_ssim
    monkeypatch.setattr(verify, "aligned_ssim", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = dedup.find_duplicates(root, progress=False)
    assert [len(g.files) for g in result.groups] == [301]
    assert len(calls) <= 10  # one check joins the JPEG to the 300 identical files
    g = result.groups[0]
    assert g.representative.name == "copy000.png" and g.scores.count(1.0) == 300


def test_opencv_ssim_equals_scikit_image():
    from skimage.metrics import structural_similarity

    cam = cv2.resize(skdata.camera(), (64, 64), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    for other in (cam, np.clip(cam + rng.normal(0, 20, cam.shape), 0, 255).astype(np.uint8),
                  cam[:, ::-1].copy(), cv2.resize(skdata.moon(), (64, 64))):
        ours = verify.ssim(cam, other)
        theirs = structural_similarity(cam, other, data_range=255, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False)
        assert ours == pytest.approx(theirs, abs=1e-4)


def test_thumb_store_spills_to_disk():
    store = verify.ThumbStore(memory_limit=3 * 64 * 64)
    thumbs = [np.full((64, 64), k, np.uint8) for k in range(7)]
    for t in thumbs:
        store.append(t)
    assert len(store) == 7 and all(np.array_equal(store[k], thumbs[k]) for k in range(7))
    store.close()


def test_hostile_files_are_skipped_with_their_reason(tmp_path, monkeypatch, capsys):
    from apps import dedup as app

    root = tmp_path / "h"
    expected = build_hostile_folder(root)
    lock(root / "locked.png", monkeypatch)
    out = tmp_path / "d.csv"
    assert app.main([str(root), "--out", str(out)]) == 0
    skipped = {r["file"]: r["reason"] for r in csv.DictReader((tmp_path / "d_skipped.csv").open())}
    for name, words in expected.items():
        assert words in skipped[name]
    assert skipped["dangling.png"].startswith("dangling symlink")
    assert skipped["loop_a.jpg"].startswith("symlink loop")
    rows = {r["file"]: r for r in csv.DictReader(out.open())}
    assert rows["link_to_cmyk.jpg"]["link_target"] == "cmyk.jpg"  # a link is a copy of its target
    assert "caf\\xe9.png" in out.read_text()  # the non-UTF-8 name, escaped, next to its twin
    printed = capsys.readouterr().out
    assert "skipped" in printed and "unusual files" in printed
    os.chmod(root / "locked.png", 0o644)


def test_app_whole_run_errors(tmp_path, capsys):
    from apps import dedup as app

    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    cv2.imwrite(str(tmp_path / "one.png"), skdata.camera())
    for path, words in (("empty", "is empty"), ("text", "no images"), ("one.png", "is a file")):
        assert app.main([str(tmp_path / path), "--out", str(tmp_path / "o.csv")]) == 2
        err = capsys.readouterr().err
        assert err.count("error:") == 1 and words in err
    assert app.main([str(tmp_path / "text"), "--keep", "biggest"]) == 2
    assert "pattern:GLOB" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_the_hash_path_imports_no_scipy_scikit_image_or_tensorflow(copies, tmp_path):
    """apps.dedup in a fresh process: OpenCV SSIM, so scipy / scikit-image / TensorFlow stay unloaded."""
    import subprocess

    out = tmp_path / "d.csv"
    code = ("import sys; from apps.dedup import main;"
            f"assert main([{str(copies)!r}, '--out', {str(out)!r}]) == 0;"
            "bad = [m for m in ('scipy', 'skimage', 'sklearn', 'tensorflow') if m in sys.modules];"
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    assert sum(1 for row in csv.DictReader(out.open()) if row["kept"] == "yes") == 2
