"""64-bit perceptual hashes and an all-pairs Hamming search that never builds an N x N matrix.

Hashes (each on a grayscale image or region of it, shrunk with area interpolation, packed
into a uint64):

- ``ahash``: 8x8 thumbnail, bit = pixel > mean.
- ``dhash``: 9x8 thumbnail, bit = pixel > its left neighbour (horizontal gradient sign).
- ``phash``: 32x32 thumbnail, 2-D DCT, the 8x8 lowest frequencies, bit = coefficient > median
  of those coefficients without the DC term.
- ``whash``: 64x64 thumbnail, three levels of the Haar wavelet transform, bit = level-3
  approximation (LL) coefficient > its median; the median split keeps 32 bits set, so it stays
  informative on low-contrast images where aHash saturates.

These follow the definitions of ``cv2.img_hash`` (aHash, pHash; the tests compare against it)
and the ``imagehash`` package. They are written in numpy rather than calling
``cv2.img_hash`` because each of those calls resizes the full image again, while here one
128x128 square serves an image's 17 variants (whole, mirror, regions) in one batch.

The pHash 32x32 shrink is kept in float32 (not rounded to uint8). Area shrinking and the DCT are
both linear, so `phash_grid` gets the 8x8 low frequencies of many crops of one square from two
matrix products (rows of ``DCT8 @ shrink`` per crop side); `region_hashes` (one ``cv2.resize``
and ``cv2.dct`` per crop) is the plain reference it equals, and the tests check that it does.

`hamming_search` finds all pairs within a Hamming distance T with multi-index hashing: the 64
bits are cut into ``m`` chunks with radii r_c such that sum(r_c + 1) > T. A pair within T then
differs by at most r_c bits on some chunk c (generalised pigeonhole), so each chunk is a
direct-address table probed with every key within r_c of the query's, and only those
candidates get a full popcount. The number of chunks is picked by a cost model; small inputs
fall back to blocked brute force. Memory stays linear in the number of hashes plus one table
of at most 2**22 + 1 offsets.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Optional, Tuple

import numpy as np

HASH_METHODS = ("phash", "dhash", "ahash", "whash")


# (width, height) each method shrinks an image (or region) to before computing bits
_SIZES = {"ahash": (8, 8), "dhash": (9, 8), "phash": (32, 32), "whash": (64, 64)}


def _ahash_bits(small):
    return small > small.mean(axis=(1, 2), keepdims=True)


def _dhash_bits(small):
    return small[:, :, 1:] > small[:, :, :-1]


def _phash_bits(small):
    import cv2

    low = np.stack([cv2.dct(s)[:8, :8] for s in small]).reshape(len(small), 64)
    return low > np.median(low[:, 1:], axis=1, keepdims=True)


def _whash_bits(small):
    ll = small
    for _ in range(3):  # orthonormal Haar approximation band, one level per pass
        ll = (ll[:, 0::2, 0::2] + ll[:, 1::2, 0::2] + ll[:, 0::2, 1::2] + ll[:, 1::2, 1::2]) / 2
    ll = ll.reshape(len(small), 64)
    return ll > np.median(ll, axis=1, keepdims=True)


_BITS = {"ahash": _ahash_bits, "dhash": _dhash_bits, "phash": _phash_bits, "whash": _whash_bits}


def check_method(method: str) -> None:
    """ValueError naming the choices if ``method`` is not a hash method."""
    if method not in HASH_METHODS:
        choices = ", ".join(HASH_METHODS)
        raise ValueError(f"Unknown hash method {method!r}; choose one of {choices}.")


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Boolean array ``(..., 64)`` -> uint64 array ``(...)`` (first bit most significant)."""
    packed = np.packbits(np.asarray(bits, bool).reshape(-1, 64), axis=1)
    return packed.view(">u8").astype(np.uint64).reshape(np.shape(bits)[:-1])


def crop_region(image: np.ndarray, region) -> np.ndarray:
    """``image`` cut to ``region = (y0, y1, x0, x1)``, given as fractions of its height/width."""
    h, w = image.shape[:2]
    y0, y1, x0, x1 = region
    return image[round(y0 * h) : max(round(y1 * h), 1), round(x0 * w) : max(round(x1 * w), 1)]


