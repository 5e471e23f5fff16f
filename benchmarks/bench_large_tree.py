"""A folder tree of 100,000 generated photos through `dataset_audit` and `dedup`.

The tree holds ``--files`` crops of the photos scikit-image and scikit-learn ship (resized to
``--sides`` pixels, 60% JPEG / 40% PNG, colour-jittered, in 100 class folders). Each app runs in
its own process with its defaults and progress on; the benchmark records wall time, files/s,
peak resident memory (``ru_maxrss`` of the child), the size of ``report.html``, one progress line
as the user sees it (files/s and time left), and whether headless Chromium renders the report
(a screenshot, when Debian's ``chromium`` is installed).

    python -m benchmarks.bench_large_tree [--files 100000] [--sides 48,128]

Writes benchmarks/results/large_tree.json (and large_tree_report.png when Chromium is there).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._photos import write_distinct
from benchmarks._util import RESULTS, write_result
from benchmarks.render_report import screenshot


def run_child(cmd) -> dict:
    """Run ``cmd``; wall seconds, peak RSS (MB, GNU time's %M), exit code and a progress line."""
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        err_file = Path(tmp) / "err"
        t0 = time.perf_counter()
        with open(err_file, "wb") as err:
            done = subprocess.run(["/usr/bin/time", "-o", str(rss_file), "-f", "%M", *cmd],
                                  stdout=subprocess.PIPE, stderr=err, env={**os.environ, "COLUMNS": "120"})
        wall = time.perf_counter() - t0
        text = err_file.read_bytes().decode("utf-8", "replace")
        rss_kb = int(rss_file.read_text().split()[-1])
    bars = [b.strip() for b in re.split(r"[\r\n]", text) if "file/s" in b and "<" in b]
    middle = bars[len(bars) // 2] if bars else ""
    return {"seconds": round(wall, 1), "peak_rss_mb": round(rss_kb / 1024, 1), "exit_code": done.returncode,
            "progress_line": middle, "stdout_tail": done.stdout.decode("utf-8", "replace").strip().splitlines()[-8:]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--sides", default="48,128", help="range of the longer side in pixels")
    parser.add_argument("--tree", type=Path, help="keep the generated tree here (default: a temporary folder)")
    parser.add_argument("--mosaic", action="store_true",
                        help="each file a 2x2 mosaic of four crops (few near-duplicates, like most photo "
                             "collections) instead of one crop (at 100,000 files every crop resembles dozens)")
    parser.add_argument("--apps", default="audit,dedup",
                        help="which apps to run (the other keeps its figures from the last result file)")
    args = parser.parse_args(argv)
    lo, hi = (int(v) for v in args.sides.split(","))
    apps = set(args.apps.split(","))
    last = RESULTS / "large_tree.json"
    previous = json.loads(last.read_text()) if last.exists() else {}
    audit, dedup, shot = previous.get("dataset_audit"), previous.get("dedup"), previous.get("report_rendered")
    with tempfile.TemporaryDirectory(prefix="large_tree_") as tmp:
        root = args.tree or Path(tmp) / "tree"
        t0 = time.perf_counter()
        if not root.exists() or not any(root.iterdir()):
            write_distinct(root, args.files, seed=3, side_range=(lo, hi), folders=100, mosaic=args.mosaic)
        generate_s = time.perf_counter() - t0
        size_mb = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 2**20
        print(f"{args.files} files ({size_mb:.0f} MB) generated in {generate_s:.0f} s")
        if "audit" in apps:
            out = Path(tmp) / "audit"
            audit = run_child([sys.executable, "-m", "apps.dataset_audit", str(root), "--out", str(out)])
            print("audit:", audit)
            report = out / "report.html"
            audit["report_mb"] = round(report.stat().st_size / 2**20, 2) if report.exists() else None
            shot = screenshot(report, RESULTS / "large_tree_report.png", height=2400) if report.exists() else None
            audit["measured"] = time.strftime("%Y-%m-%d %H:%M")
        if "dedup" in apps:
            dedup = run_child([sys.executable, "-m", "apps.dedup", str(root), "--out", str(Path(tmp) / "d.csv")])
            print("dedup:", dedup)
            dedup["measured"] = time.strftime("%Y-%m-%d %H:%M")
    for r in (audit, dedup):
        r["files_per_s"] = round(args.files / r["seconds"], 1)
    result = {"files": args.files, "sides": [lo, hi], "mosaic": args.mosaic, "tree_mb": round(size_mb, 1),
              "generate_s": round(generate_s, 1), "dataset_audit": audit, "dedup": dedup,
              "report_rendered": shot}
    print(f"dataset_audit: {audit['seconds']} s ({audit['files_per_s']} files/s), peak RSS "
          f"{audit['peak_rss_mb']} MB, report.html {audit['report_mb']} MB, Chromium: {shot}")
    print(f"dedup: {dedup['seconds']} s ({dedup['files_per_s']} files/s), peak RSS {dedup['peak_rss_mb']} MB")
    print(f"progress as shown: {audit['progress_line']!r}")
    print(f"results: {write_result('large_tree', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
