"""Open-set identification: name the gallery identity a query shows, or say it is nobody there.

A query is compared with every gallery image; its candidate is the identity of the nearest
image. The candidate is accepted when the query's *score* is at most a threshold, otherwise the
answer is "unknown". Two scores (``STATISTICS``):

- ``distance``: the distance to the nearest gallery image;
- ``ratio``: that distance divided by the distance to the nearest image of any *other*
  identity (nearest vs second-nearest, as in Lowe's ratio test): a query that sits about as far
  from two identities is refused even when both are near.

`Whitening` is a distance calibrated across classes (within-class covariance normalisation):
directions in which images of one class vary a lot count less, so every class's spread is
comparable before one threshold is applied to all of them.

The figures used for face recognition's open-set protocol (all numpy, on scores where lower
means "more likely known"):

- detection and identification rate ``DIR(t)``: the fraction of known queries (their identity
  is in the gallery) whose candidate is right *and* accepted;
- false-accept (false-alarm) rate ``FAR(t)``: the fraction of unknown queries accepted;
  `rejection_rate` is ``1 - FAR``;
- the open-set ROC: DIR against FAR over all thresholds, and `dir_at_far`.

`threshold_at_far` picks an operating point from the scores of queries known to be strangers,
`simulate` draws seeded galleries to produce such scores, and `calibrate` / `evaluate` put the
two together. Nothing here imports TensorFlow, so phone-side apps can use it.
"""

from __future__ import annotations

import io

import numpy as np

from keras_cv_apps._figures import new_figure, save_figure
from keras_cv_apps.metrics.verification import distance_matrix

__all__ = [
    "FARS", "STATISTICS", "USABLE_DIR", "Whitening", "calibrate", "dir_at_far", "evaluate",
    "identification_rate", "identification_scores", "open_set_roc", "operating_points", "plot_dir_far",
    "rejection_rate", "simulate", "threshold_at_far",
]

STATISTICS = ("distance", "ratio")
FARS = (0.01, 0.001)  # the false-accept rates `operating_points` saves
USABLE_DIR = 0.8  # the default point is the strictest one whose calibration DIR reaches this


def _check_statistic(statistic):
    if statistic not in STATISTICS:
        raise ValueError(f"Open-set statistic {statistic!r} is not one of {STATISTICS}.")


# ------------------------------------------------------------------------------ the distance


