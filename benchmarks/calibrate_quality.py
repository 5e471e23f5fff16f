"""Calibrate and check the quality thresholds on real photos of every size (64 px to full size).

The calibration set is built here from the photographs scikit-image and scikit-learn ship (never
from the package's demo folder):

- **sharp crops**: random crops 64 px to full size (aspect 3:4 to 3:2) of 20 photos, kept when
  they are sharp and well exposed by criteria independent of the detectors: variance of the
  3x3 Laplacian of the uint8 gray crop >= 300 at native size, mean grey 40..215, 1st-99th
  percentile spread >= 80 grey levels. Some are also shrunk (area) to 96..256 px, like the
  thumbnails and product images a user audits.
- the same crops with **Gaussian blur** (sigma 1, 2, 3, 5 px), **defocus** (a uniform disk of
  radius 2, 4, 6, 10 px: sigma = radius / 2 per axis) and **motion blur** (a line of 7, 11, 17 px
  at a random angle), all applied at native resolution;
- **JPEG** re-encodes at quality 20, 35, 50, 75, 95;
- **noise** as cameras make it: signal-dependent (shot + read) noise with a standard deviation of
  2, 5, 10, 15 or 25 grey levels at mid-grey, per channel, some of it JPEG-compressed at q90 as
  a phone would store it.

Ground truth: sharp crops, JPEG re-encodes and noise of sigma <= 5 are not blurry; Gaussian and
defocus sigma >= 2 and motion of 11 px or more are blurry; sigma 1 and 7 px motion are mild (reported,
not scored). Noise sigma >= 10 is noisy; sigma <= 2, blur and JPEG are not noisy; sigma 5 is mild.
Images are measured exactly as `dataset_audit` does (`quality.image_stats` on the image shrunk
to at most `quality.MAX_SIDE`, as the audit decodes it).

Targets checked: at most 3% of sharp photos flagged for any per-image issue at every size from
96 px up (grayscale counts only for colour photos); blurry recall >= 0.95 for Gaussian/defocus
sigma >= 2 at 128 px and up, precision >= 0.9; noisy precision >= 0.9.

    python -m benchmarks.calibrate_quality [--quick] [--per-size 3] [--sizes 64,96,128,...,full]
                                           [--check-seeds 0,1,2,3]

``--check-seeds`` draws the sharp crops again with each seed and reports the false alarms per
size band for each draw and pooled, to show how much the figure moves with the draw.

Prints the tables, writes benchmarks/results/quality_calibration.json and the figures
benchmarks/results/quality_calibration_*.png.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

SIZES = (64, 96, 128, 160, 192, 256, 384, 512, "full")
GAUSS = (1, 2, 3, 5)
DISK = (2, 4, 6, 10)  # radius; sigma per axis = radius / 2
MOTION = (7, 11, 17)
JPEG = (20, 35, 50, 75, 95)
NOISE = (2, 5, 10, 15, 25)
ISSUES = ("dark", "light", "blurry", "low_information", "odd_aspect_ratio", "grayscale", "noisy")


def sources() -> dict:
    """name -> (uint8 RGB or gray photo, is_colour)."""
    import skimage.data as d
    from sklearn.datasets import load_sample_images

    names = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "moon", "immunohistochemistry",
             "retina", "brick", "grass", "gravel", "page", "text", "hubble_deep_field")
    out = {n: getattr(d, n)() for n in names}
    left, right, _ = d.stereo_motorcycle()
    out.update(motorcycle_left=left, motorcycle_right=right)
    china, flower = load_sample_images().images
    out.update(china=china, flower=flower)
    return {n: (a, a.ndim == 3) for n, a in out.items()}


def _gray(image):
    import cv2

    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def is_sharp_and_exposed(image) -> bool:
    """The calibration set's own definition (independent of `vision.quality`)."""
    import cv2

    g = _gray(image)
    lo, hi = np.percentile(g, [1, 99])
    return (cv2.Laplacian(g, cv2.CV_64F).var() >= 300 and 40 <= g.mean() <= 215 and hi - lo >= 80)


