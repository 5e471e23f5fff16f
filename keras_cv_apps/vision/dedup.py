"""Near-duplicate images: perceptual hashes or CNN embeddings, verified, grouped, best copy kept.

How `find_duplicates` works with a hash method (``phash`` by default):

1. Each image is decoded once at 128 px (in parallel, streamed) and summarised: a digest of its
   pixels, its 64x64 gray thumbnail (kept in a `verify.ThumbStore`, which spills to a temporary
   file for big folders) and hashes of the whole image, its mirror image and 15 sub-regions that
   drop about 7% on some sides. The mirror hash catches horizontal flips and the region hashes
   catch small crops, which every whole-image 64-bit hash misses.
2. Files with identical pixels are joined at once (union-find on the digest), and images whose 17
   hashes are all equal are checked against one of them, so k copies of one photo cost k - 1
   cheap steps instead of k^2 / 2 verified pairs.
3. The whole-image and mirror hashes of what is left are searched against the whole-image and
   region hashes with `hashing.hamming_search_blocks` (multi-index, no N x N matrix). A hit gives
   a candidate pair and how the two images line up (mirrored or not, which region). Each pair
   keeps its closest alignment, and each image its `MAX_PARTNERS` closest partners (a pair
   stays if it is among them for either image), reduced block by block: a folder where every
   image resembles hundreds of others (frames, bursts, crops of a few photos) keeps at most
   `MAX_PARTNERS` x N candidates in memory and in the verification queue.
4. With ``verify_ssim`` each candidate pair, closest first, is skipped if it is already in one
   group, else its lined-up thumbnails are histogram-equalised (brightness and contrast edits do
   not count) and compared by SSIM (`verify.ssim`, OpenCV only); pairs the hashes call shifted
   (a region match, or a whole match more than `SHIFT_DISTANCE` bits apart) that fall short get
   an affine ECC alignment first. A pair is kept if its SSIM reaches ``min_ssim``; this rejects
   distinct images whose hashes collide, such as neighbouring crops of one photo.
5. Kept pairs join groups, without chaining: a pair that would join two groups must also hold
   between the groups' anchors (the member each was founded with), so A~B and B~C do not put a
   distinct C with A. Each group keeps one file chosen by `keep.choose` (by default the best
   copy: lossless over lossy, higher bit depth, more pixels, less compression, sharper, older,
   shorter path) and says why, per file. Every file's score is its SSIM with the kept file.

With ``method="cnn"`` images and their mirror images are embedded by a registered model used
as a feature extractor (its last hidden layer for classifiers), centred on the dataset mean,
L2-normalised, and compared by cosine similarity in chunked matrix products (a pair scores the
better of direct and mirrored); candidates are then verified with SSIM as above. TensorFlow
is imported on this path only. The default model is ``lenet5`` with untrained weights: random
convolutional features still rank re-encoded and resized copies above distinct images, but
they are far weaker than the hashes on crops and edits (see the benchmark); pass a trained
model for semantic near-duplicates.

The hash path imports NumPy, OpenCV and Pillow only (no scipy, scikit-image or TensorFlow).
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
from keras_cv_apps.image.io import MAX_PIXELS, ImageRecord, display_path, relative_name, scan_folder
from keras_cv_apps.vision import embeddings, fingerprint, hashing, keep, verify
from keras_cv_apps.vision.fingerprint import REGIONS, Scan
from keras_cv_apps.vision.hashing import HASH_METHODS

# the scan pass and the CNN search live in their own modules; these names stay reachable here
Collector, summarise, WORK_SIDE = fingerprint.Collector, fingerprint.summarise, fingerprint.WORK_SIDE
cosine_pairs, _variant_hashes = embeddings.cosine_pairs, fingerprint.variant_hashes

log = logging.getLogger(__name__)

METHODS = HASH_METHODS + ("cnn",)
# Maximum Hamming distance (hash methods) or minimum cosine similarity (cnn).
DEFAULT_THRESHOLDS = {"phash": 10, "dhash": 10, "ahash": 8, "whash": 8, "cnn": 0.9}
DEFAULT_MIN_SSIM = 0.6
DEFAULT_CNN_MODEL = "lenet5"
SHIFT_DISTANCE = 0  # whole-image hash matches farther apart than this get ECC alignment
MAX_PARTNERS = 8  # candidate pairs kept per image (its closest), so dense folders stay bounded
CSV_COLUMNS = ("group", "file", "representative", "score", "kept", "reason", "format", "link_target")


@dataclasses.dataclass
class DupGroup:
    """Images that are near-duplicates of each other.

    ``scores[k]`` is the similarity of ``files[k]`` to ``representative`` in [0, 1] (SSIM of
    the lined-up pair when verified, else ``1 - distance / 64`` or the cosine similarity);
    ``reasons[k]`` says why the representative was kept, or why it was preferred to ``files[k]``;
    ``labels[k]`` is the file's format and size (e.g. ``JPEG q~40 512x512``).
    """

    id: int
    files: list
    representative: Path
    scores: list
    reasons: list = dataclasses.field(default_factory=list)
    labels: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class DedupResult:
    """Groups (largest first), the accepted pairs ``(a, b, similarity)``, files that could not be
    used ``(path, reason)``, the keep rule, ``links`` (symlink -> target) and ``notes``
    ``(path, note)`` for unusual files that were read (animations, CMYK, 16-bit, odd names)."""

    groups: list
    pairs: list
    unreadable: list
    method: str
    threshold: float
    keep: str = "quality"
    links: dict = dataclasses.field(default_factory=dict)
    notes: list = dataclasses.field(default_factory=list)


def check_threshold(method: str, threshold) -> float:
    """The threshold to use for ``method`` (its default for None); ValueError if out of range."""
    check_choice(method, METHODS, "duplicate-search method")
    if threshold is None:
        return DEFAULT_THRESHOLDS[method]
    if method == "cnn":
        return check_number(threshold, "The cnn threshold (a cosine similarity)", minimum=0, maximum=1,
                            min_inclusive=False)
    return check_int(threshold, f"The {method} threshold (a Hamming distance)", minimum=0, maximum=64)


def _listing(paths, root, links):
    """(files, root, links, skipped) from a folder or a list of paths."""
    if isinstance(paths, (str, Path)) and Path(paths).is_dir():
        listing = scan_folder(paths)
        if not listing.files:
            from keras_cv_apps.image.io import list_images

            list_images(paths)  # raises the one-sentence "no images" error
        return listing.files, Path(paths), {**listing.links, **(links or {})}, list(listing.skipped)
    if isinstance(paths, (str, Path)):
        from keras_cv_apps.image.io import list_images

        return list_images(paths), root, dict(links or {}), []
    return [Path(p) for p in paths], root, dict(links or {}), []


def compute_hashes(paths_or_records, method: str = "phash", *, workers=None, progress=True):
    """Whole-image 64-bit hashes: ``(paths, uint64 array)`` for the readable images.

    ``paths_or_records`` is a folder, a list of paths, or a list of `ImageRecord`; unreadable
    files are skipped (and logged).
    """
    hashing.check_method(method)
    items = paths_or_records
    if isinstance(items, list) and items and isinstance(items[0], ImageRecord):
        scan = Scan(method)
        for rec in items:
            scan.add(rec, summarise(rec.image, method) if rec.error is None else None)
    else:
        files, root, links, _ = _listing(items, None, None)
        scan = fingerprint.scan_paths(files, method, workers, progress, MAX_PIXELS, root, links)
    for path, error in scan.unreadable:
        log.warning("%s", error)
    return scan.paths, scan.hashes[:, 0].copy()


class Candidates:
    """Candidate pairs as parallel arrays sorted closest first (then by ``(i, j)``): ``i < j``,
    ``dist`` (Hamming bits, or 1 - cosine for embeddings), ``flip``, ``region``, ``query`` (which
    image's whole or mirror hash matched) and ``shifted``. Iterating gives
    ``((i, j), (dist, flip, region, query, shifted))`` as Python values."""

    def __init__(self, i, j, dist, flip, region, query, shifted):
        order = np.lexsort((j, i, dist))
        self.columns = tuple(np.asarray(c)[order] for c in (i, j, dist, flip, region, query, shifted))

    @classmethod
    def from_dict(cls, found: dict) -> "Candidates":
        keys, values = list(found), list(found.values())
        cols = [np.array([k[0] for k in keys], np.int64), np.array([k[1] for k in keys], np.int64)]
        cols += [np.array([v[c] for v in values]) for c in range(5)]
        if not keys:
            cols = [np.zeros(0, np.int64)] * 2 + [np.zeros(0)] + [np.zeros(0, np.int64)] * 3 + [np.zeros(0, bool)]
        return cls(*cols)

    def __len__(self) -> int:
        return len(self.columns[0])

    def __iter__(self):
        i, j, dist, flip, region, query, shifted = (c.tolist() for c in self.columns)
        for row in zip(i, j, dist, flip, region, query, shifted):
            yield row[:2], row[2:]


def _closest(a, b, flip, region, dist, n: int, max_partners: int) -> tuple:
    """Each unordered image pair's closest alignment (ties: unmirrored first, then the query
    image, then the region, as the hits are ordered), then only the pairs among the
    ``max_partners`` closest of either image (ties by partner)."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((region, b, flip, dist, lo * n + hi))
    key = (lo * n + hi)[order]
    first = order[np.r_[True, key[1:] != key[:-1]]] if len(order) else order
    a, b, flip, region, dist, lo, hi = (c[first] for c in (a, b, flip, region, dist, lo, hi))
    m = len(a)
    node, other = np.concatenate([lo, hi]), np.concatenate([hi, lo])
    d2, edge = np.concatenate([dist, dist]), np.concatenate([np.arange(m), np.arange(m)])
    order = np.lexsort((other, d2, node))
    node = node[order]
    starts = np.r_[0, np.flatnonzero(node[1:] != node[:-1]) + 1] if m else np.zeros(0, np.int64)
    rank = np.arange(len(node)) - np.repeat(starts, np.diff(np.r_[starts, len(node)]))
    keep = np.zeros(m, bool)
    keep[edge[order][rank < max_partners]] = True
    return tuple(c[keep] for c in (a, b, flip, region, dist))


