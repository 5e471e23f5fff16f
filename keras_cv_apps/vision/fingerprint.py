"""What dedup keeps of each image, from one decoding pass: its fingerprint.

`summarise` turns a decoded image into 17 perceptual hashes (the whole image, its mirror image and
15 sub-regions that drop about 7% on some sides: flips and small crops), a digest of its pixels
(exact copies), its 64x64 gray thumbnail (for SSIM) and its sharpness. `Scan` gathers these with
the facts the keep rules compare (format, bit depth, size, JPEG quality, age, symlink) and the
files that could not be used; `Collector` fills a `Scan` from another pass over the images (the
audit's quality pass), so a folder is decoded once.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path
from typing import Optional

import numpy as np

from keras_cv_apps.image.io import ImageRecord, display_path, iter_images, relative_name
from keras_cv_apps.vision import hashing, keep, verify

WORK_SIDE = 128  # images are decoded to at most this many pixels per side
_AXIS = ((0.0, 1.0), (0.07, 1.0), (0.0, 0.93), (0.07, 0.93))
REGIONS = tuple((y0, y1, x0, x1) for (y0, y1), (x0, x1) in itertools.product(_AXIS, _AXIS))
_SQUARE = 128  # hashes are cut from a _SQUARE x _SQUARE gray square (see `hashing.shrink_regions`)
# pixel spans of the _AXIS fractions on the square, as `hashing.crop_region` rounds them
_SPANS = tuple((round(a * _SQUARE), max(round(b * _SQUARE), 1), False) for a, b in _AXIS)


def _gray_work(image: np.ndarray) -> np.ndarray:
    """Any uint8 image -> gray with at most WORK_SIDE pixels per side."""
    import cv2

    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    scale = WORK_SIDE / max(gray.shape)
    if scale < 1:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray


def variant_hashes(gray: np.ndarray, method: str) -> np.ndarray:
    """[whole, mirrored whole, region 1, ..., region 15] hashes of one image.

    pHash takes the batched path (`hashing.phash_grid`: all 17 from two matrix products on the
    square); the other methods shrink each region with ``cv2.resize`` (`reference_variant_hashes`).
    """
    if method == "phash":
        import cv2

        square = cv2.resize(gray, (_SQUARE, _SQUARE), interpolation=cv2.INTER_AREA)
        grid = hashing.phash_grid(square, _SPANS, _SPANS + ((0, _SQUARE, True),))  # rows x (cols, mirror)
        return np.concatenate([grid[:1, 0], grid[:1, -1], grid[:, :-1].ravel()[1:]])
    return reference_variant_hashes(gray, method)


def reference_variant_hashes(gray: np.ndarray, method: str) -> np.ndarray:
    """`variant_hashes` the plain way: one ``cv2.resize`` (and for pHash one ``cv2.dct``) per region."""
    small = hashing.shrink_regions(gray, method, REGIONS)
    small = np.concatenate([small[:1], small[:1, :, ::-1], small[1:]])  # mirror the shrunk whole
    return hashing.stack_hashes(small, method)


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian of a WORK_SIDE gray image over the image's own variance (higher is
    sharper). Dividing by the variance makes it blind to contrast: a copy with stretched contrast
    is not "sharper" than its original, while a blurred copy still scores lower."""
    import cv2

    _, std = cv2.meanStdDev(gray)
    _, lap_std = cv2.meanStdDev(cv2.Laplacian(gray, cv2.CV_32F))
    return float(lap_std[0, 0] ** 2 / (std[0, 0] ** 2 + 1.0))


def summarise(image: np.ndarray, method: str = "phash") -> tuple:
    """What dedup keeps of one decoded image: ``(hashes (17,), pixel digest, 64x64 gray square,
    sharpness)``. Runs in decoding threads (OpenCV and hashlib release the GIL)."""
    import cv2

    gray = _gray_work(image)
    digest = hashlib.blake2b(np.ascontiguousarray(gray).data, digest_size=16)
    digest.update(repr(gray.shape).encode())
    square = cv2.resize(gray, (verify.THUMB, verify.THUMB), interpolation=cv2.INTER_AREA)
    return variant_hashes(gray, method), digest.digest(), square, sharpness(gray)


class Scan:
    """Everything dedup needs from a pass over the files, built one record at a time (`add`)."""

    def __init__(self, method: str = "phash", *, root=None, links=None):
        self.method = method
        self.root = Path(root) if root is not None else None
        self.links = dict(links or {})
        self.paths, self.rows, self.keys, self.facts = [], [], [], []
        self.thumbs = verify.ThumbStore()
        self.unreadable, self.notes = [], []
        self._hashes = None

    def add(self, record: ImageRecord, summary: Optional[tuple]) -> None:
        """Add a decoded record with its `summarise` result, or an unreadable one (summary None)."""
        if record.error is not None or summary is None:
            self.unreadable.append((record.path, record.error))
            return
        hashes, digest, square, sharp = summary
        info = record.info
        mtime, is_link = record.mtime, record.is_link
        if mtime is None:  # a record built elsewhere, without the file's facts: ask the file system
            try:
                mtime = os.stat(record.path).st_mtime
            except OSError:
                mtime = 0.0
            is_link = os.path.islink(record.path)
        name = relative_name(record.path, self.root) if self.root else display_path(record.path)
        self.paths.append(record.path)
        self.rows.append(hashes)
        self.keys.append((digest, record.shape))
        self.thumbs.append(square)
        self.facts.append(keep.Facts(
            name=name, is_link=is_link or record.path in self.links,
            format=info.format if info else "UNKNOWN", lossless=bool(info and info.lossless),
            bit_depth=(info.bit_depth or 8) if info else 8, height=int(record.shape[0]),
            width=int(record.shape[1]), nbytes=int(record.nbytes),
            quality=info.quality if info else None, sharpness=float(sharp), mtime=mtime,
            palette=bool(info and info.palette)))
        if record.note:
            self.notes.append((record.path, record.note))

    @property
    def hashes(self) -> np.ndarray:
        """Read-only uint64 ``(n, 17)``, built once for the rows added so far (verification reads
        it for every anchor check: rebuilt each time it took half of dedup's verification)."""
        if self._hashes is None or len(self._hashes) != len(self.rows):
            self._hashes = np.array(self.rows, np.uint64).reshape(-1, 2 + len(REGIONS) - 1)
            self._hashes.flags.writeable = False
        return self._hashes


class Collector:
    """Feeds `Scan` from another pass over the images (e.g. `quality.assess`'s ``collectors``):
    ``measure(record)`` runs in the decoding threads, ``add(index, record, value)`` in order."""

    def __init__(self, method: str = "phash", *, root=None, links=None):
        hashing.check_method(method)
        self.scan = Scan(method, root=root, links=links)

    def measure(self, record: ImageRecord):
        return summarise(record.image, self.scan.method) if record.image is not None else None

    def add(self, index, record: ImageRecord, value) -> None:
        self.scan.add(record, value)


def scan_paths(files, method, workers, progress, max_pixels, root, links) -> Scan:
    scan = Scan(method, root=root, links=links)
    for rec in iter_images(files, mode="gray", max_side=WORK_SIDE, workers=workers, progress=progress,
                           desc=f"hashing ({method})", max_pixels=max_pixels,
                           postprocess=lambda image: summarise(image, method)):
        scan.add(rec, rec.image)
    return scan
