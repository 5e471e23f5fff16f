"""Siamese networks and embedding models for one-shot verification and identification.

A siamese network maps every image through ONE shared "tower" to an L2-normalised embedding;
two images match when their embeddings are close. Two training set-ups are registered:

- ``siamese_contrastive``: `SiameseNetwork`, two image inputs -> tower -> `EuclideanDistance`
  -> one distance per pair; trained on same/different pairs with `ContrastiveLoss`.
- ``siamese_triplet``: `EmbeddingNetwork`, one image -> tower -> small projection head; trained
  on P x K batches with `TripletLoss` or `SupConLoss`, which compare every pair in the batch.

Both expose ``.embedding``, the tower as a standalone ``keras.Model`` (one image in, one unit
vector out): that is what gets exported and compared by distance at inference.

The default tower is a small convnet whose embedding keeps the spatial layout: two conv stages,
then the feature map average-pooled to a ``grid x grid`` layout and flattened::

    image HxWxC -> [conv3x3 BN ReLU]x2 (width) -> maxpool -> [conv3x3 BN ReLU]x2 (2*width)
      -> maxpool -> avgpool to grid x grid -> flatten -> (Dense embedding_dim) -> unit norm

Why this shape: features trained to separate a few classes collapse onto those classes, and
the deeper and more pooled they are, the less they say about classes never seen in training.
Keeping "which stroke is where" (no global pooling) and putting the loss behind a projection
head that is thrown away after training (as in SimCLR) leaves an embedding that still tells
unseen classes apart. ``backbone="lenet5"`` (or any registered classifier) uses that model's
penultimate features instead.
"""

from __future__ import annotations

import keras
from keras import layers

from keras_cv_apps._validate import check_image_shape
from keras_cv_apps.layers.distance import EuclideanDistance
from keras_cv_apps.losses import metric_learning  # noqa: F401  registers the losses saved models use
from keras_cv_apps.models._base import ConfigModel
from keras_cv_apps.models._registry import create, feature_extractor, get_cfg, register_model

__all__ = ["EmbeddingNetwork", "SiameseNetwork", "build_tower"]


def _conv_stage(x, filters, block):
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{block}_conv{i}")(x)
        # momentum 0.9: short runs (a few hundred steps) still get settled moving statistics
        x = layers.BatchNormalization(momentum=0.9, name=f"{block}_bn{i}")(x)
        x = layers.ReLU(name=f"{block}_relu{i}")(x)
    return layers.MaxPooling2D(name=f"{block}_pool")(x)


def _backbone_features(backbone, image_shape):
    """The feature layer (named by its cfg) of a registered classifier."""
    cfg = get_cfg(backbone)
    if cfg.task != "classifier" or cfg.feature_layer is None:
        raise ValueError(f"Backbone {backbone!r} is a {cfg.task!r} model; use 'convnet' or a "
                         f"registered classifier such as 'lenet5'.")
    features = feature_extractor(create(backbone, image_shape=image_shape, num_classes=2))
    return features.input, features.output


def min_image_size(*, backbone: str = "convnet", grid: int = 4, **_) -> int:
    """Smallest input the tower takes: two 2x2 pools then a ``grid x grid`` layout need
    ``4 * grid`` pixels; a named backbone needs what its own cfg says."""
    return 4 * grid if backbone == "convnet" else get_cfg(backbone).min_size()


