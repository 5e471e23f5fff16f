"""Near-duplicate images: perceptual hashes or CNN embeddings, verified, grouped.

How `find_duplicates` works with a hash method (``phash`` by default):

1. Each image is decoded once at 128 px (in parallel, streamed) and hashed several ways: the
   whole image, its mirror image, and 15 sub-regions that drop about 7% on some sides. The
   mirror hash catches horizontal flips and the region hashes catch small crops, which every
   whole-image 64-bit hash misses.
2. Whole-image and mirror hashes are searched against whole-image and region hashes with
   `hashing.hamming_search` (multi-index, no N x N matrix). A hit gives a candidate pair and
   how the two images line up (mirrored or not, which region).
3. With ``verify_ssim`` each candidate pair is re-read, lined up, shrunk to 64x64 gray,
   histogram-equalised (so brightness and contrast edits do not count), its alignment refined
   by an ECC affine fit, and kept only if its structural similarity (SSIM) reaches
   ``min_ssim``. This rejects distinct images whose hashes collide, such as neighbouring crops
   of one photo.
4. Kept pairs are edges; groups are the connected components. Each group's representative is
   the largest image (pixels), then the sharpest (variance of the Laplacian), then the first path.

With ``method="cnn"`` images and their mirror images are embedded by a registered model used
as a feature extractor (its last hidden layer for classifiers), centred on the dataset mean,
L2-normalised, and compared by cosine similarity in chunked matrix products (a pair scores the
better of direct and mirrored); candidates are then verified with SSIM as above. TensorFlow
is imported on this path only. The default model is ``lenet5`` with untrained weights: random
convolutional features still rank re-encoded and resized copies above distinct images, but
they are far weaker than the hashes on crops and edits (see the benchmark); pass a trained
model for semantic near-duplicates.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from pathlib import Path
from typing import Optional

import numpy as np

from keras_cv_apps._validate import check_choice, check_int, check_number
from keras_cv_apps.artifacts import write_csv
from keras_cv_apps.image.io import ImageRecord, iter_images, list_images
from keras_cv_apps.vision import hashing
from keras_cv_apps.vision.hashing import HASH_METHODS

log = logging.getLogger(__name__)

METHODS = HASH_METHODS + ("cnn",)
# Maximum Hamming distance (hash methods) or minimum cosine similarity (cnn).
DEFAULT_THRESHOLDS = {"phash": 10, "dhash": 10, "ahash": 8, "whash": 8, "cnn": 0.9}
DEFAULT_MIN_SSIM = 0.6
DEFAULT_CNN_MODEL = "lenet5"
WORK_SIDE = 128  # images are decoded to at most this many pixels per side
_AXIS = ((0.0, 1.0), (0.07, 1.0), (0.0, 0.93), (0.07, 0.93))
REGIONS = tuple((y0, y1, x0, x1) for (y0, y1), (x0, x1) in itertools.product(_AXIS, _AXIS))


@dataclasses.dataclass
class DupGroup:
    """Images that are near-duplicates of each other.

    ``scores[k]`` is the similarity of ``files[k]`` to ``representative`` in [0, 1] (SSIM of
    the lined-up pair when verified, else ``1 - distance / 64`` or the cosine similarity).
    """

    id: int
    files: list
    representative: Path
    scores: list


@dataclasses.dataclass
class DedupResult:
    """Groups (largest first), the accepted pairs ``(a, b, similarity)``, unreadable files."""

    groups: list
    pairs: list
    unreadable: list
    method: str
    threshold: float


def check_threshold(method: str, threshold) -> float:
    """The threshold to use for ``method`` (its default for None); ValueError if out of range."""
    check_choice(method, METHODS, "duplicate-search method")
    if threshold is None:
        return DEFAULT_THRESHOLDS[method]
    if method == "cnn":
        return check_number(threshold, "The cnn threshold (a cosine similarity)", minimum=0, maximum=1,
                            min_inclusive=False)
    return check_int(threshold, f"The {method} threshold (a Hamming distance)", minimum=0, maximum=64)


def _as_paths(paths) -> list:
    if isinstance(paths, (str, Path)):
        return list_images(paths)
    return [Path(p) for p in paths]


def _gray_work(image: np.ndarray) -> np.ndarray:
    """Any uint8 image -> gray with at most WORK_SIDE pixels per side."""
    import cv2

    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    scale = WORK_SIDE / max(gray.shape)
    if scale < 1:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray


def _variant_hashes(gray: np.ndarray, method: str) -> np.ndarray:
    """[whole, mirrored whole, region 1, ..., region 15] hashes of one image."""
    small = hashing.shrink_regions(gray, method, REGIONS)
    small = np.concatenate([small[:1], small[:1, :, ::-1], small[1:]])  # mirror the shrunk whole
    return hashing.stack_hashes(small, method)


def _sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian of a WORK_SIDE gray image (higher is sharper)."""
    import cv2

    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def _scan(items, method, workers, progress):
    """Hash every image: (paths, hashes (N, 17), pixels (N,), sharpness (N,), unreadable).

    ``items`` are paths (decoded in parallel at WORK_SIDE, hashed in the decoding threads) or
    `ImageRecord` objects with their images.
    """

    def summarise(image):
        gray = _gray_work(image)
        return _variant_hashes(gray, method), _sharpness(gray)

    items = list(items)
    if items and isinstance(items[0], ImageRecord):
        records = (dataclasses.replace(r, image=summarise(r.image)) if r.error is None else r
                   for r in items)
    else:
        records = iter_images([Path(p) for p in items], mode="gray", max_side=WORK_SIDE,
                              workers=workers, progress=progress, desc=f"hashing ({method})",
                              postprocess=summarise)
    paths, rows, pixels, sharp, unreadable = [], [], [], [], []
    for rec in records:
        if rec.error is not None:
            unreadable.append((rec.path, rec.error))
            continue
        paths.append(rec.path)
        rows.append(rec.image[0])
        sharp.append(rec.image[1])
        pixels.append(rec.shape[0] * rec.shape[1])
    hashes = np.array(rows, np.uint64).reshape(-1, 2 + len(REGIONS) - 1)
    return paths, hashes, np.array(pixels, np.int64), np.array(sharp), unreadable


