"""What an image file's first bytes say, read without decoding any pixels.

`sniff(data)` returns a `FileInfo`: the format, the stored size, bit depth and channel count,
the EXIF orientation, the number of frames (animated GIF/PNG/WebP) and, for JPEG, an estimate of
the encoder's quality setting from its luminance quantisation table. PNG, JPEG, GIF, BMP and WebP
headers are parsed here directly (a few dozen bytes each); other formats go through Pillow's lazy
header parse. Reading the size first lets `image.io` refuse a decompression bomb (a few KB that
would decode to gigabytes) before any decoder allocates its pixels, and lets `vision.dedup` prefer
the better of two copies (lossless over lossy, 16-bit over 8-bit, less compressed) for free.
"""

from __future__ import annotations

import dataclasses
import io
import struct
import warnings
from typing import Optional

# Annex K luminance table of the JPEG standard (any order: only its sum is used).
_STD_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
             56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104,
             113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
LOSSLESS_FORMATS = ("PNG", "BMP", "TIFF", "PPM", "WEBP-LOSSLESS")
TEXT_PREFIXES = (b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"<svg", b"{", b"<")


@dataclasses.dataclass
class FileInfo:
    """Header facts of one image file (None where the header does not say).

    Attributes:
        format: ``JPEG``, ``PNG``, ``GIF``, ``BMP``, ``WEBP``, ``WEBP-LOSSLESS``, ``TIFF``, ... or
            ``UNKNOWN``.
        height, width: stored size in pixels, before EXIF orientation.
        channels: stored colour channels (1 gray, 3 colour, 4 with alpha or CMYK).
        bit_depth: bits per channel (8 or 16 mostly).
        orientation: EXIF orientation 1..8 (1 = as stored).
        frames: number of frames (more than 1 for animations).
        quality: estimated JPEG quality 1..100 (libjpeg's scale), JPEG only.
        cmyk: the JPEG stores CMYK (or YCCK) rather than RGB.
        over_pillow_limit: Pillow refused to parse the header because the image is larger than its
            decompression-bomb limit (only for formats parsed through Pillow).
        palette: the pixels are indices into a table of at most 256 colours (GIF, PNG colour type
            3, BMP of 8 bits per pixel or fewer, Pillow mode ``P``).
    """

    format: str = "UNKNOWN"
    height: Optional[int] = None
    width: Optional[int] = None
    channels: Optional[int] = None
    bit_depth: Optional[int] = None
    orientation: int = 1
    frames: int = 1
    quality: Optional[int] = None
    cmyk: bool = False
    over_pillow_limit: bool = False
    palette: bool = False

    @property
    def pixels(self) -> Optional[int]:
        return None if self.height is None or self.width is None else self.height * self.width

    @property
    def lossless(self) -> bool:
        """Whether the file keeps a true-colour image exactly: a lossless format without a palette (a
        256-colour palette, GIF's or a PNG's, counts as lossy: a photo loses colours to it)."""
        return self.format in LOSSLESS_FORMATS and not self.palette

    def describe(self) -> str:
        """A short label such as ``PNG 16-bit`` or ``JPEG q~40``."""
        text = self.format.replace("WEBP-LOSSLESS", "WebP lossless")
        if self.bit_depth and self.bit_depth != 8:
            text += f" {self.bit_depth}-bit"
        if self.palette:
            text += " palette"
        if self.quality is not None:
            text += f" q~{self.quality}"
        return text


def _be16(b, i):
    return (b[i] << 8) | b[i + 1]


