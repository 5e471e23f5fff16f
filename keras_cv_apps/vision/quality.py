"""Image quality checks: one streaming pass, one score in [0, 1] per issue, a flag per threshold.

Every check turns a simple measurement into a score where 0 means "fine" and 1 means "as bad
as it gets"; an image is flagged for an issue when its score reaches that issue's threshold
(the ``*_THRESHOLD`` constants below, which ``assess`` accepts overrides for):

=================  ==========================================================================
issue              score
=================  ==========================================================================
dark               ``1 - p95(luma) / 255``: even the brighter pixels are dark.
light              ``p5(luma) / 255``: even the darker pixels are bright (washed out).
blurry             ``1 - detail / DETAIL_REF`` (clipped), ``detail`` the fine-to-coarse detail
                   ratio of `detail_ratio`, measured at the image's own resolution (never
                   resampled up): how much gradient energy the band between Gaussian scales
                   1 and 2 px holds against the band between 2 and 4 px, in the direction
                   where it is weakest (so motion blur counts too). Natural photos have
                   nearly the same ratio at every size and for any content (their spectrum
                   falls off as a power of frequency), while blur of sigma px removes the
                   fine band first, so one threshold serves thumbnails and full-size photos.
                   Images with (almost) no contrast, or under `MIN_BLUR_SIDE` px, are not
                   judged (score 0).
low_information    ``1 - entropy(luma histogram) / 8 bits``.
odd_aspect_ratio   ``1 - short_side / long_side`` of the original image.
odd_size           ``min(1, z / 7)``, ``z`` the robust z-score of log(area) against the
                   dataset: ``|log a - median| / max(1.4826 * MAD, 0.5)`` (the floor keeps a
                   dataset of one size from flagging images a few percent off).
grayscale          ``1 - min(1, p99(max(R,G,B) - min(R,G,B)) / 16)``: 1 for single-channel
                   files and for RGB files whose three channels are equal.
noisy              ``min(1, sigma / 20)``, ``sigma`` the noise standard deviation in grey
                   levels estimated from the finest diagonal Haar wavelet band
                   (``median(|HH|) / 0.6745``, Donoho's robust estimator).
exact_duplicate    1 for every file whose decoded pixels equal an earlier file's (BLAKE2
                   hash of shape + pixels, after the same ``MAX_SIDE`` downscale); the
                   first file of each group is not flagged.
=================  ==========================================================================

Only NumPy and OpenCV are used: TensorFlow is never imported here, so an audit starts fast.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import logging
import math
from typing import Callable, Optional

import numpy as np

logger = logging.getLogger(__name__)

DARK_THRESHOLD = 0.65  # p95 luma below ~89
LIGHT_THRESHOLD = 0.65  # p5 luma above ~166
BLURRY_THRESHOLD = 0.4  # detail ratio below 0.6 * DETAIL_REF = 0.96
LOW_INFORMATION_THRESHOLD = 0.65  # entropy below 2.8 bits
ODD_ASPECT_RATIO_THRESHOLD = 0.6  # long side at least 2.5x the short side
ODD_SIZE_THRESHOLD = 0.5  # robust z of log(area) >= 3.5 (>= 5.8x off when sizes agree)
GRAYSCALE_THRESHOLD = 0.75  # 99% of pixels within 4 grey levels across channels
NOISY_THRESHOLD = 0.35  # noise sigma of 7 grey levels or more

THRESHOLDS = {
    "dark": DARK_THRESHOLD,
    "light": LIGHT_THRESHOLD,
    "blurry": BLURRY_THRESHOLD,
    "low_information": LOW_INFORMATION_THRESHOLD,
    "odd_aspect_ratio": ODD_ASPECT_RATIO_THRESHOLD,
    "odd_size": ODD_SIZE_THRESHOLD,
    "grayscale": GRAYSCALE_THRESHOLD,
    "noisy": NOISY_THRESHOLD,
    "exact_duplicate": 1.0,
}
ISSUES = tuple(THRESHOLDS)

NORMALISED_AREA = 256 * 256  # larger images are shrunk to this many pixels for edge/colour stats
MAX_SIDE = 1024  # images are decoded at most this large for the audit
MIN_CONTRAST = 0.02  # std of luma (in [0, 1]) below which blur is not judged
MIN_BLUR_SIDE = 32  # smaller images are not judged for blur
DETAIL_REF = 1.6  # typical detail ratio of a sharp photo (calibrated: benchmarks/calibrate_quality.py)
GRAY_REF = 16.0
NOISE_REF = 20.0
NOISE_SCALE_GROWTH = 2.7  # how much fine texture grows from one scale to the next (calibrated)
NOISE_MIN_GROWTH = 1.8  # least growth assumed for pixel-grain texture (calibrated: 1.1-1.8 tried)
NOISE_GAIN = 1.55  # makes pure Gaussian noise read its sigma (the kept patches are the quietest)
ODD_SIZE_Z_SCALE = 7.0
ODD_SIZE_MIN_SCALE = 0.5


def _shrunk(image, area=NORMALISED_AREA):
    """Shrink (area interpolation, aspect kept) so that H*W is about ``area``; never enlarge:
    upsampling would blur a small image and invent statistics it does not have."""
    import cv2

    h, w = image.shape[:2]
    scale = math.sqrt(area / float(h * w))
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def detail_ratio(gray) -> float:
    """Fine-to-coarse detail of a gray image at its own resolution (about 1.1-2.3 for sharp photos,
    under 0.9 once blurred by a Gaussian of sigma 2 px).

    With ``b_s`` the image smoothed by a Gaussian of sigma ``s``, the bands ``b_1 - b_2`` and
    ``b_2 - b_4`` hold the detail of one octave each. For each of four directions (0, 45, 90, 135
    degrees) the ratio of the standard deviations of the bands' directional derivatives is taken;
    the result is the smallest, so blur along one direction (motion) is caught as well.
    """
    import cv2

    g = np.asarray(gray, np.float32)
    b1, b2, b4 = (cv2.GaussianBlur(g, (0, 0), s, borderType=cv2.BORDER_REFLECT) for s in (1.0, 2.0, 4.0))
    energies = []
    for band in (b1 - b2, b2 - b4):
        gx = cv2.Sobel(band, cv2.CV_32F, 1, 0)
        gy = cv2.Sobel(band, cv2.CV_32F, 0, 1)
        energies.append(np.array([gx.std(), gy.std(), (gx + gy).std() / math.sqrt(2),
                                  (gx - gy).std() / math.sqrt(2)]))
    return float((energies[0] / (energies[1] + 1e-3)).min())


def _luma(image):
    import cv2

    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def pixel_hash(image) -> str:
    """Hex BLAKE2 digest of an array's shape and pixels: equal only for identical images."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((image.shape, str(image.dtype))).encode())
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()