class Whitening:
    """Within-class covariance normalisation with shrinkage, then L2 normalisation.

    ``x -> normalise(c / sqrt(a) + ((c @ V) * g) @ V.T)`` with ``c = x - mean``: ``V`` holds the
    ``rank`` leading eigenvectors of the within-class covariance (eigenvalues ``lam``), ``a`` is
    ``shrinkage`` times the average per-dimension within-class variance and
    ``g = 1/sqrt(lam + a) - 1/sqrt(a)``. That is the inverse square root of ``W + a I`` where
    ``W`` keeps its leading ``rank`` directions: those shrink, every other direction is kept
    (so classes the fit never saw keep their differences). Stored in a small ``.npz``.
    """

    def __init__(self, mean, basis, gains, scale):
        self.mean = np.asarray(mean, np.float32)
        self.basis = np.asarray(basis, np.float32)
        self.gains = np.asarray(gains, np.float32)
        self.scale = float(scale)

    @classmethod
    def fit(cls, embeddings, labels, *, rank: int = 128, shrinkage: float = 1.0) -> "Whitening":
        """Fit on embeddings ``(n, d)`` of at least 2 classes with at least 2 images each."""
        x = np.asarray(embeddings, np.float64)
        labels = np.asarray(labels).reshape(-1)
        classes, counts = np.unique(labels, return_counts=True)
        if (counts >= 2).sum() < 2:
            raise ValueError("Whitening needs at least 2 classes with 2 or more embeddings each; "
                             f"got counts {dict(zip(classes.tolist(), counts.tolist()))}.")
        if rank < 1 or shrinkage <= 0:
            raise ValueError(f"Whitening needs rank >= 1 and shrinkage > 0; got {rank} and {shrinkage}.")
        within = np.concatenate([x[labels == c] - x[labels == c].mean(0) for c in classes])
        n, d = within.shape
        small = n < d  # fewer images than dimensions: eigenvectors of the n x n Gram matrix are cheaper
        lam, u = np.linalg.eigh(within @ within.T if small else within.T @ within)
        lam, u = np.maximum(lam[::-1], 0.0) / n, u[:, ::-1]
        a = shrinkage * lam.sum() / d
        k = int(min(rank, (lam > 1e-12 * max(lam.max(), 1e-30)).sum()))
        vectors = within.T @ u[:, :k] / np.sqrt(lam[:k] * n) if small else u[:, :k]
        basis = vectors.astype(np.float16)  # stored as float16; the fit uses what is stored
        gains = 1.0 / np.sqrt(lam[:k] + a) - 1.0 / np.sqrt(a)
        return cls(x.mean(0), basis, gains, a)

    def __call__(self, embeddings) -> np.ndarray:
        c = np.asarray(embeddings, np.float32) - self.mean
        z = c / np.sqrt(self.scale) + ((c @ self.basis) * self.gains) @ self.basis.T
        return z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12)

    @property
    def rank(self) -> int:
        return int(self.basis.shape[1])

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, mean=self.mean, basis=self.basis.astype(np.float16), gains=self.gains,
                 scale=np.float64(self.scale))
        return buf.getvalue()

    @classmethod
    def load(cls, path) -> "Whitening":
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(z["mean"], z["basis"], z["gains"], z["scale"])
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} is missing; siamese_train writes it beside threshold.json.") from None
        except (KeyError, ValueError, OSError) as err:
            raise ValueError(f"{path} is not a whitening file written by siamese_train ({err}).") from None


# ------------------------------------------------------------------------------- the scores


def identification_scores(distances, gallery_labels, *, statistic: str = "ratio") -> dict:
    """Candidates and scores of queries against a gallery.

    Args:
        distances: ``(queries, gallery images)`` distances.
        gallery_labels: the identity of each gallery image (several images may share one).
        statistic: ``distance`` or ``ratio`` (see the module docstring). ``ratio`` needs at
            least two identities.

    Returns:
        dict with ``identities`` (sorted unique labels), ``per_identity`` ``(queries,
        identities)`` nearest-image distance per identity, ``candidate`` (label per query),
        ``distance`` (to the candidate), ``second`` (to the nearest other identity; inf when
        there is none) and ``score``.
    """
    _check_statistic(statistic)
    d = np.atleast_2d(np.asarray(distances, np.float64))
    gallery_labels = np.asarray(gallery_labels).reshape(-1)
    if d.shape[1] != len(gallery_labels) or len(gallery_labels) == 0:
        raise ValueError(f"{d.shape[1]} distance columns for {len(gallery_labels)} gallery labels.")
    identities = np.unique(gallery_labels)
    if statistic == "ratio" and len(identities) < 2:
        raise ValueError("The ratio score needs a gallery of at least 2 identities; got 1.")
    per = np.stack([d[:, gallery_labels == i].min(1) for i in identities], axis=1)
    order = np.argsort(per, axis=1, kind="stable")
    first = np.take_along_axis(per, order[:, :1], 1)[:, 0]
    second = np.take_along_axis(per, order[:, 1:2], 1)[:, 0] if len(identities) > 1 else np.full(len(d), np.inf)
    score = first if statistic == "distance" else np.where(second > 0, first / np.maximum(second, 1e-300), 0.0)
    return {"identities": identities, "per_identity": per, "candidate": identities[order[:, 0]],
            "distance": first, "second": second, "score": score}


# ------------------------------------------------------------------------------ the figures


