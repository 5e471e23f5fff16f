"""image.io: robust decoding of awkward files, folder listing, parallel ordered iteration."""

import json
import subprocess
import sys

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
from PIL import Image  # noqa: E402

from keras_cv_apps.image import io  # noqa: E402
from keras_cv_apps.vision import demo  # noqa: E402


def _photo(h=60, w=90):
    """An asymmetric RGB test image: a red block top-left on a gradient."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 1] = np.linspace(0, 200, w, dtype=np.uint8)[None, :]
    img[: h // 3, : w // 3] = (255, 0, 0)
    return img


def test_rgb_png_round_trip_and_gray_mode(tmp_path):
    img = _photo()
    Image.fromarray(img).save(tmp_path / "a.png")
    out = io.read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and np.array_equal(out, img)  # RGB, not BGR
    gray = io.read_image(tmp_path / "a.png", mode="gray")
    assert gray.shape == img.shape[:2]
    assert np.abs(gray.astype(int) - cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)).max() <= 1


def test_exif_orientation_applied(tmp_path):
    img = _photo()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    Image.fromarray(img).save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    out = io.read_image(tmp_path / "r.jpg")
    assert out.shape == (90, 60, 3)
    expected = np.rot90(img, k=-1)
    assert np.abs(out.astype(int) - expected).mean() < 6
    rec = next(io.iter_images([tmp_path / "r.jpg"], max_side=30, progress=False))
    assert rec.shape == (90, 60, 3) and max(rec.image.shape[:2]) == 30  # reduced decode, shape kept
    Image.fromarray(img).save(tmp_path / "r.png", exif=exif.tobytes())  # PNG eXIf chunk
    assert np.array_equal(io.read_image(tmp_path / "r.png"), expected)


def test_16bit_and_alpha_and_palette(tmp_path):
    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), ramp)
    out = io.read_image(tmp_path / "g16.png")
    assert out.shape == (64, 64, 3)
    assert np.abs(out[..., 0].astype(int) - np.round(ramp / 257.0)).max() <= 1

    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 10:, 3] = 255  # left half transparent -> white, right half opaque red
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = io.read_image(tmp_path / "a.png")
    assert out.shape == (20, 20, 3)
    assert (out[:, :10] == 255).all() and (out[:, 10:] == (200, 0, 0)).all()

    Image.fromarray(_photo()).convert("P").save(tmp_path / "p.gif")
    assert io.read_image(tmp_path / "p.gif").shape == (60, 90, 3)


def test_bad_files_raise_one_sentence(tmp_path):
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    ok, buf = cv2.imencode(".jpg", _photo(200, 200))
    (tmp_path / "cut.jpg").write_bytes(buf.tobytes()[: len(buf) // 2])
    for name in ("text.jpg", "empty.png", "cut.jpg"):
        with pytest.raises(io.ImageReadError, match=name):
            io.read_image(tmp_path / name)
    with pytest.raises(io.ImageReadError, match="truncated"):
        io.read_image(tmp_path / "cut.jpg")
    with pytest.raises(FileNotFoundError):
        io.read_image(tmp_path / "missing.png")
    # data after the end-of-image marker (e.g. a phone's "motion photo" video) is fine
    (tmp_path / "motion.jpg").write_bytes(buf.tobytes() + b"\x00\x00ftypmp42" + bytes(5000))
    assert io.read_image(tmp_path / "motion.jpg").shape == (200, 200, 3)
    with pytest.raises(ValueError, match="mode"):
        io.read_image(tmp_path / "cut.jpg", mode="bgr")


def test_list_images(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.list_images(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="no images"):
        io.list_images(tmp_path)
    (tmp_path / "sub").mkdir()
    for name in ("b.PNG", "a.jpg", "sub/c.webp"):
        (tmp_path / name).write_bytes(b"?")  # corrupt files with image extensions count
    assert [p.name for p in io.list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.webp"]
    assert [p.name for p in io.list_images(tmp_path, recursive=False)] == ["a.jpg", "b.PNG"]


def test_iter_images_keeps_order_and_reports_errors(tmp_path):
    paths = []
    for k in range(30):
        p = tmp_path / f"{k:02d}.png"
        if k % 7 == 3:
            p.write_bytes(b"broken")
        else:
            cv2.imwrite(str(p), np.full((8 + k, 10, 3), k, np.uint8))
        paths.append(p)
    records = list(io.iter_images(paths, workers=3, progress=False))
    assert [r.path for r in records] == paths
    for k, r in enumerate(records):
        if k % 7 == 3:
            assert r.image is None and "broken" not in r.error and r.path.name in r.error
        else:
            assert r.error is None and r.shape == (8 + k, 10, 3) and r.image[0, 0, 0] == k
            assert r.nbytes == paths[k].stat().st_size


def test_records_carry_the_files_mtime_and_whether_it_is_a_link(tmp_path):
    import os

    target = tmp_path / "photo.png"
    cv2.imwrite(str(target), np.full((6, 5, 3), 9, np.uint8))
    os.utime(target, (1_000_000_000, 1_234_567_890))
    link = tmp_path / "link.png"
    link.symlink_to(target)
    plain, linked = io.iter_images([target, link], workers=2, progress=False)
    assert (plain.mtime, plain.is_link) == (1_234_567_890, False)
    assert (linked.mtime, linked.is_link) == (1_234_567_890, True)  # the target's time, as dedup's keep rule uses


def test_decoding_threads_run_blas_on_one_thread_and_restore_it_after(tmp_path):
    """Per-image matrix products in several decoding threads must not each start BLAS threads."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})

    paths = []
    for k in range(6):
        paths.append(tmp_path / f"{k}.png")
        cv2.imwrite(str(paths[-1]), np.full((8, 8), k, np.uint8))
    with threadpool_limits(2, user_api="blas"):
        assert blas_threads() == [2]
        inside = [(blas_threads(), r.image) for r in io.iter_images(paths, workers=2, progress=False,
                                                                    postprocess=lambda im: blas_threads())]
        assert all(seen == [1] and worker == [1] for seen, worker in inside)
        assert blas_threads() == [2]  # as it was once the iteration is over


def test_demo_set_matches_its_ground_truth(tmp_path):
    root = demo.make_demo_set(tmp_path / "demo", seed=0)
    truth = json.loads((root / "ground_truth.json").read_text())
    files = {p.relative_to(root).as_posix() for p in io.list_images(root)}
    listed = set(truth["clean"]) | set(truth["transforms"]) | set(truth["degradations"])
    assert files == listed | set(truth["corrupt"])
    assert {"dark", "light", "blurry", "noisy", "grayscale", "odd_aspect_ratio",
            "low_information"} == set(truth["degradations"].values())
    errors = [r for r in io.iter_images(sorted(root / f for f in files), progress=False) if r.error]
    assert [r.path.relative_to(root).as_posix() for r in errors] == truth["corrupt"]
    gray = io.read_image(root / "science/gray_hubble.png")
    assert gray.ndim == 3 and np.array_equal(gray[..., 0], gray[..., 2])


def test_import_is_light():
    code = ("import sys, keras_cv_apps.image.io, keras_cv_apps.vision.dedup;"
            "print(any(m in sys.modules for m in ('tensorflow', 'keras', 'cv2', 'sklearn')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
