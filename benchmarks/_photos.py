"""Generated image folders for the large benchmarks: crops of the photos scikit-image and
scikit-learn ship, resized and re-encoded, so every file is a real photo texture but (nearly)
every file differs."""

from __future__ import annotations

import concurrent.futures
import os
from pathlib import Path

import numpy as np

NAMES = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "moon", "immunohistochemistry",
         "retina", "brick", "grass", "gravel", "page", "text", "hubble_deep_field", "clock", "cell")


def photos() -> list:
    """The source photos as uint8 RGB arrays."""
    import skimage.data as d
    from sklearn.datasets import load_sample_images

    out = []
    for name in NAMES:
        a = getattr(d, name)()
        out.append(np.dstack([a] * 3) if a.ndim == 2 else a[..., :3])
    left, right, _ = d.stereo_motorcycle()
    out += [left, right, *load_sample_images().images]
    return [np.ascontiguousarray(a) for a in out]


def _draw(seed, shapes):
    """(rng, photo index, crop box (y, x, height, width)) of one generated file."""
    rng = np.random.default_rng(seed)
    index = int(rng.integers(len(shapes)))
    h, w = shapes[index][:2]
    frac = rng.uniform(0.2, 0.6)
    ch, cw = max(16, int(h * frac * rng.uniform(0.8, 1.2))), max(16, int(w * frac * rng.uniform(0.8, 1.2)))
    ch, cw = min(ch, h), min(cw, w)
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    return rng, index, (int(y), int(x), int(ch), int(cw))


def crop_boxes(n: int, *, seed: int = 0, start: int = 0) -> list:
    """(photo index, (y, x, height, width)) of the files `write_distinct` writes with these
    arguments, in order: the ground truth of which files show overlapping parts of one photo."""
    shapes = [a.shape for a in photos()]
    return [_draw(seed * 1_000_003 + k, shapes)[1:] for k in range(start, start + n)]


def _mosaic(seed, sources, side):
    """A ``side`` x ``side`` image of four crops drawn independently (2 x 2), so that two files
    rarely share more than a quarter of their content."""
    import cv2

    half = max(8, side // 2)
    tiles = []
    for q in range(4):
        _, index, (y, x, ch, cw) = _draw(seed * 4 + q, [a.shape for a in sources])
        tiles.append(cv2.resize(sources[index][y : y + ch, x : x + cw], (half, half), interpolation=cv2.INTER_AREA))
    return np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])


def _one(args):
    import cv2

    path, seed, side_range, sources, mosaic = args
    rng, index, (y, x, ch, cw) = _draw(seed, [a.shape for a in sources])
    side = int(rng.integers(*side_range))
    if mosaic:
        crop = _mosaic(seed, sources, side)
    else:
        crop = sources[index][y : y + ch, x : x + cw]
        scale = side / max(ch, cw)
        crop = cv2.resize(crop, (max(8, round(cw * scale)), max(8, round(ch * scale))),
                          interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    gain = rng.uniform(0.8, 1.2, 3)
    crop = np.clip(crop * gain, 0, 255).astype(np.uint8)
    bgr = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(60, 96))] if path.suffix == ".jpg" else []
    ok, buf = cv2.imencode(path.suffix, bgr, params)
    path.write_bytes(buf.tobytes())


def write_distinct(root, n: int, *, seed: int = 0, side_range=(64, 160), folders: int = 1,
                   start: int = 0, workers: int = 0, mosaic: bool = False) -> list:
    """Write ``n`` generated photos (60% JPEG, 40% PNG) into ``folders`` sub-folders of ``root``:
    one crop each, or with ``mosaic`` four crops in a square (crops of only 21 photos overlap
    often: tens of thousands of single crops make a folder where every image resembles dozens of
    others, mosaics one where few do)."""
    root = Path(root)
    sources = photos()
    jobs = []
    for k in range(start, start + n):
        folder = root / f"class{k % folders:03d}" if folders > 1 else root
        suffix = ".jpg" if (k * 7919) % 10 < 6 else ".png"
        jobs.append((folder / f"img{k:06d}{suffix}", seed * 1_000_003 + k, side_range, sources, mosaic))
    for folder in {j[0].parent for j in jobs}:
        folder.mkdir(parents=True, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        list(pool.map(_one, jobs, chunksize=64))
    return [j[0] for j in jobs]
