"""Exploratory data analysis of an image folder: one self-contained HTML page plus JSON.

The report answers the questions to ask before training on a folder of images:

- How many images per class, and how imbalanced (largest / smallest class)?
- What sizes and aspect ratios are there (so the resize choice is informed)?
- Do classes differ in brightness, contrast, colour or edge density (a shortcut a model could
  learn instead of the content)?
- What do the classes look like (a sample grid each), and what do the worst images per quality
  issue, the duplicates and the outliers look like?
- Do the classes separate in a 2-D PCA (or, on request, t-SNE) map of the embeddings
  (classical HSV + HOG + LBP features by default, so no TensorFlow is needed)?

Images are embedded as base64 JPEG thumbnails and plots as base64 PNGs (matplotlib Agg), so
the HTML file can be mailed or archived alone. The class of an image is its parent folder
relative to the dataset root (files directly in the root are class ``"."``).
"""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path

import numpy as np

from keras_cv_apps._figures import figure_data_uri, new_figure
from keras_cv_apps.artifacts import write_json, write_text

logger = logging.getLogger(__name__)

THUMB_SIDE = 112
SAMPLES_PER_CLASS = 8
WORST_PER_ISSUE = 6
MAX_CLASSES = 30  # classes plotted and sampled in the report (the largest); all are counted
CLASS_STATS = ("brightness", "contrast", "saturation", "mean_r", "mean_g", "mean_b",
               "edge_density", "entropy")


def class_of(path, root) -> str:
    """The class name of ``path``: its parent folder relative to ``root`` (``"."`` at the top)."""
    from keras_cv_apps.image.io import display_path

    try:
        parent = Path(path).parent.relative_to(Path(root))
    except ValueError:
        parent = Path(Path(path).parent.name)
    return display_path(parent.as_posix())