def build_tower(*, image_shape=(16, 16, 1), backbone="convnet", width=64, grid=4,
                embedding_dim=None, name="embedding") -> keras.Model:
    """The shared embedding tower: image -> L2-normalised embedding (a functional model).

    Args:
        image_shape: input (height, width, channels).
        backbone: ``convnet`` (the default described in the module docstring) or the name of
            a registered classifier whose penultimate features are used.
        width: channels of the convnet's first stage (the second has twice as many).
        grid: the convnet's feature map is average-pooled to ``grid x grid`` and flattened,
            giving ``grid * grid * 2 * width`` features.
        embedding_dim: size of a linear projection before normalisation; ``None`` keeps the
            convnet's features as they are (a named backbone then defaults to 128).
    """
    if backbone == "convnet":
        shape = check_image_shape(image_shape, f"{name} image_shape", min_size=min_image_size(grid=grid))
        inputs = keras.Input(shape=shape, name="image")
        x = _conv_stage(inputs, width, "stage1")                  # H/2 x W/2 x width
        x = _conv_stage(x, 2 * width, "stage2")                   # H/4 x W/4 x 2*width
        pool = (x.shape[1] // grid, x.shape[2] // grid)
        if pool != (1, 1):
            x = layers.AveragePooling2D(pool, name="grid_pool")(x)  # grid x grid x 2*width
        x = layers.Flatten(name="flatten")(x)
    else:
        inputs, x = _backbone_features(backbone, tuple(image_shape))
        embedding_dim = embedding_dim or 128
    if embedding_dim:
        x = layers.Dense(int(embedding_dim), name="projection")(x)
    outputs = layers.UnitNormalization(name="l2_normalize")(x)
    return keras.Model(inputs, outputs, name=name)


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class SiameseNetwork(ConfigModel):
    """Two images -> shared tower -> Euclidean distance ``(batch, 1)`` between their embeddings.

    Train with `ContrastiveLoss` on ``((a, b), same)`` pairs (`data.pairs.pair_dataset`).
    ``.embedding`` is the tower, for export and one-image-at-a-time inference.
    """

    def __init__(self, *, image_shape=(16, 16, 1), backbone="convnet", width=64, grid=4,
                 embedding_dim=None, name="siamese_contrastive", **kwargs):
        tower = build_tower(image_shape=image_shape, backbone=backbone, width=width,
                            grid=grid, embedding_dim=embedding_dim)
        a = keras.Input(shape=tower.input_shape[1:], name="image_a")
        b = keras.Input(shape=tower.input_shape[1:], name="image_b")
        distance = EuclideanDistance(name="distance")([tower(a), tower(b)])
        super().__init__(inputs=[a, b], outputs=distance, name=name, **kwargs)
        self.remember(image_shape=tuple(image_shape), backbone=backbone, width=width, grid=grid,
                      embedding_dim=embedding_dim)
        self.embedding = tower


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class EmbeddingNetwork(ConfigModel):
    """One image -> tower -> projection head ``Dense(head_units, relu) -> Dense(head_dim)``,
    L2-normalised. The head output feeds a batch loss (`SupConLoss`, `TripletLoss`) during
    training; ``.embedding`` (the tower, without the head) is what is exported and compared.
    ``head_units=0`` drops the head: the loss then acts on the embedding itself.
    """

    def __init__(self, *, image_shape=(16, 16, 1), backbone="convnet", width=64, grid=4,
                 embedding_dim=None, head_units=256, head_dim=128, name="siamese_triplet",
                 **kwargs):
        tower = build_tower(image_shape=image_shape, backbone=backbone, width=width,
                            grid=grid, embedding_dim=embedding_dim)
        inputs = keras.Input(shape=tower.input_shape[1:], name="image")
        x = tower(inputs)
        if head_units:
            x = layers.Dense(head_units, activation="relu", name="head_hidden")(x)
            x = layers.Dense(head_dim, name="head_out")(x)
            x = layers.UnitNormalization(name="head_normalize")(x)
        super().__init__(inputs=inputs, outputs=x, name=name, **kwargs)
        self.remember(image_shape=tuple(image_shape), backbone=backbone, width=width, grid=grid,
                      embedding_dim=embedding_dim, head_units=head_units, head_dim=head_dim)
        self.embedding = tower


_CFG = dict(test_image_shape=(16, 16, 1), min_image_size=min_image_size, feature_layer="l2_normalize")


@register_model("siamese_contrastive", task="siamese", defaults=dict(image_shape=(16, 16, 1)), **_CFG,
                description="Siamese pair network: shared convnet tower + Euclidean distance (contrastive loss).")
def siamese_contrastive(**kwargs):
    return SiameseNetwork(**kwargs)


@register_model("siamese_triplet", task="embedding", defaults=dict(image_shape=(16, 16, 1)), **_CFG,
                description="Embedding network + projection head for triplet / supervised contrastive training "
                            "on P x K batches.")
def siamese_triplet(**kwargs):
    return EmbeddingNetwork(**kwargs)


@register_model("test_siamese_contrastive", task="siamese", defaults=dict(image_shape=(16, 16, 1), width=2, grid=2),
                **_CFG, description="A tiny siamese pair network for fast tests.")
def test_siamese_contrastive(**kwargs):
    return SiameseNetwork(**kwargs)


@register_model("test_siamese_triplet", task="embedding",
                defaults=dict(image_shape=(16, 16, 1), width=2, grid=2, head_units=8, head_dim=4),
                **_CFG, description="A tiny embedding network for fast tests.")
def test_siamese_triplet(**kwargs):
    return EmbeddingNetwork(**kwargs)