def sharp_crops(rng, per_size: int, sizes=SIZES) -> list:
    """(name, size label, crop, is_colour) sharp, well-exposed crops (and shrunk copies)."""
    import cv2

    out = []
    for name, (photo, colour) in sources().items():
        h, w = photo.shape[:2]
        for size in sizes:
            found = 0
            for _ in range(40 if size != "full" else 1):
                if found >= per_size:
                    break
                if size == "full":
                    crop = photo
                else:
                    aspect = rng.uniform(0.75, 1.5)
                    ch, cw = (size, int(size * aspect)) if rng.random() < 0.5 else (int(size * aspect), size)
                    if ch > h or cw > w:  # this aspect does not fit the photo: draw another
                        continue
                    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
                    crop = np.ascontiguousarray(photo[y : y + ch, x : x + cw])
                if is_sharp_and_exposed(crop):
                    out.append((name, str(size), crop, colour))
                    found += 1
        # thumbnails: the whole photo shrunk (area), as a product-image folder would hold it
        for side in (96, 128, 192, 256) if max(h, w) <= 1.5 * min(h, w) else ():
            scale = side / max(h, w)
            small = cv2.resize(photo, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA)
            if is_sharp_and_exposed(small):
                out.append((name, f"thumb{side}", small, colour))
    return out


def _disk(radius):
    k = np.zeros((2 * radius + 1, 2 * radius + 1), np.float32)
    import cv2

    cv2.circle(k, (radius, radius), radius, 1.0, -1, lineType=cv2.LINE_AA)
    return k / k.sum()


def _motion(length, angle):
    import cv2

    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = np.cos(angle) * c, np.sin(angle) * c
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1, cv2.LINE_AA)
    return k / k.sum()


def _jpeg(image, quality):
    import cv2

    bgr = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out if out.ndim == 2 else cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def _noise(image, sigma, rng):
    """Shot + read noise with standard deviation ``sigma`` at mid-grey (var = a * I + b, half each)."""
    x = image.astype(np.float32)
    var = (sigma**2) * (0.5 * x / 128.0 + 0.5)
    return np.clip(x + rng.normal(size=x.shape) * np.sqrt(var), 0, 255).astype(np.uint8)


def variants(crop, rng):
    """(kind, strength, image, blurry truth, noisy truth) for one sharp crop; truth None = mild."""
    import cv2

    yield "sharp", 0, crop, False, False
    for s in GAUSS:
        yield "gaussian", s, cv2.GaussianBlur(crop, (0, 0), s), (None if s < 2 else True), False
    for r in DISK:
        yield "defocus", r / 2, cv2.filter2D(crop, -1, _disk(r), borderType=cv2.BORDER_REFLECT), \
            (None if r < 4 else True), False
    for length in MOTION:
        k = _motion(length, rng.uniform(0, np.pi))
        yield "motion", length, cv2.filter2D(crop, -1, k, borderType=cv2.BORDER_REFLECT), \
            (None if length < 11 else True), False
    for q in JPEG:
        yield "jpeg", q, _jpeg(crop, q), False, False
    for s in NOISE:
        noisy = _noise(crop, s, rng)
        if rng.random() < 0.5:
            noisy = _jpeg(noisy, 90)
        yield "noise", s, noisy, (False if s <= 5 else None), (True if s >= 10 else None if s == 5 else False)


def measure(image):
    """Scores the audit gives ``image`` (decoded at most quality.MAX_SIDE px)."""
    from keras_cv_apps.image.ops import fit_max_side
    from keras_cv_apps.vision import quality

    return quality.issue_scores(quality.image_stats(fit_max_side(image, quality.MAX_SIDE),
                                                    shape=(*image.shape[:2], 3 if image.ndim == 3 else 1)))


def run(seed=0, per_size=3, sizes=SIZES):
    """One row per measured image: metadata, truth and scores."""
    rng = np.random.default_rng(seed)
    rows = []
    crops = sharp_crops(rng, per_size, sizes)
    for k, (name, size, crop, colour) in enumerate(crops):
        if k % 25 == 0:
            print(f"  crop {k} / {len(crops)}", flush=True)
        for kind, strength, image, blurry, noisy in variants(crop, rng):
            rows.append({"source": name, "size": size, "side": min(image.shape[:2]), "colour": colour,
                         "kind": kind, "strength": strength, "blurry": blurry, "noisy": noisy,
                         "scores": measure(image)})
    return rows


BANDS = ((64, 95), (96, 127), (128, 191), (192, 255), (256, 511), (512, 100000))


def _band(lo, hi) -> str:
    return f"{lo}-{hi if hi < 100000 else 'max'} px"


