"""``digits-c``: the digits test split under seven corruptions at five severities each, built offline.

Like ImageNet-C / CIFAR-10-C (Hendrycks & Dietterich, 2019), it measures how a classifier holds
up when test images are degraded in ways training never showed it: the mean accuracy over all
corruptions and severities ("mean corruption accuracy") next to the clean accuracy. The clean
images are exactly the test split of ``data.load("digits", seed=seed)`` (stratified 70/10/20), so
a model trained on that split has never seen them (`sources.digits_c` builds the set, the
``digits-c`` spec loads it; this module holds the corruptions themselves).

Corruptions (severity 1..5; ``S`` is the image side in pixels, 32 for LeNet-5):

- ``gaussian_noise``: additive N(0, s) with s = 0.08, 0.12, 0.18, 0.26, 0.38 x 255;
- ``gaussian_blur``: sigma = 0.5, 0.75, 1, 1.5, 2 x S / 32 pixels;
- ``rotation``: 10, 20, 30, 40, 50 degrees, either direction;
- ``contrast``: distance to the image mean scaled by 0.4, 0.3, 0.2, 0.1, 0.05;
- ``elastic``: a displacement field of Gaussian-filtered uniform noise (sigma S / 8), scaled to a
  standard deviation of 0.02, 0.035, 0.05, 0.065, 0.08 x S;
- ``occlusion``: one square of side 0.2, 0.3, 0.4, 0.5, 0.6 x S, flat grey of a random level;
- ``jpeg``: JPEG quality 25, 18, 15, 10, 7.

The implementation is NumPy/OpenCV written for this purpose (not the augmentation layers), and
every corruption draws from its own seeded generator, so the set is the same on every machine.
"""

from __future__ import annotations

import numpy as np

CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "rotation", "contrast", "elastic", "occlusion", "jpeg")
SEVERITIES = (1, 2, 3, 4, 5)

_LEVELS = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "gaussian_blur": (0.5, 0.75, 1.0, 1.5, 2.0),
    "rotation": (10, 20, 30, 40, 50),
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    "elastic": (0.02, 0.035, 0.05, 0.065, 0.08),
    "occlusion": (0.2, 0.3, 0.4, 0.5, 0.6),
    "jpeg": (25, 18, 15, 10, 7),
}


def _plane(image):
    return image[..., 0] if image.shape[-1] == 1 else image


def corrupt(images: np.ndarray, name: str, severity: int, *, seed: int = 0) -> np.ndarray:
    """``images`` (uint8 ``[N, H, W, C]``, C = 1 or 3) under corruption ``name`` at ``severity``."""
    import cv2

    if name not in CORRUPTIONS or severity not in SEVERITIES:
        raise ValueError(f"Unknown corruption {name!r} at severity {severity!r}; choose one of "
                         f"{', '.join(CORRUPTIONS)} at a severity in 1..5.")
    level = _LEVELS[name][severity - 1]
    rng = np.random.default_rng([seed, CORRUPTIONS.index(name), severity])
    n, h, w, c = images.shape
    side = min(h, w)
    x = images.astype(np.float32)
    out = np.empty_like(x)
    if name == "gaussian_noise":
        out = x + rng.normal(0.0, level * 255.0, x.shape)
    elif name == "contrast":
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        out = (x - mean) * level + mean
    for i in range(n):
        image = _plane(x[i])
        if name == "gaussian_blur":
            sigma = level * side / 32.0
            out[i] = cv2.GaussianBlur(image, (0, 0), sigma).reshape(out[i].shape)
        elif name == "rotation":
            angle = level * rng.choice([-1.0, 1.0])
            matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
            out[i] = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR).reshape(out[i].shape)
        elif name == "elastic":
            field = cv2.GaussianBlur(rng.uniform(-1.0, 1.0, (h, w, 2)).astype(np.float32), (0, 0), side / 8.0)
            field *= level * side / max(float(field.std()), 1e-6)
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            out[i] = cv2.remap(image, xx + field[..., 0], yy + field[..., 1], cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT).reshape(out[i].shape)
        elif name == "occlusion":
            size = max(1, round(level * side))
            top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
            out[i] = x[i]
            out[i, top:top + size, left:left + size] = rng.uniform(0, 255)
        elif name == "jpeg":
            image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
            image = np.ascontiguousarray(image[..., ::-1]) if c == 3 else image  # RGB -> BGR
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, level])
            decoded = cv2.imdecode(data, cv2.IMREAD_COLOR if c == 3 else cv2.IMREAD_GRAYSCALE)
            out[i] = (decoded[..., ::-1] if c == 3 else decoded[..., None]).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def corrupt_all(images: np.ndarray, *, corruptions=CORRUPTIONS, severities=SEVERITIES, seed: int = 0) -> dict:
    """``{(corruption, severity): images}`` for every pair of ``corruptions`` x ``severities``."""
    return {(name, severity): corrupt(images, name, severity, seed=seed)
            for name in corruptions for severity in severities}


def parse_spec(rest: str) -> dict:
    """The options of a ``digits-c[:CORRUPTION[:SEVERITY]]`` spec (the part after ``digits-c``)."""
    parts = [p for p in rest.split(":") if p] if rest else []
    levels = tuple(str(s) for s in SEVERITIES)
    ok = len(parts) <= 2 and (not parts or parts[0] in CORRUPTIONS) and (len(parts) < 2 or parts[1] in levels)
    if not ok:
        raise ValueError(f"Bad spec 'digits-c{':' + rest if rest else ''}'; use digits-c, digits-c:CORRUPTION or "
                         f"digits-c:CORRUPTION:SEVERITY with a corruption among {', '.join(CORRUPTIONS)} and a "
                         "severity in 1..5.")
    options = {}
    if parts:
        options["corruptions"] = (parts[0],)
    if len(parts) == 2:
        options["severities"] = (int(parts[1]),)
    return options