def _hash_candidates(hashes: np.ndarray, threshold: int, max_partners: int = None) -> tuple:
    """``(i, j, dist, flip, region, query)`` arrays: the best alignment of each candidate pair,
    at most ``max_partners`` (default `MAX_PARTNERS`) pairs per image kept, reduced as each
    block of the Hamming search comes in."""
    max_partners = MAX_PARTNERS if max_partners is None else max_partners
    n = len(hashes)
    queries = np.concatenate([hashes[:, 0], hashes[:, 1]])  # whole, then mirrored
    index_cols = [0] + list(range(2, hashes.shape[1]))  # whole, then regions
    index = hashes[:, index_cols].T.ravel()  # column-major: position // n is the region
    empty = np.zeros(0, np.int64)
    kept = (empty,) * 5
    for qi, ii, dist in hashing.hamming_search_blocks(queries, index, threshold=threshold):
        q_img, flip, i_img, region = qi % n, qi // n, ii % n, ii // n
        other = q_img != i_img
        part = (i_img[other], q_img[other], flip[other], region[other], dist[other])
        kept = _closest(*(np.concatenate([k, p]) for k, p in zip(kept, part)), n, max_partners)
    a, b, flip, region, dist = kept
    return np.minimum(a, b), np.maximum(a, b), dist, flip, region, b


