"""Audit an image folder before training: quality, duplicates, outliers and an EDA report.

One streaming pass decodes every image once (in parallel, never all in memory) and measures
what usually goes wrong in a scraped or hand-collected dataset: images that are too dark or
too light, blurry (variance of the Laplacian and edge strength at a normalised size), nearly
empty (histogram entropy), oddly shaped or sized compared with the rest, grayscale, noisy
(wavelet noise estimate), exact copies (hash of the decoded pixels) and files that cannot be
decoded at all. Each check gives a score in [0, 1] and flags at a documented threshold (see
`keras_cv_apps.vision.quality`).

Near-duplicates (resized, re-encoded, brightened, cropped or mirrored copies) come from the
perceptual-hash search of `keras_cv_apps.vision.dedup`; outliers from robust z-scores of the
image statistics plus an Isolation Forest on classical HSV + HOG + LBP embeddings (optionally
the reconstruction error of a trained autoencoder, ``--autoencoder model.keras``). The HTML
report adds class counts, size and colour statistics per class, sample grids, the worst images
per issue and a PCA map of the embeddings. Nothing is moved or deleted.

Usage::

    python -m apps.dataset_audit                      # the built-in demo set
    python -m apps.dataset_audit photos/ --out audit/ # report.html, flags.csv, duplicates.csv,
                                                      # outliers.csv, summary.json

TensorFlow is imported only with ``--autoencoder``, so a small folder is audited in seconds.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from apps import _cli

APP = "dataset_audit"
FLAG_ISSUES = ("dark", "light", "blurry", "low_information", "odd_aspect_ratio", "odd_size",
               "grayscale", "noisy", "corrupt", "exact_duplicate", "near_duplicate", "outlier")


def _parser():
    p = _cli.parser(__doc__, APP)
    p.add_argument("path", nargs="?", help="image folder (default: the demo set)")
    _cli.add_output(p, APP, out_alias=True, run_folder=False)
    p.add_argument("--method", choices=("phash", "dhash", "ahash", "whash", "cnn"), default="phash",
                   help="near-duplicate method (default: %(default)s)")
    p.add_argument("--embedding", choices=("pca", "tsne", "none"), default="pca",
                   help="2-D map of the embeddings in the report (default: %(default)s)")
    p.add_argument("--autoencoder", help="a .keras autoencoder for reconstruction outliers")
    p.add_argument("--seed", type=int, default=0, help="demo set and Isolation Forest seed")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _audit(root, paths, args):
    import numpy as np

    from keras_cv_apps.artifacts import write_csv, write_json
    from keras_cv_apps.vision import dedup, eda, outliers, quality

    start = time.perf_counter()

    def rel(p):
        return eda.relative(p, root)

    samples = eda.SampleCollector(root)
    q = quality.assess(paths, features=True, progress=not args.quiet, on_image=samples)
    dups = dedup.find_duplicates(q.paths, method=args.method, progress=not args.quiet)
    errors = None
    if args.autoencoder:
        from keras_cv_apps import load_model

        errors = outliers.autoencoder_errors(load_model(args.autoencoder), q.paths)
    methods = ["zscore", "iforest"] + (["autoencoder"] if errors is not None else [])
    out = outliers.find_outliers(q.paths, features=q.features, stats=q.stats, errors=errors,
                                 methods=methods, seed=args.seed)
    flags = [(rel(p), issue, f"{s:.4f}") for p, issue, s in q.flagged()]
    flags += [(rel(p), "corrupt", "1.0000") for p, _ in q.unreadable]
    exact = {p for p, s in zip(q.paths, q.scores["exact_duplicate"]) if s >= 1}
    for g in dups.groups:
        for f, score in zip(g.files, g.scores):
            if str(f) != str(g.representative) and str(f) not in exact:
                flags.append((rel(f), "near_duplicate", f"{score:.4f}"))
    flags += [(rel(p), "outlier", f"{s:.4f}") for p, s in out.flagged()]
    counts = {issue: sum(1 for _, i, _ in flags if i == issue) for issue in FLAG_ISSUES}
    out_dir = Path(args.output)
    summary = eda.write_report(
        out_dir, q, root, samples=samples, outliers=out, issue_counts=counts,
        duplicates=[(g.id, [str(f) for f in g.files]) for g in dups.groups],
        embedding=None if args.embedding == "none" else args.embedding, seed=args.seed)
    write_csv(out_dir / "flags.csv", ("file", "issue", "score"), flags)
    dedup.write_groups_csv(dups, out_dir / "duplicates.csv", root)
    order = np.argsort(-out.score, kind="stable")
    write_csv(out_dir / "outliers.csv", ("rank", "file", "score", *out.method_scores),
               [(rank + 1, rel(q.paths[i]), f"{out.score[i]:.4f}",
                 *(f"{v[i]:.4f}" for v in out.method_scores.values()))
                for rank, i in enumerate(order)])
    summary.update(near_duplicate_groups=len(dups.groups),
                   dedup_method=args.method, outlier_methods=methods,
                   seconds=round(time.perf_counter() - start, 2))
    write_json(out_dir / "summary.json", summary)
    print(f"audited {summary['num_images']} images ({summary['num_unreadable']} unreadable) "
          f"in {summary['seconds']:.1f} s; {len(dups.groups)} duplicate groups")
    for issue, n in counts.items():
        if n:
            print(f"  {issue:<17} {n}")
    print(f"report: {out_dir / 'report.html'}")
    return 0


def _main(args) -> int:
    from keras_cv_apps.artifacts import default_run_path
    from keras_cv_apps.image.io import list_images

    if args.autoencoder and not Path(args.autoencoder).is_file():
        raise FileNotFoundError(f"Autoencoder file {args.autoencoder} does not exist.")
    out = Path(args.output) if args.output else default_run_path(APP)
    blocker = next((p for p in [out, *out.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise NotADirectoryError(f"--output {str(out)!r} cannot be a folder: {str(blocker)!r} is a file.")
    args.output = str(out)
    with tempfile.TemporaryDirectory() as tmp:
        if args.path is None:
            from keras_cv_apps.vision.demo import make_demo_set

            root = make_demo_set(Path(tmp) / "demo", seed=args.seed)
        else:
            root = Path(args.path)
        paths = list_images(root)
        return _audit(root if root.is_dir() else root.parent, paths, args)


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    sys.exit(main())
