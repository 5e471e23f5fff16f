"""CNN embeddings for near-duplicate search (``dedup.find_duplicates(method="cnn")``).

Images and their mirror images are embedded by a registered model used as a feature extractor
(its last hidden layer for classifiers), centred on the dataset mean, L2-normalised, and compared
by cosine similarity in chunked matrix products (a pair scores the better of direct and
mirrored). TensorFlow is imported here only, inside `embed`.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from keras_cv_apps.image.io import MAX_PIXELS, iter_images
from keras_cv_apps.vision.fingerprint import WORK_SIDE, Scan, summarise


def embed(files, model, workers, progress, scan: Scan, max_pixels=MAX_PIXELS, preprocessing=None):
    """Embeddings of the readable images and of their mirror images, centred and L2-normalised;
    every record also goes into ``scan`` (thumbnails and facts for verification and keeping).

    ``model`` is a registered name or a ``keras.Model``; a registry model is cut at its cfg's
    feature layer (`models.feature_extractor`) and fed with its cfg's scaling, or with
    ``preprocessing`` ({``scale``, ``mean``, ``std``}, e.g. a run's ``config.json`` dataset entry)
    when given. Subtracting the dataset's mean embedding removes what all images share (for an
    untrained network mostly overall brightness), so cosine similarity reflects content.
    """
    import cv2

    from keras_cv_apps import models
    from keras_cv_apps.image import ops

    if isinstance(model, str):
        model = models.create(model)
    cfg = models.cfg_of(model)
    if cfg is not None and cfg.feature_layer:
        model = models.feature_extractor(model)
    height, width, channels = model.input_shape[1:4]
    p = dict(preprocessing or {"scale": cfg.scale if cfg else "unit"})
    ops.scale_params(p["scale"], p.get("mean"), p.get("std"))  # a bad mode or missing stats: fail now
    batch, out = [], []

    def flush():
        x = np.stack(batch + [b[:, ::-1] for b in batch]).reshape(-1, height, width, channels)
        y = np.asarray(model.predict(ops.scale(x, p["scale"], p.get("mean"), p.get("std")), verbose=0))
        out.append(y.reshape(2, len(batch), -1))
        batch.clear()

    for rec in iter_images(files, mode="gray" if channels == 1 else "rgb",
                           max_side=max(WORK_SIDE, height, width), workers=workers,
                           progress=progress, desc="embedding", max_pixels=max_pixels):
        scan.add(rec, summarise(rec.image, "phash") if rec.error is None else None)
        if rec.error is None:
            batch.append(cv2.resize(rec.image, (width, height), interpolation=cv2.INTER_AREA))
            if len(batch) == 128:
                flush()
    if batch:
        flush()
    emb = np.concatenate(out, axis=1) if out else np.zeros((2, 0, 1), np.float32)
    emb -= emb[0].mean(axis=0) if len(scan.paths) > 1 else 0.0
    emb /= np.linalg.norm(emb, axis=2, keepdims=True) + 1e-12
    return emb[0], emb[1]


def cosine_pairs(emb: np.ndarray, threshold: float, mirrored: Optional[np.ndarray] = None,
                 chunk: int = 2048) -> dict:
    """{(i, j): similarity} for i < j with cosine similarity >= threshold, in row chunks.

    With ``mirrored`` (embeddings of the mirror images), a pair's similarity is the larger of
    image-to-image and image-to-mirror, so horizontal flips match too.
    """
    pairs = {}
    for start in range(0, len(emb), chunk):
        sims = emb[start : start + chunk] @ emb.T
        if mirrored is not None:
            sims = np.maximum(sims, emb[start : start + chunk] @ mirrored.T)
        rows, cols = np.nonzero(sims >= threshold)
        keep_ = cols > rows + start
        rows, cols = rows[keep_], cols[keep_]
        for i, j, s in zip((rows + start).tolist(), cols.tolist(), sims[rows, cols].tolist()):
            pairs[(i, j)] = float(min(s, 1.0))
    return pairs