def shrink_regions(gray: np.ndarray, method: str, regions) -> np.ndarray:
    """float32 stack ``(R, h, w)``: each region of ``gray`` shrunk (area) to ``method``'s size.

    The image is first brought to a 128x128 square (hashes ignore aspect ratio anyway), so
    cutting and shrinking many regions stays cheap whatever the input size.
    """
    import cv2

    square = cv2.resize(gray, (128, 128), interpolation=cv2.INTER_AREA)
    if method == "phash":  # the 32x32 shrink stays float, as in `phash_grid`
        square = square.astype(np.float32)
    size = _SIZES[method]
    return np.stack([cv2.resize(crop_region(square, r), size, interpolation=cv2.INTER_AREA)
                     for r in regions]).astype(np.float32)


def stack_hashes(small: np.ndarray, method: str) -> np.ndarray:
    """uint64 hashes of a stack made by `shrink_regions` (one per stacked image)."""
    return pack_bits(_BITS[method](small).reshape(len(small), 64))


def region_hashes(gray: np.ndarray, method: str, regions) -> np.ndarray:
    """uint64 ``method`` hashes of ``gray`` cut to each region (see `crop_region`)."""
    return stack_hashes(shrink_regions(gray, method, regions), method)


def image_hash(image: np.ndarray, method: str = "phash") -> np.uint64:
    """The 64-bit ``method`` hash of a uint8 image (gray ``HxW`` or RGB ``HxWx3``)."""
    import cv2

    check_method(method)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    return region_hashes(gray, method, [(0.0, 1.0, 0.0, 1.0)])[0]