def compute_hashes(paths_or_records, method: str = "phash", *, workers=None, progress=True):
    """Whole-image 64-bit hashes: ``(paths, uint64 array)`` for the readable images.

    ``paths_or_records`` is a folder, a list of paths, or a list of `ImageRecord`; unreadable
    files are skipped (and logged).
    """
    hashing.check_method(method)
    items = paths_or_records
    if not (isinstance(items, list) and items and isinstance(items[0], ImageRecord)):
        items = _as_paths(items)
    paths, hashes, _, _, unreadable = _scan(items, method, workers, progress)
    for path, error in unreadable:
        log.warning("%s", error)
    return paths, hashes[:, 0].copy()


def _hash_candidates(hashes: np.ndarray, threshold: int) -> dict:
    """{(i, j): (distance, flip, region, query_image)} for the best alignment of each pair."""
    n = len(hashes)
    queries = np.concatenate([hashes[:, 0], hashes[:, 1]])  # whole, then mirrored
    index_cols = [0] + list(range(2, hashes.shape[1]))  # whole, then regions
    index = hashes[:, index_cols].T.ravel()  # column-major: position // n is the region
    qi, ii, dist = hashing.hamming_search(queries, index, threshold=threshold)
    q_img, flip = qi % n, qi // n
    i_img, region = ii % n, ii // n
    keep = q_img != i_img
    best = {}
    for a, fl, b, rg, d in zip(i_img[keep].tolist(), flip[keep].tolist(), q_img[keep].tolist(),
                               region[keep].tolist(), dist[keep].tolist()):
        key = (min(a, b), max(a, b))
        if key not in best or d < best[key][0]:
            best[key] = (d, fl, rg, b)
    return best


def _thumb(gray: np.ndarray, region) -> np.ndarray:
    """``region`` of ``gray`` shrunk to 64x64 and histogram-equalised (brightness-proof)."""
    import cv2

    part = hashing.crop_region(gray, region)
    return cv2.equalizeHist(cv2.resize(part, (64, 64), interpolation=cv2.INTER_AREA))


