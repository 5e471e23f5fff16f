"""Dataset audit: per-issue recall/precision on the demo set, start-up time, images/s.

Ground truth comes from the demo set's ``ground_truth.json`` (planted degradations, duplicates,
the corrupt file); a file stored single-channel also counts as truly grayscale (the file
format says so, independently of the detector). Throughput compares a quality pass with a
decode-only pass over the same files (the demo images copied ``--copies`` times). With
cleanvision importable here, or a Python that has it (``--cleanvision-python``), the same
figures are given for it side by side (it cannot read the corrupt file, so it gets the rest).

    python -m benchmarks.bench_audit [--quick] [--copies 4] [--cleanvision-python PYTHON]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks._util import PY, run_timed, table, write_result

ISSUES = ("dark", "light", "blurry", "low_information", "odd_aspect_ratio", "grayscale",
          "noisy", "corrupt", "exact_duplicate", "near_duplicate")

_CLEANVISION = """
import json, sys, time
from cleanvision import Imagelab
files = json.loads(sys.argv[1])
start = time.perf_counter()
lab = Imagelab(filepaths=files)
lab.find_issues(verbose=False)
flags = {}
for col in lab.issues.columns:
    if col.startswith("is_") and col.endswith("_issue"):
        issue = col[3:-6]
        if issue.endswith("_duplicates"):
            continue
        for f in lab.issues.index[lab.issues[col]]:
            flags.setdefault(f, []).append(issue)
for kind in ("exact", "near"):
    for group in lab.info[kind + "_duplicates"]["sets"]:
        for f in sorted(group)[1:]:
            flags.setdefault(f, []).append(kind + "_duplicate")