@functools.lru_cache(maxsize=None)
def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights of ``cv2.resize(..., INTER_AREA)`` shrinking one axis of n_in
    pixels to n_out (read off OpenCV by shrinking the identity, so the two agree exactly)."""
    import cv2

    eye = np.eye(n_in, dtype=np.float64)
    return cv2.resize(eye, (n_out, n_in), interpolation=cv2.INTER_AREA).T.copy()


@functools.lru_cache(maxsize=None)
def _dct_rows(n: int = 32, k: int = 8) -> np.ndarray:
    """The first ``k`` rows of the orthonormal n-point DCT-II matrix (what ``cv2.dct`` applies)."""
    rows = np.cos(np.pi * (2 * np.arange(n) + 1) * np.arange(k)[:, None] / (2 * n)) * np.sqrt(2 / n)
    rows[0] /= np.sqrt(2)
    return rows


@functools.lru_cache(maxsize=64)
def _phash_side(n: int, spans: tuple) -> np.ndarray:
    """float32 ``(8 * len(spans), n)``: for each span ``(start, stop, mirrored)`` of an axis of n
    pixels, the 8 lowest DCT rows of that span shrunk (area) to 32 pixels, reversed if mirrored."""
    blocks = []
    for start, stop, mirrored in spans:
        if not 0 <= start < stop <= n or stop - start < 32:
            raise ValueError(f"A pHash span must lie in 0..{n} and hold at least 32 pixels, got {start}..{stop}.")
        shrink = np.zeros((32, n))
        shrink[:, start:stop] = area_matrix(stop - start, 32)
        blocks.append(_dct_rows() @ (shrink[::-1] if mirrored else shrink))
    return np.vstack(blocks).astype(np.float32)


def phash_grid(square: np.ndarray, row_spans, col_spans) -> np.ndarray:
    """uint64 pHashes ``(len(row_spans), len(col_spans))`` of ``square`` cut to every pair of a row
    span and a column span, each span ``(start, stop, mirrored)`` in pixels and at least 32 long
    (a shrink: OpenCV's area weights per axis hold only when both axes shrink).

    Equal to `region_hashes` on the same crops (mirrored: of the crop flipped left-right), with
    the float32 32x32 shrink; two matrix products instead of one resize and one DCT per crop.
    """
    left = _phash_side(square.shape[0], tuple(map(tuple, row_spans)))
    right = _phash_side(square.shape[1], tuple(map(tuple, col_spans)))
    low = left @ np.asarray(square, np.float32) @ right.T
    rows, cols = len(row_spans), len(col_spans)
    low = low.reshape(rows, 8, cols, 8).transpose(0, 2, 1, 3).reshape(rows * cols, 64)
    median = np.partition(low[:, 1:], 31, axis=1)[:, 31:32]  # the median of 63 values
    return pack_bits(low > median).reshape(rows, cols)


def popcount(x: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64."""
    return np.bitwise_count(x)


def _chunks(m: int):
    """(shift, width) of ``m`` near-equal bit chunks covering 64 bits."""
    widths = [64 // m + (1 if i < 64 % m else 0) for i in range(m)]
    shifts = np.cumsum([0] + widths[:-1])
    return list(zip(shifts.tolist(), widths))


def _ball(width: int, radius: int) -> np.ndarray:
    """All ``width``-bit masks with at most ``radius`` bits set."""
    masks = [0]
    for r in range(1, radius + 1):
        masks += [sum(1 << b for b in c) for c in itertools.combinations(range(width), r)]
    return np.array(masks, dtype=np.int64)


def _radii(m: int, threshold: int) -> list:
    """Per-chunk search radii whose sum of (radius + 1) exceeds ``threshold``.

    If every chunk differed by more than its radius, the total distance would be at least
    ``sum(radius + 1) > threshold``; so a pair within ``threshold`` matches some chunk within
    its radius. A radius of -1 means that chunk is not probed at all.
    """
    q, rem = divmod(threshold + 1, m)
    return [q if c < rem else q - 1 for c in range(m)]


def _plan(n_queries: int, n_index: int, threshold: int) -> int:
    """Chunk count with the least estimated work (ns per probe/candidate/pair); 1 = brute force."""
    best, best_cost = 1, 3.0 * n_queries * n_index
    for m in (2, 3, 4, 5, 6, 8):
        cost = 0.0
        for (_, width), radius in zip(_chunks(m), _radii(m, threshold)):
            if width > 22:  # direct-address table would be too large
                cost = np.inf
            probes = sum(math.comb(width, r) for r in range(radius + 1)) * n_queries
            cost += probes * (30.0 + 50.0 * n_index / 2.0**width)
        if cost < best_cost:
            best, best_cost = m, cost
    return best


def _brute(queries, index, threshold, self_search, block=1024):
    out = []
    for start in range(0, len(queries), block):
        q = queries[start : start + block]
        dist = popcount(q[:, None] ^ index[None, :])
        qi, ii = np.nonzero(dist <= threshold)
        if self_search:
            qi, ii = qi[ii > qi + start], ii[ii > qi + start]
        out.append((qi + start, ii, dist[qi, ii]))
    return out


def _bucket_hits(queries, who, probe, starts, order, by_key, threshold, same_bucket):
    """(query, index, distance) for queries ``who`` against every hash in bucket ``probe``.

    Loops over bucket ranks k = 0, 1, ... comparing each query with the k-th member of its
    bucket, so the work is vectorised without expanding all candidates at once.
    """
    lo = starts[probe]
    counts = starts[probe + 1] - lo
    out, active, k = [], np.flatnonzero(counts), 0
    while active.size:
        pos = lo[active] + k
        qi = who[active]
        dist = popcount(queries[qi] ^ by_key[pos])
        hit = np.flatnonzero(dist <= threshold)
        qi, ii, dist = qi[hit], order[pos[hit]], dist[hit]
        if same_bucket:  # a self-search meets each pair twice here: keep i < j
            qi, ii, dist = qi[ii > qi], ii[ii > qi], dist[ii > qi]
        if len(qi):
            out.append((qi, ii, dist))
        k += 1
        active = active[counts[active] > k]
    return out


def _tables(index, threshold, m) -> list:
    """Per bit chunk of the multi-index: the index hashes grouped by the chunk's value and the
    flips to probe (built once, searched by any number of query blocks)."""
    tables = []
    for (shift, width), radius in zip(_chunks(m), _radii(m, threshold)):
        if radius < 0:
            continue
        mask = np.uint64((1 << width) - 1)
        keys = ((index >> np.uint64(shift)) & mask).astype(np.int64)
        order = np.argsort(keys, kind="stable")
        starts = np.searchsorted(keys[order], np.arange((1 << width) + 1))
        flips = _ball(width, radius)
        top = np.array([int(f).bit_length() for f in flips])  # 0 for the empty flip
        tables.append((shift, mask, order, index[order], starts, flips, top))
    return tables


def _multi_index(queries, threshold, self_search, tables):
    out = []
    for shift, mask, order, by_key, starts, flips, top in tables:
        qkeys = ((queries >> np.uint64(shift)) & mask).astype(np.int64)
        for bit in np.unique(top):
            # In a self-search buckets v and v ^ flip meet twice; probe only from the side
            # whose key has a 0 at the flip's top bit, so each pair of buckets meets once.
            if self_search and bit:
                who = np.flatnonzero((qkeys >> (bit - 1)) & 1 == 0)
            else:
                who = np.arange(len(queries))
            for flip in flips[top == bit]:
                out += _bucket_hits(queries, who, qkeys[who] ^ flip, starts, order, by_key,
                                    threshold, self_search and not flip)
    return out


def _merged(parts, n_index, self_search) -> tuple:
    """One sorted ``(query, index, distance)`` from search parts, each pair once."""
    parts = [*parts, (np.zeros(0, np.int64),) * 3]
    qi, ii, dist = (np.concatenate(column).astype(np.int64) for column in zip(*parts))
    if self_search:
        qi, ii = np.minimum(qi, ii), np.maximum(qi, ii)
    # a pair close in several chunks is found once per chunk: keep one copy, sorted
    _, first = np.unique(qi * n_index + ii, return_index=True)
    return qi[first], ii[first], dist[first]


def _check_threshold(threshold: int) -> None:
    if not 0 <= threshold <= 64:
        raise ValueError(f"threshold must be a Hamming distance in 0..64, got {threshold}.")


def hamming_search_blocks(queries: np.ndarray, index: np.ndarray, *, threshold: int, block: int = 16384):
    """`hamming_search` of ``queries`` against ``index`` (not a self-search) one block of
    ``block`` queries at a time: yields ``(query_idx, index_idx, distance)`` per block (query
    indices into the whole ``queries``), so a caller can reduce the hits of a dense set as they
    come instead of holding all of them. The index is built once."""
    _check_threshold(threshold)
    queries = np.ascontiguousarray(queries, dtype=np.uint64).ravel()
    index = np.ascontiguousarray(index, dtype=np.uint64).ravel()
    if len(queries) == 0 or len(index) == 0:
        return
    m = _plan(len(queries), len(index), threshold)
    tables = _tables(index, threshold, m) if m > 1 else None
    for start in range(0, len(queries), block):
        part = queries[start:start + block]
        found = _brute(part, index, threshold, False) if m == 1 else _multi_index(part, threshold, False, tables)
        qi, ii, dist = _merged(found, len(index), False)
        yield qi + start, ii, dist


def hamming_search(
    queries: np.ndarray, index: Optional[np.ndarray] = None, *, threshold: int
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs of uint64 hashes within Hamming distance ``threshold`` (inclusive).

    With ``index=None`` the queries are searched against themselves and each unordered pair
    ``i < j`` is returned once. Otherwise every ``(query, index)`` pair within the radius is
    returned. Returns ``(query_idx, index_idx, distance)`` int arrays sorted by query, index.
    """
    _check_threshold(threshold)
    queries = np.ascontiguousarray(queries, dtype=np.uint64).ravel()
    self_search = index is None
    index = queries if self_search else np.ascontiguousarray(index, dtype=np.uint64).ravel()
    if len(queries) == 0 or len(index) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    m = _plan(len(queries), len(index), threshold)
    if m == 1:
        parts = _brute(queries, index, threshold, self_search)
    else:
        parts = _multi_index(queries, threshold, self_search, _tables(index, threshold, m))
    return _merged(parts, len(index), self_search)
