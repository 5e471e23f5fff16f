"""A small offline image folder with known problems, for the vision apps' default runs and tests.

`make_demo_set` writes photos that scikit-image ships, in three class folders, plus:

- near-duplicates of some of them: resized, JPEG re-encoded, brighter, slightly cropped,
  mirrored and an exact copy (each forms a duplicate group with its source);
- degraded copies (dark, light, blurry, noisy, grayscale stored as RGB, odd aspect ratio,
  low information), each made from a photo that appears nowhere else in the set, so a
  degraded file is a quality problem and never a duplicate;
- one corrupt file (a JPEG cut in half).

``ground_truth.json`` beside the images lists all of this with paths relative to the folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from keras_cv_apps.artifacts import write_json

log = logging.getLogger(__name__)

# (skimage.data name, class folder) of the clean photos kept as they are.
_CLEAN = (
    ("astronaut", "photos"), ("coffee", "photos"), ("chelsea", "photos"), ("rocket", "photos"),
    ("camera", "photos"), ("colorwheel", "graphics"), ("logo", "graphics"), ("coins", "science"),
    ("moon", "science"), ("cell", "science"), ("brick", "textures"), ("gravel", "textures"),
)


def _photo(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)()


def _write(path: Path, image: np.ndarray, quality: int = 92) -> None:
    """Write an RGB/RGBA/gray uint8 array (OpenCV wants BGR at the boundary)."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix == ".jpg" else []
    if not cv2.imwrite(str(path), image, params):
        raise OSError(f"Could not write {path}.")


def _near_duplicates(photos: dict) -> dict:
    """name -> (source name, transform, image) for the planted near-duplicates."""
    import cv2

    small = cv2.resize(photos["astronaut"], (256, 256), interpolation=cv2.INTER_AREA)
    brighter = cv2.convertScaleAbs(photos["rocket"], alpha=1.0, beta=45)
    h, w = photos["chelsea"].shape[:2]
    dy, dx = int(0.04 * h), int(0.04 * w)
    return {
        "photos/astronaut_small.jpg": ("astronaut", "resize", small),
        "photos/coffee_q25.jpg": ("coffee", "jpeg", photos["coffee"]),
        "photos/rocket_bright.png": ("rocket", "brightness", brighter),
        "photos/chelsea_crop.jpg": ("chelsea", "crop", photos["chelsea"][dy : h - dy, dx : w - dx]),
        "photos/camera_mirror.png": ("camera", "flip", photos["camera"][:, ::-1]),
        "science/moon_copy.png": ("moon", "exact_copy", photos["moon"]),
    }


def _degraded(rng: np.random.Generator) -> dict:
    """name -> (degradation, image), each from a photo not used elsewhere in the set."""
    import cv2

    retina = cv2.resize(_photo("retina"), (512, 512), interpolation=cv2.INTER_AREA)
    clock = _photo("clock").astype(np.float32)
    noisy = np.clip(clock + rng.normal(0.0, 30.0, clock.shape), 0, 255).astype(np.uint8)
    flat = np.clip(128.0 + rng.normal(0.0, 1.0, (240, 320)), 0, 255).astype(np.uint8)
    hubble = cv2.cvtColor(_photo("hubble_deep_field")[:512, :512], cv2.COLOR_RGB2GRAY)
    dark = (_photo("immunohistochemistry") * 0.12).astype(np.uint8)
    wide = cv2.resize(_photo("text"), (720, 70), interpolation=cv2.INTER_AREA)
    return {
        "photos/dark_immunohistochemistry.jpg": ("dark", dark),
        "textures/light_grass.png": ("light", (225 + _photo("grass") * 0.1).astype(np.uint8)),
        "science/blurry_retina.jpg": ("blurry", cv2.GaussianBlur(retina, (0, 0), 6)),
        "photos/noisy_clock.png": ("noisy", noisy),
        "science/gray_hubble.png": ("grayscale", np.dstack([hubble] * 3)),
        "graphics/wide_text.png": ("odd_aspect_ratio", wide),
        "textures/flat_gray.png": ("low_information", flat),
    }


def make_demo_set(dest, *, seed: int = 0) -> Path:
    """Write the demo image folder into ``dest`` (created if needed) and return its path.

    The folder holds about 26 images in class subfolders plus ``ground_truth.json`` with keys
    ``duplicate_groups`` (lists of relative paths, source first), ``transforms`` (near-duplicate
    file -> transform), ``degradations`` (file -> issue name as used by `vision.quality`),
    ``corrupt`` (files that cannot be decoded), ``clean`` and ``seed``. Existing files of the
    same names are overwritten; nothing else in ``dest`` is touched. Deterministic for a seed.
    """
    import cv2

    dest = Path(dest)
    rng = np.random.default_rng(seed)
    photos = {name: _photo(name) for name, _ in _CLEAN}
    folder = dict(_CLEAN)
    clean = {}
    for name, image in photos.items():
        rel = f"{folder[name]}/{name}.png"
        _write(dest / rel, image)
        clean[name] = rel

    groups, transforms = {}, {}
    for rel, (source, transform, image) in _near_duplicates(photos).items():
        _write(dest / rel, image, quality=25 if transform == "jpeg" else 92)
        groups.setdefault(source, [clean[source]]).append(rel)
        transforms[rel] = transform

    degradations = {}
    for rel, (issue, image) in _degraded(rng).items():
        _write(dest / rel, image)
        degradations[rel] = issue

    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(_photo("gravel"), cv2.COLOR_GRAY2BGR))
    corrupt = "textures/corrupt_gravel.jpg"
    (dest / corrupt).write_bytes(jpeg.tobytes()[: len(jpeg) // 2])

    truth = {
        "duplicate_groups": list(groups.values()),
        "transforms": transforms,
        "degradations": degradations,
        "corrupt": [corrupt],
        "clean": sorted(clean.values()),
        "seed": seed,
    }
    write_json(dest / "ground_truth.json", truth)
    log.info("demo set written to %s", dest)
    return dest
