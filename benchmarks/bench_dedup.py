"""Near-duplicate detection: accuracy per method and transform, hashing speed, search scaling.

Builds a near-duplicate set with known ground truth from the photos scikit-image and
scikit-learn ship: whole photos plus neighbouring crops of large photos (overlapping tiles:
distinct images that share content, the classic false-positive trap). Most sources get three
transformed copies drawn from: resize, JPEG re-encode, brightness/contrast, small crop, small
rotation, noise, watermark text, grayscale, horizontal flip, exact copy, PNG<->JPEG re-save.

Measures, on one machine in one run:
- pair precision / recall / F1 per method at its default threshold (pairs = all pairs inside a
  predicted group vs inside a true group) and per transform (pairs touching that transform);
- images/s of hashing (`dedup.compute_hashes`) vs decode-only (`io.iter_images`, full size);
- `hashing.hamming_search` time and peak traced memory on 100,000 and 1,000,000 random hashes;
- end to end: wall time of ``python -m apps.dedup SET --out FILE`` against a process that only
  decodes the same files (our parallel `io.iter_images`, and a plain ``cv2.imread`` loop);
- on ``--large`` (10,000) generated photos (crops of the shipped photos, resized, re-encoded;
  part ``throughput``): `dedup.find_duplicates` images/s and its hashing pass alone against
  decode-only images/s, where the time goes (search, verification, ECC fits), and pair precision /
  recall against the crop geometry (overlap of two crops of one photo: IoU >= 0.7 is a duplicate);
- verification threads (part ``threads``, on ``--large`` generated photos): `dedup._verify` on one
  thread against one per core on the same candidates, alternating (wall, CPU, SSIM checks made,
  and that both give the same pairs);
- huge groups (part ``huge``): 10,000 copies of one photo plus 10,000 distinct photos against 20,000 distinct
  photos (`find_duplicates` wall time), and the size of the largest group in the CSV;
- the same accuracy/speed figures for imagededup / cleanvision when they are importable.

Usage: python -m benchmarks.bench_dedup [--quick] [--methods phash,cnn] [--thresholds 6,10] [--large 10000]
       [--parts accuracy,speed,end_to_end,others,throughput,huge,search,threads]
Prints a table and writes benchmarks/results/dedup.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import tempfile
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np

PARTS = ("accuracy", "speed", "end_to_end", "others", "large", "throughput", "huge", "search", "threads")
DEFAULT_PARTS = "accuracy,speed,end_to_end,others,large,search"
TRANSFORMS = ("resize", "jpeg", "brightness_contrast", "crop", "rotation", "noise", "watermark",
              "grayscale", "flip", "exact_copy", "resave")


def _grid(h, w, size, steps):
    """Top-left corners of a steps x steps grid of size x size tiles spanning an h x w image."""
    ys = np.linspace(0, h - size, steps).astype(int)
    xs = np.linspace(0, w - size, steps).astype(int)
    return list(itertools.product(ys, xs))


def _sources(quick: bool) -> dict:
    """name -> RGB uint8 image: whole photos, overlapping tiles of large photos, small faces."""
    import skimage.data as d
    from sklearn.datasets import load_sample_images

    def rgb(a):
        return np.dstack([a] * 3) if a.ndim == 2 else a[..., :3]

    names = ["astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "clock",
             "immunohistochemistry", "page", "text", "brick", "gravel", "grass", "cell",
             "colorwheel"]
    out = {n: rgb(getattr(d, n)()) for n in names}
    china, flower = load_sample_images().images
    out.update({"china": china, "flower": flower})
    big = {"hubble": d.hubble_deep_field(), "china": china, "flower": flower,
           "retina": d.retina()[250:1150, 250:1150], "astronaut": d.astronaut(),
           "coffee": d.coffee()}
    for name, img in big.items():  # 3x3 tiles, each overlapping its neighbours by 40-70%
        h, w = img.shape[:2]
        size = int(min(h, w) * 0.6)
        for k, (y, x) in enumerate(_grid(h, w, size, 3)):
            out[f"{name}_tile{k}"] = np.ascontiguousarray(img[y : y + size, x : x + size])
    faces = d.lfw_subset()  # 100 faces then 100 non-face patches, 25x25 gray in [0, 1]
    for k in list(range(60)) + list(range(100, 120)):
        small = (faces[k] * 255).astype(np.uint8)
        out[f"lfw{k:03d}"] = rgb(cv2.resize(small, (100, 100), interpolation=cv2.INTER_CUBIC))
    if quick:
        out = dict(list(out.items())[::4])
    return out


def _transform(img, name, rng):
    """Apply one named near-duplicate transform; returns (image, file suffix)."""
    h, w = img.shape[:2]
    if name == "resize":
        s = rng.uniform(0.3, 0.7)
        return cv2.resize(img, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA), ".png"
    if name == "jpeg":
        return img, f".q{int(rng.integers(15, 40))}.jpg"
    if name == "brightness_contrast":
        alpha, beta = rng.uniform(0.7, 1.3), rng.uniform(-40, 40)
        return cv2.convertScaleAbs(img, alpha=alpha, beta=beta), ".png"
    if name == "crop":
        top, bottom, left, right = (rng.uniform(0.0, 0.1, 4) * [h, h, w, w]).astype(int)
        return img[top : h - bottom, left : w - right], ".png"
    if name == "rotation":
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-4, 4), 1.0)
        return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT), ".png"
    if name == "noise":
        return np.clip(img + rng.normal(0, 15, img.shape), 0, 255).astype(np.uint8), ".png"
    if name == "watermark":
        out = img.copy()
        scale = w / 500
        cv2.putText(out, "(c) stock", (int(w * 0.05), int(h * 0.92)), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
        return out, ".png"
    if name == "grayscale":
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), ".png"
    if name == "flip":
        return np.ascontiguousarray(img[:, ::-1]), ".png"
    if name == "exact_copy":
        return img, ".png"
    if name == "resave":
        return img, ".q90.jpg"
    raise ValueError(name)


def build_set(root: Path, quick: bool, seed: int = 0):
    """Write the set; returns (groups: list of lists of relative names, transform_of: dict)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    groups, transform_of = [], {}
    for k, (name, img) in enumerate(_sources(quick).items()):
        src = f"{name}.png"
        cv2.imwrite(str(root / src), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        group = [src]
        if k % 4 != 3:  # every fourth source stays a singleton
            for t in rng.choice(TRANSFORMS, 3, replace=False):
                out, suffix = _transform(img, t, rng)
                fname = f"{name}__{t}{suffix.split('.jpg')[0].split('.png')[0]}"
                fname += ".jpg" if suffix.endswith(".jpg") else ".png"
                bgr = cv2.cvtColor(out, cv2.COLOR_RGB2BGR) if out.ndim == 3 else out
                quality = int(suffix.split(".q")[1].split(".")[0]) if ".q" in suffix else 95
                params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fname.endswith(".jpg") else []
                cv2.imwrite(str(root / fname), bgr, params)
                group.append(fname)
                transform_of[fname] = str(t)
        groups.append(group)
    return groups, transform_of


def _pairs(groups):
    return {tuple(sorted(p)) for g in groups for p in itertools.combinations(g, 2)}


def score(pred_groups, truth_groups, transform_of) -> dict:
    """Pair precision/recall/F1 overall and per transform (pairs touching that transform)."""
    pred, truth = _pairs(pred_groups), _pairs(truth_groups)

    def prf(p, t):
        tp = len(p & t)
        prec = tp / len(p) if p else 1.0
        rec = tp / len(t) if t else 1.0
        return {"precision": round(prec, 3), "recall": round(rec, 3),
                "f1": round(2 * prec * rec / (prec + rec), 3) if prec + rec else 0.0}

    out = {"all": prf(pred, truth)}
    for t in TRANSFORMS:
        touches = {f for f, tt in transform_of.items() if tt == t}
        out[t] = prf({p for p in pred if touches & set(p)}, {p for p in truth if touches & set(p)})
    return out


def run_ours(methods, paths):
    """label -> (predicted groups as file names, seconds); the default method also runs
    without SSIM verification to show what the verification adds."""
    from keras_cv_apps.vision import dedup

    runs = [(m, m, True) for m in methods]
    if "phash" in methods:
        runs.append(("phash no-ssim", "phash", False))
    results = {}
    for label, method, verify in runs:
        t0 = time.perf_counter()
        res = dedup.find_duplicates(paths, method=method, verify_ssim=verify, progress=False)
        elapsed = time.perf_counter() - t0
        results[label] = ([[p.name for p in g.files] for g in res.groups], elapsed)
        if label == "phash":
            results["keep"] = keep_report(res)
    return results


def keep_report(result) -> dict:
    """Which copy the default keep rule chose, for every found group that holds a source photo.

    Every source is written first as a lossless PNG (``name.png``); its copies are resized, lossy,
    cropped, noisier, brighter, grey, flipped ... so the source is the copy to keep.
    """
    groups = [g for g in result.groups if any("__" not in f.name for f in g.files)]
    lost = [(g.representative.name, g.reasons[g.files.index(g.representative)]) for g in groups
            if "__" in g.representative.name]
    by_transform = {}
    for name, _ in lost:
        t = name.split("__")[1].split(".")[0]
        by_transform[t] = by_transform.get(t, 0) + 1
    return {"groups_with_original": len(groups), "original_kept": len(groups) - len(lost),
            "rate": round((len(groups) - len(lost)) / max(len(groups), 1), 4),
            "kept_instead_by_transform": by_transform, "examples": lost[:5]}


def speed(paths, rounds: int = 3) -> dict:
    """Images/s: full decode only vs hashing (decode at 128 px + 17 hashes per image).

    Best of ``rounds`` alternating runs each, so other load on the machine hurts both alike.
    """
    from keras_cv_apps.image import io
    from keras_cv_apps.vision import dedup

    def rate(fn):
        t0 = time.perf_counter()
        fn()
        return len(paths) / (time.perf_counter() - t0)

    def decode():
        for _ in io.iter_images(paths, progress=False):
            pass

    def hashes():
        dedup.compute_hashes(paths, progress=False)

    decode_rates, hash_rates = [], []
    for _ in range(rounds):
        decode_rates.append(rate(decode))
        hash_rates.append(rate(hashes))
    best_decode, best_hash = max(decode_rates), max(hash_rates)
    return {"decode_only_img_s": round(best_decode, 1), "hashing_img_s": round(best_hash, 1),
            "ratio": round(best_hash / best_decode, 2)}


_DECODE_IO = ("import sys; from keras_cv_apps.image import io\n"
              "for r in io.iter_images(io.list_images(sys.argv[1]), progress=False): pass")
_DECODE_CV2 = ("import os, sys, cv2\nfor n in sorted(os.listdir(sys.argv[1])):\n"
               "    cv2.imread(os.path.join(sys.argv[1], n), cv2.IMREAD_UNCHANGED)")


def end_to_end(root: Path, rounds: int = 3) -> dict:
    """Best-of-``rounds`` wall seconds of three processes on ``root``, run alternately."""
    import subprocess
    import sys

    def timed(cmd):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{cmd} failed: {done.stderr[-1000:]}")
        return time.perf_counter() - t0

    out = {"decode_io_s": [], "decode_cv2_s": [], "dedup_app_s": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            out["decode_io_s"].append(timed([sys.executable, "-c", _DECODE_IO, str(root)]))
            out["decode_cv2_s"].append(timed([sys.executable, "-c", _DECODE_CV2, str(root)]))
            out["dedup_app_s"].append(timed([sys.executable, "-m", "apps.dedup", str(root), "--out",
                                             f"{tmp}/d.csv"]))
    best = {k: round(min(v), 2) for k, v in out.items()}
    best["ratio_vs_decode_io"] = round(best["dedup_app_s"] / best["decode_io_s"], 2)
    best["ratio_vs_decode_cv2"] = round(best["dedup_app_s"] / best["decode_cv2_s"], 2)
    best["images"] = len(list(root.iterdir()))
    return best


def _crop_truth(n: int, seed: int, low: float = 0.5, high: float = 0.7):
    """(true pairs, ambiguous pairs) among `write_distinct` files by the overlap (IoU) of their crop
    boxes in the same source photo: IoU >= ``high`` is a near-duplicate (the accuracy set's
    ``crop`` transform keeps IoU >= 0.64), below ``low`` distinct (its overlapping tiles are
    0.29-0.5), in between not counted either way."""
    from benchmarks._photos import crop_boxes

    boxes = crop_boxes(n, seed=seed)
    photo = np.array([b[0] for b in boxes])
    y, x, h, w = (np.array([b[1][k] for b in boxes], float) for k in range(4))
    true, ambiguous = set(), set()
    for p in np.unique(photo):
        idx = np.flatnonzero(photo == p)
        a, b = np.triu_indices(len(idx), 1)
        i, j = idx[a], idx[b]
        ih = np.clip(np.minimum(y[i] + h[i], y[j] + h[j]) - np.maximum(y[i], y[j]), 0, None)
        iw = np.clip(np.minimum(x[i] + w[i], x[j] + w[j]) - np.maximum(x[i], x[j]), 0, None)
        iou = ih * iw / (h[i] * w[i] + h[j] * w[j] - ih * iw)
        true.update(zip(i[iou >= high].tolist(), j[iou >= high].tolist()))
        mid = (iou >= low) & (iou < high)
        ambiguous.update(zip(i[mid].tolist(), j[mid].tolist()))
    return true, ambiguous


def large_throughput(n: int, rounds: int = 2, sides=(64, 160), mosaic: bool = False) -> dict:
    """images/s of `find_duplicates` (whole pipeline) and of its hashing pass alone vs decode-only
    on ``n`` generated photos ``sides`` px on their longer side, single crops or ``mosaic``s of
    four (see `write_distinct`; best of ``rounds`` alternating runs), where its time goes, and for
    single crops pair precision / recall against the crop geometry (`_crop_truth`)."""
    from benchmarks._photos import write_distinct
    from keras_cv_apps.image import io
    from keras_cv_apps.vision import dedup, verify

    stages = {}

    def timed(module, name):
        fn = getattr(module, name)

        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                stages[name] = stages.get(name, 0.0) + time.perf_counter() - t0
                stages[name + "_calls"] = stages.get(name + "_calls", 0) + 1
        setattr(module, name, wrapper)
        return fn

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_distinct(tmp, n, seed=1, side_range=sides, mosaic=mosaic)
        megabytes = sum(p.stat().st_size for p in paths) / 2**20
        rates = {"decode": [], "hashing": [], "dedup": []}
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _rec in io.iter_images(paths, progress=False):
                pass
            rates["decode"].append(n / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            dedup.compute_hashes(paths, progress=False)
            rates["hashing"].append(n / (time.perf_counter() - t0))
            stages.clear()
            originals = [(m, k, timed(m, k)) for m, k in ((dedup, "_hash_candidates"), (dedup, "_verify"),
                                                           (verify, "_ecc_warp"))]
            try:
                t0 = time.perf_counter()
                result = dedup.find_duplicates(paths, progress=False)
                elapsed = time.perf_counter() - t0
            finally:
                for module, name, fn in originals:
                    setattr(module, name, fn)
            rates["dedup"].append(n / elapsed)
    best = {k: round(max(v), 1) for k, v in rates.items()}
    out = {"images": n, "sides_px": list(sides), "mosaic": mosaic, "megabytes": round(megabytes, 1),
           "load": round(os.getloadavg()[0], 2), "decode_img_s": best["decode"], "dedup_img_s": best["dedup"],
           "ratio": round(best["dedup"] / best["decode"], 2), "hashing_img_s": best["hashing"],
           "hashing_ratio": round(best["hashing"] / best["decode"], 2), "groups_found": len(result.groups),
           "last_run_s": {"total": round(elapsed, 2), "search": round(stages.get("_hash_candidates", 0), 2),
                          "verify": round(stages.get("_verify", 0), 2),
                          "of_which_ecc": round(stages.get("_ecc_warp", 0), 2)},
           "ecc_fits": int(stages.get("_ecc_warp_calls", 0))}
    if mosaic:  # four independent crops a file: no crop geometry to score against
        return out
    index = {p.name: k for k, p in enumerate(paths)}
    pred = {tuple(sorted((index[a.name], index[b.name]))) for g in result.groups
            for a, b in itertools.combinations(g.files, 2)}
    true, ambiguous = _crop_truth(n, seed=1)
    tp, fp = len(pred & true), len(pred - true - ambiguous)
    # the verified pairs themselves (before groups join them transitively)
    edges = {tuple(sorted((index[a.name], index[b.name]))) for a, b, _ in result.pairs}
    edge_tp, edge_fp = len(edges & true), len(edges - true - ambiguous)
    return {**out, "crop_truth": {"true_pairs_iou_ge_0.7": len(true), "ambiguous_0.5_0.7": len(ambiguous),
                           "found_pairs": len(pred), "found_true": tp, "found_ambiguous": len(pred & ambiguous),
                           "found_distinct_iou_lt_0.5": fp, "precision": round(tp / max(tp + fp, 1), 3),
                           "recall": round(tp / max(len(true), 1), 3),
                           "largest_group": max((len(g.files) for g in result.groups), default=0),
                           "verified_pairs": len(edges), "verified_true": edge_tp,
                           "verified_ambiguous": len(edges & ambiguous), "verified_distinct": edge_fp,
                           "verified_precision": round(edge_tp / max(edge_tp + edge_fp, 1), 3)}}


def verify_threads(n: int, rounds: int = 2) -> dict:
    """Verification alone (`dedup._verify`) of the candidates of ``n`` generated photos, on one
    thread and on one per core, alternating: wall and CPU seconds (best of ``rounds``), the SSIM
    checks made, and whether both gave the same verified pairs."""
    import copy

    from benchmarks._photos import write_distinct
    from keras_cv_apps.image.io import MAX_PIXELS, default_workers
    from keras_cv_apps.vision import dedup, fingerprint

    calls = [0]
    original = dedup._pair_ssim

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_distinct(tmp, n, seed=1)
        scan = fingerprint.scan_paths(paths, "phash", None, False, MAX_PIXELS, None, {})
        exact = {}
        start, candidates = dedup._hash_queue(scan, exact, dedup.check_threshold("phash", None), True,
                                              dedup.DEFAULT_MIN_SSIM)
        runs, found = {1: [], default_workers(): []}, {}
        dedup._pair_ssim = counted
        try:
            for _ in range(rounds):
                for workers in runs:
                    uf, pairs, calls[0] = copy.deepcopy(start), dict(exact), 0
                    t0, c0 = time.perf_counter(), time.process_time()
                    dedup._verify(scan, uf, candidates, pairs, dedup.DEFAULT_MIN_SSIM, False, workers)
                    runs[workers].append((time.perf_counter() - t0, time.process_time() - c0, calls[0]))
                    found[workers] = pairs
        finally:
            dedup._pair_ssim = original
            scan.thumbs.close()
    out = {"images": n, "candidates": len(candidates), "load": round(os.getloadavg()[0], 2),
           "same_pairs": len({tuple(sorted(p.items())) for p in found.values()}) == 1}
    for workers, got in runs.items():
        out[f"threads_{workers}"] = {"wall_s": round(min(r[0] for r in got), 2),
                                     "cpu_s": round(min(r[1] for r in got), 2), "ssim_checks": got[-1][2],
                                     "rounds_wall_s": [round(r[0], 2) for r in got]}
    many = out[f"threads_{default_workers()}"]
    out["speedup"] = round(out["threads_1"]["wall_s"] / many["wall_s"], 2)
    return out


def huge_groups(n: int) -> dict:
    """``n`` copies of one photo + ``n`` distinct photos against ``2n`` distinct photos."""
    import csv
    import shutil

    from benchmarks._photos import write_distinct
    from keras_cv_apps.vision import dedup

    with tempfile.TemporaryDirectory() as tmp:
        distinct = Path(tmp) / "distinct"
        mixed = Path(tmp) / "mixed"
        files = write_distinct(distinct, 2 * n, seed=2)
        mixed.mkdir()
        for f in files[:n]:
            os.link(f, mixed / f.name)
        source = Path(tmp) / "source.jpg"  # a photo none of the distinct files is cut from
        import skimage.data

        cv2.imwrite(str(source), cv2.resize(skimage.data.colorwheel()[..., ::-1], (128, 128)))
        for k in range(n):
            shutil.copyfile(source, mixed / f"copy{k:06d}{source.suffix}")
        times = {"distinct": [], "mixed": []}
        for _ in range(2):
            for name, root in (("distinct", distinct), ("mixed", mixed)):
                t0 = time.perf_counter()
                result = dedup.find_duplicates(root, progress=False)
                times[name].append(time.perf_counter() - t0)
                if name == "mixed":
                    dedup.write_groups_csv(result, Path(tmp) / "mixed.csv", root)
        with open(Path(tmp) / "mixed.csv", newline="") as f:
            sizes = {}
            for row in csv.DictReader(f):
                sizes[row["group"]] = sizes.get(row["group"], 0) + 1
    best = {k: round(min(v), 2) for k, v in times.items()}
    return {"copies": n, "distinct_s": best["distinct"], "copies_plus_distinct_s": best["mixed"],
            "ratio": round(best["mixed"] / best["distinct"], 2), "largest_group_in_csv": max(sizes.values())}


def search_scaling(sizes, threshold) -> dict:
    """hamming_search time and peak traced memory on uniformly random 64-bit hashes."""
    from keras_cv_apps.vision import hashing

    rng = np.random.default_rng(0)
    out = {}
    for n in sizes:
        x = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
        tracemalloc.start()
        t0 = time.perf_counter()
        qi, _, _ = hashing.hamming_search(x, threshold=threshold)
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out[n] = {"seconds": round(elapsed, 2), "peak_mb": round(peak / 2**20, 1),
                       "pairs": int(len(qi)), "threshold": threshold}
    return out


def _imagededup(root, truth, transform_of) -> dict:
    """imagededup's four hashes at their default thresholds (its own decoding and search)."""
    from imagededup import methods

    out = {}
    for name in ("PHash", "DHash", "AHash", "WHash"):
        hasher = getattr(methods, name)(verbose=False)
        t0 = time.perf_counter()
        found = hasher.find_duplicates(image_dir=str(root))
        elapsed = time.perf_counter() - t0
        groups = [[a, *dups] for a, dups in found.items() if dups]
        out[name.lower()] = {"seconds": round(elapsed, 2), **score(groups, truth, transform_of)}
    return out


def _cleanvision(root, truth, transform_of) -> dict:
    """cleanvision's exact + near duplicate sets."""
    from cleanvision import Imagelab

    t0 = time.perf_counter()
    lab = Imagelab(data_path=str(root))
    lab.find_issues({"exact_duplicates": {}, "near_duplicates": {}})
    elapsed = time.perf_counter() - t0
    groups = [[Path(p).name for p in group] for kind in ("exact_duplicates", "near_duplicates")
              for group in lab.info[kind]["sets"]]
    return {"near_duplicates": {"seconds": round(elapsed, 2), **score(groups, truth, transform_of)}}


def others(root, truth, transform_of) -> dict:
    """Side-by-side figures for imagededup / cleanvision when importable (never installed here)."""
    found = {}
    for name, fn in (("imagededup", _imagededup), ("cleanvision", _cleanvision)):
        try:
            __import__(name)
        except ImportError:
            found[name] = "not installed"
            continue
        found[name] = fn(root, truth, transform_of)
    return found


def _print_throughput(t) -> None:
    print(f"{t['images']} generated photos ({t.get('sides_px', [64, 160])} px"
          f"{', mosaics' if t.get('mosaic') else ''}): "
          f"find_duplicates {t['dedup_img_s']} img/s, decode-only {t['decode_img_s']} img/s (ratio {t['ratio']}); "
          f"hashing pass {t.get('hashing_img_s')} img/s (ratio {t.get('hashing_ratio')}); last run "
          f"{t.get('last_run_s')}, {t.get('ecc_fits')} ECC fits; against the crop geometry {t.get('crop_truth')}")


def _print_table(report) -> None:
    print(f"{report['images']} images, {report['true_pairs']} true pairs ({report['machine']})")
    print("pair F1 per transform; P/R/F1 over all pairs; s = wall seconds for the whole run")
    print(f"{'method':18s} {'P':>5s} {'R':>5s} {'F1':>5s} {'s':>6s} "
          + " ".join(f"{t[:6]:>6s}" for t in TRANSFORMS))
    rows = [(f"ours {m}", r) for m, r in report.get("methods", {}).items()]
    for tool, res in report.get("others", {}).items():
        if isinstance(res, dict):
            rows += [(f"{tool} {m}", r) for m, r in res.items()]
    for name, r in rows:
        a = r["all"]
        print(f"{name:18s} {a['precision']:5.2f} {a['recall']:5.2f} {a['f1']:5.2f} "
              f"{r['seconds']:6.1f} " + " ".join(f"{r[t]['f1']:6.2f}" for t in TRANSFORMS))
    s = report.get("speed", {})
    if s:
        print(f"decode-only {s['decode_only_img_s']} img/s, hashing {s['hashing_img_s']} img/s "
              f"(ratio {s['ratio']})")
    k = report.get("keep")
    if k:
        print(f"keep the best copy: the lossless original kept in {k['original_kept']} / "
              f"{k['groups_with_original']} groups; instead: {k['kept_instead_by_transform']}")
    e = report.get("end_to_end")
    if e:
        print(f"end to end on {e['images']} files: apps.dedup {e['dedup_app_s']} s, decode-only process "
              f"{e['decode_io_s']} s (io.iter_images, ratio {e['ratio_vs_decode_io']}) / {e['decode_cv2_s']} s "
              f"(cv2.imread loop, ratio {e['ratio_vs_decode_cv2']})")
    if report.get("large_throughput"):
        _print_throughput(report["large_throughput"])
    h = report.get("huge_groups")
    if h:
        print(f"{h['copies']} copies + {h['copies']} distinct: {h['copies_plus_distinct_s']} s vs "
              f"{2 * h['copies']} distinct: {h['distinct_s']} s (ratio {h['ratio']}); largest group in the "
              f"CSV: {h['largest_group_in_csv']} files")
    for n, r in report.get("search", {}).items():
        print(f"search {n} random hashes: {r['seconds']} s, peak {r['peak_mb']} MB, "
              f"{r['pairs']} pairs")
    missing = [k for k, v in report.get("others", {}).items() if not isinstance(v, dict)]
    if missing:
        print("not compared (not installed):", ", ".join(missing))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small set, small search sizes")
    parser.add_argument("--methods", default=None,
                        help="comma-separated (default: the four hashes, plus cnn unless --quick)")
    parser.add_argument("--thresholds", default="6,10",
                        help="Hamming thresholds for the random-hash search timing")
    parser.add_argument("--large", type=int, default=None,
                        help="generated photos for the throughput and huge-group runs (default 10000, "
                             "1000 with --quick; 0 skips them)")
    parser.add_argument("--sides", default="64,160",
                        help="MIN,MAX longer side (px) of the throughput part's generated photos (default: 64,160)")
    parser.add_argument("--mosaic", action="store_true",
                        help="throughput part: each generated photo a 2x2 mosaic of crops (few near-duplicates)")
    parser.add_argument("--parts", default=DEFAULT_PARTS,
                        help="comma-separated parts to run (large = throughput + huge); the others keep "
                             "their figures from --out")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "dedup.json")
    args = parser.parse_args(argv)
    methods = (args.methods or "phash,dhash,ahash,whash" + ("" if args.quick else ",cnn"))
    parts = set(args.parts.split(","))
    fresh = parts >= set(DEFAULT_PARTS.split(","))
    report = json.loads(args.out.read_text()) if args.out.exists() and not fresh else {}
    with tempfile.TemporaryDirectory(prefix="bench_dedup_") as tmp:
        root = Path(tmp)
        truth, transform_of = build_set(root, args.quick)
        paths = sorted(root.iterdir())
        report.update({"machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
                       "images": len(paths), "true_pairs": len(_pairs(truth))})
        report.setdefault("measured", {}).update({part: time.strftime("%Y-%m-%d %H:%M") for part in parts})
        if "accuracy" in parts:
            report.setdefault("methods", {})
            found = run_ours(methods.split(","), paths)
            if "keep" in found:
                report["keep"] = found.pop("keep")
            for method, (groups, elapsed) in found.items():
                report["methods"][method] = {"seconds": round(elapsed, 2),
                                             **score(groups, truth, transform_of)}
        if "speed" in parts:
            report["speed"] = speed(paths)
        if "end_to_end" in parts:
            report["end_to_end"] = end_to_end(root)
        if "others" in parts:
            report["others"] = others(root, truth, transform_of)
    large = args.large if args.large is not None else (1000 if args.quick else 10_000)
    if large and parts & {"large", "throughput"}:
        sides = tuple(int(v) for v in args.sides.split(","))
        key = "large_throughput" if (sides, args.mosaic) == ((64, 160), False) else \
            f"large_throughput_{'mosaic_' if args.mosaic else ''}{sides[0]}_{sides[1]}"
        report[key] = large_throughput(large, sides=sides, mosaic=args.mosaic)
        _print_throughput(report[key])
    if large and parts & {"large", "huge"}:
        report["huge_groups"] = huge_groups(large)
    if large and "threads" in parts:
        report["verify_threads"] = verify_threads(large)
        print(f"verification of {large} generated photos: {report['verify_threads']}")
    if "search" in parts:
        sizes = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
        report["search"] = {}
        for t in (int(v) for v in args.thresholds.split(",")):
            for n, r in search_scaling(sizes, threshold=t).items():
                report["search"][f"{n} T={t}"] = r
    _print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
