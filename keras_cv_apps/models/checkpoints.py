"""Official checkpoints: the released ViT and BiT ``.npz`` files, read into (and written from) the
native Keras models of `models.vit` and `models.bit`.

`load_checkpoint(model, path)` maps every array of the file onto a weight by its published flat
name (each family's ``npz_layout``) and returns a `CheckpointReport` in which every key of the
file is in exactly one of ``loaded``, ``skipped`` or ``resized``. Files of two other writers of
the same ViTs are read too (`official_names`): vit_jax checkpoints saved with their optimizer
(``opt/target/...``) and big_vision's (``params/...``, scanned encoders included).

- a head for another number of classes is skipped and the model's own head (zero at start, as
  BiT's and ViT's) is kept; a ViT file's pre-logits layer is skipped when the model has none
  (the "drop-head" variant of the official fine-tuning code) and loaded when it has one;
- a ViT position embedding for another grid is resized as the official fine-tuning code does:
  the class token's embedding is kept and the grid is zoomed linearly (``scipy.ndimage.zoom``,
  ``order=1``);
- with ``strict=True`` (default) a file key the model has no weight for, a model weight the file
  lacks, or an array of another shape raises ``ValueError`` naming the first keys and shapes;
  with ``strict=False`` what matches loads and the rest is reported.

`save_checkpoint` writes a model in the same layout, so a backbone trained here can be handed
around like the released ones. ``weights=`` of `models.create` also takes the release names of
`RELEASES` (the file is looked for in `weights_dir`, downloaded when the network is there) and
``hub:PRESET`` for a keras-hub ViT preset (the ``hub`` extra).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Callable, List

import numpy as np

from keras_cv_apps.artifacts import atomic_path

logger = logging.getLogger(__name__)

_VIT = "https://storage.googleapis.com/vit_models"
_BIT = "https://storage.googleapis.com/bit_models"
# registered name -> {release name: (file name, where it is published)}
RELEASES = {
    "vit_ti16": {"imagenet21k": ("Ti_16-i21k-300ep-lr_0.001-aug_none-wd_0.03-do_0.0-sd_0.0.npz", f"{_VIT}/augreg")},
    "vit_s16": {"imagenet21k": ("S_16-i21k-300ep-lr_0.001-aug_light1-wd_0.03-do_0.0-sd_0.0.npz", f"{_VIT}/augreg")},
    "vit_b16": {"imagenet21k": ("ViT-B_16.npz", f"{_VIT}/imagenet21k"),
                "imagenet21k+imagenet2012": ("ViT-B_16.npz", f"{_VIT}/imagenet21k+imagenet2012")},
    "bit_s_r50x1": {"imagenet": ("BiT-S-R50x1.npz", _BIT)},
    "bit_m_r50x1": {"imagenet21k": ("BiT-M-R50x1.npz", _BIT)},
    "bit_m_r101x1": {"imagenet21k": ("BiT-M-R101x1.npz", _BIT)},
}


@dataclasses.dataclass
class CheckpointReport:
    """Where each key of a checkpoint went. ``missing`` lists the model's weights (by the file's
    key names) that the checkpoint did not provide (non-strict loads only)."""

    path: str
    loaded: List[str] = dataclasses.field(default_factory=list)
    skipped: List[str] = dataclasses.field(default_factory=list)
    resized: List[str] = dataclasses.field(default_factory=list)
    missing: List[str] = dataclasses.field(default_factory=list)
    notes: List[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_LAYOUTS: List[Callable] = []


def register_layout(fn: Callable) -> Callable:
    """Decorator: a family's ``fn(model) -> {key: (variable, shape in the file, role)}`` for its own
    models (None for any other), consulted by `npz_layout` in registration order."""
    _LAYOUTS.append(fn)
    return fn


def npz_layout(model) -> dict:
    """``{key: (variable, shape in the file, role)}`` of ``model`` (a ViT or BiT model)."""
    for layout_of in _LAYOUTS:
        layout = layout_of(model)
        if layout is not None:
            return layout
    raise ValueError(f"{model.name} is not a ViT or BiT model: only those read official .npz checkpoints.")


def resize_position_embedding(posemb: np.ndarray, tokens: int, grid=None) -> np.ndarray:
    """A ``(1, 1 + n, D)`` position embedding resized to ``(1, tokens, D)`` as the official
    fine-tuning code does: the class token's row is kept and the square grid of the other ``n`` is
    zoomed linearly (``scipy.ndimage.zoom(order=1)``) to ``grid`` (rows, cols; default square)."""
    from scipy import ndimage

    posemb = np.asarray(posemb)
    token, old = posemb[:, :1], posemb[0, 1:]
    side = int(round(np.sqrt(len(old))))
    if side * side != len(old):
        raise ValueError(f"The checkpoint's position embedding has {len(old)} grid tokens, not a square grid.")
    rows, cols = grid or (int(round(np.sqrt(tokens - 1))),) * 2
    if rows * cols != tokens - 1:
        raise ValueError(f"Cannot resize a position embedding to {tokens} tokens: {tokens - 1} is not {rows}x{cols}.")
    zoomed = ndimage.zoom(old.reshape(side, side, -1), (rows / side, cols / side, 1), order=1)
    return np.concatenate([token, zoomed.reshape(1, rows * cols, -1)], axis=1).astype(posemb.dtype)


def _patch_grid(model):
    """(rows, cols) of a ViT's patch grid, from its embedding layer's output."""
    shape = model.get_layer("embedding").output.shape
    return int(shape[1]), int(shape[2])


def read_npz(path) -> dict:
    """The arrays of an ``.npz`` file, by key; a file that is not one raises ``ValueError``."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {str(path)!r} does not exist.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path.name} is not an .npz checkpoint (a zip of named arrays, as numpy.savez and the "
                         "released ViT/BiT files are); got another kind of file.")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise ValueError(f"{path.name} is not a readable .npz checkpoint ({err}).") from None
    odd = [key for key, value in arrays.items() if not isinstance(value, np.ndarray)]
    if odd:
        raise ValueError(f"{path.name} is not a readable .npz checkpoint ({odd[0]!r} is not an array).")
    return arrays


