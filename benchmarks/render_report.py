"""Look at ``report.html`` as a user does: render it in headless Chromium and save a screenshot.

Builds a small but realistic audit folder (photos scikit-image ships in two classes, planted
near-duplicates with a lossless original and lossy copies, degraded images, and the hostile files
of the tests: a decompression bomb, truncated JPEG, empty file, HTML saved as .jpg, 16-bit TIFF,
animated GIF, CMYK JPEG, a dangling symlink and a symlink loop), runs ``apps.dataset_audit`` on
it and renders the report with Debian's ``chromium`` (``--headless --no-sandbox --disable-gpu``,
no background networking). Skips cleanly, with a message, when ``chromium`` is not installed.

    python -m benchmarks.render_report [--out benchmarks/results/report_screenshot.png]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._util import RESULTS

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-default-apps",
                  "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
                  "--disable-features=Translate,MediaRouter,OptimizationHints", "--metrics-recording-only")


def chromium() -> str | None:
    """The Chromium executable, or None."""
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)


def screenshot(html_path, png_path, *, width: int = 1280, height: int = 3200, timeout: int = 300):
    """Render ``html_path`` and write a ``width`` x ``height`` screenshot; returns a small dict
    (seconds, png path) or None when Chromium is missing or fails."""
    import time

    exe = chromium()
    if exe is None:
        print("chromium is not installed (apt-get install chromium); no screenshot taken")
        return None
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
               f"--screenshot={png_path}", Path(html_path).resolve().as_uri()]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - t0
    if done.returncode != 0 or not png_path.is_file():
        print(f"chromium failed ({done.returncode}): {done.stderr[-500:]}")
        return None
    return {"seconds": round(seconds, 1), "png": str(png_path), "size": [width, height]}


def build_folder(root: Path) -> Path:
    """The demo folder: two classes of photos, duplicates, degraded and hostile files."""
    import cv2
    import numpy as np
    import skimage.data as d

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "image"))
    from test_hostile_files import build_hostile_folder

    def save(rel, rgb, quality=92):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
        cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, quality] if rel.endswith(".jpg") else [])

    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"):
        save(f"photos/{name}.png", getattr(d, name)())
    for name in ("camera", "coins", "moon", "brick", "grass", "gravel"):
        save(f"gray/{name}.png", getattr(d, name)())
    astro = d.astronaut()
    save("photos/astronaut_q40.jpg", astro, 40)
    save("photos/astronaut_small.jpg", cv2.resize(astro, (200, 200), interpolation=cv2.INTER_AREA), 90)
    save("photos/coffee_mirror.jpg", np.ascontiguousarray(d.coffee()[:, ::-1]), 85)
    save("photos/chelsea_dark.jpg", (d.chelsea() * 0.12).astype(np.uint8))
    save("photos/rocket_blurry.jpg", cv2.GaussianBlur(d.rocket(), (0, 0), 3))
    rng = np.random.default_rng(0)
    save("photos/coffee_noisy.png", np.clip(d.coffee() + rng.normal(0, 25, d.coffee().shape), 0, 255)
         .astype(np.uint8))
    for k in range(4):  # small sharp crops: thumbnails must not be called blurry
        y, x = rng.integers(0, 300, 2)
        save(f"photos/crop{k}.jpg", np.ascontiguousarray(astro[y : y + 140, x : x + 180]))
    build_hostile_folder(root / "hostile")
    return root


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RESULTS / "report_screenshot.png")
    parser.add_argument("--keep", type=Path, help="also copy the audit folder (report and CSVs) here")
    args = parser.parse_args(argv)
    if chromium() is None:
        print("chromium is not installed (apt-get install chromium); skipped")
        return 0
    with tempfile.TemporaryDirectory(prefix="render_report_") as tmp:
        root = build_folder(Path(tmp) / "data")
        out = Path(tmp) / "audit"
        done = subprocess.run([sys.executable, "-m", "apps.dataset_audit", str(root), "--out", str(out), "--quiet"],
                              capture_output=True, text=True)
        print(done.stdout)
        if done.returncode != 0:
            print(done.stderr[-2000:])
            return 1
        shot = screenshot(out / "report.html", args.out)
        print(f"screenshot: {shot}")
        if args.keep:
            shutil.copytree(out, args.keep, dirs_exist_ok=True)
    return 0 if shot else 1


if __name__ == "__main__":
    raise SystemExit(main())
