"""False alarms on sharp small photos, on a set the thresholds were never tuned on.

`benchmarks/calibrate_quality.py` tuned the thresholds on crops of the scikit-image / scikit-learn
photos at fixed sides (64, 96, 128, 160, 192, 256, ...) drawn with seed 0. This script checks them
on images it did not see:

- **new photos**: matplotlib's ``grace_hopper.jpg`` and scikit-image's ``clock`` (neither is in
  the calibration set);
- **new crops**: crops of the calibration photos with another seed and sides drawn uniformly in
  110..230 px (the range where the audit used to call most sharp photos blurry).

A crop is "sharp" when the variance of the 3x3 Laplacian of its uint8 gray image is >= 300 at
native size, its mean grey is 40..215 and its 1st-99th percentile spread >= 80 grey levels (the
same definition, independent of the detector). Each sharp crop also gets a Gaussian-blurred
(sigma 2 px) and a defocused (disk of radius 4 px) copy, both at native resolution, and a noisy
copy (signal-dependent noise of sigma 12 at mid-grey). All files are written (half PNG, half JPEG
q90, as a folder of thumbnails would hold them) and read back by `quality.assess`, the pass
`apps.dataset_audit` runs, with its default thresholds.

Reports: sharp photos flagged for any per-image issue (grayscale not counted on gray photos),
per issue; blurry precision and recall, noisy precision and recall.

**Thumbnail makers**: every photo of both sets shrunk to a shorter side of 96, 128, 160, 192 and
256 px the ways other software does it (OpenCV's area, bilinear, nearest, bicubic and Lanczos
interpolation, Pillow's bicubic resize and ``thumbnail``), kept when sharp and exposed, written as
PNG and audited alike: sharp thumbnails flagged per resizer, and which.

    python -m benchmarks.bench_small_photos [--per-photo 4] [--seed 7]

Writes benchmarks/results/small_photos.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.calibrate_quality import _disk, _noise, is_sharp_and_exposed, sources

PER_IMAGE = ("dark", "light", "blurry", "low_information", "odd_aspect_ratio", "grayscale", "noisy")


def held_out_photos() -> dict:
    """name -> (uint8 photo, is_colour) for photos the calibration never saw."""
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))
    return {"grace_hopper": (hopper, True), "clock": (skimage.data.clock(), False)}


def sharp_crops(photos: dict, rng, per_photo: int, lo=110, hi=230) -> list:
    """(photo name, crop, is_colour) sharp, exposed crops with sides drawn in lo..hi px."""
    out = []
    for name, (photo, colour) in photos.items():
        h, w = photo.shape[:2]
        found = 0
        for _ in range(60):
            if found >= per_photo:
                break
            ch, cw = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
            if ch > h or cw > w:
                continue
            y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            crop = np.ascontiguousarray(photo[y : y + ch, x : x + cw])
            if is_sharp_and_exposed(crop):
                out.append((name, crop, colour))
                found += 1
    return out


def build(root: Path, crops: list, rng) -> list:
    """Write each crop and its degraded copies; returns (path, row) with the ground truth."""
    import cv2

    rows = []
    for k, (name, crop, colour) in enumerate(crops):
        copies = (("sharp", crop), ("gaussian2", cv2.GaussianBlur(crop, (0, 0), 2)),
                  ("defocus4", cv2.filter2D(crop, -1, _disk(4), borderType=cv2.BORDER_REFLECT)),
                  ("noise12", _noise(crop, 12, rng)))
        for kind, image in copies:
            ext = ".png" if k % 2 == 0 else ".jpg"
            path = root / f"{name}_{k:03d}_{kind}{ext}"
            bgr = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90] if ext == ".jpg" else [])
            rows.append((path, {"photo": name, "kind": kind, "colour": colour, "side": min(crop.shape[:2])}))
    return rows


def flagged(rows: list, result) -> list:
    """(row, set of per-image issues flagged) for each file of ``rows`` the audit read (grayscale
    not counted on gray photos)."""
    index = {p: i for i, p in enumerate(result.paths)}
    flags = {issue: result.flags(issue) for issue in PER_IMAGE}
    return [(row, {issue for issue in PER_IMAGE if flags[issue][index[str(path)]]
                   and not (issue == "grayscale" and not row["colour"])})
            for path, row in rows if str(path) in index]


def evaluate(rows: list, result) -> dict:
    """False alarms on the sharp files, blurry and noisy precision / recall."""
    per = flagged(rows, result)
    sharp = [(r, f) for r, f in per if r["kind"] == "sharp"]
    out = {"sharp_photos": len(sharp), "sharp_flagged_any": sum(bool(f) for _, f in sharp),
           "sharp_flagged_per_issue": {i: sum(i in f for _, f in sharp) for i in PER_IMAGE}}
    out["sharp_false_alarm_rate"] = round(out["sharp_flagged_any"] / max(len(sharp), 1), 4)
    for issue, positives in (("blurry", ("gaussian2", "defocus4")), ("noisy", ("noise12",))):
        hits = [(r, f) for r, f in per if issue in f]
        pos = [(r, f) for r, f in per if r["kind"] in positives]
        out[issue] = {"flagged": len(hits), "positives": len(pos),
                      "precision": round(sum(r["kind"] in positives for r, _ in hits) / max(len(hits), 1), 4),
                      "recall": round(sum(issue in f for _, f in pos) / max(len(pos), 1), 4),
                      "false_alarms_by_kind": {k: sum(r["kind"] == k for r, _ in hits)
                                               for k in ("sharp", "gaussian2", "defocus4", "noise12")
                                               if k not in positives}}
    return out


RESIZERS = ("cv2 area", "cv2 linear", "cv2 nearest", "cv2 cubic", "cv2 lanczos4", "PIL bicubic", "PIL thumbnail")


def shrink(photo, side: int, resizer: str):
    """``photo`` shrunk so that its shorter side is ``side`` px, by ``resizer`` (one of `RESIZERS`)."""
    import cv2
    from PIL import Image

    h, w = photo.shape[:2]
    scale = side / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    library, method = resizer.split()
    if library == "cv2":
        return cv2.resize(photo, size, interpolation=getattr(cv2, f"INTER_{method.upper()}"))
    image = Image.fromarray(photo)
    if method == "thumbnail":
        image.thumbnail((max(size), max(size)))
        return np.asarray(image)
    return np.asarray(image.resize(size, Image.BICUBIC))


def thumbnail_makers(root: Path, photos: dict, sides=(96, 128, 160, 192, 256)) -> dict:
    """Sharp thumbnails flagged for any per-image issue, per resizer (PNG files, audited)."""
    import cv2

    from keras_cv_apps.vision import quality

    out = {}
    for resizer in RESIZERS:
        folder = root / resizer.replace(" ", "_")
        folder.mkdir()
        rows = []
        for name, (photo, colour) in photos.items():
            for side in sides:
                if side >= min(photo.shape[:2]):
                    continue
                small = shrink(photo, side, resizer)
                if not is_sharp_and_exposed(small):
                    continue
                path = folder / f"{name}_{side}.png"
                cv2.imwrite(str(path), small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
                rows.append((path, {"photo": name, "kind": "sharp", "colour": colour, "side": side}))
        result = quality.assess([p for p, _ in rows], progress=False)
        which = [f"{row['photo']} {row['side']} px: {', '.join(sorted(found))}"
                 for row, found in flagged(rows, result) if found]
        out[resizer] = {"sharp_thumbnails": len(rows), "flagged_any": len(which),
                        "rate": round(len(which) / max(len(rows), 1), 4), "flagged": which}
    return out


def main(argv=None) -> int:
    from benchmarks._util import write_result
    from keras_cv_apps.vision import quality

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-photo", type=int, default=4, help="sharp crops per calibration photo")
    parser.add_argument("--held-out", type=int, default=15, help="sharp crops per never-seen photo")
    parser.add_argument("--seed", type=int, default=7, help="not the calibration's seed (0)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    report = {}
    with tempfile.TemporaryDirectory(prefix="small_photos_") as tmp:
        for label, photos, per in (("new photos (grace_hopper, clock)", held_out_photos(), args.held_out),
                                   ("new crops of the calibration photos", sources(), args.per_photo)):
            root = Path(tmp) / label.split()[1]
            root.mkdir()
            rows = build(root, sharp_crops(photos, rng, per), rng)
            start = time.perf_counter()
            result = quality.assess([p for p, _ in rows], progress=False)
            report[label] = {**evaluate(rows, result), "seconds": round(time.perf_counter() - start, 1)}
        (Path(tmp) / "thumbnails").mkdir()
        makers = thumbnail_makers(Path(tmp) / "thumbnails", {**sources(), **held_out_photos()})
    all_sharp = sum(r["sharp_photos"] for r in report.values())
    all_flagged = sum(r["sharp_flagged_any"] for r in report.values())
    report["all"] = {"sharp_photos": all_sharp, "sharp_flagged_any": all_flagged,
                     "sharp_false_alarm_rate": round(all_flagged / max(all_sharp, 1), 4)}
    for label, r in report.items():
        line = f"{label}: {r['sharp_flagged_any']} / {r['sharp_photos']} sharp photos flagged"
        if "blurry" in r:
            per_issue = ", ".join(f"{k} {v}" for k, v in r["sharp_flagged_per_issue"].items() if v) or "none"
            line += (f" ({per_issue}); blurry P {r['blurry']['precision']} R {r['blurry']['recall']}; "
                     f"noisy P {r['noisy']['precision']} R {r['noisy']['recall']}")
        print(line)
    print("sharp thumbnails flagged, by the software that shrank them:")
    for resizer, r in makers.items():
        print(f"  {resizer:>13}: {r['flagged_any']:2d} / {r['sharp_thumbnails']} ({100 * r['rate']:4.1f}%)  "
              + "; ".join(r["flagged"]))
    report["thumbnail_makers"] = makers
    report["thresholds"] = dict(quality.THRESHOLDS)
    print(f"results: {write_result('small_photos', report)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