def _weakest_direction(gray, patch=6, samples=2000) -> float:
    """Standard deviation along the least-used direction of the image's patch space.

    ``samples`` patches of ``patch`` x ``patch`` pixels (fixed pseudo-random positions, so the
    result is deterministic; every position once when there are fewer) are taken; the least
    textured half and then quarter are kept, and the square root of the smallest eigenvalue of
    their covariance is returned. Image structure is
    correlated across neighbouring pixels and leaves that direction nearly empty; noise, being
    independent per pixel, fills every direction equally.
    """
    h, w = gray.shape
    if min(h, w) < patch + 2:
        return 0.0
    windows = np.lib.stride_tricks.sliding_window_view(gray, (patch, patch))
    positions = windows.shape[0] * windows.shape[1]
    if positions <= samples:  # small image: every patch once (repeats would shrink the smallest eigenvalue)
        ys, xs = np.divmod(np.arange(positions), windows.shape[1])
    else:
        rng = np.random.default_rng(0)
        ys = rng.integers(0, windows.shape[0], samples)
        xs = rng.integers(0, windows.shape[1], samples)
    x = windows[ys, xs].reshape(len(ys), patch * patch).astype(np.float64)
    var = x.var(axis=1)
    sigma = 0.0
    for keep in (0.5, 0.25):
        chosen = x[var <= np.quantile(var, keep)]
        if len(chosen) < 4 * patch * patch:
            break
        centred = chosen - chosen.mean(axis=0)
        # einsum, not np.cov: a BLAS product this small is dominated by BLAS thread start-up and,
        # with the decoding threads running, by oversubscription (about 25x slower when cores are busy)
        cov = np.einsum("ni,nj->ij", centred, centred) / (len(chosen) - 1)
        sigma = float(np.sqrt(max(np.linalg.eigvalsh(cov)[0], 0.0)))
    return sigma


