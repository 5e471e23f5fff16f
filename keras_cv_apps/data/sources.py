"""Dataset specs -> uint8 image arrays, integer labels and class names.

A *spec* names where images come from. Every source returns the same thing, a `SourceData`:
``images`` uint8 ``[N, H, W, C]`` (RGB or single-channel, already resized and converted to the
requested channels), ``labels`` int32 ``[N]`` in ``0..len(class_names)-1``, ``class_names`` and
``skipped`` (files that could not be decoded). Specs:

- ``digits``: scikit-learn's 1,797 real 8x8 handwritten digits (offline).
- ``digits-c[:CORRUPTION[:SEVERITY]]``: the digits test split under seven corruptions at five
  severities (`corruptions`), built offline; for robustness evaluation.
- ``shapes[:num_classes[:per_class]]``: procedural, seeded coloured shapes on noisy backgrounds.
- ``glyphs[:num_classes[:per_class]]``: procedural, seeded stroke characters drawn like ``digits``
  (8x8, 17 grey levels, bright ink on black): each class a random template of two to four curved
  strokes, each image a jittered, slanted, thickened copy of it. A pretraining source with as many
  classes as wanted and no real class in it (`transfer.offline_source`).
- ``shapes_target[:num_classes[:per_class]]``: one target shape (its class) at a random place
  among distractor shapes of other kinds; `shapes_with_masks` also returns the target's mask.
- ``lfw_subset``: scikit-image's 200 25x25 faces / non-faces (offline).
- ``photos[:PER_CLASS]``: seeded random crops of the photos scikit-image ships (100 a class by
  default); the class is the photo.
- ``dir:PATH`` (one sub-folder per class) and ``tfrecord:GLOB`` (shards written by
  `data.write_shards`) are not loaded here: they are streamed (`data.streaming`, `data.shards`).
- ``tfds:NAME[:split]``: TensorFlow Datasets (optional extra, needs the network once).
- ``keras:mnist|fashion_mnist|cifar10``: ``keras.datasets`` loaders (need the network once).
- an ``(x, y)`` tuple of numpy arrays (``class_names=`` optional).
"""

from __future__ import annotations

import inspect
import logging
import os
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np

from keras_cv_apps.image.ops import check_fits_in_memory, fit, fit_many, to_uint8

logger = logging.getLogger(__name__)

NAMED_SPECS = ("digits", "shapes", "glyphs", "shapes_target", "lfw_subset", "photos[:PER_CLASS]")
PREFIX_SPECS = ("digits-c[:CORRUPTION[:SEVERITY]]", "dir:PATH", "tfrecord:GLOB", "tfds:NAME[:split]",
                "keras:mnist|fashion_mnist|cifar10")
STREAMED = ("dir", "tfrecord")  # spec prefixes read from disk as the pipelines run
SHAPE_CLASSES = ("circle", "square", "triangle", "star", "cross", "hexagon", "ring", "ellipse")
TARGET_CLASSES = ("circle", "square", "triangle", "star")  # shapes_target: the classes ...
DISTRACTORS = ("cross", "ring", "ellipse")  # ... and the kinds of the other objects
PHOTO_CLASSES = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry",
                 "rocket")