def _arrays(known_scores, known_correct, unknown_scores):
    known = np.asarray(known_scores, np.float64).reshape(-1)
    correct = np.asarray(known_correct).reshape(-1).astype(bool)
    unknown = np.asarray(unknown_scores, np.float64).reshape(-1)
    if len(known) != len(correct):
        raise ValueError(f"{len(known)} known scores but {len(correct)} correctness flags.")
    if len(known) == 0 or len(unknown) == 0:
        raise ValueError("Open-set figures need known and unknown queries; got "
                         f"{len(known)} known and {len(unknown)} unknown.")
    return known, correct, unknown


def identification_rate(known_scores, known_correct, threshold) -> float:
    """DIR at ``threshold``: the fraction of known queries both named right and accepted."""
    known = np.asarray(known_scores, np.float64).reshape(-1)
    return float(np.mean(np.asarray(known_correct, bool).reshape(-1) & (known <= threshold)))


def rejection_rate(unknown_scores, threshold) -> float:
    """The fraction of unknown queries refused at ``threshold`` (``1 - FAR``)."""
    return float(np.mean(np.asarray(unknown_scores, np.float64).reshape(-1) > threshold))


def open_set_roc(known_scores, known_correct, unknown_scores) -> dict:
    """The open-set ROC: ``threshold``, ``far`` and ``dir`` at every distinct score (ascending),
    starting with a threshold below every score (nothing accepted)."""
    known, correct, unknown = _arrays(known_scores, known_correct, unknown_scores)
    cuts = np.unique(np.concatenate([known, unknown]))
    cuts = np.concatenate([[np.nextafter(cuts[0], -np.inf)], cuts])
    far = np.searchsorted(np.sort(unknown), cuts, side="right") / len(unknown)
    dir_ = np.searchsorted(np.sort(known[correct]), cuts, side="right") / len(known)
    return {"threshold": cuts, "far": far, "dir": dir_}


def dir_at_far(known_scores, known_correct, unknown_scores, far: float) -> dict:
    """The highest DIR whose FAR is at most ``far`` (the open-set ROC read at one point)."""
    roc = open_set_roc(known_scores, known_correct, unknown_scores)
    ok = np.flatnonzero(roc["far"] <= far + 1e-12)
    best = ok[np.argmax(roc["dir"][ok])]  # the nothing-accepted point always qualifies
    return {"dir": float(roc["dir"][best]), "far": float(roc["far"][best]),
            "threshold": float(roc["threshold"][best])}


def threshold_at_far(unknown_scores, far: float, *, groups=None) -> float:
    """The largest threshold at which at most ``far`` of the unknown scores are accepted
    (accepted = score <= threshold), halfway between the last accepted and the first refused
    score. With ``groups`` (one label per score) every group must meet ``far`` on its own and
    the strictest of their thresholds is returned."""
    if not 0.0 < far < 1.0:
        raise ValueError(f"A false-accept rate must be between 0 and 1 (exclusive); got {far}.")
    scores = np.asarray(unknown_scores, np.float64).reshape(-1)
    if len(scores) == 0:
        raise ValueError("A threshold for a false-accept rate needs at least one unknown score.")
    if groups is not None:
        groups = np.asarray(groups).reshape(-1)
        return min(threshold_at_far(scores[groups == g], far) for g in np.unique(groups))
    s = np.sort(scores)
    allowed = int(np.floor(far * len(s) + 1e-9))
    refused = s[allowed]  # the first score that must be refused
    below = s[s < refused]
    return float((below[-1] + refused) / 2.0) if len(below) else float(np.nextafter(refused, -np.inf))


# ---------------------------------------------------------------------- simulated galleries


