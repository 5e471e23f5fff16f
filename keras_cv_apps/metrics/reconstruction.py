"""Reconstruction quality (MSE, PSNR, SSIM), the VAE's ELBO, and anomaly scores with ROC AUC.

All functions take numpy-compatible image batches (N, H, W, C) in [0, ``max_val``] and return
numpy arrays with one value per image (or a float), ready for ``metrics.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np
from numpy.typing import ArrayLike

from keras_cv_apps._figures import new_figure, save_figure

if TYPE_CHECKING:
    import keras

__all__ = [
    "mse_per_image", "psnr_per_image", "ssim_per_image", "reconstruction_metrics",
    "elbo_per_image", "roc_auc", "knn_distance", "mahalanobis_distance", "encoder_features",
    "anomaly_scores", "plot_image_rows", "plot_latent_scatter",
]


def _pair(x, y):
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"Expected two image batches (N, H, W, C) of the same shape, "
                         f"got {x.shape} and {y.shape}.")
    return x, y


def mse_per_image(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Mean squared error of each image pair."""
    x, y = _pair(x, y)
    return np.mean(np.square(x - y), axis=(1, 2, 3))


def psnr_per_image(x: ArrayLike, y: ArrayLike, max_val: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio ``10 log10(max_val^2 / MSE)`` in dB of each image pair
    (identical images are capped at 100 dB)."""
    mse = np.maximum(mse_per_image(x, y), max_val ** 2 * 1e-10)
    return 10.0 * np.log10(max_val ** 2 / mse)


def ssim_per_image(x: ArrayLike, y: ArrayLike, max_val: float = 1.0) -> np.ndarray:
    """Structural similarity (Wang et al., 2004; Gaussian 11x11 window, or smaller for tiny
    images) of each image pair, via ``tf.image.ssim``."""
    import tensorflow as tf

    x, y = _pair(x, y)
    size = min(11, x.shape[1], x.shape[2])
    return tf.image.ssim(x, y, max_val=max_val, filter_size=size).numpy()


def reconstruction_metrics(x: ArrayLike, x_hat: ArrayLike, max_val: float = 1.0) -> dict:
    """Mean MSE, PSNR (dB) and SSIM of a batch of reconstructions ``x_hat`` of ``x``."""
    return {
        "mse": float(np.mean(mse_per_image(x, x_hat))),
        "psnr": float(np.mean(psnr_per_image(x, x_hat, max_val))),
        "ssim": float(np.mean(ssim_per_image(x, x_hat, max_val))),
    }


def elbo_per_image(vae: keras.Model, x: np.ndarray, num_samples: int = 1, batch_size: int = 256) -> np.ndarray:
    """Evidence lower bound ``E_q[log p(x|z)] - KL(q(z|x) || p(z))`` in nats for each image,
    averaged over ``num_samples`` posterior draws. ``vae`` needs a ``loss_terms(x)`` method
    returning per-image (reconstruction, KL), like `keras_cv_apps.models.vae.VAE`."""
    x = np.asarray(x, np.float32)
    out = np.zeros(len(x), np.float64)
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        for _ in range(num_samples):
            reconstruction, kl = vae.loss_terms(batch)
            out[start:start + batch_size] -= np.asarray(reconstruction) + np.asarray(kl)
    return out / num_samples


def roc_auc(scores: ArrayLike, is_anomaly: ArrayLike) -> float:
    """Area under the ROC curve of ``scores`` (higher = more anomalous) for boolean labels:
    the probability that a random anomaly outscores a random normal sample (ties count 1/2)."""
    scores = np.asarray(scores, np.float64)
    positive = np.asarray(is_anomaly, bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if scores.shape != positive.shape or n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs one score per label and both anomalies and normal "
                         f"samples, got {scores.shape} scores, {n_pos} anomalies, {n_neg} normal.")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    mid_ranks = np.cumsum(counts) - (counts - 1) / 2.0  # average 1-based rank of each tie group
    ranks = mid_ranks[inverse]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def knn_distance(reference: ArrayLike, queries: ArrayLike, k: int = 5, chunk: int = 1024) -> np.ndarray:
    """Mean Euclidean distance from each query row to its ``k`` nearest reference rows,
    computed in chunks of queries (never a full N x N matrix)."""
    ref = np.asarray(reference, np.float64).reshape(len(reference), -1)
    q = np.asarray(queries, np.float64).reshape(len(queries), -1)
    k = min(k, len(ref))
    ref_sq = np.sum(ref ** 2, axis=1)
    out = np.empty(len(q))
    for start in range(0, len(q), chunk):
        part = q[start:start + chunk]
        d2 = np.sum(part ** 2, axis=1)[:, None] + ref_sq[None, :] - 2.0 * part @ ref.T
        nearest = np.partition(np.maximum(d2, 0.0), k - 1, axis=1)[:, :k]
        out[start:start + chunk] = np.mean(np.sqrt(nearest), axis=1)
    return out


def mahalanobis_distance(reference: ArrayLike, queries: ArrayLike, ridge: float = 1e-3) -> np.ndarray:
    """Squared Mahalanobis distance of each query row to a Gaussian fitted on ``reference``
    (the negative log-density up to constants); ``ridge`` regularises the covariance."""
    ref = np.asarray(reference, np.float64).reshape(len(reference), -1)
    q = np.asarray(queries, np.float64).reshape(len(queries), -1)
    mean = ref.mean(axis=0)
    cov = np.cov(ref, rowvar=False).reshape(ref.shape[1], ref.shape[1])
    precision = np.linalg.inv(cov + ridge * np.mean(np.diag(cov)) * np.eye(len(cov)))
    centered = q - mean
    return np.einsum("ij,jk,ik->i", centered, precision, centered)


def _unit_rows(a):
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def encoder_features(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> Optional[np.ndarray]:
    """Flattened output of the encoder's feature map (the layer its cfg names, `feature_layer`),
    or None for a model without one (dense encoders)."""
    from keras_cv_apps import models

    cfg = models.cfg_of(model)
    if cfg is None or cfg.feature_layer is None:
        return None
    out = models.feature_extractor(model).predict(x, batch_size=batch_size, verbose=0)
    return out.reshape(len(out), -1)


def anomaly_scores(model: keras.Model, x_reference: np.ndarray, x: np.ndarray, k: int = 5) -> dict:
    """Several anomaly scores (higher = more anomalous) of images ``x`` for a trained
    autoencoder or VAE, with ``x_reference`` the normal training images:

    - ``reconstruction_mse``: pixel MSE between ``x`` and its reconstruction;
    - ``latent_knn``: mean distance to the ``k`` nearest reference codes;
    - ``latent_mahalanobis``: Mahalanobis distance to a Gaussian fitted on the reference codes;
    - ``feature_knn`` (convolutional encoders): mean cosine distance (on unit-length rows) to the
      ``k`` nearest reference rows of the encoder's deepest convolutional feature map;
    - ``negative_elbo`` (VAE only): ``-ELBO`` in nats, the VAE's own bound on ``-log p(x)``.
    """
    codes_ref, codes = model.encode(x_reference), model.encode(x)
    scores = {
        "reconstruction_mse": mse_per_image(x, model.reconstruct(x)),
        "latent_knn": knn_distance(codes_ref, codes, k=k),
        "latent_mahalanobis": mahalanobis_distance(codes_ref, codes),
    }
    features_ref = encoder_features(model, x_reference)
    if features_ref is not None:
        features = encoder_features(model, x)
        scores["feature_knn"] = knn_distance(_unit_rows(features_ref), _unit_rows(features), k=k)
    if hasattr(model, "loss_terms"):
        scores["negative_elbo"] = -elbo_per_image(model, x, num_samples=4)
    return scores


def plot_image_rows(rows: dict, path, *, title: Optional[str] = None, max_columns: int = 12) -> str:
    """Save a grid with one row per entry of ``rows`` (label -> images in [0, 1]) as a PNG."""
    columns = min(max_columns, min(len(v) for v in rows.values()))
    fig = new_figure((1.0 * columns + 1.2, 1.05 * len(rows) + 0.4))
    axes = np.asarray(fig.subplots(len(rows), columns, squeeze=False))
    for r, (label, images) in enumerate(rows.items()):
        for c in range(columns):
            image = np.asarray(images[c], np.float32)
            ax = axes[r, c]
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else np.clip(image, 0, 1),
                      cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(str(label), fontsize=9)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=80)


def plot_latent_scatter(codes: np.ndarray, labels: ArrayLike, class_names, path, *,
                        title: str = "Latent space") -> str:
    """Scatter the codes coloured by class (the first two principal components when the code has
    more than two dimensions) and save it as a PNG."""
    import matplotlib

    codes = np.asarray(codes, np.float64).reshape(len(codes), -1)
    axis_names = ("z1", "z2")
    if codes.shape[1] > 2:
        centered = codes - codes.mean(axis=0)
        _, _, vt = np.linalg.svd(centered, full_matrices=False)
        codes, axis_names = centered @ vt[:2].T, ("PC 1", "PC 2")
    elif codes.shape[1] == 1:
        codes = np.concatenate([codes, np.zeros_like(codes)], axis=1)
    fig = new_figure((6, 5))
    ax = fig.subplots()
    cmap = matplotlib.colormaps["tab10" if len(class_names) <= 10 else "tab20"]
    for c, name in enumerate(class_names):
        keep = np.asarray(labels) == c
        if keep.any():
            ax.scatter(codes[keep, 0], codes[keep, 1], s=8, color=cmap(c % cmap.N), label=str(name))
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title(title)
    ax.legend(markerscale=2, fontsize=7, loc="best")
    return save_figure(fig, path, dpi=90)
