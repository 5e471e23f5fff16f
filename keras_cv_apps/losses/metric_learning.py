"""Metric-learning losses: contrastive (pairs), triplet with online mining, supervised
contrastive (SupCon), and the ArcFace additive-angular-margin head and loss.

All are classes (never closures), so a compiled model saves and loads by name. Batch losses
(`TripletLoss`, `SupConLoss`) take integer class labels ``y_true`` of shape (B,) or (B, 1) and
embeddings ``y_pred`` of shape (B, D); they look at every pair in the batch at once with matrix
operations and return one scalar per batch.
"""

import math

import keras
from keras import ops

from keras_cv_apps._validate import check_choice
from keras_cv_apps.choices import TRIPLET_MININGS
from keras_cv_apps.layers.distance import pairwise_distances

__all__ = ["ArcFace", "ArcFaceLoss", "ContrastiveLoss", "SupConLoss", "TripletLoss"]

_MININGS = TRIPLET_MININGS


def _label_masks(y_true):
    """(same, different) boolean (B, B) masks; ``same`` excludes the diagonal."""
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    equal = ops.equal(labels[:, None], labels[None, :])
    eye = ops.cast(ops.eye(ops.shape(labels)[0]), "bool")
    return ops.logical_and(equal, ops.logical_not(eye)), ops.logical_not(equal)


