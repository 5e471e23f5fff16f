"""Robust image reading for folders of any size.

Every reader returns what the rest of the package expects: a uint8 array, ``HxWx3``
RGB (``mode="rgb"``) or ``HxW`` (``mode="gray"``), whatever the file holds:

- EXIF orientation is applied, so a phone photo comes out the way it is displayed.
- 16-bit images are scaled to 8 bits (``round(v / 257)``); float images are taken as [0, 1].
- An alpha channel is composited on a white background (a transparent logo stays readable
  instead of turning black), then dropped.
- Palette and grayscale files become RGB in ``rgb`` mode; colour files become luma in ``gray``.

Decoding uses OpenCV (it releases the GIL, so threads decode in parallel) and falls back to
Pillow for formats OpenCV lacks. Before any decoder runs, the header (`image.headers`) is read:
a file announcing more than `MAX_PIXELS` pixels (a decompression bomb: a few KB of PNG that
would decode to gigabytes) is refused, as are empty files and text (an HTML page saved as
``.jpg``). A file that cannot be decoded, a JPEG cut short, a dangling symlink, a symlink loop, a
pipe or a file without read permission raises `ImageReadError` with one sentence naming the file
and the reason; `iter_images` reports such files in its records instead of raising. CMYK JPEGs
become RGB, animated GIF/PNG/WebP files give their first frame, and file names that are not
UTF-8 are shown with ``\\xNN`` escapes (`display_path`); the record's ``note`` says so.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import errno
import io
import logging
import os
import stat
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import numpy as np

from keras_cv_apps._validate import check_choice, check_int
from keras_cv_apps.image.headers import FileInfo, looks_like_text, sniff
from keras_cv_apps.image.ops import fit_max_side, to_uint8

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".tif", ".tiff",
    ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".avif",
)
# image files the decoders here cannot read: listed as skipped with this name, never silently left out
UNSUPPORTED_EXTENSIONS = {".heic": "HEIC", ".heif": "HEIF", ".jxl": "JPEG XL", ".svg": "SVG (vector)",
                          **dict.fromkeys((".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2"),
                                          "camera RAW")}
MODES = ("rgb", "gray")
MAX_PIXELS = 100_000_000  # 100 megapixels: larger files are refused by their header, never decoded


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
        info: what the file header says (`headers.FileInfo`: format, bit depth, JPEG quality,
            frames), None on error.
        note: what was done to read an unusual file (first frame of an animation, CMYK
            converted, 16-bit scaled, file name not UTF-8), or None.
        mtime: the file's modification time (of the target for a symlink), None on error.
        is_link: whether ``path`` is a symbolic link.
    """

    path: Path
    image: Optional[np.ndarray] = dataclasses.field(repr=False)
    error: Optional[str]
    shape: Optional[tuple]
    nbytes: int
    info: Optional[FileInfo] = None
    note: Optional[str] = None
    mtime: Optional[float] = None
    is_link: bool = False


def _check_mode(mode: str) -> None:
    check_choice(mode, MODES, "image mode")


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




