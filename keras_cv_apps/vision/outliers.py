"""Outlier detection: which images do not look like the rest of the dataset?

Four detectors, each giving a score in [0, 1] where 0.5 is that detector's own boundary
between "normal" and "unusual":

- ``zscore``: robust z-scores (median / MAD) of simple image statistics (brightness, contrast,
  saturation, entropy, edges, colour means); ``score = z / (z + 3.5)`` with ``z`` the largest
  absolute z-score of the image, so 0.5 means 3.5 robust standard deviations off.
- ``iforest``: Isolation Forest on the embeddings as they are (each random split looks at one
  feature, so a histogram bin that only one image fills isolates it at once; standardising or
  PCA would blur exactly that). Its score is the
  paper's anomaly score ``2 ** (-E[h(x)] / c(n))``: points isolated by few random splits score
  near 1, and 0.5 is the usual boundary.
- ``ocsvm``: One-Class SVM (RBF kernel, ``nu``) on the same embeddings; ``score =
  sigmoid(-d / std(d))`` of its decision value ``d``, so the SVM's boundary maps to 0.5.
- ``autoencoder``: reconstruction error of a trained autoencoder (an image it cannot rebuild
  is unlike its training data), scored like the z-scores above (one-sided).

`find_outliers` averages the chosen detectors and ranks the images by that score; an image is
flagged when the average reaches `OUTLIER_THRESHOLD`. scikit-learn is imported lazily, and
TensorFlow only by `autoencoder_errors`.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Optional

import numpy as np

logger = logging.getLogger(__name__)

OUTLIER_THRESHOLD = 0.5
Z_SCALE = 3.5
METHODS = ("zscore", "iforest", "ocsvm", "autoencoder")
ZSCORE_STATS = ("brightness", "contrast", "saturation", "entropy", "edge_density",
                "edge_strength", "mean_r", "mean_g", "mean_b")


@dataclasses.dataclass
class OutlierResult:
    """Outlier scores for a list of images.

    Attributes:
        paths: the images, in input order.
        score: ``[N]`` mean of the per-method scores, in [0, 1].
        method_scores: ``{method: [N] scores}`` for each detector that ran.
        threshold: images with ``score >= threshold`` are flagged.
    """

    paths: list
    score: np.ndarray
    method_scores: dict
    threshold: float = OUTLIER_THRESHOLD

    def ranked(self) -> list:
        """``(path, score)`` for every image, most unusual first."""
        order = np.argsort(-self.score, kind="stable")
        return [(self.paths[i], float(self.score[i])) for i in order]

    def flagged(self) -> list:
        """``(path, score)`` of the flagged images, most unusual first."""
        return [(p, s) for p, s in self.ranked() if s >= self.threshold]


def robust_z(values) -> np.ndarray:
    """Column-wise ``(x - median) / (1.4826 * MAD)`` of an ``[N]`` or ``[N, D]`` array.

    Where more than half of a column shares one value (MAD = 0), the mean absolute deviation
    (times 1.2533, its Gaussian consistency factor) is used as the scale instead.
    """
    x = np.asarray(values, dtype=np.float64)
    median = np.median(x, axis=0)
    deviation = np.abs(x - median)
    scale = 1.4826 * np.median(deviation, axis=0)
    scale = np.where(scale > 1e-12, scale, 1.2533 * deviation.mean(axis=0))
    return (x - median) / np.maximum(scale, 1e-12)


def _z_to_score(z):
    z = np.maximum(np.asarray(z, dtype=np.float64), 0.0)
    return z / (z + Z_SCALE)


def zscore_scores(stats) -> np.ndarray:
    """Scores from the largest absolute robust z-score over the columns of ``stats``.

    ``stats`` is an ``[N, D]`` array or a ``{name: [N] array}`` dict (then the `ZSCORE_STATS`
    present in it are used).
    """
    if isinstance(stats, dict):
        stats = np.stack([stats[k] for k in ZSCORE_STATS if k in stats], axis=1)
    return _z_to_score(np.abs(robust_z(stats)).max(axis=1))


def isolation_forest_scores(features, *, seed=0, n_estimators=100) -> np.ndarray:
    """Isolation Forest anomaly scores ``2 ** (-E[h] / c(n))`` (0.5 = boundary)."""
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=n_estimators, random_state=seed)
    x = np.asarray(features, dtype=np.float32)  # what its trees take: no float64 copy to convert back
    return -forest.fit(x).score_samples(x)


def one_class_svm_scores(features, *, nu=0.1) -> np.ndarray:
    """One-Class SVM scores ``sigmoid(-d / std(d))`` (0.5 = the SVM's boundary)."""
    from sklearn.svm import OneClassSVM

    x = np.asarray(features, dtype=np.float64)
    d = OneClassSVM(kernel="rbf", gamma="scale", nu=nu).fit(x).decision_function(x)
    return 1.0 / (1.0 + np.exp(d / (d.std() + 1e-12)))


def reconstruction_scores(errors) -> np.ndarray:
    """Scores from per-image reconstruction errors (one-sided robust z-score)."""
    errors = np.asarray(errors, np.float64)
    finite = np.isfinite(errors)
    errors = np.where(finite, errors, np.median(errors[finite]) if finite.any() else 0.0)  # unreadable: neutral
    return _z_to_score(robust_z(errors))


class Reconstructor:
    """An autoencoder as the audit uses it: ``reconstruct(x)`` on float inputs ``(N, H, W, C)``
    scaled as the model was trained (``scale``/``mean``/``std``), returning the same shape."""

    def __init__(self, reconstruct, image_shape, preprocessing: dict, name: str):
        self.reconstruct = reconstruct
        self.image_shape = tuple(int(d) for d in image_shape)
        self.preprocessing = dict(preprocessing)
        self.name = name

    @classmethod
    def from_keras(cls, model, preprocessing=None) -> "Reconstructor":
        from keras_cv_apps.models import cfg_of

        cfg = cfg_of(model)
        p = dict(preprocessing or {"scale": cfg.scale if cfg else "unit"})
        return cls(lambda x: np.asarray(model.predict(x, verbose=0)), model.input_shape[1:4], p,
                   getattr(model, "name", "model"))


def _preprocessing_beside(path: Path) -> Optional[dict]:
    from keras_cv_apps.artifacts import CONFIG, read_json

    config = path.parent / CONFIG
    data = read_json(config).get("dataset", {}) if config.is_file() else {}
    return {k: data.get(k) for k in ("scale", "mean", "std")} if "scale" in data else None


def _output_shape(model) -> tuple:
    """The one output's shape without the batch axis, ``(None,)`` for several outputs. A loaded
    Sequential model has ``outputs`` but no ``output``; a subclassed one may have neither."""
    outputs = getattr(model, "outputs", None)
    if outputs:
        return tuple(outputs[0].shape[1:]) if len(outputs) == 1 else (None,)
    try:
        shape = model.compute_output_shape((None, *model.input_shape[1:]))
    except Exception:  # noqa: BLE001 - a model that cannot say its output shape is no autoencoder here
        return (None,)
    return tuple(shape[1:]) if isinstance(shape, tuple) and all(isinstance(d, (int, type(None))) for d in shape) \
        else (None,)


def load_autoencoder(path) -> Reconstructor:
    """A trained autoencoder from ``path``, checked before any image is read.

    ``.keras``: any Keras model whose output has its input's shape (the package's classes are
    registered first, so its autoencoders and VAEs load). ``.tflite``: one model that maps images
    to images, or an ``encoder*.tflite`` with the ``decoder*.tflite`` of the same run beside it
    (what ``apps.autoencoder_train`` exports); a ``config.json`` beside it gives the scaling.

    Raises:
        FileNotFoundError: no such file.
        ValueError: another kind of file, or a model that does not reconstruct its input.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Autoencoder file {path} does not exist.")
    if path.suffix not in (".keras", ".tflite"):
        raise ValueError(f"--autoencoder takes a .keras or .tflite file, got {path.name!r}.")
    if path.suffix == ".keras":
        from keras_cv_apps import load_model

        model = load_model(path)  # any file it cannot load: ValueError, one sentence naming the file
        inputs, outputs = tuple(model.input_shape[1:]), _output_shape(model)
        if len(inputs) != 3 or inputs != outputs:
            raise ValueError(f"{path.name} is not an autoencoder: it maps {inputs} to {outputs}, not an "
                             "image to an image of the same shape.")
        return Reconstructor.from_keras(model, _preprocessing_beside(path))
    from keras_cv_apps.inference import TFLiteModel

    first = TFLiteModel(path)
    shape = first.input_shape
    out_shape = tuple(int(d) for d in first.output["shape"][1:])
    p = _preprocessing_beside(path) or {"scale": "unit"}
    if len(shape) == 3 and out_shape == shape:
        return Reconstructor(first, shape, p, path.name)
    if path.name.startswith("decoder"):
        raise ValueError(f"{path.name} is a decoder; pass the encoder .tflite of the same run (its decoder "
                         "beside it is used).")
    decoder = path.with_name(path.name.replace("encoder", "decoder", 1))
    if not path.name.startswith("encoder") or not decoder.is_file():
        raise ValueError(f"{path.name} maps {shape} to {out_shape}, not an image to an image; pass an "
                         "autoencoder .tflite, or encoder.tflite with its decoder.tflite beside it.")
    second = TFLiteModel(decoder)
    if tuple(int(d) for d in second.output["shape"][1:]) != shape:
        raise ValueError(f"{decoder.name} does not rebuild the {shape} images {path.name} takes.")

    def chain(x):
        code = first(x)
        return second(code.reshape(-1, *second.input_shape))

    return Reconstructor(chain, shape, p, f"{path.name} + {decoder.name}")


def autoencoder_errors(autoencoder, paths, *, batch_size=32, preprocessing=None) -> np.ndarray:
    """Mean squared reconstruction error per image of an autoencoder.

    ``autoencoder`` is a Keras model or a `Reconstructor` (`load_autoencoder`). Images are read,
    fitted to the model's input size and channels, and scaled as its cfg or run config says
    (``unit`` [0, 1] for the package's autoencoders) or as ``preprocessing`` ({``scale``,
    ``mean``, ``std``}) says. Unreadable images get an error of NaN.
    """
    from keras_cv_apps.image import ops
    from keras_cv_apps.image.io import iter_images

    ae = autoencoder if isinstance(autoencoder, Reconstructor) else Reconstructor.from_keras(
        autoencoder, preprocessing)
    height, width, channels = ae.image_shape
    p = dict(preprocessing or ae.preprocessing)
    errors, batch, valid = [], [], []

    def flush():
        x = ops.scale(np.stack(batch), p["scale"], p.get("mean"), p.get("std")).astype(np.float32)
        y = np.asarray(ae.reconstruct(x)).reshape(x.shape)
        per_image = ((x - y) ** 2).mean(axis=(1, 2, 3))
        errors.extend(np.where(valid, per_image, np.nan).tolist())
        batch.clear()
        valid.clear()

    for record in iter_images(paths, mode="gray" if channels == 1 else "rgb", progress=False):
        ok = record.image is not None
        image = record.image if ok else np.zeros((height, width), np.uint8)
        batch.append(ops.fit(image, (height, width), channels))
        valid.append(ok)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return np.array(errors)


def find_outliers(paths, *, features=None, stats=None, errors=None, methods=None, seed=0,
                  threshold=OUTLIER_THRESHOLD) -> OutlierResult:
    """Score and rank ``paths`` with the detectors their inputs allow.

    Args:
        paths: one entry per image (row i of every input below).
        features: ``[N, D]`` embeddings for ``iforest`` / ``ocsvm``.
        stats: ``{name: [N]}`` image statistics (e.g. `QualityResult.stats`) for ``zscore``.
        errors: ``[N]`` reconstruction errors for ``autoencoder``.
        methods: detectors to run; default: every one whose input is given.
        seed: Isolation Forest seed.
        threshold: flag images whose mean score reaches it, in [0, 1].
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"Outlier threshold must be in [0, 1], got {threshold}.")
    given = {"zscore": stats, "iforest": features, "ocsvm": features, "autoencoder": errors}
    if methods is None:
        methods = [m for m in METHODS if given[m] is not None]
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"Unknown outlier method {m!r}; choose from {', '.join(METHODS)}.")
        if given[m] is None:
            raise ValueError(f"Outlier method {m} needs its input (stats for zscore, features "
                             "for iforest/ocsvm, errors for autoencoder).")
    if not methods:
        raise ValueError("find_outliers needs stats, features or errors.")
    paths = list(paths)
    if len(paths) < 3:
        zeros = np.zeros(len(paths))
        return OutlierResult(paths, zeros, {m: zeros for m in methods}, threshold)
    runners = {
        "zscore": lambda: zscore_scores(stats),
        "iforest": lambda: isolation_forest_scores(features, seed=seed),
        "ocsvm": lambda: one_class_svm_scores(features),
        "autoencoder": lambda: reconstruction_scores(errors),
    }
    per_method = {m: np.asarray(runners[m](), dtype=np.float64) for m in methods}
    score = np.mean(np.stack(list(per_method.values())), axis=0)
    logger.info("outliers: %d of %d images at score >= %.2f", int((score >= threshold).sum()),
                len(paths), threshold)
    return OutlierResult(paths, score, per_method, threshold)