def _aligned_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two 64x64 thumbnails, after refining their alignment with ECC when that helps.

    The hash match lines the pair up to within a few percent; an affine ECC fit absorbs the
    rest (a crop between region steps, a small rotation). Fits that move far from identity
    are ignored, so distinct images cannot be warped into agreement.
    """
    import cv2
    from skimage.metrics import structural_similarity

    def ssim(x, y):
        return structural_similarity(x, y, data_range=255, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)

    score = ssim(a, b)
    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
    try:
        _, warp = cv2.findTransformECC(a.astype(np.float32), b.astype(np.float32), warp,
                                       cv2.MOTION_AFFINE, criteria, None, 3)
    except cv2.error:  # no convergence: keep the hash alignment
        return score
    if np.abs(warp[:, :2] - np.eye(2)).max() > 0.25 or np.abs(warp[:, 2]).max() > 10:
        return score
    moved = cv2.warpAffine(b, warp, (64, 64), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    return max(score, ssim(a, moved))


def _ssim_verify(paths, candidates: dict, min_ssim: float, workers, progress) -> dict:
    """SSIM of each lined-up candidate pair; returns {(i, j): ssim} for those >= min_ssim."""
    needed = sorted({k for pair in candidates for k in pair})
    grays = {}
    for k, rec in zip(needed, iter_images([paths[k] for k in needed], mode="gray",
                                          max_side=WORK_SIDE, workers=workers,
                                          progress=progress, desc="verifying")):
        if rec.image is not None:
            grays[k] = _gray_work(rec.image)
    kept = {}
    for (i, j), (_, flip, region, query) in candidates.items():
        if i not in grays or j not in grays:
            continue
        other = j if query == i else i  # the image whose region was matched
        q = grays[query][:, ::-1] if flip else grays[query]
        score = _aligned_ssim(_thumb(grays[other], REGIONS[region]), _thumb(q, REGIONS[0]))
        log.debug("ssim %s %s %.3f", paths[i].name, paths[j].name, score)
        if score >= min_ssim:
            kept[(i, j)] = float(np.clip(score, 0.0, 1.0))
    return kept


def _embed(items, model, workers, progress, preprocessing=None):
    """Embeddings of the readable images and of their mirror images, centred and L2-normalised,
    with the pixel counts, sharpness and unreadable files as in `_scan`.

    ``model`` is a registered name or a ``keras.Model``; a registry model is cut at its cfg's
    feature layer (`models.feature_extractor`) and fed with its cfg's scaling, or with
    ``preprocessing`` ({``scale``, ``mean``, ``std``}, e.g. a run's ``config.json`` dataset entry)
    when given. Subtracting the dataset's mean embedding removes what all images share (for an
    untrained network mostly overall brightness), so cosine similarity reflects content.
    """
    import cv2

    from keras_cv_apps import models
    from keras_cv_apps.image import ops

    if isinstance(model, str):
        model = models.create(model)
    cfg = models.cfg_of(model)
    if cfg is not None and cfg.feature_layer:
        model = models.feature_extractor(model)
    height, width, channels = model.input_shape[1:4]
    p = dict(preprocessing or {"scale": cfg.scale if cfg else "unit"})
    ops.scale_params(p["scale"], p.get("mean"), p.get("std"))  # a bad mode or missing stats: fail now
    paths, unreadable, batch, out, pixels, sharp = [], [], [], [], [], []

    def flush():
        x = np.stack(batch + [b[:, ::-1] for b in batch]).reshape(-1, height, width, channels)
        y = np.asarray(model.predict(ops.scale(x, p["scale"], p.get("mean"), p.get("std")), verbose=0))
        out.append(y.reshape(2, len(batch), -1))
        batch.clear()

    for rec in iter_images(_as_paths(items), mode="gray" if channels == 1 else "rgb",
                           max_side=max(WORK_SIDE, height, width), workers=workers,
                           progress=progress, desc="embedding"):
        if rec.error is not None:
            unreadable.append((rec.path, rec.error))
            continue
        paths.append(rec.path)
        pixels.append(rec.shape[0] * rec.shape[1])
        sharp.append(_sharpness(_gray_work(rec.image)))
        batch.append(cv2.resize(rec.image, (width, height), interpolation=cv2.INTER_AREA))
        if len(batch) == 128:
            flush()
    if batch:
        flush()
    emb = np.concatenate(out, axis=1) if out else np.zeros((2, 0, 1), np.float32)
    emb -= emb[0].mean(axis=0) if len(paths) > 1 else 0.0
    emb /= np.linalg.norm(emb, axis=2, keepdims=True) + 1e-12
    return paths, emb[0], emb[1], np.array(pixels, np.int64), np.array(sharp), unreadable


def cosine_pairs(emb: np.ndarray, threshold: float, mirrored: Optional[np.ndarray] = None,
                 chunk: int = 2048) -> dict:
    """{(i, j): similarity} for i < j with cosine similarity >= threshold, in row chunks.

    With ``mirrored`` (embeddings of the mirror images), a pair's similarity is the larger of
    image-to-image and image-to-mirror, so horizontal flips match too.
    """
    pairs = {}
    for start in range(0, len(emb), chunk):
        sims = emb[start : start + chunk] @ emb.T
        if mirrored is not None:
            sims = np.maximum(sims, emb[start : start + chunk] @ mirrored.T)
        rows, cols = np.nonzero(sims >= threshold)
        keep = cols > rows + start
        rows, cols = rows[keep], cols[keep]
        for i, j, s in zip((rows + start).tolist(), cols.tolist(), sims[rows, cols].tolist()):
            pairs[(i, j)] = float(min(s, 1.0))
    return pairs


def _components(n: int, edges) -> list:
    """Connected components (lists of node ids, size >= 2) by union-find."""
    parent = list(range(n))

    def root(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in edges:
        parent[root(i)] = root(j)
    comps = {}
    for x in {v for e in edges for v in e}:
        comps.setdefault(root(x), []).append(x)
    return [sorted(c) for c in comps.values() if len(c) > 1]


def _groups(paths, pairs: dict, pixels, sharp, fallback_score) -> list:
    groups = []
    for members in _components(len(paths), pairs):
        rep = max(members, key=lambda k: (pixels[k], sharp[k], -k))
        scores = []
        for k in members:
            edge = (min(k, rep), max(k, rep))
            scores.append(1.0 if k == rep else pairs[edge] if edge in pairs
                          else fallback_score(k, rep))
        groups.append((members, rep, scores))
    groups.sort(key=lambda g: (-len(g[0]), str(paths[g[1]])))
    return [DupGroup(gid, [paths[k] for k in m], paths[rep], [round(s, 4) for s in sc])
            for gid, (m, rep, sc) in enumerate(groups, start=1)]


def find_duplicates(paths, *, method: str = "phash", threshold=None, verify_ssim: bool = True,
                    min_ssim: float = DEFAULT_MIN_SSIM, workers: Optional[int] = None,
                    progress: bool = True, model=None) -> DedupResult:
    """Find groups of near-duplicate images among ``paths`` (a folder or a list of files).

    Args:
        method: one of `METHODS`; see the module docstring.
        threshold: maximum Hamming distance (hash methods, 0..64) or minimum cosine
            similarity (cnn, (0, 1]); None uses `DEFAULT_THRESHOLDS`.
        verify_ssim: re-check each candidate pair with SSIM on lined-up thumbnails.
        min_ssim: SSIM a verified pair must reach.
        workers, progress: decoding threads and the tqdm bar, as in `io.iter_images`.
        model: cnn only; a registered model name or a ``keras.Model`` (default `DEFAULT_CNN_MODEL`).
    """
    threshold = check_threshold(method, threshold)
    if not 0.0 <= min_ssim <= 1.0:
        raise ValueError(f"min_ssim must be in [0, 1], got {min_ssim}.")
    paths = _as_paths(paths)
    if method == "cnn":
        paths, emb, mirrored, pixels, sharp, unreadable = _embed(
            paths, model or DEFAULT_CNN_MODEL, workers, progress)
        similar = cosine_pairs(emb, threshold, mirrored)
        # line pairs up for SSIM: mirrored when the mirror embedding matched better
        candidates = {(i, j): (s, int(emb[i] @ mirrored[j] > emb[i] @ emb[j]), 0, j)
                      for (i, j), s in similar.items()}

        def fallback(k, rep):
            return float(max(emb[k] @ emb[rep], emb[k] @ mirrored[rep], 0.0))
    else:
        paths, hashes, pixels, sharp, unreadable = _scan(paths, method, workers, progress)
        candidates = _hash_candidates(hashes, threshold)
        similar = {k: 1.0 - v[0] / 64.0 for k, v in candidates.items()}

        def fallback(k, rep):  # best whole/mirror/region distance between two group members
            d = min(int(hashing.popcount(hashes[k, :2, None] ^ hashes[rep, None, :]).min()),
                    int(hashing.popcount(hashes[rep, :2, None] ^ hashes[k, None, :]).min()))
            return 1.0 - d / 64.0

    if verify_ssim:
        pairs = _ssim_verify(paths, candidates, min_ssim, workers, progress)
    else:
        pairs = similar
    groups = _groups(paths, pairs, pixels, sharp, fallback)
    pair_list = [(paths[i], paths[j], round(s, 4)) for (i, j), s in sorted(pairs.items())]
    return DedupResult(groups, pair_list, unreadable, method, threshold)


def write_groups_csv(result: DedupResult, path, root=None) -> Path:
    """Write ``group,file,representative,score`` rows (paths relative to ``root`` if given)."""
    def rel(p):
        if root is None:
            return str(p)
        try:
            return Path(p).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            return str(p)

    rows = [[g.id, rel(f), rel(g.representative), f"{s:.4f}"] for g in result.groups for f, s in zip(g.files, g.scores)]
    return write_csv(path, ["group", "file", "representative", "score"], rows)
