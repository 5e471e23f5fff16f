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
CLASS_STATS = ("brightness", "contrast", "saturation", "mean_r", "mean_g", "mean_b",
               "edge_density", "entropy")


def class_of(path, root) -> str:
    """The class name of ``path``: its parent folder relative to ``root`` (``"."`` at the top)."""
    try:
        parent = Path(path).parent.relative_to(Path(root))
    except ValueError:
        parent = Path(Path(path).parent.name)
    return parent.as_posix()


def thumbnail_uri(image, side=THUMB_SIDE) -> str:
    """A ``data:image/jpeg;base64,...`` URI of the image shrunk to at most ``side`` pixels."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, side / max(h, w))
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


class SampleCollector:
    """An ``on_image`` callback for `quality.assess` that keeps the first few thumbnails per class.

    Only ``per_class`` small JPEGs per class are kept, so memory stays bounded.
    """

    def __init__(self, root, per_class=SAMPLES_PER_CLASS):
        self.root = Path(root)
        self.per_class = per_class
        self.samples = {}

    def __call__(self, index, path, image):
        kept = self.samples.setdefault(class_of(path, self.root), [])
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


def embed_2d(features, *, method="pca", seed=0) -> dict:
    """2-D map of ``[N, D]`` features: ``{"method", "points" [N, 2], "explained_variance"}``."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    if method not in ("pca", "tsne"):
        raise ValueError(f"Unknown embedding map {method!r}; choose pca or tsne.")
    x = StandardScaler().fit_transform(np.asarray(features, dtype=np.float64))
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


def _img(uri, caption):
    return (f'<figure><img src="{uri}"><figcaption>{html.escape(caption)}</figcaption>'
            "</figure>")


def relative(path, root) -> str:
    """``path`` relative to ``root`` as a POSIX string (unchanged if it is outside ``root``)."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _read_thumb(path):
    from keras_cv_apps.image.io import read_image

    return thumbnail_uri(read_image(path, max_side=4 * THUMB_SIDE))


def write_report(out_dir, quality, root, *, samples=None, duplicates=None, outliers=None,
                 issue_counts=None, embedding="pca", title="Dataset audit", seed=0) -> dict:
    """Write ``report.html`` and ``eda.json`` into ``out_dir``; return the JSON summary.

    Args:
        out_dir: folder to write into (created if needed).
        quality: a `quality.QualityResult` (with ``features`` for the embedding map).
        root: the dataset root (classes are folders below it; paths are shown relative to it).
        samples: a `SampleCollector` that saw the images, for the per-class grids.
        duplicates: ``[(group_id, [paths])]`` near/exact duplicate groups to show.
        outliers: an `outliers.OutlierResult` to show the top of.
        issue_counts: ``{issue: flagged}`` to show instead of the quality counts (e.g. with
            duplicates, corrupt files and outliers added).
        embedding: ``"pca"``, ``"tsne"`` or None (no map).
    """
    out_dir, root = Path(out_dir), Path(root)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(quality, root)
    if issue_counts is not None:
        summary["issue_counts"] = dict(issue_counts)
    labels = np.array([class_of(p, root) for p in quality.paths], dtype=object)
    classes = list(summary["classes"])
    emb = None
    if embedding and quality.features is not None and len(quality.paths) >= 3:
        emb = embed_2d(quality.features, method=embedding, seed=seed)
        summary["embedding"] = {"method": emb["method"],
                                "explained_variance": emb["explained_variance"]}
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p>{summary['num_images']} readable images in {len(classes)} classes under "
             f"<code>{html.escape(str(root))}</code>; {summary['num_unreadable']} unreadable; "
             f"imbalance ratio {summary['imbalance_ratio'] or 0:.2f}.</p>",
             "<h2>Issues</h2><table><tr><th>issue</th><th>flagged</th><th>threshold</th></tr>"]
    for issue, n in summary["issue_counts"].items():
        limit = quality.thresholds.get(issue, "")
        parts.append(f"<tr><td>{issue}</td><td>{n}</td><td>{limit}</td></tr>")
    parts.append("</table>")
    if len(quality.paths):
        for name, uri in _plots(quality.stats, labels, classes,
                                list(summary["classes"].values()), emb).items():
            parts.append(f"<h2>{name}</h2><img src='{uri}'>")
    parts.append("<h2>Per-class statistics</h2><table><tr><th>class</th>"
                 + "".join(f"<th>{k}</th>" for k in CLASS_STATS) + "</tr>")
    for c, row in summary["per_class"].items():
        parts.append(f"<tr><td>{html.escape(c)}</td>"
                     + "".join(f"<td>{row[k]:.3f}</td>" for k in CLASS_STATS) + "</tr>")
    parts.append("</table>")
    if samples is not None:
        parts.append("<h2>Samples per class</h2>")
        for c, kept in sorted(samples.samples.items()):
            parts.append(f"<h3>{html.escape(c)}</h3><div class='grid'>"
                         + "".join(_img(uri, Path(p).name) for p, uri in kept) + "</div>")
    parts.append("<h2>Worst examples per issue</h2>")
    for issue in quality.scores:
        idx = np.flatnonzero(quality.flags(issue))
        idx = idx[np.argsort(-quality.scores[issue][idx], kind="stable")][:WORST_PER_ISSUE]
        if len(idx):
            parts.append(f"<h3>{issue}</h3><div class='grid'>" + "".join(
                _img(_read_thumb(quality.paths[i]),
                     f"{relative(quality.paths[i], root)} ({quality.scores[issue][i]:.2f})")
                for i in idx) + "</div>")
    if duplicates:
        parts.append(f"<h2>Duplicate groups ({len(duplicates)})</h2>")
        for gid, files in duplicates[:20]:
            parts.append(f"<h3>group {gid}</h3><div class='grid'>" + "".join(
                _img(_read_thumb(p), relative(p, root)) for p in files[:8]) + "</div>")
    if outliers is not None and len(outliers.paths):
        parts.append("<h2>Most unusual images</h2><div class='grid'>" + "".join(
            _img(_read_thumb(p), f"{relative(p, root)} ({s:.2f})")
            for p, s in outliers.ranked()[:WORST_PER_ISSUE * 2]) + "</div>")
    if quality.unreadable:
        parts.append("<h2>Unreadable files</h2><ul>" + "".join(
            f"<li><code>{html.escape(relative(p, root))}</code>: {html.escape(r)}</li>"
            for p, r in quality.unreadable) + "</ul>")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>"
            f"{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
    write_text(out_dir / "report.html", page)
    write_json(out_dir / "eda.json", summary)
    logger.info("report written to %s", out_dir / "report.html")
    return summary


_CSS = """body{font-family:sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
.grid{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;width:130px}
figure img{max-width:120px;max-height:120px}figcaption{font-size:11px;word-break:break-all}"""
