"""Transfer learning: reuse a pretrained backbone on a new task.

Ways to adapt a pretrained classifier (its head replaced for the new classes, zero at start):

- **feature extraction** (`freeze_backbone`): every layer but the head is frozen; frozen
  BatchNormalization layers run in inference mode (Keras does this for ``trainable=False``), and
  GroupNorm/LayerNorm have no batch statistics, so the backbone computes exactly what it did;
- **linear probe** (`linear_probe`): the frozen backbone's features (`extract_features`) feed a
  multinomial logistic regression whose weights become the head;
- **fine-tuning** (`unfreeze`): every weight trains, or only those from a named block on
  (`block_names` lists them, e.g. ``encoderblock_6`` of a ViT or ``block3`` of a BiT);
- **LP-FT** (Kumar et al., 2022, "Fine-Tuning can Distort Pretrained Features"): a linear probe
  first, then full fine-tuning from that head, so the early gradients do not wreck the features.

Recipes (`Recipe`, each with its ``source``): `bit_hyperrule` (Kolesnikov et al., 2020) and
`vit_finetune` (Dosovitskiy et al., 2021); `Recipe.compile` sets up SGD with momentum 0.9 (and
gradient clipping), `Recipe.callback` sets the learning rate of every step.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from typing import Optional, Sequence

import keras
import numpy as np

from keras_cv_apps.choices import TRANSFER_MODES

logger = logging.getLogger(__name__)

__all__ = ["TRANSFER_MODES", "Recipe", "StepRate", "bit_hyperrule", "block_names", "check_shots", "extract_features",
           "few_shot_indices", "freeze_backbone", "linear_probe", "unfreeze", "vit_finetune"]

HEAD = "head"
GLYPH_CLASSES = 512  # random stroke characters in the offline source (README, "Few-shot transfer")


def _head(model, head: str = HEAD):
    from keras_cv_apps.models import find_layer

    return find_layer(model, head)[0]


def freeze_backbone(model, *, head: str = HEAD):
    """Feature extraction: freeze every layer but ``head`` (see the module docstring); returns ``model``.
    Recompile the model afterwards (Keras reads ``trainable`` when it compiles)."""
    model.trainable = True
    _head(model, head)  # a model without that head is refused before anything changes
    for layer in model.layers:
        layer.trainable = layer.name == head
    return model


def _block_of(name: str) -> str:
    """A layer name's block: its words up to the first one holding a digit (``block3_unit02_a_gn`` ->
    ``block3``, ``encoderblock_6_ln0`` -> ``encoderblock_6``), else its first word."""
    words = name.split("_")
    for i, word in enumerate(words):
        if re.search(r"\d", word):
            return "_".join(words[:i + 1])
    return words[0]


def block_names(model) -> list:
    """The blocks of ``model`` in order (what ``unfreeze(from_block=...)`` accepts)."""
    seen = []
    for layer in model.layers:
        block = _block_of(layer.name)
        if block not in seen and layer.weights:
            seen.append(block)
    return seen


def unfreeze(model, *, from_block: Optional[str] = None):
    """Fine-tuning: make every layer trainable, or only ``from_block`` and what follows it (a block
    name of `block_names` or a layer name); returns ``model``. Recompile afterwards."""
    model.trainable = True
    if from_block is None:
        for layer in model.layers:
            layer.trainable = True
        return model
    names = [layer.name for layer in model.layers]
    start = next((i for i, n in enumerate(names) if n == from_block or _block_of(n) == from_block), None)
    if start is None:
        raise ValueError(f"{model.name} has no block {from_block!r}; choose one of {', '.join(block_names(model))}.")
    for i, layer in enumerate(model.layers):
        layer.trainable = i >= start
    return model


def extract_features(model, x, *, layer: Optional[str] = None, batch_size: int = 64) -> np.ndarray:
    """Features of ``x`` at ``layer`` (default: the cfg's ``feature_layer``) in inference mode, flattened
    to ``(N, D)``."""
    from keras_cv_apps.models import feature_extractor

    features = feature_extractor(model, layer).predict(np.asarray(x, dtype="float32"), batch_size=batch_size,
                                                       verbose=0)
    return features.reshape(len(features), -1)


def linear_probe(model, x, y, *, C: float = 1.0, head: str = HEAD, layer: Optional[str] = None,
                 features: Optional[np.ndarray] = None, standardize: bool = True, max_iter: int = 2000) -> dict:
    """Fit ``model``'s head as a multinomial logistic regression (L2 strength ``1/C``) on the frozen
    features of ``x`` (or on ``features`` already extracted) and write it into the head.

    ``standardize`` fits on features scaled to zero mean and unit variance (so ``C`` means the same
    for any backbone) and folds that scaling into the head's weights. The head must be a ``Dense``
    layer reading those features, with one output per class of ``y``. Returns ``{"train_accuracy",
    "num_features"}``.
    """
    from sklearn.linear_model import LogisticRegression

    dense = _head(model, head)
    y = np.asarray(y).reshape(-1)
    k = int(dense.units)
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"Labels must be 0..{k - 1} for a head of {k} outputs; got {y.min()}..{y.max()}.")
    f = extract_features(model, x, layer=layer) if features is None else np.asarray(features)
    if f.shape[1] != dense.kernel.shape[0]:
        raise ValueError(f"The features have {f.shape[1]} values but the head reads {dense.kernel.shape[0]}.")
    present = np.unique(y)
    if len(present) != k:
        raise ValueError(f"A linear probe needs examples of all {k} classes of the head; got {len(present)}.")
    mean, std = (f.mean(0), f.std(0) + 1e-6) if standardize else (np.zeros(f.shape[1]), np.ones(f.shape[1]))
    z = (f - mean) / std
    clf = LogisticRegression(C=C, max_iter=max_iter).fit(z, y)
    if k == 2:  # scikit-learn keeps one vector w for two classes: softmax(-w/2, w/2) == sigmoid(w)
        coef = np.stack([-clf.coef_[0], clf.coef_[0]]) / 2
        intercept = np.array([-clf.intercept_[0], clf.intercept_[0]]) / 2
    else:
        coef, intercept = clf.coef_, clf.intercept_
    dense.kernel.assign((coef / std).T.astype("float32"))  # w.(f - m)/s + b == (w/s).f + (b - w.m/s)
    dense.bias.assign((intercept - coef @ (mean / std)).astype("float32"))
    return {"train_accuracy": float(clf.score(z, y)), "num_features": int(f.shape[1])}


# ------------------------------------------------------------------------------ recipes


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A fine-tuning recipe: SGD with momentum, a warm-up then ``decay`` (``staircase``: x0.1 at
    each of ``boundaries``; ``cosine``: to 0 at ``steps``), optional global-norm gradient clipping,
    MixUp (``mixup`` alpha, 0 = none) and the resolution to train at."""

    name: str
    source: str
    learning_rate: float
    batch_size: int
    steps: int
    warmup_steps: int
    decay: str
    boundaries: tuple = ()
    momentum: float = 0.9
    clip_global_norm: Optional[float] = None
    mixup: float = 0.0
    image_size: Optional[int] = None
    resize_to: Optional[int] = None

    def rate(self, step: int) -> float:
        """The learning rate at optimizer step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return self.learning_rate * step / self.warmup_steps
        if self.decay == "staircase":
            return self.learning_rate * 0.1 ** sum(step > b for b in self.boundaries)
        span = max(1, self.steps - self.warmup_steps)
        done = min(1.0, (step - self.warmup_steps) / span)
        return 0.5 * self.learning_rate * (1 + math.cos(math.pi * done))

    def with_batch_size(self, batch_size: int) -> "Recipe":
        """The recipe at another batch size: the learning rate scaled linearly (as BiT does)."""
        return dataclasses.replace(self, batch_size=int(batch_size),
                                   learning_rate=self.learning_rate * batch_size / self.batch_size)

    def with_steps(self, steps: int) -> "Recipe":
        """The same schedule shape stretched or shrunk to ``steps`` optimizer steps."""
        f = steps / self.steps
        return dataclasses.replace(self, steps=int(steps), warmup_steps=int(round(self.warmup_steps * f)),
                                   boundaries=tuple(int(round(b * f)) for b in self.boundaries))

    def optimizer(self):
        kwargs = {"global_clipnorm": self.clip_global_norm} if self.clip_global_norm else {}
        return keras.optimizers.SGD(learning_rate=self.rate(0), momentum=self.momentum, **kwargs)

    def compile(self, model, *, label_smoothing: float = 0.0, one_hot: bool = False):
        """Compile ``model`` (softmax outputs) for this recipe; ``one_hot`` labels for MixUp."""
        if one_hot:
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
            metric = keras.metrics.CategoricalAccuracy(name="accuracy")
        else:
            from keras_cv_apps.losses.classification import SparseCategoricalCrossentropyWithSmoothing

            loss = SparseCategoricalCrossentropyWithSmoothing(label_smoothing=label_smoothing)
            metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        model.compile(optimizer=self.optimizer(), loss=loss, metrics=[metric])
        return model

    def callback(self):
        """A Keras callback setting the optimizer's learning rate to `rate` before every step."""
        return StepRate(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class StepRate(keras.callbacks.Callback):
    """Sets the optimizer's learning rate to ``recipe.rate(step)`` before every training step."""

    def __init__(self, recipe: Recipe):
        super().__init__()
        self.recipe = recipe

    def on_train_batch_begin(self, batch, logs=None):
        optimizer = self.model.optimizer
        optimizer.learning_rate.assign(self.recipe.rate(int(optimizer.iterations.numpy())))


BIT_SOURCE = ("Kolesnikov et al., 2020, 'Big Transfer (BiT)', section 3.3 (BiT-HyperRule); "
              "google-research/big_transfer bit_hyperrule.py")
VIT_SOURCE = ("Dosovitskiy et al., 2021, 'An Image is Worth 16x16 Words', appendix B.1.1 (fine-tuning); "
              "google-research/vision_transformer vit_jax/configs/common.py")


def bit_hyperrule(num_images: int, image_shape: Sequence[int], *, batch_size: int = 512) -> Recipe:
    """BiT-HyperRule: SGD momentum 0.9 at 0.003 for batch 512 (scaled linearly with the batch), linear
    warm-up, x10 decays; 500 steps below 20k images, 10k below 500k, else 20k; MixUp (alpha 0.1) from
    20k images; images under 96x96 pixels train at 128 (resized to 160, random crops), larger at 480
    (resized to 512)."""
    if int(num_images) < 1:
        raise ValueError(f"num_images must be positive, got {num_images}.")
    if num_images < 20_000:
        supports = (100, 200, 300, 400, 500)
    elif num_images < 500_000:
        supports = (500, 3000, 6000, 9000, 10_000)
    else:
        supports = (500, 6000, 12_000, 18_000, 20_000)
    small = image_shape[0] * image_shape[1] < 96 * 96
    recipe = Recipe(name="bit-hyperrule", source=BIT_SOURCE, learning_rate=0.003, batch_size=512,
                    steps=supports[-1], warmup_steps=supports[0], decay="staircase", boundaries=supports[1:-1],
                    mixup=0.0 if num_images < 20_000 else 0.1, image_size=128 if small else 480,
                    resize_to=160 if small else 512)
    return recipe.with_batch_size(batch_size)


def vit_finetune(num_images: int, *, batch_size: int = 512, learning_rate: float = 0.03) -> Recipe:
    """The ViT fine-tuning recipe: SGD momentum 0.9, batch 512, cosine decay after a linear warm-up of
    500 steps (or a tenth of a short schedule), gradient clipping at global norm 1, no weight decay,
    learning rate from {0.001, 0.003, 0.01, 0.03} (0.03 by default), 500 steps for small datasets,
    10k for CIFAR-sized ones, 20k for ImageNet; trained at 384 pixels for ImageNet-scale checkpoints."""
    if int(num_images) < 1:
        raise ValueError(f"num_images must be positive, got {num_images}.")
    steps = 500 if num_images < 20_000 else 10_000 if num_images < 500_000 else 20_000
    recipe = Recipe(name="vit", source=VIT_SOURCE, learning_rate=float(learning_rate), batch_size=512, steps=steps,
                    warmup_steps=min(500, steps // 10), decay="cosine", clip_global_norm=1.0, image_size=384)
    return recipe.with_batch_size(batch_size)


def check_shots(labels, shots: int, class_names=None) -> None:
    """Refuse a few-shot draw that the labelled images cannot give: every class (of ``class_names``, or
    every label present) needs ``shots`` images."""
    labels = np.asarray(labels).reshape(-1)
    classes = range(len(class_names)) if class_names else np.unique(labels)
    counts = np.array([np.sum(labels == c) for c in classes])
    short = [(class_names[c] if class_names else c, int(n)) for c, n in zip(classes, counts) if n < shots]
    if short:
        total = int(counts.sum())
        raise ValueError(f"{shots} labelled images per class are needed ({len(counts)} classes x {shots} = "
                         f"{len(counts) * shots}), but class(es) {', '.join(f'{c} ({n})' for c, n in short)} have "
                         f"fewer ({total} labelled images in all); lower --shots or add images.")


def few_shot_indices(labels, shots: int, *, seed: int) -> np.ndarray:
    """A seeded draw of ``shots`` indices per class of ``labels`` (sorted)."""
    labels = np.asarray(labels).reshape(-1)
    check_shots(labels, shots)
    return balanced_indices(labels, shots * len(np.unique(labels)), seed=seed)


def balanced_indices(labels, limit: int, *, seed: int) -> np.ndarray:
    """A seeded draw of at most ``limit`` indices of ``labels`` (sorted), the classes as even as
    they allow: each gives an equal share, or all it has when that is fewer (at least one each)."""
    labels = np.asarray(labels).reshape(-1)
    classes = np.unique(labels)
    share = max(1, int(limit) // max(1, len(classes)))
    rng = np.random.default_rng(seed)
    members = (np.flatnonzero(labels == c) for c in classes)
    return np.sort(np.concatenate([rng.choice(m, min(share, len(m)), replace=False) for m in members]))


# ----------------------------------------------------------------- few-shot workflow pieces


def offline_source(*, image_size, channels: int, seed: int = 0, shapes_per_class: int = 300,
                   digits: Sequence[int] = (0, 1, 2, 3, 4), turns: Sequence[int] = (0, 1, 2, 3),
                   glyph_classes: int = GLYPH_CLASSES, glyphs_per_class: int = 50):
    """An offline pretraining source: the 8 procedural ``shapes`` classes, the handwritten
    ``digits`` given (0-4 by default, so digits 5-9 stay unseen for the target), each digit also
    turned by 90, 180 and 270 degrees as classes of their own (``turns``, quarter turns; ``(0,)``
    for none), and ``glyph_classes`` classes of random stroke characters drawn as the digits are
    stored (the ``glyphs`` spec; ``glyphs_per_class`` each; 0 for none). Telling many
    digit-like classes apart is what makes the features carry over to unseen digits (README,
    "Few-shot transfer"). Returns uint8 images, int32 labels and class names (``shape:circle``,
    ..., ``digit:0``, ``digit:0@90``, ..., ``glyph:0``, ...)."""
    from keras_cv_apps.data.sources import SHAPE_CLASSES, load_source

    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    shapes = load_source(f"shapes:{len(SHAPE_CLASSES)}:{shapes_per_class}", image_size=size, channels=channels,
                         seed=seed + 12345)
    written = load_source("digits", image_size=size, channels=channels)
    images, labels, names = [shapes.images], [shapes.labels], [f"shape:{n}" for n in SHAPE_CLASSES]
    for turn in turns:
        for d in digits:
            chosen = written.images[written.labels == d]
            if turn % 4:
                if size[0] != size[1]:
                    raise ValueError(f"Turned digit classes need square images; got {size[0]}x{size[1]} "
                                     "(pass turns=(0,)).")
                chosen = np.rot90(chosen, turn, axes=(1, 2))
            images.append(np.ascontiguousarray(chosen))
            labels.append(np.full(len(chosen), len(names)))
            names.append(f"digit:{d}" + (f"@{90 * (turn % 4)}" if turn % 4 else ""))
    if glyph_classes:
        glyphs = load_source("glyphs", image_size=size, channels=channels, seed=seed + 54321,
                             num_classes=glyph_classes, per_class=glyphs_per_class)
        images.append(glyphs.images)
        labels.append(glyphs.labels + len(names))
        names += ["glyph:" + name.removeprefix("glyph") for name in glyphs.class_names]
    return np.concatenate(images), np.concatenate(labels).astype("int32"), names


def feed(images, labels, *, batch_size: int, preprocessing: dict, augmenter=None, seed: int = 0,
         mixup: float = 0.0, num_classes: Optional[int] = None):
    """An endless shuffled ``tf.data`` feed of ``(scaled images, labels)`` batches from uint8
    ``images`` (a few-shot support set or a whole split), augmented in [0, 255] before scaling as
    `data.load` does; with ``mixup`` > 0 the labels are one-hot and pairs are mixed (MixUp).
    ``images`` may instead be a dataset of shuffled ``(uint8 images, int labels)`` batches with
    ``labels`` None, such as ``Splits.dataset("train", raw=True)``, which streams a folder too
    large to hold in memory (``batch_size`` is then its own); it is repeated.

    Each batch is augmented and mixed from its own key (``seed`` and the batch's place in the
    feed), as `data.load` keys its batches: the feed is the same in every run, whatever the
    parallel ``map`` does and whatever ``augmenter`` was used for before."""
    import tensorflow as tf

    from keras_cv_apps.data.augment import Augmenter, batch_keys
    from keras_cv_apps.data.pipelines import scale_images

    if labels is None:
        ds = images.repeat()
    else:
        ds = tf.data.Dataset.from_tensor_slices((images, np.asarray(labels, "int32")))
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat().batch(batch_size)
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed=seed))
    mixer = Augmenter([keras.layers.MixUp(alpha=mixup)]) if mixup else None

    def prepare(batch, key):
        x, y = batch
        keys = batch_keys(key)
        x = tf.cast(x, tf.float32)
        if augmenter is not None:
            x = augmenter(x, keys[0])
        x = scale_images(x, preprocessing["scale"], preprocessing.get("mean"), preprocessing.get("std"))
        if mixer is None:
            return x, y
        return mixer.mix(x, tf.one_hot(y, num_classes), keys[1])

    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def view_features(model, images, labels, *, preprocessing: dict, augmenter=None, views: int = 0,
                  layer: Optional[str] = None):
    """Frozen features of uint8 ``images`` and of ``views`` augmented copies of each (a linear
    probe on a handful of images sees more of them that way): ``(features, labels)``."""
    from keras_cv_apps.data.pipelines import scale_images

    def scaled(x):
        return np.asarray(scale_images(x, preprocessing["scale"], preprocessing.get("mean"),
                                       preprocessing.get("std")), "float32")

    batches = [np.asarray(images, "float32")]
    for _ in range(views if augmenter is not None else 0):
        batches.append(np.asarray(augmenter(np.asarray(images, "float32"))))
    features = extract_features(model, scaled(np.concatenate(batches)), layer=layer)  # one predict call
    return features, np.tile(np.asarray(labels), len(batches))


def fine_tune(model, train_feed, *, steps: int, run_dir, learning_rate: float = 3e-4, recipe: Optional[Recipe] = None,
              from_block: Optional[str] = None, label_smoothing: float = 0.1, epochs: int = 10, verbose=0):
    """Fine-tune ``model`` (all of it, or from ``from_block`` on) for ``steps`` optimizer steps (rounded
    down to whole ``epochs``) on an endless ``train_feed`` with `training.fit` into ``run_dir``
    (checkpoint, history, curves).

    Without a ``recipe``: Adam with a 5% linear warm-up and cosine decay to zero at
    ``learning_rate``, label smoothing ``label_smoothing``. With one: its SGD, schedule (stretched
    to ``steps``) and clipping. The fit monitors the training loss: a few-shot task has no labels to
    spare for model selection. Returns the `training.FitResult`.
    """
    from keras_cv_apps import training

    epochs = max(1, min(int(epochs), int(steps)))
    per_epoch = max(1, int(steps) // epochs)
    steps = per_epoch * epochs  # whole epochs: the schedule ends where training does
    unfreeze(model, from_block=from_block)
    extra = []
    if recipe is not None:
        recipe = recipe.with_steps(steps)
        recipe.compile(model, label_smoothing=label_smoothing, one_hot=recipe.mixup > 0)
        extra.append(recipe.callback())
    else:
        from keras_cv_apps.losses.classification import SparseCategoricalCrossentropyWithSmoothing

        rate = training.learning_rate_schedule("cosine", learning_rate, steps)
        model.compile(optimizer=training.build_optimizer("adam", rate),
                      loss=SparseCategoricalCrossentropyWithSmoothing(label_smoothing=label_smoothing),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return training.fit(model, train_feed, run_dir=run_dir, epochs=epochs, steps_per_epoch=per_epoch,
                        monitor="loss", patience=10 ** 6, schedule="constant", extra_callbacks=extra, verbose=verbose)


def pretrain_offline(backbone: str, *, image_shape, run_dir, steps: int = 9000, learning_rate: float = 1e-3,
                     batch_size: int = 64, label_smoothing: float = 0.0, augment="digits", seed: int = 0,
                     turns: Sequence[int] = (0, 1, 2, 3), glyph_classes: int = GLYPH_CLASSES, verbose=0):
    """Pretrain the registered ``backbone`` on `offline_source` (shapes, digits 0-4 and their quarter
    turns, stroke glyphs) from scratch: Adam with warm-up and cosine decay for ``steps`` steps, the
    ``augment`` preset, no label smoothing by default (the settings whose transfer the README
    reports); ``turns`` and ``glyph_classes`` go to `offline_source`.
    Returns ``(model, FitResult, class names)``; `training.fit` leaves its files in ``run_dir``."""
    from keras_cv_apps import data, models, training

    cfg = models.get_cfg(backbone)
    images, labels, names = offline_source(image_size=image_shape[:2], channels=image_shape[2], seed=seed,
                                           turns=turns, glyph_classes=glyph_classes)
    splits = data.load((images, labels), image_size=None, channels=image_shape[2], scale=cfg.scale, seed=seed,
                       batch_size=batch_size, augment=augment, class_names=names)
    model = models.create(backbone, num_classes=len(names), image_shape=tuple(image_shape))
    epochs = max(1, min(10, int(steps)))
    result = training.fit(model, splits, run_dir=run_dir, epochs=epochs, steps_per_epoch=max(1, steps // epochs),
                          optimizer="adam", schedule="cosine", learning_rate=learning_rate,
                          label_smoothing=label_smoothing, patience=10 ** 6, verbose=verbose)
    return model, result, names
