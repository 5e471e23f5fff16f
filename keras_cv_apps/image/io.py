"""Robust image reading for folders of any size.

Every reader returns what the rest of the package expects: a uint8 array, ``HxWx3``
RGB (``mode="rgb"``) or ``HxW`` (``mode="gray"``), whatever the file holds:

- EXIF orientation is applied, so a phone photo comes out the way it is displayed.
- 16-bit images are scaled to 8 bits (``round(v / 257)``); float images are taken as [0, 1].
- An alpha channel is composited on a white background (a transparent logo stays readable
  instead of turning black), then dropped.
- Palette and grayscale files become RGB in ``rgb`` mode; colour files become luma in ``gray``.

Decoding uses OpenCV (it releases the GIL, so threads decode in parallel) and falls back to
Pillow for formats OpenCV lacks. A file that neither can decode, or a JPEG cut short, raises
`ImageReadError`; `iter_images` reports such files in its records instead of raising.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import io
import logging
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import numpy as np

from keras_cv_apps._validate import check_choice
from keras_cv_apps.image.ops import fit_max_side, to_uint8

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".tif", ".tiff",
    ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".jp2",
)
MODES = ("rgb", "gray")
_JPEG_MAGIC = b"\xff\xd8\xff"


class ImageReadError(ValueError):
    """A file could not be decoded as an image; the message names the file and the reason."""


@dataclasses.dataclass
class ImageRecord:
    """One file as read by `iter_images`.

    Attributes:
        path: the file.
        image: the decoded uint8 array (resized to ``max_side`` if asked), or None on error.
        error: one sentence saying why the file could not be read, or None.
        shape: the original decoded shape ``(H, W, C)`` after EXIF orientation, before any
            resizing; C is the channel count stored in the file (1, 2, 3 or 4). None on error.
        nbytes: size of the file on disk in bytes (0 if it could not be opened).
    """

    path: Path
    image: Optional[np.ndarray] = dataclasses.field(repr=False)
    error: Optional[str]
    shape: Optional[tuple]
    nbytes: int


def _check_mode(mode: str) -> None:
    check_choice(mode, MODES, "image mode")


def _header(data: bytes):
    """(height, width, channels, orientation) from Pillow's lazy header parse, or None."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            channels = len(im.getbands())
            # Pillow decodes a whole PNG to look for EXIF, so only ask when the chunk is there
            has_exif = im.format != "PNG" or b"eXIf" in data
            orientation = int(im.getexif().get(0x0112, 1) or 1) if has_exif else 1
    except Exception:  # noqa: BLE001 - any parse failure just means "no header info"
        return None
    if orientation in (5, 6, 7, 8):
        height, width = width, height
    return height, width, channels, orientation


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate/flip ``arr`` so that EXIF ``orientation`` (1..8) becomes 1."""
    import cv2

    if orientation == 1:
        return arr
    ops = {
        2: lambda a: cv2.flip(a, 1),
        3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
        4: lambda a: cv2.flip(a, 0),
        5: lambda a: cv2.transpose(a),
        6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
        7: lambda a: cv2.rotate(cv2.transpose(a), cv2.ROTATE_180),
        8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
    }
    return ops[orientation](arr) if orientation in ops else arr




def _normalise(arr: np.ndarray, mode: str, *, bgr: bool) -> np.ndarray:
    """Any decoded array -> uint8 RGB (HxWx3) or gray (HxW); alpha composited on white."""
    import cv2

    arr = to_uint8(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        alpha = arr[:, :, -1:].astype(np.float32) / 255.0
        colour = arr[:, :, :-1].astype(np.float32)
        arr = (colour * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
        if arr.shape[2] == 1:
            arr = arr[:, :, 0]
    if arr.ndim == 2:
        return arr if mode == "gray" else cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
    if mode == "gray":
        return cv2.cvtColor(arr, cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_RGB2GRAY)
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB) if bgr else np.ascontiguousarray(arr)




def _decode_jpeg(buf: np.ndarray, header, mode: str, max_side: Optional[int]):
    """Decode a JPEG with OpenCV, using its DCT-domain downscaling when ``max_side`` allows."""
    import cv2

    factor = 1
    if max_side and header is not None:
        long_side = max(header[0], header[1])
        factor = next((f for f in (8, 4, 2) if long_side / f >= max_side), 1)
    flags = {
        ("rgb", 1): cv2.IMREAD_COLOR, ("gray", 1): cv2.IMREAD_GRAYSCALE,
        ("rgb", 2): cv2.IMREAD_REDUCED_COLOR_2, ("gray", 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
        ("rgb", 4): cv2.IMREAD_REDUCED_COLOR_4, ("gray", 4): cv2.IMREAD_REDUCED_GRAYSCALE_4,
        ("rgb", 8): cv2.IMREAD_REDUCED_COLOR_8, ("gray", 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
    }
    return cv2.imdecode(buf, flags[(mode, factor)])  # OpenCV applies EXIF orientation here


def _decode(data: bytes, path: Path, mode: str, max_side: Optional[int]):
    """Decode bytes -> (normalised uint8 array, original shape)."""
    import cv2

    if not data:
        raise ImageReadError(f"Cannot read {path}: the file is empty.")
    header = _header(data)
    buf = np.frombuffer(data, np.uint8)
    if data.startswith(_JPEG_MAGIC):  # OpenCV returns None for a truncated JPEG
        arr = _decode_jpeg(buf, header, mode, max_side)
        if arr is not None:  # without a header the decode was full size, so arr has the shape
            shape = header[:3] if header else (*arr.shape[:2], 1 if arr.ndim == 2 else 3)
            return fit_max_side(_normalise(arr, mode, bgr=True), max_side), shape
    else:
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if arr is not None:
            arr = _apply_orientation(arr, header[3] if header else 1)
            shape = (*arr.shape[:2], 1 if arr.ndim == 2 else arr.shape[2])
            return fit_max_side(_normalise(arr, mode, bgr=True), max_side), shape
    return _decode_with_pillow(data, path, mode, max_side)


def _decode_with_pillow(data: bytes, path: Path, mode: str, max_side: Optional[int]):
    """Fallback for formats OpenCV cannot decode (and the reason when nothing can)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im = ImageOps.exif_transpose(im)
            channels = len(im.getbands())
            if im.mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif im.mode not in ("L", "LA", "RGB", "RGBA", "I;16", "I", "F"):
                im = im.convert("RGB")
            arr = np.asarray(im)
    except Exception as exc:  # noqa: BLE001 - the reason goes into the message
        if isinstance(exc, UnidentifiedImageError):
            reason = "unrecognised format or corrupt data"
        else:
            reason = str(exc).strip().rstrip(".") or type(exc).__name__
        raise ImageReadError(f"Cannot read {path}: not a decodable image ({reason}).") from None
    if arr.dtype == np.int32:  # Pillow's mode "I" (e.g. some 16-bit files)
        arr = np.clip(arr, 0, 65535).astype(np.uint16)
    shape = (*arr.shape[:2], channels)
    return fit_max_side(_normalise(arr, mode, bgr=False), max_side), shape


