"""Classification losses that Keras core lacks."""

import keras


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class SparseCategoricalCrossentropyWithSmoothing(keras.losses.Loss):
    """Cross-entropy for integer labels with label smoothing.

    The integer label becomes a one-hot row smoothed to ``(1 - label_smoothing) * onehot +
    label_smoothing / num_classes`` (``num_classes`` is the last dimension of the prediction),
    and the categorical cross-entropy against the predicted probabilities (or logits when
    ``from_logits``) is returned.
    """

    def __init__(self, *, label_smoothing=0.1, from_logits=False, **kwargs):
        kwargs.setdefault("name", "sparse_categorical_crossentropy_with_smoothing")
        super().__init__(**kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1); got {label_smoothing}.")
        self.label_smoothing = label_smoothing
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        num_classes = y_pred.shape[-1]
        y_true = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(y_true, num_classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing,
                "from_logits": self.from_logits}
