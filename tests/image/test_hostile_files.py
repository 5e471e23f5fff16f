"""image.io on hostile files: each one is built here and read (or refused) with its reason."""

import os
import struct
import zlib

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
from PIL import Image  # noqa: E402

from keras_cv_apps.image import headers, io  # noqa: E402


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(side: int = 30_000) -> bytes:
    """A PNG header announcing ``side`` x ``side`` gray pixels, with only a few rows of data."""
    rows = zlib.compress(b"\x00" * (side + 1) * 8, 9)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", rows) + _chunk(b"IEND", b""))


def _photo(h=96, w=128):
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None]
    img[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    img[: h // 3, : w // 3] = (255, 0, 0)
    return img


def build_hostile_folder(root) -> dict:
    """Write every hostile case into ``root``; returns name -> expected words of its reason (or
    None for files that must be read, with the note they should carry)."""
    root.mkdir(parents=True, exist_ok=True)
    photo = _photo()
    (root / "bomb.png").write_bytes(bomb_png())
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(_photo(200, 200), cv2.COLOR_RGB2BGR))
    (root / "truncated.jpg").write_bytes(buf.tobytes()[: len(buf) // 2])
    (root / "zero.png").write_bytes(b"")
    (root / "page.jpg").write_text("<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n")
    cv2.imwrite(str(root / "deep16.tif"), (photo.astype(np.uint16) * 257)[..., ::-1])
    frames = [Image.fromarray(photo), Image.fromarray(np.ascontiguousarray(photo[:, ::-1]))]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.fromarray(photo).convert("CMYK").save(root / "cmyk.jpg", quality=92)
    cv2.imwrite(str(root / "locked.png"), photo)
    os.symlink("loop_b.jpg", root / "loop_a.jpg")
    os.symlink("loop_a.jpg", root / "loop_b.jpg")
    os.symlink("gone.png", root / "dangling.png")
    os.symlink("cmyk.jpg", root / "link_to_cmyk.jpg")
    raw = os.path.join(os.fsencode(root), b"caf\xe9.png")  # Latin-1 bytes: not valid UTF-8
    ok, png = cv2.imencode(".png", photo[..., ::-1])
    with open(raw, "wb") as f:
        f.write(png.tobytes())
    return {
        "bomb.png": "900 megapixels is over the 100,000,000-pixel limit",
        "truncated.jpg": "truncated",
        "zero.png": "empty",
        "page.jpg": "holds text, not image data",
        "locked.png": "permission denied",
    }


def lock(path, monkeypatch):
    """Make ``path`` unreadable: chmod 000 where that works, else (as root, which ignores modes)
    simulate the EACCES the kernel would return to an ordinary user."""
    os.chmod(path, 0)
    if os.geteuid() != 0:
        return
    real_open = open

    def guarded(file, *args, **kwargs):
        if os.fspath(file) == os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded)


@pytest.fixture()
def hostile(tmp_path, monkeypatch):
    expected = build_hostile_folder(tmp_path / "h")
    lock(tmp_path / "h" / "locked.png", monkeypatch)
    yield tmp_path / "h", expected
    os.chmod(tmp_path / "h" / "locked.png", 0o644)


def test_scan_folder_lists_links_and_skips_loops_and_dangling(hostile):
    root, _ = hostile
    listing = io.scan_folder(root)
    names = [io.display_path(p.name) for p in listing.files]
    assert "link_to_cmyk.jpg" in names and "cmyk.jpg" in names  # the link under its own name
    assert "caf\\xe9.png" in names
    assert listing.links == {root / "link_to_cmyk.jpg": "cmyk.jpg"}
    skipped = {p.name: why for p, why in listing.skipped}
    assert skipped["dangling.png"] == "dangling symlink to gone.png"
    assert skipped["loop_a.jpg"].startswith("symlink loop") and "loop_b.jpg" in skipped


def test_formats_without_a_decoder_are_skipped_by_name_and_avif_is_read(tmp_path):
    from PIL import features

    (tmp_path / "phone.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    (tmp_path / "camera.dng").write_bytes(b"II*\x00" + b"\x00" * 64)
    (tmp_path / "notes.txt").write_text("not an image")  # not an image name: not listed at all
    cv2.imwrite(str(tmp_path / "ok.png"), _photo())
    avif = features.check("avif")
    if avif:
        Image.fromarray(_photo()).save(tmp_path / "photo.avif", quality=90)
    listing = io.scan_folder(tmp_path)
    assert [p.name for p in listing.files] == ["ok.png"] + (["photo.avif"] if avif else [])
    assert {p.name: why for p, why in listing.skipped} == {
        "phone.HEIC": "HEIC files are not supported; convert it to JPEG or PNG to include it",
        "camera.dng": "camera RAW files are not supported; convert it to JPEG or PNG to include it"}
    if avif:
        image = io.read_image(tmp_path / "photo.avif")
        assert image.shape == (96, 128, 3) and np.abs(image.astype(int) - _photo()).mean() < 4


def test_every_hostile_file_is_read_or_refused_with_its_reason(hostile):
    root, expected = hostile
    records = {io.display_path(r.path.name): r for r in
               io.iter_images(io.scan_folder(root).files, progress=False, workers=2)}
    for name, words in expected.items():
        assert records[name].image is None and words in records[name].error, (name, records[name].error)
        assert name in records[name].error  # the reason names the file
    deep = records["deep16.tif"]
    assert deep.error is None and deep.info.bit_depth == 16 and "16-bit" in deep.note
    assert np.abs(deep.image.astype(int) - _photo()).max() <= 1
    anim = records["anim.gif"]
    assert anim.error is None and anim.info.frames == 2 and "first frame" in anim.note
    cmyk = records["cmyk.jpg"]
    assert cmyk.error is None and cmyk.info.cmyk and np.abs(cmyk.image.astype(int) - _photo()).mean() < 8
    odd = records["caf\\xe9.png"]
    assert odd.error is None and "not valid UTF-8" in odd.note and np.array_equal(odd.image, _photo())
    assert records["link_to_cmyk.jpg"].error is None


def test_pixel_limit_is_checked_on_the_header(tmp_path):
    """The bomb never reaches a decoder; an ordinary file is refused only when over the limit."""
    info = headers.sniff(bomb_png())
    assert (info.width, info.height, info.format) == (30_000, 30_000, "PNG")
    cv2.imwrite(str(tmp_path / "a.png"), _photo())
    assert io.read_image(tmp_path / "a.png", max_pixels=96 * 128).shape == (96, 128, 3)
    with pytest.raises(io.ImageReadError, match="12,287-pixel limit"):
        io.read_image(tmp_path / "a.png", max_pixels=96 * 128 - 1)
    with pytest.raises(ValueError, match="max_pixels"):
        next(io.iter_images([tmp_path / "a.png"], max_pixels=0, progress=False))


@pytest.mark.parametrize("quality", [20, 40, 75, 90, 97])
def test_jpeg_quality_estimate_from_its_table(tmp_path, quality):
    ok, buf = cv2.imencode(".jpg", _photo(), [cv2.IMWRITE_JPEG_QUALITY, quality])
    info = headers.sniff(buf.tobytes())
    assert info.format == "JPEG" and (info.height, info.width, info.channels) == (96, 128, 3)
    assert abs(info.quality - quality) <= 2 and not info.lossless
    ok, png = cv2.imencode(".png", (_photo().astype(np.uint16) * 257))
    assert headers.sniff(png.tobytes()).bit_depth == 16 and headers.sniff(png.tobytes()).lossless


def test_check_folder_whole_run_cases(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.check_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is empty"):
        io.check_folder(tmp_path / "empty")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="no images"):
        io.check_folder(tmp_path / "text")
    cv2.imwrite(str(tmp_path / "one.png"), _photo())
    with pytest.raises(NotADirectoryError, match="is a file"):
        io.check_folder(tmp_path / "one.png")
