"""Building blocks shared by the autoencoder family and the VAE.

- `SparsityPenalty`: an identity layer that adds a sparsity loss on the code it sees.
- `conv_encoder` / `conv_decoder`: a strided-convolution trunk and its transposed mirror that
  pad any image size up to a multiple of the total stride and crop back, so every decoder
  reproduces exactly the input's height and width.
"""

import keras
from keras import layers, ops

from keras_cv_apps._validate import check_choice, check_int

SPARSITY_KINDS = ("l1", "kl")


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class SparsityPenalty(keras.layers.Layer):
    """Pass the code through unchanged and add ``weight *`` a sparsity penalty to the model loss.

    - ``kind="l1"``: mean over the batch of ``sum_j |h_j|`` (an L1 activity penalty).
    - ``kind="kl"``: ``sum_j KL(target || rho_j)`` where ``rho_j`` is unit ``j``'s mean
      activation over the batch; the code must lie in (0, 1) (a sigmoid code). This pushes every
      unit to fire with average rate ``target`` (Ng, "Sparse autoencoder" notes).

    Unlike ``activity_regularizer`` the penalty is not divided by the batch size again.
    """

    def __init__(self, *, kind="kl", weight=1e-3, target=0.05, **kwargs):
        super().__init__(**kwargs)
        check_choice(kind, SPARSITY_KINDS, "SparsityPenalty kind")
        if not 0.0 < target < 1.0:
            raise ValueError(f"SparsityPenalty target must be in (0, 1), got {target}.")
        self.kind = kind
        self.weight = weight
        self.target = target

    def penalty(self, code):
        """The unweighted penalty for a batch of codes."""
        code = ops.reshape(code, (ops.shape(code)[0], -1))
        if self.kind == "l1":
            return ops.mean(ops.sum(ops.abs(code), axis=-1))
        rho = ops.clip(ops.mean(code, axis=0), 1e-6, 1.0 - 1e-6)
        t = self.target
        return ops.sum(t * ops.log(t / rho) + (1 - t) * ops.log((1 - t) / (1 - rho)))

    def call(self, inputs, training=False):
        if training and self.weight:
            self.add_loss(self.weight * self.penalty(inputs))
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "weight": self.weight,
                "target": self.target}




def check_latent_dim(latent_dim, owner):
    return check_int(latent_dim, f"{owner} latent_dim", minimum=1)


def _padding(image_shape, stride):
    """Rows and columns to add at the bottom/right to reach a multiple of ``stride``."""
    return tuple((-d) % stride for d in image_shape[:2])


def conv_encoder(inputs, filters, convs_per_stage=1, prefix="enc"):
    """Pad, then one stride-2 3x3 convolution (plus ``convs_per_stage - 1`` stride-1 ones) per
    entry of ``filters``. Returns the feature map (H / 2**len(filters), ...)."""
    pad_h, pad_w = _padding(inputs.shape[1:], 2 ** len(filters))
    x = inputs
    if pad_h or pad_w:
        x = layers.ZeroPadding2D(((0, pad_h), (0, pad_w)), name=f"{prefix}_pad")(x)
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu",
                          name=f"{prefix}_conv{i}")(x)
        for j in range(1, convs_per_stage):
            x = layers.Conv2D(f, 3, padding="same", activation="relu",
                              name=f"{prefix}_conv{i}_{j}")(x)
    return x


def conv_decoder(x, image_shape, filters, convs_per_stage=1, prefix="dec"):
    """Mirror of `conv_encoder` from its feature map ``x`` back to ``image_shape`` logits:
    stride-2 transposed convolutions in reverse filter order, a 3x3 convolution to the image's
    channels (no activation), then a crop of the encoder's padding."""
    for i, f in enumerate(reversed(filters)):
        for j in range(1, convs_per_stage):
            x = layers.Conv2D(f, 3, padding="same", activation="relu",
                              name=f"{prefix}_conv{i}_{j}")(x)
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu",
                                   name=f"{prefix}_deconv{i}")(x)
    x = layers.Conv2D(image_shape[-1], 3, padding="same", name=f"{prefix}_logits")(x)
    pad_h, pad_w = _padding(image_shape, 2 ** len(filters))
    if pad_h or pad_w:
        x = layers.Cropping2D(((0, pad_h), (0, pad_w)), name=f"{prefix}_crop")(x)
    return x


def feature_shape(image_shape, filters):
    """Shape of `conv_encoder`'s output for ``image_shape``."""
    stride = 2 ** len(filters)
    return (-(-image_shape[0] // stride), -(-image_shape[1] // stride), filters[-1])