def _masked_mean(values, mask):
    mask = ops.cast(mask, values.dtype)
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class ContrastiveLoss(keras.losses.Loss):
    """Contrastive loss of Hadsell, Chopra & LeCun (2006) on a predicted distance.

    Label convention: ``y_true = 1`` for a pair of the SAME class, ``0`` for DIFFERENT classes.
    ``y_pred`` is the distance ``d`` between the two embeddings. Per pair::

        loss = y * d**2 + (1 - y) * max(margin - d, 0)**2

    so same pairs are pulled together and different pairs pushed until at least ``margin`` apart.
    """

    def __init__(self, *, margin=1.0, name="contrastive_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = margin

    def call(self, y_true, y_pred):
        d = ops.reshape(ops.cast(y_pred, "float32"), (-1,))
        y = ops.reshape(ops.cast(y_true, "float32"), (-1,))
        return y * ops.square(d) + (1.0 - y) * ops.square(ops.relu(self.margin - d))

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class TripletLoss(keras.losses.Loss):
    """Triplet loss ``max(d(a, p) - d(a, n) + margin, 0)`` with online mining inside the batch.

    Every distance in the batch is computed at once; triplets are chosen by ``mining``:

    - ``batch_all``: every valid triplet (a, p, n); the loss is the mean over the triplets whose
      loss is positive (Hermans et al. 2017, "BA != 0"), so easy triplets do not dilute it.
    - ``batch_hard``: per anchor, its farthest positive and closest negative; mean over anchors
      that have both.
    - ``semi_hard``: per anchor-positive pair, the closest negative that is still farther than
      the positive (FaceNet); when none is, the farthest negative. Mean over all positive pairs.

    Args:
        margin: the required gap between negative and positive distances.
        mining: one of ``batch_all``, ``batch_hard``, ``semi_hard``.
        squared: use squared Euclidean distances.
    """

    def __init__(self, *, margin=0.2, mining="batch_hard", squared=False,
                 name="triplet_loss", **kwargs):
        check_choice(mining, _MININGS, "TripletLoss mining")
        super().__init__(name=name, **kwargs)
        self.margin = margin
        self.mining = mining
        self.squared = squared

    def call(self, y_true, y_pred):
        dist = pairwise_distances(ops.cast(y_pred, "float32"), squared=self.squared)
        pos, neg = _label_masks(y_true)
        if self.mining == "batch_all":
            # loss[a, p, n] = d(a, p) - d(a, n) + margin over the valid (a, p, n) cube.
            cube = dist[:, :, None] - dist[:, None, :] + self.margin
            valid = ops.logical_and(pos[:, :, None], neg[:, None, :])
            losses = ops.relu(cube)
            return _masked_mean(losses, ops.logical_and(valid, losses > 1e-16))
        big = ops.max(dist) + 1.0
        if self.mining == "batch_hard":
            hardest_pos = ops.max(ops.where(pos, dist, 0.0), axis=1)
            hardest_neg = ops.min(ops.where(neg, dist, big), axis=1)
            has_both = ops.logical_and(ops.any(pos, axis=1), ops.any(neg, axis=1))
            return _masked_mean(ops.relu(hardest_pos - hardest_neg + self.margin), has_both)
        # semi_hard: for pair (a, p) look at d(a, n) for every negative n.
        d_an = dist[:, None, :]
        d_ap = dist[:, :, None]
        outside = ops.logical_and(neg[:, None, :], d_an > d_ap)
        closest_outside = ops.min(ops.where(outside, d_an, big), axis=2)
        farthest_neg = ops.max(ops.where(neg, dist, 0.0), axis=1)[:, None]
        chosen = ops.where(ops.any(outside, axis=2), closest_outside, farthest_neg)
        pair_ok = ops.logical_and(pos, ops.any(neg, axis=1)[:, None])
        return _masked_mean(ops.relu(dist - chosen + self.margin), pair_ok)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "mining": self.mining,
                "squared": self.squared}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class SupConLoss(keras.losses.Loss):
    """Supervised contrastive loss (Khosla et al. 2020) on L2-normalised embeddings.

    For each anchor ``i`` with same-class positives ``P(i)`` in the batch::

        loss_i = -1/|P(i)| * sum_{p in P(i)} log( exp(z_i.z_p / t) / sum_{a != i} exp(z_i.z_a / t) )

    averaged over anchors that have a positive. Every other image in the batch is a negative,
    so the embedding spreads over the sphere instead of collapsing onto a few class directions,
    which helps it transfer to unseen classes. Embeddings are normalised inside.

    Args:
        temperature: softmax temperature ``t``; smaller values focus on hard negatives.
    """

    def __init__(self, *, temperature=0.1, name="supcon_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = temperature

    def call(self, y_true, y_pred):
        z = ops.normalize(ops.cast(y_pred, "float32"), axis=-1)
        pos, _ = _label_masks(y_true)
        n = ops.shape(z)[0]
        logits = ops.matmul(z, ops.transpose(z)) / self.temperature
        logits = logits - 1e9 * ops.eye(n)  # an anchor is not its own candidate
        log_prob = logits - ops.logsumexp(logits, axis=1, keepdims=True)
        pos_f = ops.cast(pos, "float32")
        count = ops.sum(pos_f, axis=1)
        per_anchor = -ops.sum(pos_f * log_prob, axis=1) / ops.maximum(count, 1.0)
        return _masked_mean(per_anchor, count > 0)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class ArcFace(keras.layers.Layer):
    """Cosine classifier head for ArcFace: ``cos(theta_j)`` between an embedding and class ``j``.

    Both the embedding and each class centre (the columns of a learned (D, num_classes) matrix)
    are L2-normalised, so the output lies in [-1, 1]. Train it with `ArcFaceLoss`, which adds
    the angular margin to the true class; at inference the head is dropped and the normalised
    embedding is compared by distance.
    """

    def __init__(self, *, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes

    def build(self, input_shape):
        self.centres = self.add_weight(
            name="centres", shape=(input_shape[-1], self.num_classes),
            initializer="glorot_uniform")

    def call(self, inputs):
        return ops.matmul(ops.normalize(inputs, axis=-1), ops.normalize(self.centres, axis=0))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class ArcFaceLoss(keras.losses.Loss):
    """Additive angular margin loss (Deng et al. 2019) on the cosines an `ArcFace` head outputs.

    The true-class cosine ``cos(theta)`` becomes ``cos(theta + margin)``, all cosines are
    multiplied by ``scale``, and softmax cross-entropy is taken against the integer ``y_true``.
    Where ``theta + margin`` would pass pi (the margin would then help the wrong class) the
    usual linear fallback ``cos(theta) - margin * sin(margin)`` is used.
    """

    def __init__(self, *, margin=0.5, scale=30.0, name="arcface_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = margin
        self.scale = scale

    def call(self, y_true, y_pred):
        cos = ops.clip(ops.cast(y_pred, "float32"), -1.0 + 1e-7, 1.0 - 1e-7)
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        one_hot = ops.one_hot(labels, ops.shape(cos)[-1])
        with_margin = ops.cos(ops.arccos(cos) + self.margin)
        fallback = cos - self.margin * math.sin(self.margin)
        with_margin = ops.where(cos > math.cos(math.pi - self.margin), with_margin, fallback)
        logits = self.scale * (one_hot * with_margin + (1.0 - one_hot) * cos)
        return keras.losses.categorical_crossentropy(one_hot, logits, from_logits=True)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "scale": self.scale}