_BIG_VISION_BLOCK = {"MultiHeadDotProductAttention_0": "MultiHeadDotProductAttention_1", "MlpBlock_0": "MlpBlock_3",
                     "LayerNorm_1": "LayerNorm_2"}  # big_vision's block module names -> vit_jax's


def official_names(arrays: dict):
    """``(arrays under the released vit_jax/BiT names, {name: key in the file}, keys left out)``.

    Two other writers of the same models are read: vit_jax checkpoints saved with their optimizer
    (``opt/target/...``; the optimizer state under ``opt/`` is left out), and big_vision ViTs
    (``params/...``): their block modules are numbered ``MultiHeadDotProductAttention_0``,
    ``LayerNorm_1``, ``MlpBlock_0``, a scanned encoder stacks every block on a first axis
    (``Transformer/encoderblock/...``), and the position embedding covers the patches only (the
    class token gets none), so a zero row is put in front of it, which is the same arithmetic.
    """
    if any(key.startswith("opt/target/") for key in arrays):
        kept = {key[len("opt/target/"):]: key for key in arrays if key.startswith("opt/target/")}
        return {name: arrays[key] for name, key in kept.items()}, kept, sorted(set(arrays) - set(kept.values()))
    if not (any(key.startswith("params/") for key in arrays) and "params/embedding/kernel" in arrays):
        return dict(arrays), {key: key for key in arrays}, []
    out, origin = {}, {}
    for key, value in arrays.items():
        if not key.startswith("params/"):
            continue
        name = key[len("params/"):]
        parts = name.split("/")
        if name == "pos_embedding":
            name, value = "Transformer/posembed_input/pos_embedding", np.concatenate(
                [np.zeros_like(value[:, :1]), value], axis=1)
        elif len(parts) > 2 and parts[0] == "Transformer" and parts[1].startswith("encoderblock"):
            parts[2] = _BIG_VISION_BLOCK.get(parts[2], parts[2])
            if parts[1] == "encoderblock":  # scanned: one array per weight, blocks on axis 0
                for i, block in enumerate(value):
                    stacked = "/".join([parts[0], f"encoderblock_{i}", *parts[2:]])
                    out[stacked], origin[stacked] = block, key
                continue
            name = "/".join(parts)
        out[name], origin[name] = value, key
    return out, origin, sorted(set(arrays) - set(origin.values()))


def _same(found, expected) -> bool:
    """Shapes equal up to singleton axes (a GroupNorm scale stored as (1, 1, 1, C) or (C,))."""
    return tuple(found) == tuple(expected) or [d for d in found if d != 1] == [d for d in expected if d != 1]


def _mismatch(problems, path) -> ValueError:
    shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
    return ValueError(f"{Path(path).name} does not fit this model (another architecture?): {shown}.")