def _read(path, mode: str, max_side: Optional[int]):
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"Image file {path} does not exist.") from None
    except OSError as exc:
        raise ImageReadError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    image, shape = _decode(data, path, mode, max_side)
    return image, shape, len(data)


def read_image(path, *, mode: str = "rgb", max_side: Optional[int] = None) -> np.ndarray:
    """Read one image file as uint8 RGB ``HxWx3`` (``mode="rgb"``) or gray ``HxW``.

    See the module docstring for how EXIF orientation, 16-bit, alpha and palette files are
    normalised. ``max_side`` shrinks the result (area interpolation, aspect kept) so that its
    longer side is at most that many pixels; JPEGs are then decoded at reduced size directly.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ImageReadError: the file is empty, truncated or not a decodable image.
    """
    _check_mode(mode)
    return _read(path, mode, max_side)[0]


def list_images(root, *, recursive: bool = True) -> list:
    """Sorted image files under ``root`` (or ``[root]`` if it is an image file).

    A file counts as an image by its extension (`IMAGE_EXTENSIONS`, case-insensitive), so
    corrupt files with an image extension are included and reported later by the readers.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: ``root`` holds no image files.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"Path {root} does not exist.")
    if root.is_file():
        files = [root] if root.suffix.lower() in IMAGE_EXTENSIONS else []
    else:
        pattern = "**/*" if recursive else "*"
        files = sorted(
            p for p in root.glob(pattern) if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )
    if not files:
        raise ValueError(
            f"There are no images in {root} (looked for {', '.join(IMAGE_EXTENSIONS)})."
        )
    return files


def _record(path, mode: str, max_side: Optional[int], postprocess=None) -> ImageRecord:
    path = Path(path)
    try:
        image, shape, nbytes = _read(path, mode, max_side)
    except (ImageReadError, FileNotFoundError) as exc:
        return ImageRecord(path, None, str(exc), None, path.stat().st_size if path.exists() else 0)
    except Exception as exc:  # noqa: BLE001 - a decoder crash must not stop a folder scan
        reason = f"Cannot read {path}: {type(exc).__name__}: {exc}".rstrip(".") + "."
        return ImageRecord(path, None, reason, None, 0)
    if postprocess is not None:  # outside the try: a bug here must not look like a bad file
        image = postprocess(image)
    return ImageRecord(path, image, None, shape, nbytes)


def default_workers() -> int:
    """Threads used for decoding when ``workers`` is None: one per available core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def iter_images(
    paths: Iterable,
    *,
    mode: str = "rgb",
    max_side: Optional[int] = None,
    workers: Optional[int] = None,
    progress: bool = True,
    desc: str = "reading",
    postprocess: Optional[Callable] = None,
) -> Iterator[ImageRecord]:
    """Decode ``paths`` in parallel and yield one `ImageRecord` per path, in input order.

    Decoding runs on a thread pool (``workers`` threads, default one per core) with at most
    ``4 * workers`` images in flight, so memory stays bounded however many paths there are.
    Unreadable files are yielded with ``image=None`` and ``error`` set; they never raise.
    ``progress`` shows a tqdm bar labelled ``desc``. ``postprocess(image)``, if given, runs in
    the worker thread right after decoding and its result replaces ``record.image`` (so
    per-image work such as hashing uses all cores too).
    """
    from tqdm.auto import tqdm

    _check_mode(mode)
    workers = workers or default_workers()
    total = len(paths) if hasattr(paths, "__len__") else None
    window = 4 * workers
    with tqdm(total=total, desc=desc, unit="img", disable=not progress) as bar:
        if workers == 1:
            for p in paths:
                yield _record(p, mode, max_side, postprocess)
                bar.update()
            return
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            pending = collections.deque()
            for p in paths:
                pending.append(pool.submit(_record, p, mode, max_side, postprocess))
                if len(pending) >= window:
                    yield pending.popleft().result()
                    bar.update()
            for fut in pending:
                yield fut.result()
                bar.update()