def _half(g):
    """Average over 2 x 2 blocks (an odd last row or column is dropped)."""
    g = g[: g.shape[0] // 2 * 2, : g.shape[1] // 2 * 2]
    return (g[0::2, 0::2] + g[1::2, 0::2] + g[0::2, 1::2] + g[1::2, 1::2]) / 4.0


def noise_sigma(gray) -> float:
    """Noise standard deviation in grey levels, with fine texture (fur, foliage, gravel) and JPEG
    artefacts discounted.

    ``a`` is `_weakest_direction` of the image, ``b`` twice that of the image averaged over 2 x 2
    blocks and ``c`` four times that of the image averaged over 4 x 4 blocks. Independent noise has
    the same size in all three (averaging four pixels halves it), while image structure grows with
    scale, by a factor ``k = NOISE_SCALE_GROWTH`` for fine textures. With ``a^2 = n^2 + t^2`` and
    ``b^2 = n^2 + k^2 t^2`` the noise is ``n = sqrt((k^2 a^2 - b^2) / (k^2 - 1))``, scaled by
    `NOISE_GAIN` so that pure Gaussian noise of sigma s reads s.

    If texture grew by the same factor at every scale, added noise could only make the growth look
    larger at the coarser pair (``c / b >= b / a``). When it looks smaller, the finest detail is
    texture with a grain near one pixel (a thumbnail of grass or gravel), which grows less than
    ``k``: the growth is then taken from the coarse scales, ``k = c / b`` (at least
    `NOISE_MIN_GROWTH`), instead of the fixed ``k``. Images under 32 px use ``a`` alone.
    """
    g = np.asarray(gray, np.float32)
    a = _weakest_direction(g)
    if min(g.shape) < 32:
        return NOISE_GAIN * a
    half = _half(g)
    b = 2.0 * _weakest_direction(half)
    c = 4.0 * _weakest_direction(_half(half))
    k = NOISE_SCALE_GROWTH
    if a > 0 and c > 0 and c * a < b * b:  # growth slows down from the fine to the coarse pair
        k = float(np.clip(c / b, NOISE_MIN_GROWTH, NOISE_SCALE_GROWTH))
    return NOISE_GAIN * float(np.sqrt(max(k * k * a * a - b * b, 0.0) / (k * k - 1.0)))


def sharpness(gray_small) -> tuple:
    """(laplacian ratio, edge strength) of a uint8 gray image (for the outlier statistics).

    Both are divided by a contrast measure, so darkening an image does not make it "blurry".
    """
    import cv2

    g = gray_small.astype(np.float32) / 255.0
    spread = float(g.std())
    lap = cv2.Laplacian(g, cv2.CV_32F, ksize=1)
    magnitude = cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    low, high = _percentile_u8(gray_small, 0.01), _percentile_u8(gray_small, 0.99)
    lap_ratio = float(lap.std()) / (spread + 1e-3)
    edge = _top_quantile(magnitude, 0.99) / ((high - low) / 255.0 + 1e-3)
    return lap_ratio, edge


def _percentile_u8(values, q) -> float:
    """The ``q`` quantile (0..1) of a uint8 array, from its 256-bin histogram."""
    cdf = np.cumsum(np.bincount(values.ravel(), minlength=256))
    return float(np.searchsorted(cdf, q * cdf[-1]))


def _top_quantile(values, q) -> float:
    """The ``q`` quantile of a float array by partial sort (no full sort)."""
    flat = values.ravel()
    k = min(flat.size - 1, int(q * flat.size))
    return float(np.partition(flat, k)[k])


def image_stats(image, shape=None) -> dict:
    """Raw measurements of one uint8 RGB (HxWx3) or gray (HxW) image.

    ``shape`` is the original ``(H, W, C)`` when ``image`` was downscaled on reading.
    Returns floats: height, width, channels, brightness, contrast, p05, p95 (luma in [0, 1]),
    mean_r/g/b, saturation (in [0, 1]), entropy (bits), lap_ratio, edge_strength,
    edge_density (Canny edge fraction), noise_sigma (grey levels), chroma (grey levels),
    detail (`detail_ratio`). Blur and noise are measured on the image as given (the audit decodes
    at most `MAX_SIDE` px); edge and colour statistics on a copy shrunk to `NORMALISED_AREA`
    pixels when larger. Nothing is enlarged.
    """
    import cv2

    if image.dtype != np.uint8 or not (image.ndim == 2 or image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"Expected a uint8 HxW or HxWx3 image, got {image.dtype} {image.shape}.")
    rgb = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    h, w, c = shape if shape is not None else (*image.shape[:2], 1 if image.ndim == 2 else 3)
    gray = _luma(rgb)
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    prob = hist / hist.sum()
    levels = np.arange(256) / 255.0
    cdf = np.cumsum(prob)
    mean = float(prob @ levels)
    nz = prob[prob > 0]
    small = _shrunk(rgb)
    small_gray = _luma(small)
    lap_ratio, edge = sharpness(small_gray)
    spread = cv2.subtract(np.maximum(np.maximum(small[..., 0], small[..., 1]), small[..., 2]),
                          np.minimum(np.minimum(small[..., 0], small[..., 1]), small[..., 2]))
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    means = small.reshape(-1, 3).mean(axis=0) / 255.0
    return {
        "height": float(h), "width": float(w), "channels": float(c),
        "brightness": mean,
        "contrast": float(np.sqrt(prob @ (levels - mean) ** 2)),
        "p05": float(np.searchsorted(cdf, 0.05) / 255.0),
        "p95": float(np.searchsorted(cdf, 0.95) / 255.0),
        "mean_r": float(means[0]), "mean_g": float(means[1]), "mean_b": float(means[2]),
        "saturation": float(hsv[..., 1].mean() / 255.0),
        "entropy": float(-(nz * np.log2(nz)).sum()),
        "lap_ratio": lap_ratio,
        "edge_strength": edge,
        "edge_density": float((cv2.Canny(small_gray, 50, 150) > 0).mean()),
        "noise_sigma": noise_sigma(gray),
        "chroma": _percentile_u8(spread, 0.99),
        "detail": detail_ratio(gray) if min(gray.shape) >= MIN_BLUR_SIDE else float(DETAIL_REF),
    }


def issue_scores(stats: dict) -> dict:
    """Per-image issue scores in [0, 1] from `image_stats` (no dataset-relative issues)."""
    sharp = max(stats["detail"], 0.0) / DETAIL_REF
    h, w = stats["height"], stats["width"]
    return {
        "dark": 1.0 - stats["p95"],
        "light": stats["p05"],
        "blurry": 0.0 if stats["contrast"] < MIN_CONTRAST else float(np.clip(1.0 - sharp, 0, 1)),
        "low_information": float(np.clip(1.0 - stats["entropy"] / 8.0, 0, 1)),
        "odd_aspect_ratio": 1.0 - min(h, w) / max(h, w),
        "grayscale": 1.0 - min(1.0, stats["chroma"] / GRAY_REF),
        "noisy": min(1.0, stats["noise_sigma"] / NOISE_REF),
    }


def check_image(image, thresholds=None) -> dict:
    """Score and flag one image: ``{issue: (score, flagged)}`` for the per-image issues."""
    limits = {**THRESHOLDS, **(thresholds or {})}
    return {k: (s, s >= limits[k]) for k, s in issue_scores(image_stats(image)).items()}


def odd_size_scores(heights, widths) -> np.ndarray:
    """Odd-size scores: robust z-score of log(area) against the dataset, divided by 7, clipped."""
    log_area = np.log(np.maximum(np.asarray(heights) * np.asarray(widths), 1.0))
    if log_area.size < 3:
        return np.zeros_like(log_area)
    median = np.median(log_area)
    scale = max(1.4826 * np.median(np.abs(log_area - median)), ODD_SIZE_MIN_SCALE)
    return np.minimum(np.abs(log_area - median) / scale / ODD_SIZE_Z_SCALE, 1.0)


def _ordered_map(fn, items, workers=None):
    """``map(fn, items)`` on a thread pool, in order, with a bounded number of items in flight."""
    from keras_cv_apps.image.io import default_workers

    workers = workers or default_workers()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        pending = collections.deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@dataclasses.dataclass
class QualityResult:
    """Everything one `assess` pass measured.

    Attributes:
        paths: readable files, in input order (row i of every array below).
        stats: ``{name: float array [N]}`` raw measurements (see `image_stats`).
        scores: ``{issue: float array [N]}`` scores in [0, 1] for every issue in `ISSUES`.
        thresholds: the threshold used for each issue.
        duplicate_groups: lists of paths with identical decoded pixels (2+ files each).
        unreadable: ``(path, reason)`` for files that could not be decoded.
        features: ``[N, D]`` classical embeddings when asked for, else None.
        notes: ``(path, note)`` for unusual files that were read (see `image.io.ImageRecord`).
    """

    paths: list
    stats: dict
    scores: dict
    thresholds: dict
    duplicate_groups: list
    unreadable: list
    features: Optional[np.ndarray] = None
    notes: list = dataclasses.field(default_factory=list)

    def flags(self, issue) -> np.ndarray:
        """Boolean array: which images are flagged for ``issue``."""
        return self.scores[issue] >= self.thresholds[issue]

    def flagged(self) -> list:
        """``(path, issue, score)`` per flagged image and issue; most severe first per issue."""
        rows = []
        for issue in ISSUES:
            idx = np.flatnonzero(self.flags(issue))
            for i in idx[np.argsort(-self.scores[issue][idx], kind="stable")]:
                rows.append((self.paths[i], issue, float(self.scores[issue][i])))
        return rows

    def counts(self) -> dict:
        """Number of flagged images per issue."""
        return {issue: int(self.flags(issue).sum()) for issue in ISSUES}


class _Columns:
    """Per-file dicts of floats kept as one growing float64 column per key (a few bytes per value
    instead of a dict of Python floats per file)."""

    def __init__(self):
        self._columns = {}

    def append(self, values: dict) -> None:
        from array import array

        if not self._columns:
            self._columns = {key: array("d") for key in values}
        elif values.keys() != self._columns.keys():  # every file measures the same things
            raise ValueError(f"Per-file values changed keys: {sorted(values)} after {sorted(self._columns)}.")
        for key, value in values.items():
            self._columns[key].append(value)

    def arrays(self, keys) -> dict:
        return {k: np.frombuffer(self._columns[k], np.float64).copy() if k in self._columns else np.zeros(0)
                for k in keys}


class _Rows:
    """float32 vectors of one length appended into one matrix: ``capacity`` rows (the number of
    files, when known) allocated at the first row, doubled only if more arrive (no list of
    arrays to stack at the end, which would hold them twice)."""

    def __init__(self, capacity: int = 64):
        self._data, self._count, self._capacity = None, 0, max(1, capacity)

    def append(self, row) -> None:
        row = np.asarray(row, np.float32)
        if self._data is None:
            self._data = np.empty((self._capacity, row.size), np.float32)
        elif self._count == len(self._data):
            grown = np.empty((2 * len(self._data), self._data.shape[1]), np.float32)
            grown[:self._count] = self._data
            self._data = grown
        self._data[self._count] = row
        self._count += 1

    def matrix(self) -> np.ndarray:
        if self._data is None:
            return np.zeros((0, 0), np.float32)
        return self._data[:self._count]


def assess(paths, *, thresholds=None, max_side=MAX_SIDE, features=False, workers=None,
           progress=True, on_image: Optional[Callable] = None, collectors=(),
           max_pixels: Optional[int] = None) -> QualityResult:
    """Run every quality check over ``paths`` in one streaming pass.

    Args:
        paths: image files (e.g. from `keras_cv_apps.image.io.list_images`).
        thresholds: ``{issue: threshold}`` overrides, each in [0, 1].
        max_side: decode images at most this large (speed; statistics are size-normalised).
        features: also compute `features.classical_embedding` per image (for outliers/EDA).
        workers: decoding threads (default: one per core).
        progress: show a progress bar.
        on_image: called as ``on_image(index, path, image)`` for each readable image, e.g. to
            keep a few thumbnails; ``index`` is its row in the result.
        collectors: objects that measure more in the same pass (e.g. `dedup.Collector`):
            ``measure(record)`` runs in the decoding threads and ``add(index, record, value)`` in
            input order (``index`` is None for unreadable files).
        max_pixels: refuse files whose header announces more pixels (`image.io.MAX_PIXELS`).

    Returns:
        a `QualityResult`; images are never all held in memory.
    """
    from keras_cv_apps.image.io import iter_images

    limits = dict(THRESHOLDS)
    for issue, value in (thresholds or {}).items():
        if issue not in THRESHOLDS:
            raise ValueError(f"Unknown quality issue {issue!r}; choose from {', '.join(ISSUES)}.")
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"Threshold for {issue} must be in [0, 1], got {value}.")
        limits[issue] = float(value)
    embed = None
    if features:
        from keras_cv_apps.vision.features import classical_embedding as embed

    def measure(record):  # runs in worker threads: OpenCV and hashlib release the GIL
        extra = [c.measure(record) for c in collectors]
        if record.image is None:
            return record, None, None, None, extra
        feature = embed(record.image) if embed is not None else None
        return record, image_stats(record.image, record.shape), pixel_hash(record.image), feature, extra

    from keras_cv_apps.image.io import MAX_PIXELS

    ok_paths, unreadable, notes, by_hash = [], [], [], {}
    stat_columns, score_columns = _Columns(), _Columns()  # compact per-file records
    feats = _Rows(len(paths) if hasattr(paths, "__len__") else 64)
    records = iter_images(paths, max_side=max_side, workers=workers, progress=progress,
                          desc="quality", max_pixels=max_pixels or MAX_PIXELS)
    for record, stats, digest, feature, extra in _ordered_map(measure, records, workers):
        index = None if stats is None else len(ok_paths)
        for collector, value in zip(collectors, extra):
            collector.add(index, record, value)
        if stats is None:
            unreadable.append((str(record.path), record.error))
            continue
        if record.note:
            notes.append((str(record.path), record.note))
        ok_paths.append(str(record.path))
        stat_columns.append(stats)
        score_columns.append(issue_scores(stats))
        by_hash.setdefault(digest, []).append(index)
        if feature is not None:
            feats.append(feature)
        if on_image is not None:
            on_image(index, str(record.path), record.image)
    names = list(image_stats(np.zeros((8, 8), np.uint8)))
    stats = stat_columns.arrays(names)
    score_arrays = score_columns.arrays([k for k in ISSUES if k not in ("odd_size", "exact_duplicate")])
    score_arrays["odd_size"] = odd_size_scores(stats["height"], stats["width"])
    dup = np.zeros(len(ok_paths))
    groups = [idx for idx in by_hash.values() if len(idx) > 1]
    for idx in groups:
        dup[idx[1:]] = 1.0
    score_arrays["exact_duplicate"] = dup
    matrix = feats.matrix() if embed is not None else None
    logger.info("assessed %d images (%d unreadable)", len(ok_paths), len(unreadable))
    return QualityResult(
        paths=ok_paths, stats=stats, scores={k: score_arrays[k] for k in ISSUES},
        thresholds=limits, duplicate_groups=[[ok_paths[i] for i in idx] for idx in groups],
        unreadable=unreadable,
        features=matrix, notes=notes,
    )


