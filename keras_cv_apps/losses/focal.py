"""Focal loss for sparse integer labels (Lin et al., 2017, "Focal Loss for Dense Object Detection").

Cross-entropy spends most of its gradient on examples the model already gets right. The focal
loss multiplies each example's cross-entropy by ``(1 - p_t) ** gamma``, where ``p_t`` is the
probability the model gives to the true class, so well-classified examples (``p_t`` near 1)
contribute little and training concentrates on the hard ones, which in an imbalanced dataset are
mostly the minority classes::

    FL(p_t) = -alpha_t * (1 - p_t) ** gamma * log(p_t)

``gamma=0`` and ``alpha=None`` give plain sparse categorical cross-entropy.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class FocalLoss(keras.losses.Loss):
    """Sparse categorical focal loss.

    Args:
        gamma: focusing exponent (>= 0); 0 turns the focal term off.
        alpha: class balancing factor ``alpha_t``: None (1 for every class), one float used for
            every class, or a list with one weight per class (e.g. inverse class frequencies).
        from_logits: True when ``y_pred`` holds logits, False when it holds probabilities.
        **kwargs: ``reduction``, ``name``, ``dtype`` as for any ``keras.losses.Loss``.

    ``y_true`` holds integer class ids of shape ``[B]`` or ``[B, 1]``; ``y_pred`` has shape
    ``[B, num_classes]``.
    """

    def __init__(self, gamma=2.0, alpha=None, from_logits=False, name="focal_loss", **kwargs):
        if gamma < 0:
            raise ValueError(f"FocalLoss gamma must be >= 0, got {gamma}.")
        super().__init__(name=name, **kwargs)
        self.gamma = float(gamma)
        self.alpha = list(alpha) if isinstance(alpha, (list, tuple)) else alpha
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        num_classes = ops.shape(y_pred)[-1]
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        one_hot = ops.one_hot(labels, num_classes, dtype=y_pred.dtype)
        if self.from_logits:
            log_probs = ops.log_softmax(y_pred, axis=-1)
        else:
            eps = keras.config.epsilon()
            log_probs = ops.log(ops.clip(y_pred, eps, 1.0 - eps))
        log_p_t = ops.sum(one_hot * log_probs, axis=-1)
        p_t = ops.exp(log_p_t)
        loss = -ops.power(1.0 - p_t, self.gamma) * log_p_t
        if self.alpha is not None:
            if isinstance(self.alpha, list):
                weights = ops.convert_to_tensor(self.alpha, dtype=y_pred.dtype)
                loss = loss * ops.sum(one_hot * weights, axis=-1)
            else:
                loss = loss * self.alpha
        return loss

    def get_config(self):
        config = super().get_config()
        config.update({"gamma": self.gamma, "alpha": self.alpha, "from_logits": self.from_logits})
        return config