def sharp_bands(rows, thresholds) -> dict:
    """Sharp photos flagged for any issue, per size band: counts, rate and flags per issue."""
    out = {}
    for lo, hi in BANDS:
        group = [r for r in rows if lo <= r["side"] <= hi]
        flags = [_flags(r, thresholds) for r in group]
        flagged = sum(bool(f) for f in flags)
        out[_band(lo, hi)] = {"images": len(group), "flagged": flagged, "rate": round(flagged / max(len(group), 1), 4),
                              "per_issue": {i: sum(i in f for f in flags) for i in ISSUES}}
    return out


def other_draws(seeds, per_size, sizes, thresholds, known=None) -> dict:
    """`sharp_bands` for other random draws of the sharp crops (the false-alarm target), each seed
    and all seeds pooled; ``known`` maps a seed to sharp rows already measured (the main draw)."""
    out, pooled = {}, {_band(*b): [0, 0] for b in BANDS}
    for seed in seeds:
        rows = (known or {}).get(seed)
        if rows is None:
            rows = [{"side": min(crop.shape[:2]), "colour": colour, "scores": measure(crop)}
                    for _, _, crop, colour in sharp_crops(np.random.default_rng(seed), per_size, sizes)]
        out[str(seed)] = sharp_bands(rows, thresholds)
        for band, r in out[str(seed)].items():
            pooled[band][0] += r["images"]
            pooled[band][1] += r["flagged"]
    out["pooled"] = {k: {"images": n, "flagged": f, "rate": round(f / max(n, 1), 4)} for k, (n, f) in pooled.items()}
    return out


def _flags(row, thresholds):
    return {i for i in ISSUES if row["scores"][i] >= thresholds[i]
            and not (i == "grayscale" and not row["colour"])}


def report(rows, thresholds) -> dict:
    """Per-size false alarms on sharp photos, blur/noise recall and precision."""
    out = {"sharp_false_alarms": sharp_bands([r for r in rows if r["kind"] == "sharp"], thresholds), "blur": {},
           "noise": {}}
    big = [r for r in rows if r["side"] >= 128]
    for kind in ("gaussian", "defocus", "motion"):
        for s in sorted({r["strength"] for r in rows if r["kind"] == kind}):
            group = [r for r in big if r["kind"] == kind and r["strength"] == s]
            hit = sum(r["scores"]["blurry"] >= thresholds["blurry"] for r in group)
            out["blur"][f"{kind} {s}"] = {"images": len(group), "recall": round(hit / max(len(group), 1), 4)}
    scored = [r for r in big if r["blurry"] is not None]
    pos = [r for r in scored if r["blurry"] and r["kind"] in ("gaussian", "defocus")]
    flagged = [r for r in scored if r["scores"]["blurry"] >= thresholds["blurry"]]
    out["blur"]["recall gaussian/defocus sigma>=2 (>=128 px)"] = round(
        sum(r["scores"]["blurry"] >= thresholds["blurry"] for r in pos) / max(len(pos), 1), 4)
    out["blur"]["precision (>=128 px)"] = round(sum(bool(r["blurry"]) for r in flagged) / max(len(flagged), 1), 4)
    out["blur"]["false alarms by kind"] = {k: sum(1 for r in flagged if not r["blurry"] and r["kind"] == k)
                                           for k in ("sharp", "jpeg", "noise")}
    scored = [r for r in rows if r["noisy"] is not None and r["side"] >= 96]
    flagged = [r for r in scored if r["scores"]["noisy"] >= thresholds["noisy"]]
    for s in NOISE:
        group = [r for r in rows if r["kind"] == "noise" and r["strength"] == s and r["side"] >= 96]
        out["noise"][f"sigma {s}"] = {"images": len(group), "flagged": round(
            sum(r["scores"]["noisy"] >= thresholds["noisy"] for r in group) / max(len(group), 1), 4)}
    out["noise"]["precision (>=96 px)"] = round(sum(bool(r["noisy"]) for r in flagged) / max(len(flagged), 1), 4)
    out["noise"]["false alarms by kind"] = {k: sum(1 for r in flagged if not r["noisy"] and r["kind"] == k)
                                            for k in ("sharp", "jpeg", "gaussian", "defocus", "motion", "noise")}
    return out