def _hash_queue(scan: Scan, pairs: dict, threshold: int, verify_ssim: bool, min_ssim: float) -> tuple:
    """``(union-find, Candidates)`` of a hash scan: exact copies joined (their pairs into
    ``pairs``), then the candidate pairs among one head per exact group, for `_verify`."""
    uf = _UnionFind(len(scan.paths))
    heads = _exact_and_buckets(scan, uf, pairs, verify_ssim, min_ssim)
    a, b, dist, flip, region, query = _hash_candidates(scan.hashes[heads], threshold)
    heads = np.asarray(heads, np.int64)
    return uf, Candidates(heads[a], heads[b], dist, flip, region, heads[query], _shifted(dist, region))


def _alignment(hashes: np.ndarray, a: int, b: int) -> tuple:
    """(distance, flip, region, query) of the best hash alignment between images a and b."""
    best = None
    for query, other in ((a, b), (b, a)):
        index = hashes[other, [0] + list(range(2, hashes.shape[1]))]
        dist = hashing.popcount(hashes[query, :2, None] ^ index[None, :])  # (flip, region)
        flip, region = np.unravel_index(int(np.argmin(dist)), dist.shape)
        cand = (int(dist[flip, region]), int(flip), int(region), query)
        if best is None or cand[0] < best[0]:
            best = cand
    return best


