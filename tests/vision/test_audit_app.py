"""apps.dataset_audit on hostile files, with the package's autoencoders, and on bad input."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "image"))
from test_hostile_files import build_hostile_folder, lock  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CONV = REPO / "saved_models" / "autoencoder_train" / "conv"


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_hostile_files_are_reported_and_the_run_goes_on(tmp_path, monkeypatch):
    from apps import dataset_audit

    root = tmp_path / "h"
    expected = build_hostile_folder(root)
    lock(root / "locked.png", monkeypatch)
    cv2.imwrite(str(root / "camera.png"), skdata.camera())
    out = tmp_path / "out"
    assert dataset_audit.main([str(root), "--out", str(out), "--quiet", "--embedding", "none"]) == 0
    skipped = {r["file"]: r["reason"] for r in _rows(out / "skipped.csv")}
    for name, words in expected.items():
        assert words in skipped[name], name
    assert skipped["dangling.png"].startswith("dangling symlink") and "loop_a.jpg" in skipped
    corrupt = {r["file"]: r["detail"] for r in _rows(out / "flags.csv") if r["issue"] == "corrupt"}
    assert set(corrupt) == set(skipped) and corrupt["page.jpg"] == skipped["page.jpg"]
    summary = json.loads((out / "summary.json").read_text())
    notes = {n["file"]: n["note"] for n in summary["notes"]}
    assert "first frame" in notes["anim.gif"] and "CMYK" in notes["cmyk.jpg"]
    assert "16-bit" in notes["deep16.tif"] and "UTF-8" in notes["caf\\xe9.png"]
    # the 16-bit TIFF is the copy dedup keeps, so the exact-duplicate flags go to the others
    exact = {r["file"] for r in _rows(out / "flags.csv") if r["issue"] == "exact_duplicate"}
    kept = {r["file"] for r in _rows(out / "duplicates.csv") if r["kept"] == "yes"}
    assert "deep16.tif" in kept and "deep16.tif" not in exact and "caf\\xe9.png" in exact
    page = (out / "report.html").read_text()
    assert "Files that could not be read" in page and "skipped.csv" in page and "KEEP" in page
    os.chmod(root / "locked.png", 0o644)


def test_unsupported_formats_are_flagged_as_such_not_as_corrupt(tmp_path):
    from apps import dataset_audit

    root = tmp_path / "phone"
    root.mkdir()
    for k, crop in enumerate((skdata.camera()[:96, :96], skdata.camera()[200:296, 200:296])):
        cv2.imwrite(str(root / f"ok{k}.png"), crop)
    (root / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    out = tmp_path / "out"
    assert dataset_audit.main([str(root), "--out", str(out), "--quiet", "--embedding", "none"]) == 0
    issues = {r["file"]: r["issue"] for r in _rows(out / "flags.csv")
              if r["issue"] in ("corrupt", "unsupported_format")}
    assert issues == {"IMG_0001.HEIC": "unsupported_format", "broken.jpg": "corrupt"}
    counts = json.loads((out / "summary.json").read_text())["issue_counts"]
    assert counts["unsupported_format"] == 1 and counts["corrupt"] == 1


def _digits_folder(root, n=12):
    from sklearn.datasets import load_digits

    root.mkdir()
    digits = load_digits().images[:n]
    for k, d in enumerate(digits):
        cv2.imwrite(str(root / f"d{k}.png"), cv2.resize((d * 16).astype(np.uint8), (28, 28)))
    cv2.imwrite(str(root / "photo.png"), cv2.resize(skdata.camera(), (28, 28)))  # not a digit
    return root


def test_tflite_autoencoder_encoder_decoder_pair(tmp_path):
    root = _digits_folder(tmp_path / "digits")
    out = tmp_path / "out"
    code = ("import sys; from apps.dataset_audit import main;"
            f"assert main([{str(root)!r}, '--out', {str(out)!r}, '--quiet', '--embedding', 'none', "
            f"'--autoencoder', {str(CONV / 'encoder.tflite')!r}]) == 0;"
            "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, capture_output=True, cwd=REPO)
    rows = _rows(out / "outliers.csv")
    assert "autoencoder" in rows[0]
    scores = {r["file"]: float(r["autoencoder"]) for r in rows}
    assert max(scores, key=scores.get) == "photo.png"  # the digit autoencoder cannot rebuild a photo


def test_bad_autoencoders_fail_before_the_scan(tmp_path, capsys):
    from apps import dataset_audit

    root = _digits_folder(tmp_path / "digits", n=3)
    (tmp_path / "notes.txt").write_text("x")
    for model, words in ((CONV / "decoder.tflite", "is a decoder"),
                         (REPO / "saved_models" / "lenet_train" / "model.tflite", "not an image to an image"),
                         (tmp_path / "notes.txt", ".keras or .tflite")):
        assert dataset_audit.main([str(root), "--out", str(tmp_path / "o"), "--autoencoder", str(model)]) == 2
        err = capsys.readouterr().err
        assert err.count("error:") == 1 and words in err
    assert not (tmp_path / "o").exists()


def test_keras_autoencoder_of_the_package(tmp_path):
    from keras_cv_apps import models
    from keras_cv_apps.export import save_keras
    from keras_cv_apps.vision import outliers

    save_keras(models.create("test_autoencoder_conv"), tmp_path / "ae.keras")
    save_keras(models.create("test_lenet5"), tmp_path / "clf.keras")
    ae = outliers.load_autoencoder(tmp_path / "ae.keras")  # needs the package's classes registered
    assert ae.image_shape == (16, 16, 1)
    root = _digits_folder(tmp_path / "digits", n=4)
    errors = outliers.autoencoder_errors(ae, sorted(root.iterdir()))
    assert errors.shape == (5,) and np.isfinite(errors).all()
    with pytest.raises(ValueError, match="not an autoencoder"):
        outliers.load_autoencoder(tmp_path / "clf.keras")


def test_sequential_models_written_by_plain_keras(tmp_path):
    """A loaded Sequential model has no ``.output``: its shapes still decide, with no traceback."""
    import keras

    from keras_cv_apps.vision import outliers

    clf = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D(),
                            keras.layers.Dense(3)])
    ae = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                           keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")])
    clf.save(tmp_path / "clf.keras")
    ae.save(tmp_path / "ae.keras")
    with pytest.raises(ValueError, match=r"maps \(16, 16, 1\) to \(3,\)"):
        outliers.load_autoencoder(tmp_path / "clf.keras")
    loaded = outliers.load_autoencoder(tmp_path / "ae.keras")
    root = _digits_folder(tmp_path / "digits", n=2)
    errors = outliers.autoencoder_errors(loaded, sorted(root.iterdir()))
    assert loaded.image_shape == (16, 16, 1) and np.isfinite(errors).all() and (errors > 0).all()


def test_whole_run_errors(tmp_path, capsys):
    from apps import dataset_audit

    (tmp_path / "empty").mkdir()
    cv2.imwrite(str(tmp_path / "one.png"), skdata.camera())
    for path, words in (("empty", "is empty"), ("one.png", "is a file")):
        assert dataset_audit.main([str(tmp_path / path), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.count("error:") == 1 and words in err
    assert not (tmp_path / "o").exists()


@pytest.mark.large
def test_report_renders_in_headless_chromium(tmp_path):
    """The report opens in a real browser (skipped where Debian's chromium is not installed)."""
    from benchmarks.render_report import chromium, screenshot

    if chromium() is None:
        pytest.skip("chromium is not installed")
    from apps import dataset_audit

    root = tmp_path / "data"
    root.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        cv2.imwrite(str(root / f"{name}.png"), cv2.cvtColor(getattr(skdata, name)(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / "coffee_q40.jpg"), cv2.cvtColor(skdata.coffee(), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 40])
    assert dataset_audit.main([str(root), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    shot = screenshot(tmp_path / "out" / "report.html", tmp_path / "shot.png", height=1200)
    image = cv2.imread(str(tmp_path / "shot.png"))
    assert shot is not None and image.shape == (1200, 1280, 3) and image.std() > 10  # not a blank page
