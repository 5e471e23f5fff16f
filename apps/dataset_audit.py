"""Audit an image folder before training: quality, duplicates, outliers and an EDA report.

One streaming pass decodes every image once (in parallel, never all in memory) and measures
what usually goes wrong in a scraped or hand-collected dataset: images that are too dark or
too light, blurry (how much detail the finest scales hold compared with the next coarser ones,
measured at the image's own resolution, so thumbnails are judged as fairly as full-size photos),
nearly empty (histogram entropy), oddly shaped or sized compared with the rest, grayscale, noisy
(a noise estimate from the least textured patches, so fur, foliage and JPEG artefacts do not
count), exact copies (hash of the decoded pixels) and files that cannot be used at all (corrupt,
truncated, empty, HTML saved as an image, decompression bombs over ``--max-pixels``, dangling
symlinks, symlink loops, no permission), each with its reason; HEIC, JPEG XL, SVG and camera RAW
files are flagged ``unsupported_format`` with a note to convert them. Each check gives a score in
[0, 1] and flags at a documented threshold (see `keras_cv_apps.vision.quality`).

The same pass hashes every image for `keras_cv_apps.vision.dedup`: near-duplicate groups
(resized, re-encoded, brightened, cropped or mirrored copies), each with the copy it would keep
and why. Outliers come from robust z-scores of the image statistics plus an Isolation Forest on
classical HSV + HOG + LBP embeddings, optionally with the reconstruction error of a trained
autoencoder (``--autoencoder``: the package's ``model.keras``, or its ``encoder.tflite`` with the
``decoder.tflite`` beside it; checked before the scan). The HTML report shows each issue with
examples and its threshold, the duplicate groups with the kept file marked, the unreadable
files with their reasons and links to every CSV. Nothing is moved or deleted.

Usage::

    python -m apps.dataset_audit                      # the built-in demo set
    python -m apps.dataset_audit photos/ --out audit/ # report.html, flags.csv, duplicates.csv,
                                                      # outliers.csv, skipped.csv, summary.json

TensorFlow is imported only for a ``.keras`` autoencoder, so a folder is audited without it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from apps import _cli

APP = "dataset_audit"
FLAG_ISSUES = ("dark", "light", "blurry", "low_information", "odd_aspect_ratio", "odd_size",
               "grayscale", "noisy", "corrupt", "unsupported_format", "exact_duplicate", "near_duplicate",
               "outlier")
FILES = {"flags.csv": "file, issue, score: every flag", "duplicates.csv": "groups, kept file and why",
         "outliers.csv": "every image ranked", "skipped.csv": "files that could not be read, and why",
         "summary.json": "counts and statistics"}


def _parser():
    p = _cli.parser(__doc__, APP)
    p.add_argument("path", nargs="?", help="image folder (default: the demo set)")
    _cli.add_output(p, APP, out_alias=True, run_folder=False)
    p.add_argument("--method", choices=("phash", "dhash", "ahash", "whash", "cnn"), default="phash",
                   help="near-duplicate method (default: %(default)s)")
    p.add_argument("--keep", default="quality", metavar="RULE",
                   help="which copy of a duplicate group is kept: quality, newest, oldest, largest or "
                        "pattern:GLOB (default: %(default)s)")
    p.add_argument("--embedding", choices=("pca", "tsne", "none"), default="pca",
                   help="2-D map of the embeddings in the report (default: %(default)s)")
    p.add_argument("--autoencoder", help="a trained autoencoder (.keras, or encoder .tflite) for "
                                         "reconstruction outliers")
    p.add_argument("--max-pixels", type=_cli.positive_int, default=None,
                   help="refuse images whose header announces more pixels (default: 100,000,000)")
    p.add_argument("--seed", type=_cli.seed, default=0, help="demo set and Isolation Forest seed")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _audit(root, listing, args, autoencoder):
    import numpy as np

    from keras_cv_apps.artifacts import write_csv, write_json
    from keras_cv_apps.image import io
    from keras_cv_apps.vision import dedup, eda, outliers, quality

    start = time.perf_counter()

    def rel(p):
        return eda.relative(p, root)

    samples = eda.SampleCollector(root)
    hashes = dedup.Collector(args.method if args.method != "cnn" else "phash", root=root, links=listing.links)
    q = quality.assess(listing.files, features=True, progress=not args.quiet, on_image=samples,
                       collectors=[hashes], max_pixels=args.max_pixels)
    q.unreadable[:0] = [(str(p), r) for p, r in listing.skipped]
    if args.method == "cnn":
        dups = dedup.find_duplicates(q.paths, method="cnn", progress=not args.quiet, keep_rule=args.keep,
                                     root=root, links=listing.links)
    else:
        dups = dedup.find_duplicates(method=args.method, keep_rule=args.keep, progress=not args.quiet,
                                     scan=hashes.scan)
    errors = outliers.autoencoder_errors(autoencoder, q.paths) if autoencoder is not None else None
    methods = ["zscore", "iforest"] + (["autoencoder"] if errors is not None else [])
    out = outliers.find_outliers(q.paths, features=q.features, stats=q.stats, errors=errors,
                                 methods=methods, seed=args.seed)
    flags = [(p, issue, s, "") for p, issue, s in q.flagged() if issue != "exact_duplicate"]
    flags += [(p, "unsupported_format" if io.unsupported_format(p) else "corrupt", 1.0, reason)
              for p, reason in q.unreadable]
    kept = {str(f): g.representative for g in dups.groups for f in g.files}
    exact = set()
    for same in q.duplicate_groups:  # identical pixels: flag every file but the one dedup keeps
        keeper = str(kept.get(same[0], same[0]))
        keeper = keeper if keeper in same else same[0]
        for p in same:
            if p != keeper:
                exact.add(p)
                flags.append((p, "exact_duplicate", 1.0, f"same pixels as {rel(keeper)}"))
    for g in dups.groups:
        for f, score in zip(g.files, g.scores):
            if f != g.representative and str(f) not in exact:
                flags.append((f, "near_duplicate", score, f"copy of {rel(g.representative)}"))
    flags += [(p, "outlier", s, "") for p, s in out.flagged()]
    counts = {issue: sum(1 for f in flags if f[1] == issue) for issue in FLAG_ISSUES}
    rules = {**quality.rules(q.thresholds), "corrupt": "the file cannot be read (reason in skipped.csv)",
             "unsupported_format": "a format no decoder here reads (HEIC, JPEG XL, SVG, camera RAW); "
                                   "convert it to JPEG or PNG",
             "near_duplicate": f"a {args.method} match confirmed by SSIM >= {dedup.DEFAULT_MIN_SSIM}, not the "
                               "copy its group keeps",
             "outlier": f"mean outlier score >= {out.threshold} ({', '.join(methods)})"}
    out_dir = Path(args.output)
    keep_text = "as the best copy (lossless, bit depth, pixels, compression, sharpness, age, path)" \
        if args.keep == "quality" else f"by --keep {args.keep}"
    summary = eda.write_report(
        out_dir, q, root, samples=samples, outliers=out, issue_counts=counts, duplicates=dups.groups,
        embedding=None if args.embedding == "none" else args.embedding, seed=args.seed, flags=flags,
        rules=rules, files={**FILES, "eda.json": "statistics per class"}, keep_text=keep_text)
    write_csv(out_dir / "flags.csv", ("file", "issue", "score", "detail"),
              [(rel(p), i, f"{s:.4f}", d) for p, i, s, d in flags])
    dedup.write_groups_csv(dups, out_dir / "duplicates.csv", root)
    write_csv(out_dir / "skipped.csv", ("file", "reason"), [(rel(p), r) for p, r in q.unreadable])
    order = np.argsort(-out.score, kind="stable")
    write_csv(out_dir / "outliers.csv", ("rank", "file", "score", *out.method_scores),
              [(rank + 1, rel(q.paths[i]), f"{out.score[i]:.4f}",
                *(f"{v[i]:.4f}" for v in out.method_scores.values()))
               for rank, i in enumerate(order)])
    summary.update(near_duplicate_groups=len(dups.groups), dedup_method=args.method, keep=args.keep,
                   outlier_methods=methods, notes=[{"file": rel(p), "note": n} for p, n in q.notes],
                   seconds=round(time.perf_counter() - start, 2))
    write_json(out_dir / "summary.json", summary)
    print(f"audited {summary['num_files']} files in {summary['seconds']:.1f} s: {summary['num_images']} read, "
          f"{summary['num_unreadable']} could not be read; {len(dups.groups)} duplicate groups")
    for issue, n in counts.items():
        if n:
            print(f"  {issue:<17} {n}")
    print(f"report: {out_dir / 'report.html'}")
    _cli.next_step(f"open {out_dir / 'report.html'}; python -m apps.dedup PATH --move-to DIR acts on the duplicates")
    return 0


def _main(args) -> int:
    from keras_cv_apps.artifacts import check_writable, default_run_path
    from keras_cv_apps.image import io
    from keras_cv_apps.vision.keep import check_rule

    check_rule(args.keep)
    if args.autoencoder and not Path(args.autoencoder).is_file():
        raise FileNotFoundError(f"Autoencoder file {args.autoencoder} does not exist.")
    args.output = str(check_writable(args.output or default_run_path(APP), folder=True))
    listing = io.check_folder(args.path) if args.path is not None else None  # whole-run problems first
    autoencoder = None
    if args.autoencoder:
        from keras_cv_apps.vision.outliers import load_autoencoder

        autoencoder = load_autoencoder(args.autoencoder)
    with tempfile.TemporaryDirectory() as tmp:
        if args.path is None:
            from keras_cv_apps.vision.demo import make_demo_set

            root = make_demo_set(Path(tmp) / "demo", seed=args.seed)
            listing = io.scan_folder(root)
        else:
            root = Path(args.path)
        return _audit(root, listing, args, autoencoder)


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    sys.exit(main())