KERAS_DATASETS = {
    # name: (class names, file(s) keras.utils.get_file stores under $KERAS_HOME/datasets)
    "mnist": ([str(i) for i in range(10)], "mnist.npz"),
    "fashion_mnist": (["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                       "sneaker", "bag", "ankle_boot"], "fashion-mnist/*.gz"),
    "cifar10": (["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"], "cifar-10-batches-py.tar.gz"),
}


class SourceData(NamedTuple):
    images: np.ndarray  # uint8 [N, H, W, C]
    labels: np.ndarray  # int32 [N]
    class_names: list
    skipped: list  # paths of files that could not be decoded


def spec_choices() -> str:
    """The valid specs, as one string for error messages."""
    return ", ".join(NAMED_SPECS + PREFIX_SPECS) + " or an (x, y) tuple of numpy arrays"


def is_streamed(spec) -> bool:
    """True for the specs that stay on disk and are decoded inside the pipelines."""
    if not isinstance(spec, str):
        return False
    head, _, rest = spec.partition(":")
    return head in STREAMED and bool(rest)


def load_source(spec, *, image_size: Optional[Tuple[int, int]], channels: int, seed: int = 0,
                **options) -> SourceData:
    """Load ``spec`` as a `SourceData` with images resized to ``image_size`` ((h, w), or None to
    keep the native size) and converted to ``channels`` (1 or 3). ``options`` go to the source
    (``num_classes``/``per_class`` for ``shapes``, ``per_class`` for ``photos``, ``data_dir`` for
    ``tfds:``, ``class_names`` for numpy arrays)."""
    fn, args, spec_options = _resolve(spec)
    accepted = [name for name, p in inspect.signature(fn).parameters.items()
                if p.kind == p.KEYWORD_ONLY and name not in ("size", "channels", "seed")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"Spec {_describe(spec)} does not take option(s) {unknown}; "
                        f"it takes {accepted or 'none'}.")
    return fn(*args, size=image_size, channels=channels, seed=seed, **{**spec_options, **options})


def _describe(spec) -> str:
    return repr(spec) if isinstance(spec, str) else "(x, y) arrays"


def _resolve(spec):
    """Map a spec to (source function, positional args, options), raising on unknown specs."""
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        return _from_arrays, tuple(spec), {}
    if not isinstance(spec, str):
        raise ValueError(f"Unknown dataset spec of type {type(spec).__name__}; "
                         f"use {spec_choices()}.")
    head, _, rest = spec.partition(":")
    simple = {"digits": _digits, "lfw_subset": _lfw_subset, "photos": _photos}
    if spec in simple:
        return simple[spec], (), {}
    if head in ("shapes", "glyphs"):
        parts = rest.split(":") if rest else []
        if len(parts) > 2 or not all(p.isdigit() for p in parts):
            raise ValueError(f"Bad spec {spec!r}; use {head}, {head}:NUM_CLASSES or "
                             f"{head}:NUM_CLASSES:PER_CLASS.")
        sizes = dict(zip(("num_classes", "per_class"), map(int, parts)))
        return {"shapes": _shapes, "glyphs": _glyphs}[head], (), sizes
    if head == "photos":
        if not rest.isdigit():
            raise ValueError(f"Bad spec {spec!r}; use photos or photos:PER_CLASS.")
        return _photos, (), {"per_class": int(rest)}
    if head == "shapes_target":
        parts = rest.split(":") if rest else []
        if len(parts) > 2 or not all(p.isdigit() for p in parts):
            raise ValueError(f"Bad spec {spec!r}; use shapes_target, shapes_target:NUM_CLASSES or "
                             "shapes_target:NUM_CLASSES:PER_CLASS.")
        return _shapes_target, (), dict(zip(("num_classes", "per_class"), map(int, parts)))
    if head == "digits-c":
        from keras_cv_apps.data.corruptions import parse_spec

        return _digits_c, (), parse_spec(rest)
    if is_streamed(spec):
        raise ValueError(f"Spec {spec!r} is streamed from disk; load it with data.load.")
    if head == "tfds" and rest:
        name, _, split = rest.partition(":")
        return _from_tfds, (name, split or "train"), {}
    if head == "keras" and rest in KERAS_DATASETS:
        return _from_keras, (rest,), {}
    raise ValueError(f"Unknown dataset spec {spec!r}; use {spec_choices()}.")


# ------------------------------------------------------------------------- offline sources


def _digits(*, size, channels, seed):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    raw = np.rint(bunch.images * 255.0 / 16.0).astype(np.uint8)
    names = [str(int(t)) for t in bunch.target_names]
    return SourceData(fit_many(raw, size, channels), bunch.target.astype(np.int32), names, [])


def digits_test_split(*, image_size=(32, 32), channels: int = 1, seed: int = 0):
    """``(images uint8 [N, H, W, C], labels int32 [N])``: the test split of ``data.load("digits",
    image_size=..., channels=..., seed=seed)`` (default fractions), clean."""
    from keras_cv_apps.data.splitting import stratified_split

    data = _digits(size=image_size, channels=channels, seed=seed)
    test = stratified_split(data.labels, val_fraction=0.1, test_fraction=0.2, seed=seed)["test"]
    return data.images[test], data.labels[test]


def digits_c(*, image_size=(32, 32), channels: int = 1, seed: int = 0, corruptions=None, severities=None) -> dict:
    """``{(corruption, severity): (images, labels)}``: the digits test split of ``seed`` under
    ``corruptions`` x ``severities`` (all by default; see `corruptions`); ``("clean", 0)`` holds the
    uncorrupted images."""
    from keras_cv_apps.data import corruptions as c

    images, labels = digits_test_split(image_size=image_size, channels=channels, seed=seed)
    corrupted = c.corrupt_all(images, corruptions=corruptions or c.CORRUPTIONS,
                              severities=severities or c.SEVERITIES, seed=seed)
    return {("clean", 0): (images, labels), **{key: (x, labels) for key, x in corrupted.items()}}


def _digits_c(*, size, channels, seed, corruptions=None, severities=None):
    """The digits test split of ``seed`` under ``corruptions`` x ``severities`` (all by default),
    one block after the other (`digits_c`); at 32x32 unless ``size`` says otherwise."""
    sets = digits_c(image_size=size or (32, 32), channels=channels, seed=seed, corruptions=corruptions,
                    severities=severities)
    del sets[("clean", 0)]
    images = np.concatenate([x for x, _ in sets.values()])
    labels = np.concatenate([y for _, y in sets.values()]).astype(np.int32)
    return SourceData(images, labels, [str(i) for i in range(10)], [])


def _lfw_subset(*, size, channels, seed):
    from skimage.data import lfw_subset

    faces = lfw_subset()  # first 100 are faces, last 100 are not
    labels = np.repeat(np.array([0, 1], np.int32), len(faces) // 2)
    return SourceData(fit_many(faces, size, channels), labels, ["face", "not_face"], [])


def _photos(*, size, channels, seed, per_class: int = 100,
            photo_names: Sequence[str] = PHOTO_CLASSES):
    """Random square crops (25-60% of the short side) of scikit-image photos; class = photo."""
    import skimage.data

    unknown = [n for n in photo_names if not callable(getattr(skimage.data, n, None))]
    if unknown or len(photo_names) < 2 or per_class < 1:
        raise ValueError(f"photos takes >= 2 scikit-image photo names (e.g. "
                         f"{', '.join(PHOTO_CLASSES)}) and per_class >= 1; got {list(photo_names)}"
                         f" and {per_class}.")
    size = size or (64, 64)
    check_fits_in_memory(len(photo_names) * per_class, size, channels)
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, name in enumerate(photo_names):
        photo = to_uint8(getattr(skimage.data, name)())
        h, w = photo.shape[:2]
        for _ in range(per_class):
            side = int(rng.uniform(0.25, 0.6) * min(h, w))
            top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            images.append(fit(photo[top:top + side, left:left + side], size, channels))
            labels.append(label)
    return SourceData(np.stack(images), np.array(labels, np.int32), list(photo_names), [])


def _shapes(*, size, channels, seed, num_classes: int = 4, per_class: int = 200):
    """Seeded filled shapes with random colour, size, position and rotation on a noisy
    background of a contrasting colour."""
    import cv2

    if not 2 <= num_classes <= len(SHAPE_CLASSES) or per_class < 1:
        raise ValueError(f"shapes takes 2..{len(SHAPE_CLASSES)} classes and >= 1 image per "
                         f"class ({', '.join(SHAPE_CLASSES)}); got {num_classes}, {per_class}.")
    h, w = size or (64, 64)
    check_fits_in_memory(num_classes * per_class, (h, w), 3)
    rng = np.random.default_rng(seed)
    images = np.empty((num_classes * per_class, h, w, 3), np.uint8)
    labels = np.repeat(np.arange(num_classes, dtype=np.int32), per_class)
    for i, label in enumerate(labels):
        dark_bg = rng.random() < 0.5
        bg = rng.uniform(0, 90, 3) if dark_bg else rng.uniform(165, 255, 3)
        fg = rng.uniform(165, 255, 3) if dark_bg else rng.uniform(0, 90, 3)
        canvas = np.clip(bg + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        radius = rng.uniform(0.22, 0.42) * min(h, w)
        centre = (rng.uniform(radius, w - radius), rng.uniform(radius, h - radius))
        _draw_shape(cv2, canvas, SHAPE_CLASSES[label], centre, radius,
                    rng.uniform(0, 2 * np.pi), tuple(float(c) for c in fg))
        images[i] = canvas
    names = list(SHAPE_CLASSES[:num_classes])
    return SourceData(fit_many(images, None, channels), labels, names, [])


def _glyphs(*, size, channels, seed, num_classes: int = 64, per_class: int = 100):
    """Seeded stroke characters drawn as scikit-learn's digits are stored: each class a template
    of 2-4 quadratic Bezier strokes, scaled into an upright box 85% of the side high and at most
    0.7 as wide as tall; each image that template with every control point moved (sd 3.5% of the side),
    slanted, turned and shifted a little, stroked 1/9-1/5 of the side thick with anti-aliasing at
    64x64, shrunk to 8x8 by area and quantised to 17 grey levels (0..16 as in ``digits``, stored x
    255/16). ``size`` then resizes them as ``digits`` are."""
    import cv2

    if num_classes < 2 or per_class < 1:
        raise ValueError(f"glyphs takes >= 2 classes and >= 1 image per class; got {num_classes}, {per_class}.")
    check_fits_in_memory(num_classes * per_class, size or (8, 8), channels)
    rng = np.random.default_rng(seed)
    canvas_side, t = 64, np.linspace(0.0, 1.0, 16)[:, None]
    raw = np.empty((num_classes * per_class, 8, 8), np.uint8)
    canvas = np.empty((canvas_side, canvas_side), np.uint8)

    def curve(p):  # [3, 2] control points (x, y) -> [16, 2] points along the quadratic Bezier
        return (1 - t) ** 2 * p[0] + 2 * (1 - t) * t * p[1] + t ** 2 * p[2]

    for c in range(num_classes):
        strokes = [rng.uniform(0.0, 1.0, (3, 2)) * (0.6, 1.0) for _ in range(rng.integers(2, 5))]
        points = np.concatenate([curve(p) for p in strokes])
        low, high = points.min(0), points.max(0)
        fill = 0.85 / max(high[1] - low[1], (high[0] - low[0]) / 0.7, 1e-3)
        strokes = [(p - (low + high) / 2) * fill for p in strokes]  # centred on 0
        for i in range(c * per_class, (c + 1) * per_class):
            angle, shear, scale = rng.normal(0.0, 0.12), rng.normal(0.0, 0.1), rng.uniform(0.85, 1.1)
            warp = scale * np.array([[np.cos(angle), shear - np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            shift = 0.5 + rng.normal(0.0, 0.04, 2)
            thickness = int(rng.integers(canvas_side // 9, canvas_side // 5))
            canvas[:] = 0
            for p in strokes:
                moved = (p + rng.normal(0.0, 0.035, p.shape)) @ warp.T + shift
                cv2.polylines(canvas, [np.rint(curve(moved) * canvas_side * 16).astype(np.int32)], False, 255,
                              thickness, cv2.LINE_AA, shift=4)
            small = cv2.resize(canvas, (8, 8), interpolation=cv2.INTER_AREA)
            raw[i] = np.rint(np.rint(small * (16.0 / 255.0)) * (255.0 / 16.0))
    labels = np.repeat(np.arange(num_classes, dtype=np.int32), per_class)
    names = [f"glyph{c:0{len(str(num_classes - 1))}d}" for c in range(num_classes)]
    return SourceData(fit_many(raw, size, channels), labels, names, [])


def shapes_with_masks(*, size=(64, 64), channels: int = 3, seed: int = 0, num_classes: int = 4,
                      per_class: int = 250, distractors: int = 2):
    """``(SourceData, masks)`` for explanations with ground truth: each image holds one target
    shape (``TARGET_CLASSES[label]``) and ``distractors`` shapes of ``DISTRACTORS`` kinds, all of
    similar size and random colour, rotation and non-overlapping position on a noisy background;
    ``masks`` (bool ``[N, H, W]``) marks the target's pixels."""
    import cv2

    if not 2 <= num_classes <= len(TARGET_CLASSES) or per_class < 1 or not 0 <= distractors <= 4:
        raise ValueError(f"shapes_target takes 2..{len(TARGET_CLASSES)} classes ({', '.join(TARGET_CLASSES)}), "
                         f">= 1 image per class and 0..4 distractors; got {num_classes}, {per_class}, {distractors}.")
    h, w = size or (64, 64)
    check_fits_in_memory(num_classes * per_class, (h, w), 4)  # RGB images and their masks
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes, dtype=np.int32), per_class)
    images = np.empty((len(labels), h, w, 3), np.uint8)
    masks = np.zeros((len(labels), h, w), bool)
    for i, label in enumerate(labels):
        dark_bg = rng.random() < 0.5
        bg = rng.uniform(0, 90, 3) if dark_bg else rng.uniform(165, 255, 3)
        canvas = np.clip(bg + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        kinds = [TARGET_CLASSES[label]] + list(rng.choice(DISTRACTORS, distractors))
        placed = []
        while len(placed) < len(kinds):  # rejection sampling of non-overlapping discs
            radius = rng.uniform(0.16, 0.22) * min(h, w)
            centre = (rng.uniform(radius, w - radius), rng.uniform(radius, h - radius))
            if all(np.hypot(centre[0] - c[0], centre[1] - c[1]) > radius + r + 2 for c, r in placed):
                placed.append((centre, radius))
        for k, (kind, (centre, radius)) in enumerate(zip(kinds, placed)):
            fg = tuple(float(v) for v in (rng.uniform(165, 255, 3) if dark_bg else rng.uniform(0, 90, 3)))
            angle = rng.uniform(0, 2 * np.pi)
            _draw_shape(cv2, canvas, kind, centre, radius, angle, fg)
            if k == 0:
                target = np.zeros((h, w), np.uint8)
                _draw_shape(cv2, target, kind, centre, radius, angle, 255.0)
                masks[i] = target > 127
        images[i] = canvas
    names = list(TARGET_CLASSES[:num_classes])
    return SourceData(fit_many(images, None, channels), labels, names, []), masks


def _shapes_target(*, size, channels, seed, num_classes: int = 4, per_class: int = 250):
    return shapes_with_masks(size=size, channels=channels, seed=seed, num_classes=num_classes,
                             per_class=per_class)[0]


def _draw_shape(cv2, canvas, kind, centre, radius, angle, colour):
    """Draw one anti-aliased ``kind`` of shape on ``canvas`` in place."""
    cx, cy = centre
    if kind in ("circle", "ring"):
        thickness = -1 if kind == "circle" else max(1, int(radius * 0.35))
        r = radius if kind == "circle" else radius - thickness / 2
        cv2.circle(canvas, (int(cx), int(cy)), int(r), colour, thickness, cv2.LINE_AA)
        return
    if kind == "ellipse":
        axes = (int(radius), int(radius * 0.5))
        cv2.ellipse(canvas, (int(cx), int(cy)), axes, np.degrees(angle), 0, 360, colour, -1,
                    cv2.LINE_AA)
        return
    if kind == "cross":  # a plus sign: 12 vertices at two radii
        arm = 0.35
        unit = [(arm, 1), (arm, arm), (1, arm), (1, -arm), (arm, -arm), (arm, -1),
                (-arm, -1), (-arm, -arm), (-1, -arm), (-1, arm), (-arm, arm), (-arm, 1)]
        pts = np.array(unit) * radius * 0.9
    else:
        sides = {"triangle": 3, "square": 4, "hexagon": 6, "star": 10}[kind]
        theta = np.arange(sides) * 2 * np.pi / sides
        radii = np.where(np.arange(sides) % 2, 0.45, 1.0) if kind == "star" else np.ones(sides)
        pts = radius * radii[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = pts @ rot.T + np.array([cx, cy])
    cv2.fillPoly(canvas, [np.rint(pts * 16).astype(np.int32)], colour, cv2.LINE_AA, shift=4)


def _from_arrays(x, y, *, size, channels, seed, class_names: Optional[Sequence[str]] = None):
    """In-memory arrays: x uint8, or float in [0, 255]; [N, H, W] or [N, H, W, C]."""
    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    bad_channels = x.ndim == 4 and x.shape[-1] not in (1, 3, 4)
    if x.ndim not in (3, 4) or len(x) != len(y) or bad_channels:
        raise ValueError(f"Arrays must be x [N, H, W(, 1|3|4)] and y [N] of equal N; got x "
                         f"{x.shape} and y {y.shape}.")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"Labels y must be integers; got dtype {y.dtype}.")
    if np.issubdtype(x.dtype, np.floating) and x.size and float(np.max(x)) <= 1.0:
        raise ValueError("Float image arrays must be in [0, 255]; multiply [0, 1] images by 255.")
    if class_names is None:
        values, y = np.unique(y, return_inverse=True)
        class_names = [str(v) for v in values]
    elif y.size and (y.min() < 0 or y.max() >= len(class_names)):
        raise ValueError(f"Labels must be in 0..{len(class_names) - 1} for the "
                         f"{len(class_names)} class_names given; got {y.min()}..{y.max()}.")
    if x.dtype != np.uint8:
        x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return SourceData(fit_many(x, size, channels), y.astype(np.int32), list(class_names), [])


# --------------------------------------------------------------------------- network sources


def _from_keras(name, *, size, channels, seed):
    import keras

    class_names, filename = KERAS_DATASETS[name]
    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as err:  # keras.utils.get_file raises a bare Exception when offline
        home = os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))
        raise ConnectionError(
            f"Could not load keras:{name} ({type(err).__name__}: {str(err)[:120]}); connect to "
            f"the network once, or put {filename} in {os.path.join(home, 'datasets')}.") from err
    x = np.concatenate([x_train, x_test])
    y = np.concatenate([np.ravel(y_train), np.ravel(y_test)]).astype(np.int32)
    return SourceData(fit_many(x, size, channels), y, list(class_names), [])


def _from_tfds(name, split, *, size, channels, seed, data_dir: Optional[str] = None):
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise ImportError(f"Spec tfds:{name} needs tensorflow-datasets; install it with "
                          "pip install 'keras-cv-apps[datasets]'.") from err
    try:
        ds, info = tfds.load(name, split=split, as_supervised=True, with_info=True,
                             data_dir=data_dir)
    except Exception as err:  # download, checksum and unknown-name errors all end here
        first_line = (str(err).splitlines() or [""])[0][:160]
        raise ConnectionError(
            f"Could not load tfds:{name}:{split} ({type(err).__name__}: {first_line}); check the "
            "name, connect to the network once, or build it with `tfds build "
            f"{name}` into ~/tensorflow_datasets (or data_dir).") from err
    label_key = info.supervised_keys[1] if info.supervised_keys else "label"
    feature = info.features[label_key]
    class_names = list(getattr(feature, "names", None) or range(feature.num_classes))
    from tqdm.auto import tqdm

    images, labels = [], []
    for image, label in tqdm(tfds.as_numpy(ds), desc=f"tfds:{name}", unit="img", disable=None):
        images.append(fit(image, size, channels))
        labels.append(int(label))
    return SourceData(fit_many(images, None, channels), np.array(labels, np.int32),
                      [str(c) for c in class_names], [])