def _decode_jpeg(buf: np.ndarray, info: FileInfo, mode: str, max_side: Optional[int]):
    """Decode a JPEG with OpenCV, using its DCT-domain downscaling when ``max_side`` allows."""
    import cv2

    factor = 1
    if max_side and info.height:
        long_side = max(info.height, info.width)
        factor = next((f for f in (8, 4, 2) if long_side / f >= max_side), 1)
    flags = {
        ("rgb", 1): cv2.IMREAD_COLOR, ("gray", 1): cv2.IMREAD_GRAYSCALE,
        ("rgb", 2): cv2.IMREAD_REDUCED_COLOR_2, ("gray", 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
        ("rgb", 4): cv2.IMREAD_REDUCED_COLOR_4, ("gray", 4): cv2.IMREAD_REDUCED_GRAYSCALE_4,
        ("rgb", 8): cv2.IMREAD_REDUCED_COLOR_8, ("gray", 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
    }
    return cv2.imdecode(buf, flags[(mode, factor)])  # OpenCV applies EXIF orientation here


def display_path(path) -> str:
    """``path`` as printable UTF-8 text: bytes that are not UTF-8 appear as ``\\xNN`` escapes."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "backslashreplace")


def relative_name(path, root) -> str:
    """``path`` relative to ``root`` (its own name, links not resolved) as printable POSIX text."""
    path = Path(path)
    try:
        path = path.relative_to(root)
    except ValueError:
        pass
    return display_path(path.as_posix())


def _notes(info: FileInfo, path: Path) -> Optional[str]:
    notes = []
    if info.frames > 1:
        notes.append(f"animated {info.format} with {info.frames} frames: only the first frame is used")
    if info.cmyk:
        notes.append("CMYK JPEG, converted to RGB")
    if info.bit_depth and info.bit_depth > 8:
        notes.append(f"{info.bit_depth}-bit image, scaled to 8 bits")
    if display_path(path) != str(path):
        notes.append("the file name is not valid UTF-8 (shown with \\x escapes)")
    return "; ".join(notes) or None


def _refuse_early(data: bytes, info: FileInfo, name: str, max_pixels: int) -> None:
    """ImageReadError for files that must not reach a decoder: empty, text, over the pixel limit."""
    if not data:
        raise ImageReadError(f"Cannot read {name}: the file is empty (0 bytes).")
    if info.format == "UNKNOWN":
        text = looks_like_text(data)
        if text is not None:
            raise ImageReadError(f"Cannot read {name}: the file holds text, not image data (it starts "
                                 f"with {text!r}).")
    pixels = info.pixels
    if info.over_pillow_limit or (pixels is not None and pixels > max_pixels):
        size = f"{info.width}x{info.height} = {pixels / 1e6:,.0f} megapixels" if pixels else "its size"
        raise ImageReadError(
            f"Refused {name}: {size} is over the {max_pixels:,}-pixel limit, so it was not decoded "
            "(a decompression bomb decodes a small file to gigabytes; max_pixels / --max-pixels "
            "raises the limit).")


def _decode(data: bytes, path: Path, mode: str, max_side: Optional[int], max_pixels: int = MAX_PIXELS):
    """Decode bytes -> (normalised uint8 array, original shape, FileInfo)."""
    import cv2

    name = display_path(path)
    info = sniff(data)
    _refuse_early(data, info, name, max_pixels)
    buf = np.frombuffer(data, np.uint8)
    if info.format == "JPEG":
        # OpenCV returns None for a truncated JPEG (Pillow then says why) and cannot do 12-bit ones
        arr = _decode_jpeg(buf, info, mode, max_side) if (info.bit_depth or 8) == 8 else None
        if arr is not None:  # without a header the decode was full size, so arr has the shape
            h, w = (info.height, info.width) if info.height else arr.shape[:2]
            if info.orientation in (5, 6, 7, 8) and info.height:
                h, w = w, h
            shape = (h, w, 1 if (info.channels or 3) == 1 else 3)
            return fit_max_side(_normalise(arr, mode, bgr=True), max_side), shape, info
    else:
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if arr is not None:
            if arr.dtype == np.uint16:
                info.bit_depth = max(info.bit_depth or 8, 16)
            elif arr.dtype.kind == "f":
                info.bit_depth = 32
            if info.format == "GIF" and info.frames > 1:
                info.frames = _gif_frames(data)
            arr = _apply_orientation(arr, info.orientation)
            shape = (*arr.shape[:2], 1 if arr.ndim == 2 else arr.shape[2])
            return fit_max_side(_normalise(arr, mode, bgr=True), max_side), shape, info
    image, shape = _decode_with_pillow(data, name, mode, max_side)
    return image, shape, info


def _gif_frames(data: bytes) -> int:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return int(getattr(im, "n_frames", 1))
    except Exception:  # noqa: BLE001 - the first frame decoded; the count is only a note
        return 2


def _decode_with_pillow(data: bytes, name: str, mode: str, max_side: Optional[int]):
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
        raise ImageReadError(f"Cannot read {name}: not a decodable image ({reason}).") from None
    if arr.dtype == np.int32:  # Pillow's mode "I" (e.g. some 16-bit files)
        arr = np.clip(arr, 0, 65535).astype(np.uint16)
    shape = (*arr.shape[:2], channels)
    return fit_max_side(_normalise(arr, mode, bgr=False), max_side), shape


def _load(path: Path) -> tuple:
    """``(bytes, stat of the file, is a symlink)`` of ``path``; one-sentence errors for what a folder
    scan meets instead of a file. One ``lstat`` serves a plain file (two system calls for a link)."""
    name = display_path(path)
    try:
        st = os.lstat(path)
        is_link = stat.S_ISLNK(st.st_mode)
        if is_link:
            st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a pipe, socket or device)"
            raise ImageReadError(f"Cannot read {name}: it is {kind}.")
        with open(path, "rb") as f:
            return f.read(), st, is_link
    except FileNotFoundError:
        if os.path.islink(path):
            raise ImageReadError(f"Cannot read {name}: dangling symlink to {display_path(os.readlink(path))}.") \
                from None
        raise FileNotFoundError(f"Image file {name} does not exist.") from None
    except PermissionError:
        raise ImageReadError(f"Cannot read {name}: permission denied.") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageReadError(f"Cannot read {name}: symlink loop ({display_path(os.readlink(path))} leads "
                                 "back to itself).") from None
        raise ImageReadError(f"Cannot read {name}: {exc.strerror or exc}.") from None


def _read(path, mode: str, max_side: Optional[int], max_pixels: int = MAX_PIXELS):
    path = Path(path)
    data, st, is_link = _load(path)
    image, shape, info = _decode(data, path, mode, max_side, max_pixels)
    return image, shape, len(data), info, st.st_mtime, is_link


def read_image(path, *, mode: str = "rgb", max_side: Optional[int] = None,
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read one image file as uint8 RGB ``HxWx3`` (``mode="rgb"``) or gray ``HxW``.

    See the module docstring for how EXIF orientation, 16-bit, alpha and palette files are
    normalised. ``max_side`` shrinks the result (area interpolation, aspect kept) so that its
    longer side is at most that many pixels; JPEGs are then decoded at reduced size directly.
    A file whose header announces more than ``max_pixels`` pixels is refused before decoding.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ImageReadError: the file is empty, truncated, too large, unreadable or not an image.
    """
    _check_mode(mode)
    return _read(path, mode, max_side, max_pixels)[0]


@dataclasses.dataclass
class Listing:
    """What `scan_folder` found.

    Attributes:
        files: image files (by extension), sorted; symlinks to files keep their own path.
        links: ``{symlink path: its target as written in the link}`` for the symlinks in ``files``.
        skipped: ``(path, reason)`` for image-named entries that cannot be read as files (dangling
            symlinks, symlink loops, pipes) and folders that cannot be listed.
    """

    files: list
    links: dict
    skipped: list


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def unsupported_format(name) -> Optional[str]:
    """The skip reason of an image file in a format no decoder here reads (HEIC, RAW...), else None."""
    kind = UNSUPPORTED_EXTENSIONS.get(os.path.splitext(str(name))[1].lower())
    return None if kind is None else f"{kind} files are not supported; convert it to JPEG or PNG to include it"


def scan_folder(root, *, recursive: bool = True) -> Listing:
    """Image files under the folder ``root`` without following symlink loops.

    Symlinked files are listed under the link's own path (``links`` says where they point);
    symlinked folders are followed once (a folder reached twice is skipped as a loop). Dangling
    links, link loops, pipes, unlistable folders and image formats no decoder here reads (HEIC,
    JPEG XL, SVG, camera RAW: `UNSUPPORTED_EXTENSIONS`) are returned in ``skipped`` with a reason.
    """
    root = Path(root)
    files, links, skipped = [], {}, []
    visited = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in visited:
                skipped.append((folder, f"symlink loop: folder {display_path(folder)} was already scanned"))
                continue
            visited.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            why = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
            skipped.append((folder, f"cannot list folder {display_path(folder)}: {why}"))
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.is_symlink():
                target = os.readlink(entry.path)
                try:
                    st = os.stat(entry.path)
                except OSError as exc:
                    if _is_image_name(entry.name):
                        why = ("symlink loop" if exc.errno == errno.ELOOP else "dangling symlink")
                        skipped.append((path, f"{why} to {display_path(target)}"))
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if recursive:
                        stack.append(path)
                    continue
                if _is_image_name(entry.name):
                    if stat.S_ISREG(st.st_mode):
                        files.append(path)
                        links[path] = target
                    else:
                        skipped.append((path, "not a regular file (a pipe, socket or device)"))
            elif entry.is_dir(follow_symlinks=False):
                if recursive:
                    stack.append(path)
            elif _is_image_name(entry.name):
                if entry.is_file(follow_symlinks=False):
                    files.append(path)
                else:
                    skipped.append((path, "not a regular file (a pipe, socket or device)"))
            elif (why := unsupported_format(entry.name)) and entry.is_file(follow_symlinks=False):
                skipped.append((path, why))
    files.sort()
    skipped.sort(key=lambda item: item[0])
    return Listing(files, links, skipped)


def check_folder(root) -> Listing:
    """`scan_folder` for an app's PATH argument, refusing the whole-run cases in one sentence.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        NotADirectoryError: ``root`` is a file (the apps take a folder).
        ValueError: the folder is empty or holds no image files.
    """
    root = Path(root)
    name = display_path(root)
    if not root.exists():
        raise FileNotFoundError(f"Path {name} does not exist.")
    if not root.is_dir():
        raise NotADirectoryError(f"{name} is a file; pass the folder that holds the images.")
    listing = scan_folder(root)
    if not listing.files:
        try:
            empty = not any(os.scandir(root))
        except OSError:
            empty = False
        if empty:
            raise ValueError(f"Folder {name} is empty.")
        extra = f" ({len(listing.skipped)} unreadable entries, e.g. {listing.skipped[0][1]})" if listing.skipped else ""
        raise ValueError(f"There are no images in {name} (looked for {', '.join(IMAGE_EXTENSIONS)}){extra}.")
    return listing


def list_images(root, *, recursive: bool = True) -> list:
    """Sorted image files under ``root`` (or ``[root]`` if it is an image file).

    A file counts as an image by its extension (`IMAGE_EXTENSIONS`, case-insensitive), so
    corrupt files with an image extension are included and reported later by the readers.
    See `scan_folder` for symlinks and for the entries that are skipped.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: ``root`` holds no image files.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"Path {display_path(root)} does not exist.")
    if root.is_file():
        files = [root] if root.suffix.lower() in IMAGE_EXTENSIONS else []
    else:
        files = scan_folder(root, recursive=recursive).files
    if not files:
        raise ValueError(
            f"There are no images in {display_path(root)} (looked for {', '.join(IMAGE_EXTENSIONS)})."
        )
    return files


def _record(path, mode: str, max_side: Optional[int], postprocess=None, max_pixels: int = MAX_PIXELS
            ) -> ImageRecord:
    path = Path(path)
    try:
        image, shape, nbytes, info, mtime, is_link = _read(path, mode, max_side, max_pixels)
    except (ImageReadError, FileNotFoundError) as exc:
        try:
            size = os.stat(path).st_size
        except OSError:
            size = 0
        return ImageRecord(path, None, str(exc), None, size)
    except MemoryError:
        return ImageRecord(path, None, f"Cannot read {display_path(path)}: out of memory while decoding.", None, 0)
    except Exception as exc:  # noqa: BLE001 - a decoder crash must not stop a folder scan
        reason = f"Cannot read {display_path(path)}: {type(exc).__name__}: {exc}".rstrip(".") + "."
        return ImageRecord(path, None, reason, None, 0)
    if postprocess is not None:  # outside the try: a bug here must not look like a bad file
        image = postprocess(image)
    return ImageRecord(path, image, None, shape, nbytes, info, _notes(info, path), mtime, is_link)


def one_blas_thread():
    """Context in which NumPy's (and OpenCV's) BLAS runs on one thread. Per-image matrix products
    called from several decoding threads at once would each start BLAS's own threads on the same
    cores: on 2 cores dedup's hashing pass ran at 0.5-0.6x decode-only instead of 0.9-1.1x."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


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
    max_pixels: int = MAX_PIXELS,
) -> Iterator[ImageRecord]:
    """Decode ``paths`` in parallel and yield one `ImageRecord` per path, in input order.

    Decoding runs on a thread pool (``workers`` threads, default one per core) with at most
    ``4 * workers`` images in flight, so memory stays bounded however many paths there are.
    Unreadable files are yielded with ``image=None`` and ``error`` set; they never raise.
    ``progress`` shows a tqdm bar labelled ``desc``. ``postprocess(image)``, if given, runs in
    the worker thread right after decoding and its result replaces ``record.image`` (so
    per-image work such as hashing uses all cores too). Files whose header announces more than
    ``max_pixels`` pixels are refused (reported) without decoding. While several threads decode,
    BLAS runs single-threaded (`one_blas_thread`).
    """
    from tqdm.auto import tqdm

    _check_mode(mode)
    check_int(max_pixels, "max_pixels", minimum=1)
    workers = workers or default_workers()
    total = len(paths) if hasattr(paths, "__len__") else None
    window = 4 * workers
    with tqdm(total=total, desc=desc, unit="file", disable=not progress, smoothing=0.1) as bar:
        if workers == 1:
            for p in paths:
                yield _record(p, mode, max_side, postprocess, max_pixels)
                bar.update()
            return
        with concurrent.futures.ThreadPoolExecutor(workers) as pool, one_blas_thread():
            pending = collections.deque()
            for p in paths:
                pending.append(pool.submit(_record, p, mode, max_side, postprocess, max_pixels))
                if len(pending) >= window:
                    yield pending.popleft().result()
                    bar.update()
            for fut in pending:
                yield fut.result()
                bar.update()