def _pair_ssim(thumbs, i, j, flip, region, query, *, min_ssim, shifted) -> float:
    other = j if query == i else i  # the image whose region was matched
    q = thumbs[query][:, ::-1] if flip else thumbs[query]
    return verify.aligned_ssim(verify.thumbnail(thumbs[other], REGIONS[region]), verify.thumbnail(q),
                               shifted=shifted, min_ssim=min_ssim)


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True

    def components(self) -> list:
        comps = {}
        for x in range(len(self.parent)):
            comps.setdefault(self.find(x), []).append(x)
        return [c for c in comps.values() if len(c) > 1]


def _exact_and_buckets(scan: Scan, uf: _UnionFind, pairs: dict, verify_ssim: bool, min_ssim: float) -> list:
    """Join files with identical pixels, then files whose 17 hashes are all equal (checked by SSIM
    against the first of them); returns the images left to search (one per joined set)."""
    first = {}
    for i, key in enumerate(scan.keys):
        if key in first:
            uf.union(first[key], i)
            pairs[(first[key], i)] = 1.0
        else:
            first[key] = i
    heads = np.array(sorted(first.values()), np.int64)
    if len(heads) == 0:
        return []
    rows = scan.hashes[heads]
    _, bucket_first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    searched = []
    for k, head in enumerate(heads.tolist()):
        leader = int(heads[bucket_first[inverse[k]]])
        if leader == head:
            searched.append(head)
            continue
        score = verify.ssim(verify.thumbnail(scan.thumbs[leader]), verify.thumbnail(scan.thumbs[head])) \
            if verify_ssim else 1.0
        if score >= min_ssim:
            uf.union(leader, head)
            pairs[(leader, head)] = float(np.clip(score, 0.0, 1.0))
        else:
            searched.append(head)
    return searched


def _shifted(dist, region):
    """Whether the hashes say a pair is shifted: a region match, or a whole match more than
    `SHIFT_DISTANCE` bits apart (such pairs get an ECC alignment when plain SSIM falls short).
    Takes single values or arrays of them."""
    return (np.asarray(region) != 0) | (np.asarray(dist) > SHIFT_DISTANCE)


VERIFY_AHEAD = 128  # candidate pairs per worker thread scored ahead of `_verify`'s in-order pass