def _orientation_from_tiff(tiff: bytes) -> int:
    """EXIF orientation (tag 0x0112) from a TIFF-structured EXIF block, 1 if absent."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    end = "<" if tiff[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(end + "I", tiff, 4)
        (count,) = struct.unpack_from(end + "H", tiff, ifd)
        for k in range(min(count, 512)):
            tag, kind, _, value = struct.unpack_from(end + "HHI4s", tiff, ifd + 2 + 12 * k)
            if tag == 0x0112:
                (v,) = struct.unpack_from(end + "H", value, 0) if kind == 3 else (1,)
                return v if 1 <= v <= 8 else 1
    except struct.error:
        pass
    return 1


def quality_from_table(table) -> int:
    """libjpeg quality (1..100) whose scaled Annex K luminance table has the same sum as ``table``."""
    scale = 100.0 * sum(table) / sum(_STD_LUMA)  # libjpeg: scale = 5000/q (q < 50) or 200 - 2q
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return int(min(100, max(1, round(quality))))


def _jpeg(data: bytes, info: FileInfo) -> FileInfo:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):
            i += 2
            continue
        length = _be16(data, i + 2)
        seg = data[i + 4 : i + 2 + length]
        if marker == 0xE1 and seg[:6] == b"Exif\x00\x00":
            info.orientation = _orientation_from_tiff(seg[6:])
        elif marker == 0xEE and seg[:5] == b"Adobe" and len(seg) >= 12:
            info.cmyk = info.cmyk or seg[11] == 2  # YCCK
        elif marker == 0xDB:
            j = 0
            while j + 65 <= len(seg):
                precision, table_id = seg[j] >> 4, seg[j] & 15
                size = 128 if precision else 64
                values = (struct.unpack_from(">64H", seg, j + 1) if precision else seg[j + 1 : j + 65])
                if table_id == 0 and info.quality is None:
                    info.quality = quality_from_table(values)
                j += 1 + size
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and len(seg) >= 6:
            info.bit_depth, info.height, info.width, info.channels = seg[0], _be16(seg, 1), _be16(seg, 3), seg[5]
            info.cmyk = info.cmyk or seg[5] == 4
        elif marker == 0xDA:
            break
        i += 2 + length
    return info


def _png(data: bytes, info: FileInfo) -> FileInfo:
    if len(data) < 29:
        return info
    info.width, info.height = struct.unpack_from(">II", data, 16)
    info.bit_depth, colour = data[24], data[25]
    info.channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(colour)
    if colour == 3:
        info.bit_depth, info.palette = 8, True  # palette indices expand to 8-bit colour
    i = 8
    while i + 8 <= len(data):  # chunks before the pixels: eXIf (orientation), acTL (animation)
        length, kind = struct.unpack_from(">I4s", data, i)
        if kind == b"IDAT":
            break
        body = data[i + 8 : i + 8 + length]
        if kind == b"eXIf":
            info.orientation = _orientation_from_tiff(body)
        elif kind == b"acTL" and len(body) >= 4:
            info.frames = max(1, struct.unpack_from(">I", body)[0])
        i += 12 + length
    return info


def _webp(data: bytes, info: FileInfo) -> FileInfo:
    kind = data[12:16]
    if kind == b"VP8 " and len(data) >= 30:
        info.width, info.height = struct.unpack_from("<HH", data, 26)
        info.width, info.height = info.width & 0x3FFF, info.height & 0x3FFF
    elif kind == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        info.format = "WEBP-LOSSLESS"
        info.width, info.height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif kind == b"VP8X" and len(data) >= 30:
        info.width = int.from_bytes(data[24:27], "little") + 1
        info.height = int.from_bytes(data[27:30], "little") + 1
        if data[20] & 0x02:
            info.frames = max(2, data.count(b"ANMF"))
        if b"VP8L" in data[30:4096] and b"VP8 " not in data[30:4096]:
            info.format = "WEBP-LOSSLESS"
    info.bit_depth, info.channels = 8, 3
    return info


def _pillow(data: bytes, info: FileInfo) -> FileInfo:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's own bomb warning: `image.io` applies its limit
            with Image.open(io.BytesIO(data)) as im:
                info.format = {"PPM": "PPM", "TIFF": "TIFF", "GIF": "GIF"}.get(im.format, im.format or "UNKNOWN")
                info.width, info.height = im.size
                info.channels = len(im.getbands())
                info.frames = int(getattr(im, "n_frames", 1) or 1)
                mode = im.mode
                info.palette = mode in ("P", "PA")
                info.bit_depth = 16 if ("16" in mode or mode in ("I", "RGB;16", "RGBA;16")) else 8
                if im.format == "TIFF":
                    info.bit_depth = max(im.tag_v2.get(258, (8,)) or (8,))
                    info.orientation = int(im.tag_v2.get(0x0112, 1) or 1)
    except Image.DecompressionBombError:  # over Pillow's hard limit (twice its MAX_IMAGE_PIXELS)
        info.over_pillow_limit = True
    except Exception:  # noqa: BLE001 - no header information is all this means
        pass
    return info


def looks_like_text(data: bytes) -> Optional[str]:
    """The start of ``data`` if it is text (HTML, XML, JSON, ...) rather than image bytes, else None."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head or b"\x00" in head:
        return None
    if head.lower().startswith(TEXT_PREFIXES):
        return head[:40].decode("utf-8", "backslashreplace").split("\n")[0].strip()
    return None


def sniff(data: bytes) -> FileInfo:
    """`FileInfo` from the first bytes of a file (64 KB is enough for every parser here)."""
    info = FileInfo()
    if data[:3] == b"\xff\xd8\xff":
        info.format = "JPEG"
        return _jpeg(data, info)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        info.format = "PNG"
        return _png(data, info)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        info.format, info.bit_depth, info.channels, info.palette = "GIF", 8, 3, True
        info.width, info.height = struct.unpack_from("<HH", data, 6)
        info.frames = 2 if data.count(b"\x21\xf9\x04") > 1 else 1  # refined by Pillow when decoding
        return info
    if data[:2] == b"BM" and len(data) >= 26:
        info.format, info.bit_depth = "BMP", 8
        info.width, height = struct.unpack_from("<ii", data, 18)
        info.height = abs(height)
        info.channels = 3
        info.palette = len(data) >= 30 and 0 < struct.unpack_from("<H", data, 28)[0] <= 8  # bits per pixel
        return info
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        info.format = "WEBP"
        return _webp(data, info)
    return _pillow(data, info)