print(json.dumps({"seconds": time.perf_counter() - start, "flags": flags}))
"""


def truth(root: Path) -> dict:
    """issue -> set of relative paths that truly have it."""
    import cv2

    gt = json.loads((root / "ground_truth.json").read_text())
    out = {issue: set() for issue in ISSUES}
    for rel, issue in gt["degradations"].items():
        out[issue].add(rel)
    for rel, transform in gt["transforms"].items():
        out["exact_duplicate" if transform == "exact_copy" else "near_duplicate"].add(rel)
    out["corrupt"] = set(gt["corrupt"])
    for path in root.rglob("*.png"):
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is not None and image.ndim == 2:
            out["grayscale"].add(path.relative_to(root).as_posix())
    return out


def scores(flags: dict, expected: dict, issues=ISSUES) -> list:
    """Per-issue recall/precision rows; ``flags`` is issue -> set of flagged relative paths."""
    rows = []
    for issue in issues:
        got, want = flags.get(issue, set()), expected[issue]
        hit = len(got & want)
        rows.append({"issue": issue, "truth": len(want), "flagged": len(got),
                     "recall": hit / len(want) if want else float("nan"),
                     "precision": hit / len(got) if got else float("nan")})
    return rows


def run_cleanvision(python: str, root: Path) -> dict | None:
    files = sorted(str(p) for p in root.rglob("*") if p.suffix in (".png", ".jpg")
                   and "corrupt" not in p.name)
    done = subprocess.run([python, "-c", _CLEANVISION, json.dumps(files)], capture_output=True,
                          text=True, timeout=900)
    if done.returncode != 0:
        print(f"cleanvision failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    flags = {}
    for f, issues in result["flags"].items():
        for issue in issues:
            flags.setdefault(issue, set()).add(Path(f).relative_to(root).as_posix())
    return {"flags": flags, "seconds": result["seconds"], "images": len(files)}


def throughput(root: Path, copies: int) -> list:
    """images/s of decode only, quality checks, and quality checks + embeddings."""
    from keras_cv_apps.image import io
    from keras_cv_apps.vision import quality

    files = [p for p in io.list_images(root) if "corrupt" not in p.name]
    big = root.parent / "many"
    for k in range(copies):
        for f in files:
            dest = big / str(k) / f.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dest)
    paths = io.list_images(big) if copies else files
    rows = []
    start = time.perf_counter()
    for _ in io.iter_images(paths, max_side=quality.MAX_SIDE, progress=False):
        pass
    base = len(paths) / (time.perf_counter() - start)
    rows.append({"pass": "decode only", "images": len(paths), "images_per_s": base, "ratio": 1.0})
    for label, feats in (("quality checks", False), ("quality + embeddings", True)):
        start = time.perf_counter()
        quality.assess(paths, features=feats, progress=False)
        rate = len(paths) / (time.perf_counter() - start)
        rows.append({"pass": label, "images": len(paths), "images_per_s": rate,
                     "ratio": rate / base})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="no copies, no cleanvision")
    parser.add_argument("--copies", type=int, default=4, help="demo copies for images/s")
    parser.add_argument("--cleanvision-python", help="a Python interpreter with cleanvision")
    args = parser.parse_args(argv)
    from keras_cv_apps.vision.demo import make_demo_set

    with tempfile.TemporaryDirectory() as tmp:
        root = make_demo_set(Path(tmp) / "demo")
        expected = truth(root)
        help_s, _ = run_timed([PY, "-m", "apps.dataset_audit", "--help"])
        first = ("from keras_cv_apps.image import io; from keras_cv_apps.vision import quality;"
                 f"quality.assess(io.list_images({str(root / 'photos')!r})[:1], progress=False)")
        first_s, _ = run_timed([PY, "-c", first])
        code = ("import sys, time; t = time.perf_counter(); from apps.dataset_audit import main;"
                f"main([{str(root)!r}, '--out', {tmp + '/out'!r}, '--quiet']);"
                "print('TF', 'tensorflow' in sys.modules)")
        run_s, done = run_timed([PY, "-c", code], env={"TF_CPP_MIN_LOG_LEVEL": "2"})
        if done.returncode != 0:
            raise SystemExit(f"the audit app failed: {done.stderr[-2000:]}")
        flags = {}
        with open(Path(tmp) / "out" / "flags.csv", newline="") as f:
            for row in csv.DictReader(f):
                flags.setdefault(row["issue"], set()).add(row["file"])
        ours = scores(flags, expected)
        rows = [{"tool": "keras_cv_apps", **r} for r in ours]
        cleanvision = None
        python = args.cleanvision_python
        if python is None and not args.quick:
            probe = subprocess.run([PY, "-c", "import cleanvision"], capture_output=True)
            python = PY if probe.returncode == 0 else None
        if python and not args.quick:
            cleanvision = run_cleanvision(python, root)
            if cleanvision:
                cv_issues = [i for i in ISSUES if i not in ("noisy", "corrupt")]
                rows += [{"tool": "cleanvision", **r}
                         for r in scores(cleanvision["flags"], expected, cv_issues)]
        speed = throughput(root, 0 if args.quick else args.copies)
        if cleanvision:
            rate = cleanvision["images"] / cleanvision["seconds"]
            speed.append({"pass": "cleanvision find_issues (demo set)",
                          "images": cleanvision["images"], "images_per_s": rate,
                          "ratio": rate / speed[0]["images_per_s"]})
    print(table(rows, ["tool", "issue", "truth", "flagged", "recall", "precision"]))
    print()
    print(table(speed, ["pass", "images", "images_per_s", "ratio"]))
    startup = {"help_s": round(help_s, 3), "first_image_s": round(first_s, 3),
               "demo_run_s": round(run_s, 3),
               "tensorflow_imported": "TF True" in done.stdout,
               "cleanvision_s": cleanvision and round(cleanvision["seconds"], 3)}
    print(f"\nstart-up: `python -m apps.dataset_audit --help` {help_s:.2f} s; a fresh process "
          f"checking one image {first_s:.2f} s; the whole demo audit (quality, dedup, outliers, "
          f"report) {run_s:.2f} s; TensorFlow imported: {startup['tensorflow_imported']}")
    name = 'audit_quick' if args.quick else 'audit'
    print(f"results: {write_result(name, {'issues': rows, 'throughput': speed, **startup})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