def _verify(scan, uf, candidates, pairs, min_ssim, progress, workers=None) -> None:
    """Check candidate pairs closest first, skipping pairs already in one group.

    Groups do not chain: each group has an anchor (the member it was founded with; the larger
    group's anchor after a merge), and a pair that joins two groups must pass SSIM itself and
    its two anchors must pass too, lined up by their hashes. So A~B and B~C put C next to A only
    when C also matches A's anchor. Anchor results are cached, and a pair whose anchors are known
    to differ is skipped without comparing it.

    The SSIM (and ECC) checks run on ``workers`` threads (OpenCV and NumPy release the GIL): the
    next `VERIFY_AHEAD` pairs per thread still open are scored together, then applied one by one
    in order, so the groups are those of checking every pair in turn; a pair that an earlier one
    of its chunk joined costs a wasted check, nothing else.
    """
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    from keras_cv_apps.image.io import default_workers

    anchor, anchors_ok = {}, {}
    size = Counter(uf.find(x) for x in range(len(uf.parent)))

    def state(i, j):
        """``(roots, anchors, anchor key, through anchors)`` of an open pair, else None."""
        ri, rj = uf.find(i), uf.find(j)
        if ri == rj:
            return None
        ai, aj = anchor.get(ri, ri), anchor.get(rj, rj)
        key = (min(ai, aj), max(ai, aj))
        through_anchors = (ai, aj) != (i, j)  # the pair is not the two anchors themselves
        if through_anchors and anchors_ok.get(key) is False:
            return None
        return ri, rj, ai, aj, key, through_anchors

    def score(row):
        (i, j), (_, flip, region, query, shifted) = row
        return _pair_ssim(scan.thumbs, i, j, flip, region, query, min_ssim=min_ssim, shifted=shifted)

    workers = workers or default_workers()
    rows = iter(candidates)
    with ThreadPoolExecutor(workers) as pool, tqdm(desc="verifying", unit="pair", total=len(candidates),
                                                    disable=not progress or len(candidates) < 2000) as bar:
        while chunk := list(itertools.islice(rows, VERIFY_AHEAD * workers)):
            ahead = [k for k, ((i, j), _) in enumerate(chunk) if state(i, j) is not None]
            scores = dict(zip(ahead, pool.map(score, [chunk[k] for k in ahead])))
            for k, row in enumerate(chunk):
                (i, j), _ = row
                now = state(i, j)
                if now is None:
                    continue
                ri, rj, ai, aj, key, through_anchors = now
                value = scores[k] if k in scores else score(row)
                log.debug("ssim %s %s %.3f", scan.paths[i].name, scan.paths[j].name, value)
                if value < min_ssim:
                    continue
                if through_anchors:
                    if key not in anchors_ok:
                        a_dist, a_flip, a_region, a_query = _alignment(scan.hashes, ai, aj)
                        a_score = _pair_ssim(scan.thumbs, ai, aj, a_flip, a_region, a_query, min_ssim=min_ssim,
                                             shifted=_shifted(a_dist, a_region))
                        anchors_ok[key] = bool(a_score >= min_ssim)
                        if anchors_ok[key]:
                            pairs.setdefault(key, float(np.clip(a_score, 0.0, 1.0)))
                    if not anchors_ok[key]:
                        continue
                si, sj = size[ri], size[rj]
                uf.union(i, j)
                root = uf.find(i)
                anchor[root] = ai if (si, -ai) >= (sj, -aj) else aj
                size[root] = si + sj
                pairs[(i, j)] = float(np.clip(value, 0.0, 1.0))
            bar.update(len(chunk))


def _score_to_kept(scan, hashes, pairs, k, rep, verified: bool, cnn_sim=None) -> float:
    if k == rep or scan.keys[k] == scan.keys[rep]:
        return 1.0
    edge = (min(k, rep), max(k, rep))
    if edge in pairs:
        return pairs[edge]
    if cnn_sim is not None and not verified:
        return cnn_sim(k, rep)
    dist, flip, region, query = _alignment(hashes, k, rep)
    if not verified:
        return 1.0 - dist / 64.0
    score = _pair_ssim(scan.thumbs, k, rep, flip, region, query, min_ssim=1.0, shifted=False)
    return float(np.clip(score, 0.0, 1.0))


def _groups(scan: Scan, uf: _UnionFind, pairs: dict, rule: str, verified: bool, cnn_sim=None) -> list:
    hashes = scan.hashes
    groups = []
    for members in uf.components():
        members.sort()
        best, reasons = keep.choose([scan.facts[k] for k in members], rule)
        rep = members[best]
        scores = [round(_score_to_kept(scan, hashes, pairs, k, rep, verified, cnn_sim), 4) for k in members]
        groups.append((members, rep, scores, reasons))
    groups.sort(key=lambda g: (-len(g[0]), str(scan.paths[g[1]])))
    return [DupGroup(gid, [scan.paths[k] for k in m], scan.paths[rep], sc, rs,
                     [scan.facts[k].label() for k in m])
            for gid, (m, rep, sc, rs) in enumerate(groups, start=1)]