def simulate(embeddings, labels, *, gallery_classes, stranger_classes, statistic: str = "ratio",
             shots: int = 1, episodes: int = 200, seed: int = 0) -> dict:
    """Scores of seeded open-set episodes.

    Each episode draws ``shots`` random images of every gallery class as the gallery; the known
    queries are all other images of those classes, the unknown queries all images of the
    stranger classes. Returns ``known_score``, ``known_correct``, ``unknown_score`` and
    ``unknown_class`` (one entry per query per episode).
    """
    _check_statistic(statistic)
    emb = np.asarray(embeddings)
    labels = np.asarray(labels).reshape(-1)
    gallery_classes, stranger_classes = list(gallery_classes), list(stranger_classes)
    if set(gallery_classes) & set(stranger_classes):
        raise ValueError(f"Classes {sorted(set(gallery_classes) & set(stranger_classes))} cannot be both "
                         "gallery and stranger.")
    members = {c: np.flatnonzero(labels == c) for c in gallery_classes}
    short = [c for c, m in members.items() if len(m) < shots + 1]
    if short or len(gallery_classes) < (2 if statistic == "ratio" else 1):
        raise ValueError(f"Open-set episodes need gallery classes with at least {shots + 1} images each "
                         f"({'at least 2 classes, ' if statistic == 'ratio' else ''}too few in {short}).")
    unknown = np.flatnonzero(np.isin(labels, stranger_classes))
    if len(unknown) == 0:
        raise ValueError(f"No images of the stranger classes {stranger_classes}.")
    known_all = np.flatnonzero(np.isin(labels, gallery_classes))
    rng = np.random.default_rng(seed)
    out = {"known_score": [], "known_correct": [], "unknown_score": [], "unknown_class": []}
    for _ in range(episodes):
        gallery = np.concatenate([rng.choice(members[c], shots, replace=False) for c in gallery_classes])
        known = np.setdiff1d(known_all, gallery)
        for queries, kind in ((known, "known"), (unknown, "unknown")):
            s = identification_scores(distance_matrix(emb[queries], emb[gallery]), labels[gallery],
                                      statistic=statistic)
            out[f"{kind}_score"].append(s["score"])
            if kind == "known":
                out["known_correct"].append(s["candidate"] == labels[queries])
            else:
                out["unknown_class"].append(labels[queries])
    return {k: np.concatenate(v) for k, v in out.items()}


def calibrate(embeddings, labels, *, gallery_classes, stranger_classes, fars=(0.01, 0.001),
              statistic: str = "ratio", episodes: int = 200, seed: int = 0) -> dict:
    """Operating points for false-accept rates from simulated one-image-per-class galleries.

    Each threshold keeps *every* stranger class at or below the rate on its own (the strictest
    of the per-class thresholds), which guards against strangers that look like a gallery class
    more than the average stranger does. Returns ``points`` (``far``, ``threshold`` and the
    calibration ``dir`` and measured ``far_measured``) and the query counts.
    """
    sim = simulate(embeddings, labels, gallery_classes=gallery_classes, stranger_classes=stranger_classes,
                   statistic=statistic, episodes=episodes, seed=seed)
    points = []
    for far in sorted(fars, reverse=True):
        t = threshold_at_far(sim["unknown_score"], far, groups=sim["unknown_class"])
        points.append({"far": float(far), "threshold": t,
                       "dir": identification_rate(sim["known_score"], sim["known_correct"], t),
                       "far_measured": 1.0 - rejection_rate(sim["unknown_score"], t)})
    return {"points": points, "episodes": int(episodes), "known_queries": int(len(sim["known_score"])),
            "stranger_queries": int(len(sim["unknown_score"]))}


