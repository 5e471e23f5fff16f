"""Evaluation of embeddings: verification (ROC AUC, EER, TPR at a fixed FPR, best threshold),
N-way K-shot episode accuracy, retrieval recall@K and mAP, and an embedding scatter plot.

Everything works on numpy arrays of embeddings ``(n, d)`` and integer labels ``(n,)``, with
Euclidean distance (on L2-normalised embeddings it orders pairs exactly like cosine distance).
"""

from __future__ import annotations

import numpy as np

from keras_cv_apps._figures import new_figure, save_figure

__all__ = [
    "choose_threshold", "distance_matrix", "embedding_report", "episode_accuracy",
    "episode_accuracy_from_distances", "plot_embeddings", "retrieval_metrics",
    "verification_metrics", "verification_pairs",
]


def distance_matrix(a, b=None):
    """Euclidean distances between the rows of ``a`` and ``b`` (default ``a``), float64 (n, m)."""
    a = np.asarray(a, dtype=np.float64)
    b = a if b is None else np.asarray(b, dtype=np.float64)
    d2 = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.sqrt(np.maximum(d2, 0.0))


def verification_pairs(labels, *, max_pairs=100_000, balanced=False, seed=0):
    """Index pairs ``(i, j)`` with i < j and their ``same`` flags for a verification test.

    All pairs are used when there are at most ``max_pairs`` and ``balanced`` is False;
    otherwise a seeded sample with as many same-class as different-class pairs (at most
    ``max_pairs // 2`` of each; ``balanced`` suits choosing a threshold by accuracy).
    """
    labels = np.asarray(labels).reshape(-1)
    i, j = np.triu_indices(len(labels), k=1)
    same = labels[i] == labels[j]
    if balanced or len(i) > max_pairs:
        rng = np.random.default_rng(seed)
        pos, neg = np.flatnonzero(same), np.flatnonzero(~same)
        half = min(max_pairs // 2, len(pos), len(neg)) if balanced else max_pairs // 2
        keep = np.concatenate([rng.choice(pos, min(half, len(pos)), replace=False),
                               rng.choice(neg, min(half, len(neg)), replace=False)])
        i, j, same = i[keep], j[keep], same[keep]
    return i, j, same


def verification_metrics(distances, same, *, target_fpr=1e-2):
    """Scores of a distance-threshold verifier ("same" when distance <= threshold).

    Args:
        distances: one distance per pair.
        same: truth per pair (1/True = same identity).
        target_fpr: false-positive rate at which the true-positive rate is reported.

    Returns:
        dict with ``roc_auc``, ``eer`` (where FPR equals FNR), ``tpr_at_fpr`` (largest TPR with
        FPR <= target_fpr), ``best_accuracy`` and ``best_threshold`` (the distance threshold that
        maximises accuracy on these pairs), ``num_pairs``, ``num_same``.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    distances = np.asarray(distances, dtype=np.float64).reshape(-1)
    same = np.asarray(same).reshape(-1).astype(bool)
    if same.all() or not same.any():
        raise ValueError("Verification metrics need both same and different pairs; "
                         f"got {int(same.sum())} same of {len(same)}.")
    score = -distances  # larger score = more likely the same
    fpr, tpr, thresholds = roc_curve(same, score)
    fnr = 1.0 - tpr
    k = int(np.argmin(np.abs(fnr - fpr)))
    # Best accuracy over thresholds placed at each observed distance.
    order = np.argsort(distances, kind="stable")
    d_sorted, s_sorted = distances[order], same[order]
    tp = np.cumsum(s_sorted)
    fp = np.cumsum(~s_sorted)
    correct = tp + (len(same) - same.sum() - fp)
    last_of_run = np.r_[d_sorted[1:] != d_sorted[:-1], True]  # ties share one threshold
    correct = np.where(last_of_run, correct, -1)
    best = int(np.argmax(correct))
    return {
        "roc_auc": float(roc_auc_score(same, score)),
        "eer": float((fpr[k] + fnr[k]) / 2.0),
        "tpr_at_fpr": float(tpr[fpr <= target_fpr].max()),
        "target_fpr": float(target_fpr),
        "best_accuracy": float(correct[best] / len(same)),
        "best_threshold": float(d_sorted[best]),
        "num_pairs": int(len(same)),
        "num_same": int(same.sum()),
    }


def episode_accuracy(embeddings, labels, *, n_way, k_shot=1, episodes=1000, seed=0,
                     classes=None):
    """Accuracy of N-way K-shot nearest-neighbour episodes.

    Each seeded episode picks ``n_way`` classes, ``k_shot`` random support images per class and
    one random query image (of one of those classes, not among the supports); the query is
    assigned the class of its nearest support. Classes with fewer than ``k_shot + 1`` images
    are skipped.

    Args:
        classes: restrict the episodes to these classes (default: every eligible class).

    Raises:
        ValueError: fewer eligible classes than ``n_way``, or ``n_way < 2``.
    """
    return episode_accuracy_from_distances(distance_matrix(embeddings), labels, n_way=n_way,
                                           k_shot=k_shot, episodes=episodes, seed=seed,
                                           classes=classes)


def episode_accuracy_from_distances(distances, labels, *, n_way, k_shot=1, episodes=1000,
                                    seed=0, classes=None):
    """`episode_accuracy` on a precomputed (n, n) distance (or dissimilarity) matrix, for
    models that score pairs without a Euclidean embedding."""
    labels = np.asarray(labels).reshape(-1)
    if n_way < 2:
        raise ValueError(f"n_way must be at least 2; got {n_way}.")
    pool = np.unique(labels) if classes is None else np.asarray(sorted(set(classes)))
    members = {c: np.flatnonzero(labels == c) for c in pool}
    eligible = [c for c in pool if len(members[c]) >= k_shot + 1]
    if len(eligible) < n_way:
        raise ValueError(f"{n_way}-way {k_shot}-shot episodes need {n_way} classes with at "
                         f"least {k_shot + 1} images each; only {len(eligible)} have them.")
    dist = np.asarray(distances)
    rng = np.random.default_rng(seed)
    correct = 0
    for _ in range(episodes):
        chosen = rng.choice(eligible, n_way, replace=False)
        target = rng.integers(n_way)
        supports, support_cls = [], []
        for pos, c in enumerate(chosen):
            picks = rng.choice(members[c], k_shot + (pos == target), replace=False)
            if pos == target:
                query, picks = picks[0], picks[1:]
            supports.extend(picks)
            support_cls.extend([pos] * k_shot)
        nearest = int(np.argmin(dist[query, supports]))
        correct += support_cls[nearest] == target
    return correct / episodes


def retrieval_metrics(embeddings, labels, *, ks=(1, 5)):
    """Leave-one-out retrieval: every image queries all the others, ranked by distance.

    Returns ``recall@K`` (fraction of queries with a same-class image among the K nearest) for
    each K, and ``map`` (mean average precision of the same-class images in the ranking).
    Queries whose class has no other image are skipped.
    """
    labels = np.asarray(labels).reshape(-1)
    dist = distance_matrix(embeddings)
    np.fill_diagonal(dist, np.inf)
    order = np.argsort(dist, axis=1, kind="stable")[:, :-1]  # self (inf) is last
    relevant = labels[order] == labels[:, None]
    has_pos = relevant.any(axis=1)
    relevant = relevant[has_pos]
    if len(relevant) == 0:
        raise ValueError("Retrieval metrics need at least one class with two images.")
    out = {f"recall@{k}": float(relevant[:, :k].any(axis=1).mean()) for k in ks}
    hits = np.cumsum(relevant, axis=1)
    precision = hits / np.arange(1, relevant.shape[1] + 1)
    out["map"] = float(((precision * relevant).sum(1) / relevant.sum(1)).mean())
    return out


def plot_embeddings(embeddings, labels, path, *, method="pca", class_names=None, seed=0,
                    title=None):
    """Save a 2-D scatter of embeddings (PCA, or t-SNE with ``method="tsne"``) as a PNG."""
    if method not in ("pca", "tsne"):
        raise ValueError(f"Embedding plot method {method!r} is not one of ('pca', 'tsne').")
    x = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if method == "pca":
        from sklearn.decomposition import PCA

        xy = PCA(n_components=2, random_state=seed).fit_transform(x)
    else:
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, len(x) // 4)))
        xy = TSNE(n_components=2, perplexity=perplexity, random_state=seed).fit_transform(x)
    fig = new_figure((6, 5))
    ax = fig.subplots()
    for c in np.unique(labels):
        pts = xy[labels == c]
        name = class_names[int(c)] if class_names is not None else str(c)
        ax.scatter(pts[:, 0], pts[:, 1], s=8, label=name)
    ax.legend(markerscale=2, fontsize=7, loc="best")
    ax.set_title(title or f"Embeddings ({method.upper()})")
    save_figure(fig, path, dpi=100)
    return path


def embedding_report(embeddings, labels, *, held_out_classes=(), k_shot=1, episodes=1000,
                     seed=0, threshold=None):
    """The one-shot evaluation of an embedding, as `apps.siamese_train` prints it.

    For the held-out classes (never seen in training; skipped when empty) and for all
    classes: N-way ``k_shot`` episode accuracy with N = the number of those classes,
    verification scores on all their image pairs (`verification_metrics`, plus the accuracy at
    a given distance ``threshold``) and retrieval recall@1/5 and mAP.
    """
    embeddings = np.asarray(embeddings)
    labels = np.asarray(labels).reshape(-1)
    groups = {"all": np.ones(len(labels), bool)}
    if len(held_out_classes):
        groups = {"held_out": np.isin(labels, list(held_out_classes)), **groups}
    report = {}
    for name, mask in groups.items():
        emb, lab = embeddings[mask], labels[mask]
        n_way = len(np.unique(lab))
        i, j, same = verification_pairs(lab, seed=seed)
        dist = np.linalg.norm(emb[i] - emb[j], axis=1)
        scores = verification_metrics(dist, same)
        if threshold is not None:
            scores["accuracy_at_threshold"] = float(np.mean((dist <= threshold) == same))
        report[name] = {
            "classes": [c.item() for c in np.unique(lab)],
            "n_images": int(mask.sum()),
            f"{n_way}way_{k_shot}shot": episode_accuracy(emb, lab, n_way=n_way, k_shot=k_shot,
                                                       episodes=episodes, seed=seed),
            "episodes": int(episodes),
            "verification": scores,
            "retrieval": retrieval_metrics(emb, lab),
        }
    return report


def choose_threshold(embeddings, labels, *, seed=0):
    """The distance threshold of best accuracy on balanced same/different pairs of a
    validation set; returns the `verification_metrics` dict of those pairs."""
    embeddings = np.asarray(embeddings)
    i, j, same = verification_pairs(labels, balanced=True, seed=seed)
    return verification_metrics(np.linalg.norm(embeddings[i] - embeddings[j], axis=1), same)