def rules(thresholds=None) -> dict:
    """``{issue: when it is flagged}`` in words, for reports (with the thresholds in use)."""
    t = {**THRESHOLDS, **(thresholds or {})}
    return {
        "dark": f"95% of pixels are darker than {255 * (1 - t['dark']):.0f}/255 (score >= {t['dark']})",
        "light": f"95% of pixels are brighter than {255 * t['light']:.0f}/255 (score >= {t['light']})",
        "blurry": f"the finest detail (1-2 px) is under {DETAIL_REF * (1 - t['blurry']):.2f}x the next octave's in "
                  f"some direction (sharp photos: 1.1-2.3; score >= {t['blurry']})",
        "low_information": f"the histogram holds under {8 * (1 - t['low_information']):.1f} bits (score >= "
                           f"{t['low_information']})",
        "odd_aspect_ratio": f"the long side is over {1 / (1 - t['odd_aspect_ratio']):.1f}x the short side",
        "odd_size": f"the area is far from the dataset's usual size (robust z >= "
                    f"{ODD_SIZE_Z_SCALE * t['odd_size']:.1f})",
        "grayscale": f"99% of pixels have channels within {GRAY_REF * (1 - t['grayscale']):.0f} grey levels",
        "noisy": f"estimated noise >= {NOISE_REF * t['noisy']:.0f} grey levels (score >= {t['noisy']})",
        "exact_duplicate": "the decoded pixels equal an earlier file's",
    }