def figures(rows, thresholds, path_prefix) -> list:
    """Score distributions per kind and size: blurry and noisy."""
    from keras_cv_apps._figures import new_figure, save_figure

    paths = []
    for issue, kinds in (("blurry", ("sharp", "jpeg", "gaussian", "defocus", "motion")),
                         ("noisy", ("sharp", "jpeg", "noise", "gaussian"))):
        fig = new_figure((11, 4.2))
        ax = fig.subplots()
        labels, data = [], []
        for kind in kinds:
            for s in sorted({r["strength"] for r in rows if r["kind"] == kind}):
                vals = [r["scores"][issue] for r in rows if r["kind"] == kind and r["strength"] == s
                        and r["side"] >= 96]
                if vals:
                    labels.append(f"{kind}\n{s}" if kind not in ("sharp",) else kind)
                    data.append(vals)
        ax.boxplot(data, whis=(1, 99), showfliers=True, flierprops={"markersize": 2})
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=7)
        ax.axhline(thresholds[issue], color="tab:red", ls="--", label=f"threshold {thresholds[issue]}")
        ax.set_ylabel(f"{issue} score")
        ax.set_title(f"{issue} score by degradation and strength (photos >= 96 px; whiskers 1-99%)")
        ax.legend(loc="upper left")
        path = f"{path_prefix}_{issue}.png"
        save_figure(fig, path)
        paths.append(path)
    fig = new_figure((7, 4))
    ax = fig.subplots()
    sides = sorted({r["side"] for r in rows if r["kind"] == "sharp"})
    for kind, colour in (("sharp", "tab:green"), ("gaussian", "tab:red")):
        pts = [(r["side"], r["scores"]["blurry"]) for r in rows if r["kind"] == kind
               and (kind == "sharp" or r["strength"] == 2)]
        ax.scatter(*zip(*pts), s=8, alpha=0.6, color=colour, label="sharp" if kind == "sharp" else "gaussian sigma 2")
    ax.set_xscale("log")
    ax.axhline(thresholds["blurry"], color="tab:red", ls="--")
    ax.set_xlabel("shorter side (px)")
    ax.set_ylabel("blurry score")
    ax.set_title(f"Blur score against image size ({len(sides)} sizes)")
    ax.legend()
    path = f"{path_prefix}_blur_vs_size.png"
    save_figure(fig, path)
    paths.append(path)
    return paths


def main(argv=None) -> int:
    from benchmarks._util import RESULTS, write_result
    from keras_cv_apps.vision import quality

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one crop per size")
    parser.add_argument("--per-size", type=int, default=3, help="crops per photo and size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="crop sides (px, or 'full') to measure (default: %(default)s)")
    parser.add_argument("--check-seeds", default="",
                        help="comma list of other seeds whose sharp crops are also checked for false alarms")
    args = parser.parse_args(argv)
    sizes = tuple(v if v == "full" else int(v) for v in args.sizes.split(","))
    start = time.perf_counter()
    rows = run(args.seed, 1 if args.quick else args.per_size, sizes)
    elapsed = time.perf_counter() - start
    thresholds = dict(quality.THRESHOLDS)
    result = report(rows, thresholds)
    print(f"{len(rows)} images ({sum(r['kind'] == 'sharp' for r in rows)} sharp photos) measured in {elapsed:.0f} s")
    print("sharp photos flagged for any issue, by shorter side:")
    for band, r in result["sharp_false_alarms"].items():
        issues = ", ".join(f"{k} {v}" for k, v in r["per_issue"].items() if v)
        print(f"  {band:>12}: {r['flagged']:4d} / {r['images']:4d} = {100 * r['rate']:5.1f}%  {issues}")
    if args.check_seeds:
        seeds = [int(v) for v in args.check_seeds.split(",")]
        result["other_draws"] = other_draws(seeds, 1 if args.quick else args.per_size, sizes, thresholds,
                                            known={args.seed: [r for r in rows if r["kind"] == "sharp"]})
        for seed in seeds:
            bands = result["other_draws"][str(seed)]
            print(f"  seed {seed}: " + ", ".join(f"{k} {v['flagged']}/{v['images']}" for k, v in bands.items()))
        pooled = result["other_draws"]["pooled"]
        print("  pooled over seeds " + ",".join(map(str, seeds)) + ": " + ", ".join(
            f"{k} {v['flagged']}/{v['images']} = {100 * v['rate']:.1f}%" for k, v in pooled.items()))
    print("blur:", {k: v for k, v in result["blur"].items()})
    print("noise:", result["noise"])
    name = "quality_calibration" + ("_quick" if args.quick else "")
    result["figures"] = [str(p) for p in figures(rows, thresholds, str(RESULTS / name))]
    result.update(images=len(rows), seconds=round(elapsed, 1), thresholds=thresholds, sizes=list(map(str, sizes)))
    print(f"results: {write_result(name, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