def operating_points(train_embeddings, train_labels, val_embeddings, val_labels, *, gallery_classes,
                     stranger_classes, fars=FARS, statistic: str = "ratio", rank: int = 128, shrinkage: float = 1.0,
                     episodes: int = 200, seed: int = 0) -> tuple:
    """The identification operating points of an embedding: `Whitening` fitted on the training
    images of the gallery classes (never on the strangers), then `calibrate` on the validation
    images, gallery classes against stranger classes.

    Returns ``(whitening, record)``; ``record`` has the ``points``, the ``default_far`` (the
    strictest point whose calibration DIR is at least `USABLE_DIR`, else the loosest) and how
    they were made.
    """
    train_labels = np.asarray(train_labels).reshape(-1)
    fit = np.isin(train_labels, list(gallery_classes))
    whitening = Whitening.fit(np.asarray(train_embeddings)[fit], train_labels[fit], rank=rank, shrinkage=shrinkage)
    record = calibrate(whitening(val_embeddings), val_labels, gallery_classes=gallery_classes,
                       stranger_classes=stranger_classes, fars=fars, statistic=statistic, episodes=episodes, seed=seed)
    usable = [p["far"] for p in record["points"] if p["dir"] >= USABLE_DIR]
    score = "distance to it" if statistic == "distance" else "distance to it / distance to the nearest other identity"
    record = {
        "rule": f"whiten the embeddings; candidate = identity of the nearest gallery image; accepted when the "
                f"{score} <= threshold, else unknown",
        "statistic": statistic, **record, "default_far": min(usable) if usable else max(fars),
        "default_rule": f"the strictest point whose calibration DIR is at least {USABLE_DIR}, else the loosest",
        "whitening": {"rank": whitening.rank, "shrinkage": float(shrinkage), "fitted_on": "training images of the "
                      "gallery classes", "images": int(fit.sum())},
        "chosen_on": f"validation images: {episodes} seeded galleries of one image per gallery class against the "
                     "stranger classes; every stranger class at or below the FAR on its own",
    }
    return whitening, record


def evaluate(embeddings, labels, *, gallery_classes, stranger_classes, thresholds: dict, statistic: str = "ratio",
             shots: int = 1, episodes: int = 200, seed: int = 0) -> dict:
    """Open-set figures of seeded episodes: for each named threshold the ``rejection`` of unknown
    queries and the ``dir`` of known ones; ``dir_at_far`` at 1% and 0.1%; the rank-1
    ``identification`` accuracy of known queries (no threshold) and the ``roc`` arrays."""
    sim = simulate(embeddings, labels, gallery_classes=gallery_classes, stranger_classes=stranger_classes,
                   statistic=statistic, shots=shots, episodes=episodes, seed=seed)
    k, ok, u = sim["known_score"], sim["known_correct"], sim["unknown_score"]
    return {
        "at": {name: {"threshold": float(t), "rejection": rejection_rate(u, t), "dir": identification_rate(k, ok, t)}
               for name, t in thresholds.items()},
        "dir_at_far": {str(f): dir_at_far(k, ok, u, f)["dir"] for f in (0.01, 0.001)},
        "identification": float(ok.mean()), "known_queries": int(len(k)), "unknown_queries": int(len(u)),
        "roc": open_set_roc(k, ok, u),
    }


def plot_dir_far(curves: dict, path, *, points=None, styles=None, title="Open-set identification: DIR vs FAR"):
    """Save DIR-vs-FAR curves (``{name: roc dict}``, log FAR axis, optional matplotlib ``styles``
    per name) and optional marked ``points`` (``{label: (far, dir)}``) as a PNG."""
    fig = new_figure((7, 5))
    ax = fig.subplots()
    for name, roc in curves.items():
        far = np.maximum(np.asarray(roc["far"]), 1e-5)
        ax.step(far, roc["dir"], where="post", label=name, **(styles or {}).get(name, {}))
    for label, (far, dir_) in (points or {}).items():
        ax.plot([max(far, 1e-5)], [dir_], "o", color="black", markersize=4)
        ax.annotate(label, (max(far, 1e-5), dir_), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("false-accept rate of unknown queries (FAR)")
    ax.set_ylabel("detection and identification rate (DIR)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title)
    save_figure(fig, path, dpi=100)
    return path
