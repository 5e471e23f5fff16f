"""Distance layers for siamese networks, and the pairwise-distance helper the losses share.

`EuclideanDistance` turns two embedding batches into one distance per row, which is the output
of a two-input siamese model. L2 normalisation of embeddings uses Keras' own serializable
``keras.layers.UnitNormalization``; on unit vectors the Euclidean distance and the cosine
similarity are tied by ``d**2 = 2 - 2 * cos``, so one threshold serves both.
"""

import keras
from keras import ops

__all__ = ["EuclideanDistance", "pairwise_distances"]


def _safe_sqrt(squared, epsilon):
    """sqrt that is exactly 0 at 0 and has a finite gradient there (sqrt'(0) is infinite)."""
    zero = ops.less_equal(squared, epsilon)
    root = ops.sqrt(ops.where(zero, ops.ones_like(squared), squared))
    return ops.where(zero, ops.zeros_like(squared), root)


def pairwise_distances(a, b=None, *, squared=False, epsilon=1e-12):
    """All Euclidean distances between the rows of ``a`` (n, d) and ``b`` (m, d): an (n, m) tensor.

    Computed as ``|a|^2 - 2 a.b + |b|^2`` (one matrix product, no Python loops), clipped at 0
    against round-off. ``b=None`` means ``b = a``; then the diagonal is exactly 0.
    """
    same = b is None
    b = a if same else b
    dot = ops.matmul(a, ops.transpose(b))
    sq_a = ops.sum(ops.square(a), axis=1, keepdims=True)
    sq_b = ops.sum(ops.square(b), axis=1, keepdims=True)
    d2 = ops.maximum(sq_a - 2.0 * dot + ops.transpose(sq_b), 0.0)
    if same:
        d2 = d2 * (1.0 - ops.eye(ops.shape(a)[0], dtype=d2.dtype))
    return d2 if squared else _safe_sqrt(d2, epsilon)


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class EuclideanDistance(keras.layers.Layer):
    """Row-wise Euclidean distance between two embedding batches: ``[a, b] -> (batch, 1)``.

    Args:
        squared: return ``|a - b|^2`` instead of ``|a - b|``.
        epsilon: squared distances at or below it count as 0, which keeps the gradient of the
            square root finite for identical inputs.
    """

    def __init__(self, *, squared=False, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.squared = squared
        self.epsilon = epsilon

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError("EuclideanDistance expects a list of two tensors [a, b].")
        a, b = inputs
        d2 = ops.sum(ops.square(a - b), axis=-1, keepdims=True)
        return d2 if self.squared else _safe_sqrt(d2, self.epsilon)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1]) + (1,)

    def get_config(self):
        return {**super().get_config(), "squared": self.squared, "epsilon": self.epsilon}