def thumbnail_uri(image, side=THUMB_SIDE) -> str:
    """A ``data:image/jpeg;base64,...`` URI of the image shrunk to at most ``side`` pixels."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, side / max(h, w))
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


class SampleCollector:
    """An ``on_image`` callback for `quality.assess` that keeps the first few thumbnails per class.

    Only ``per_class`` small JPEGs for at most ``max_classes`` classes are kept, so memory stays
    bounded however many images and folders there are.
    """

    def __init__(self, root, per_class=SAMPLES_PER_CLASS, max_classes=10 * MAX_CLASSES):
        self.root = Path(root)
        self.per_class = per_class
        self.max_classes = max_classes
        self.samples = {}

    def __call__(self, index, path, image):
        name = class_of(path, self.root)
        if name not in self.samples and len(self.samples) >= self.max_classes:
            return
        kept = self.samples.setdefault(name, [])
        if len(kept) < self.per_class:
            kept.append((path, thumbnail_uri(image)))


def _plots(stats, labels, classes, counts, embedding):
    """Base64 PNGs: class counts, sizes, per-class brightness/contrast, embedding map."""
    out = {}
    fig = new_figure((max(4, 0.5 * len(classes) + 2), 3))
    ax = fig.subplots()
    ax.bar(classes, counts, color="tab:blue")
    ax.set_ylabel("images")
    ax.tick_params(axis="x", rotation=45)
    out["Images per class"] = figure_data_uri(fig)
    fig = new_figure((9, 3.2))
    a1, a2 = fig.subplots(1, 2)
    a1.scatter(stats["width"], stats["height"], s=12, alpha=0.6)
    a1.set_xlabel("width (px)")
    a1.set_ylabel("height (px)")
    a2.hist(np.log2(stats["width"] / stats["height"]), bins=30, color="tab:orange")
    a2.set_xlabel("log2(width / height)")
    out["Image sizes and aspect ratios"] = figure_data_uri(fig)
    fig = new_figure((12, 3.2))
    axes = fig.subplots(1, 3)
    for ax, key in zip(axes, ("brightness", "contrast", "edge_density")):
        ax.boxplot([stats[key][labels == c] for c in classes])
        ax.set_xticks(range(1, len(classes) + 1), classes, rotation=45)
        ax.set_title(key)
    out["Brightness, contrast and edge density per class"] = figure_data_uri(fig)
    if embedding is not None:
        fig = new_figure((5.5, 4.5))
        ax = fig.subplots()
        for c in classes:
            ax.scatter(*embedding["points"][labels == c].T, s=14, label=c, alpha=0.7)
        ax.legend(fontsize=7, loc="best")
        ax.set_title(embedding["method"].upper() + " of image embeddings")
        out["Embedding map"] = figure_data_uri(fig)
    return out


MAP_FIT_ROWS = 20_000  # a PCA map of more images is fitted on this many (seeded), so memory stays bounded


def embed_2d(features, *, method="pca", seed=0) -> dict:
    """2-D map of ``[N, D]`` features: ``{"method", "points" [N, 2], "explained_variance"}``. Past
    `MAP_FIT_ROWS` images the PCA is fitted on a seeded sample of that many and maps every image
    in chunks (no float64 copy of the whole matrix)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    if method not in ("pca", "tsne"):
        raise ValueError(f"Unknown embedding map {method!r}; choose pca or tsne.")
    features = np.asarray(features)
    if method == "pca" and len(features) > MAP_FIT_ROWS:  # fit on a seeded sample, map every row in chunks
        sample = np.sort(np.random.default_rng(seed).choice(len(features), MAP_FIT_ROWS, replace=False))
        scaler = StandardScaler().fit(features[sample].astype(np.float64))
        pca = PCA(n_components=2, random_state=seed).fit(scaler.transform(features[sample].astype(np.float64)))
        points = np.concatenate([pca.transform(scaler.transform(features[k:k + 8192].astype(np.float64)))
                                 for k in range(0, len(features), 8192)])
        return {"method": method, "points": points, "fitted_on": MAP_FIT_ROWS,
                "explained_variance": [float(v) for v in pca.explained_variance_ratio_]}
    x = StandardScaler().fit_transform(features.astype(np.float64))
    pca = PCA(n_components=min(2, *x.shape), random_state=seed).fit(x)
    points = pca.transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
        points = TSNE(perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    if points.shape[1] < 2:
        points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
    return {"method": method, "points": points,
            "explained_variance": [float(v) for v in pca.explained_variance_ratio_]}


def summarize(quality, root) -> dict:
    """The JSON part of the report: counts, imbalance, sizes, per-class statistics, issues."""
    labels = [class_of(p, root) for p in quality.paths]
    classes, counts = np.unique(np.array(labels, dtype=object), return_counts=True)
    stats = quality.stats
    aspect = stats["width"] / np.maximum(stats["height"], 1)

    def describe(v):
        return {k: float(f(v)) for k, f in (("min", np.min), ("median", np.median),
                                             ("max", np.max))} if len(v) else {}

    per_class = {}
    for c in classes:
        mask = np.array(labels, dtype=object) == c
        per_class[str(c)] = {k: float(stats[k][mask].mean()) for k in CLASS_STATS}
    return {
        "root": str(root),
        "num_images": len(quality.paths),
        "num_unreadable": len(quality.unreadable),
        "unreadable": [{"file": p, "reason": r} for p, r in quality.unreadable],
        "classes": {str(c): int(n) for c, n in zip(classes, counts)},
        "imbalance_ratio": float(counts.max() / counts.min()) if len(counts) else None,
        "size": {"width": describe(stats["width"]), "height": describe(stats["height"]),
                 "aspect_ratio": describe(aspect)},
        "per_class": per_class,
        "issue_counts": quality.counts(),
        "thresholds": dict(quality.thresholds),
        "exact_duplicate_groups": len(quality.duplicate_groups),
    }


def relative(path, root) -> str:
    """``path`` relative to ``root`` as printable POSIX text (unchanged if it is outside ``root``)."""
    from keras_cv_apps.image.io import relative_name

    return relative_name(path, root)


def _read_thumb(path):
    from keras_cv_apps.image.io import ImageReadError, read_image

    try:
        return thumbnail_uri(read_image(path, max_side=4 * THUMB_SIDE))
    except (ImageReadError, OSError):
        return ""


def _top_classes(summary) -> list:
    """The classes plotted and sampled: the MAX_CLASSES largest (all of them when fewer)."""
    ranked = sorted(summary["classes"].items(), key=lambda kv: (-kv[1], kv[0]))
    return [c for c, _ in ranked[:MAX_CLASSES]]


def write_report(out_dir, quality, root, *, samples=None, duplicates=None, outliers=None,
                 issue_counts=None, embedding="pca", title="Dataset audit", seed=0, flags=None,
                 skipped=None, rules=None, files=None, keep_text="as the best copy") -> dict:
    """Write ``report.html`` and ``eda.json`` into ``out_dir``; return the JSON summary.

    Args:
        out_dir: folder to write into (created if needed).
        quality: a `quality.QualityResult` (with ``features`` for the embedding map).
        root: the dataset root (classes are folders below it; paths are shown relative to it).
        samples: a `SampleCollector` that saw the images, for the per-class grids.
        duplicates: `dedup.DupGroup` objects (or ``[(group_id, [paths])]``) to show, with the
            file each group keeps and why.
        outliers: an `outliers.OutlierResult` to show the top of.
        issue_counts: ``{issue: flagged}`` to show instead of the quality counts (e.g. with
            duplicates, corrupt files and outliers added).
        embedding: ``"pca"``, ``"tsne"`` or None (no map).
        flags: ``[(path, issue, score)]`` or ``[(path, issue, score, detail)]`` of every flag
            (default: the quality flags), for the examples of each issue.
        skipped: ``[(path, reason)]`` of files that could not be read (default: quality's).
        rules: ``{issue: "when it is flagged"}`` shown beside each issue (default: thresholds).
        files: ``{file name: what it holds}`` of the CSV/JSON files to link from the top.
        keep_text: how duplicate groups chose the file they keep, for the reader.
    """
    from keras_cv_apps.vision import report
    from keras_cv_apps.vision.dedup import DupGroup

    out_dir, root = Path(out_dir), Path(root)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(quality, root)
    skipped = list(quality.unreadable if skipped is None else skipped)
    summary.update(num_unreadable=len(skipped), num_files=len(quality.paths) + len(skipped),
                   unreadable=[{"file": relative(p, root), "reason": r} for p, r in skipped])
    if issue_counts is not None:
        summary["issue_counts"] = dict(issue_counts)
    flags = list(quality.flagged() if flags is None else flags)
    rules = rules or {k: f"score >= {v}" for k, v in quality.thresholds.items()}
    shown = _top_classes(summary)
    labels = np.array([class_of(p, root) for p in quality.paths], dtype=object)
    emb = None
    if embedding and quality.features is not None and len(quality.paths) >= 3:
        emb = embed_2d(quality.features, method=embedding, seed=seed)
        summary["embedding"] = {"method": emb["method"], "explained_variance": emb["explained_variance"]}
    parts = report.header(title, summary, root, files or {"eda.json": "statistics"})
    parts += report.issue_table(summary["issue_counts"], rules, summary["num_files"])
    by_issue = {}
    for path, issue, score, *detail in flags:
        by_issue.setdefault(issue, []).append((path, float(score), detail[0] if detail else ""))
    if by_issue:
        parts.append("<h2>Examples of each issue</h2>")
    for issue, n in summary["issue_counts"].items():
        if n and issue in by_issue:
            worst = sorted(by_issue[issue], key=lambda ps: -ps[1])
            parts += report.issue_section(issue, n, rules.get(issue, ""), worst, root, _read_thumb)
    if duplicates:
        groups = [g if isinstance(g, DupGroup) else DupGroup(g[0], [Path(f) for f in g[1]], Path(g[1][0]),
                                                               [1.0] * len(g[1])) for g in duplicates]
        parts += report.duplicate_section(groups, root, _read_thumb, keep_text)
    if outliers is not None and len(outliers.paths):
        top = [(p, s) for p, s in outliers.ranked()[:WORST_PER_ISSUE * 2]]
        parts.append("<h2 id='outliers'>Most unusual images</h2><p class='small'>Ranked by the mean outlier "
                     f"score (flagged at {outliers.threshold}); all in outliers.csv.</p><div class='grid'>"
                     + "".join(report.figure(_read_thumb(p) or "", [relative(p, root), f"score {s:.2f}"])
                               for p, s in top) + "</div>")
    parts += report.file_list("skipped", "Files that could not be read", skipped, root, "skipped.csv")
    parts += report.file_list("notes", "Unusual files that were read", getattr(quality, "notes", []), root,
                              "summary.json")
    parts.append("<h2>Dataset overview</h2>")
    if len(summary["classes"]) > len(shown):
        parts.append(f"<p>{len(summary['classes'])} classes; the {len(shown)} largest are plotted and "
                     "sampled, all are counted in eda.json.</p>")
    if len(quality.paths):
        mask = np.isin(labels, shown)
        plot_stats = {k: v[mask] for k, v in quality.stats.items()}
        plot_emb = None if emb is None else {**emb, "points": emb["points"][mask]}
        for name, uri in _plots(plot_stats, labels[mask], shown, [summary["classes"][c] for c in shown],
                                plot_emb).items():
            parts.append(f"<h3>{name}</h3><img src='{uri}'>")
    parts.append("<h3>Per-class statistics</h3><table><tr><th>class</th><th>images</th>"
                 + "".join(f"<th>{k}</th>" for k in CLASS_STATS) + "</tr>")
    for c in shown:
        row = summary["per_class"][c]
        parts.append(f"<tr><td>{html.escape(c)}</td><td>{summary['classes'][c]}</td>"
                     + "".join(f"<td>{row[k]:.3f}</td>" for k in CLASS_STATS) + "</tr>")
    parts.append("</table>")
    if samples is not None:
        parts.append("<h3>Samples per class</h3>")
        for c in shown:
            kept = samples.samples.get(c, [])
            parts.append(f"<h4>{html.escape(c)}</h4><div class='grid'>"
                         + "".join(report.figure(uri, [relative(p, root)]) for p, uri in kept) + "</div>")
    write_text(out_dir / "report.html", report.page(title, parts))
    write_json(out_dir / "eda.json", summary)
    logger.info("report written to %s", out_dir / "report.html")
    return summary