def load_checkpoint(model, path, *, strict: bool = True) -> CheckpointReport:
    """Load an official ViT/BiT ``.npz`` checkpoint (or a dict of arrays by key) into ``model``.

    See the module docstring for what is skipped, resized or refused. Nothing is assigned until
    the whole file has been checked, so a refused checkpoint leaves the model as it was.
    """
    arrays, origin, left_out = official_names(path if isinstance(path, dict) else read_npz(path))
    where = "<arrays>" if isinstance(path, dict) else str(path)
    layout = npz_layout(model)
    report = CheckpointReport(path=where)
    plan, problems = [], []
    head_shapes = {key: shape for key, (_, shape, role) in layout.items() if role == "head"}
    head_fits = all(key in arrays and _same(arrays[key].shape, shape) for key, shape in head_shapes.items())
    for key in sorted(arrays):
        value = arrays[key]
        if key not in layout:
            if key.startswith("pre_logits/"):
                report.skipped.append(key)
                report.notes.append(f"{key}: the model has no pre-logits layer (drop-head fine-tuning)")
            elif strict:
                problems.append(f"checkpoint key {key!r} {value.shape} has no place in {model.name}")
            else:
                report.skipped.append(key)
            continue
        variable, shape, role = layout[key]
        if role == "head" and not head_fits:
            report.skipped.append(key)
            report.notes.append(f"{key}: {value.shape} is a head for another class count; kept the model's")
        elif _same(value.shape, shape):
            plan.append((key, variable, value.reshape(variable.shape)))
            report.loaded.append(key)
        elif role == "posemb" and value.ndim == 3 and value.shape[2] == shape[2]:
            rows, cols = _patch_grid(model)
            plan.append((key, variable, resize_position_embedding(value, shape[1], (rows, cols))))
            report.resized.append(key)
            report.notes.append(f"{key}: resized {value.shape} -> {shape}")
        elif strict:
            problems.append(f"{key!r} is {value.shape} in the checkpoint but {shape} in {model.name}")
        else:
            report.skipped.append(key)
    report.missing = sorted(key for key in layout if key not in arrays and key not in head_shapes)
    if strict and report.missing:
        problems += [f"model weight {key!r} {layout[key][1]} is not in the checkpoint" for key in report.missing]
    if problems:
        raise _mismatch(problems, where)
    if left_out:
        report.notes.append(f"{len(left_out)} arrays outside the model's weights (optimizer state) were left out")
    for part in ("loaded", "skipped", "resized"):  # under the file's own keys, each once
        setattr(report, part, list(dict.fromkeys(origin[key] for key in getattr(report, part))))
    report.skipped += left_out
    for _, variable, value in plan:
        variable.assign(value.astype(variable.dtype))
    logger.info("%s: loaded %d, resized %d, skipped %d arrays (%d model weights not in the file).", where,
                len(report.loaded), len(report.resized), len(report.skipped), len(report.missing))
    if not plan:
        logger.warning("%s: no array of the checkpoint fits %s.", where, model.name)
    return report


def save_checkpoint(model, path) -> Path:
    """Write ``model``'s weights as an official-layout ``.npz`` (float32), atomically."""
    arrays = {key: np.asarray(variable.numpy(), dtype=np.float32).reshape(shape)
              for key, (variable, shape, _) in npz_layout(model).items()}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return Path(path)


# ------------------------------------------------------------------------ released weights


def weights_dir() -> Path:
    """Where released checkpoints are looked for: ``$KERAS_HOME/keras_cv_apps`` (``~/.keras/...``)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras_cv_apps"


def resolve(model_name: str, weights) -> Path:
    """The file behind ``weights``: a path, or a release name of ``model_name`` (`RELEASES`) found in
    `weights_dir` or downloaded there. Offline, one sentence says what to download and where."""
    path = Path(weights)
    if path.is_file():
        return path
    releases = RELEASES.get(model_name, {})
    if str(weights) not in releases:
        names = f"; release names for {model_name}: {', '.join(sorted(releases))}" if releases else ""
        raise FileNotFoundError(f"Weights file {str(weights)!r} does not exist (give a .npz, .keras or "
                                f".weights.h5 file{names}).")
    file, base = releases[str(weights)]
    local = weights_dir() / file
    if local.is_file():
        return local
    url = f"{base}/{file}"
    try:
        import keras

        return Path(keras.utils.get_file(file, url, cache_dir=str(weights_dir().parent),
                                         cache_subdir=weights_dir().name))
    except Exception as err:  # offline: urllib/ssl/http errors of every kind
        logger.info("Download of %s failed: %s", url, err)
        raise FileNotFoundError(f"{file} is not in {weights_dir()} and could not be downloaded; download it "
                                f"from {url} and put it in {weights_dir()}.") from None


def load_weights(model, weights, *, strict: bool = True) -> CheckpointReport:
    """The cfg ``load_weights`` of the ViT/BiT families: ``hub:PRESET``, a release name, an ``.npz``
    path, or a ``.keras`` file of a ViT/BiT (read under the official names, so a head for other
    classes is skipped as for a released file)."""
    from keras_cv_apps.models._registry import cfg_of

    if str(weights).startswith("hub:"):
        from keras_cv_apps.models.hub import hub_arrays

        return load_checkpoint(model, hub_arrays(str(weights)[4:]), strict=strict)
    cfg = cfg_of(model)
    path = resolve(cfg.name if cfg else model.name, weights)
    if path.suffix == ".keras":  # a ViT/BiT saved by Keras: its arrays under the official names
        import keras_cv_apps

        source = keras_cv_apps.load_model(path, compile=False)
        arrays = {key: np.asarray(v.numpy()).reshape(shape) for key, (v, shape, _) in npz_layout(source).items()}
        report = load_checkpoint(model, arrays, strict=strict)
        report.path = str(path)
        return report
    return load_checkpoint(model, path, strict=strict)