def find_duplicates(paths=None, *, method: str = "phash", threshold=None, verify_ssim: bool = True,
                    min_ssim: float = DEFAULT_MIN_SSIM, workers: Optional[int] = None,
                    progress: bool = True, model=None, keep_rule: str = "quality",
                    max_pixels: int = MAX_PIXELS, root=None, links=None, scan: Optional[Scan] = None
                    ) -> DedupResult:
    """Find groups of near-duplicate images among ``paths`` (a folder or a list of files).

    Args:
        method: one of `METHODS`; see the module docstring.
        threshold: maximum Hamming distance (hash methods, 0..64) or minimum cosine
            similarity (cnn, (0, 1]); None uses `DEFAULT_THRESHOLDS`.
        verify_ssim: re-check each candidate pair with SSIM on lined-up thumbnails.
        min_ssim: SSIM a verified pair must reach.
        workers, progress: decoding and verification threads (default one per core) and the tqdm
            bar, as in `io.iter_images`.
        model: cnn only; a registered model name or a ``keras.Model`` (default `DEFAULT_CNN_MODEL`).
        keep_rule: which file each group keeps (`keep.RULES`; default the best copy).
        max_pixels: files whose header announces more pixels are refused without decoding.
        root: the folder paths are shown relative to (and ``pattern:`` rules match against);
            defaults to ``paths`` when that is a folder.
        links: ``{symlink: target}`` for listed symlinks (found automatically for a folder).
        scan: a `Scan` already filled by another pass (`Collector`); ``paths`` is then ignored.
    """
    threshold = check_threshold(method, threshold)
    keep.check_rule(keep_rule)
    if not 0.0 <= min_ssim <= 1.0:
        raise ValueError(f"min_ssim must be in [0, 1], got {min_ssim}.")
    check_int(max_pixels, "max_pixels", minimum=1)
    skipped = []
    if scan is None:
        files, root, links, skipped = _listing(paths, root, links)
        scan = Scan(method if method != "cnn" else "phash", root=root, links=links)
        if method != "cnn":
            scan = fingerprint.scan_paths(files, method, workers, progress, max_pixels, root, links)
    elif method != "cnn" and scan.method != method:
        raise ValueError(f"The scan holds {scan.method} hashes, not {method}.")
    uf = _UnionFind(0)
    pairs = {}
    cnn_sim = None
    if method == "cnn":
        emb, mirrored = embeddings.embed(files, model or DEFAULT_CNN_MODEL, workers, progress, scan, max_pixels)
        uf = _UnionFind(len(scan.paths))
        heads = _exact_and_buckets(scan, uf, pairs, verify_ssim, min_ssim)
        similar = embeddings.cosine_pairs(emb[heads], threshold, mirrored[heads])
        # line pairs up for SSIM: mirrored when the mirror embedding matched better
        found = {}
        for (a, b), sim in similar.items():
            i, j = heads[a], heads[b]
            found[(i, j)] = (1.0 - sim, int(emb[i] @ mirrored[j] > emb[i] @ emb[j]), 0, j, True)
        candidates = Candidates.from_dict(found)

        def cnn_sim(k, rep):
            return float(max(emb[k] @ emb[rep], emb[k] @ mirrored[rep], 0.0))
    else:
        uf, candidates = _hash_queue(scan, pairs, threshold, verify_ssim, min_ssim)
    if verify_ssim:
        _verify(scan, uf, candidates, pairs, min_ssim, progress, workers)
    else:
        for (i, j), cand in candidates:
            if uf.union(i, j):
                pairs[(i, j)] = 1.0 - cand[0] / 64.0 if method != "cnn" else 1.0 - cand[0]
    groups = _groups(scan, uf, pairs, keep_rule, verify_ssim, cnn_sim)
    pair_list = [(scan.paths[i], scan.paths[j], round(s, 4)) for (i, j), s in sorted(pairs.items())]
    result = DedupResult(groups, pair_list, skipped + scan.unreadable, method, threshold, keep_rule,
                         dict(scan.links), list(scan.notes))
    scan.thumbs.close()
    return result


def _rel(path, root) -> str:
    return relative_name(path, root) if root is not None else display_path(path)


def write_groups_csv(result: DedupResult, path, root=None) -> Path:
    """Write one row per file of each group (paths relative to ``root`` if given, symlinks under
    their own name with ``link_target`` filled): `CSV_COLUMNS`."""
    rows = []
    for g in result.groups:
        reasons = g.reasons or [""] * len(g.files)
        labels = g.labels or [""] * len(g.files)
        for f, s, why, label in zip(g.files, g.scores, reasons, labels):
            target = result.links.get(f)
            rows.append([g.id, _rel(f, root), _rel(g.representative, root), f"{s:.4f}",
                         "yes" if f == g.representative else "no", why, label,
                         display_path(target) if target is not None else ""])
    return write_csv(path, CSV_COLUMNS, rows)


def write_skipped_csv(result: DedupResult, path, root=None) -> Path:
    """Write ``file,reason`` for every file that could not be used."""
    return write_csv(path, ("file", "reason"), [(_rel(p, root), r) for p, r in result.unreadable])
