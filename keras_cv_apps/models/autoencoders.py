"""Autoencoders: dense, convolutional, denoising, sparse and contractive.

An autoencoder squeezes an image through a small code and rebuilds it: ``x -> encoder -> z ->
decoder -> x_hat``, trained so that ``x_hat`` matches ``x`` (binary cross-entropy or MSE on
[0, 1] pixels). Every model here is a functional ``keras.Model`` whose ``.encoder`` and
``.decoder`` are standalone models too, so each half exports to TFLite on its own.

- ``autoencoder_dense``: fully connected encoder/decoder.
- ``autoencoder_conv``: strided convolutions down to a dense code and transposed ones back.
- ``autoencoder_denoising``: the convolutional model meant to be fit on ``(noisy, clean)``
  pairs (`keras_cv_apps.layers.noise.denoising_pairs` corrupts the pipeline, not the model).
- ``autoencoder_sparse``: a sigmoid code with a KL (or L1) sparsity penalty (`SparsityPenalty`).
- ``autoencoder_contractive``: adds ``weight * ||d encoder(x) / dx||_F^2`` to the loss
  (Rifai et al., 2011), exact for small codes and a Hutchinson estimate for large ones.
"""

import math

import keras
from keras import layers, ops

from keras_cv_apps._validate import check_choice, check_image_shape, check_int
from keras_cv_apps.models._base import ConfigModel
from keras_cv_apps.models._registry import register_model
from keras_cv_apps.models.autoencoder_layers import (
    SparsityPenalty,
    check_latent_dim,
    conv_decoder,
    conv_encoder,
    feature_shape,
)

ARCHITECTURES = ("dense", "conv")
JACOBIAN_MODES = ("auto", "exact", "estimate")


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class Autoencoder(ConfigModel):
    """An encoder/decoder pair trained to reproduce its input.

    Args:
        image_shape: input shape, HWC; the output has the same shape (any height and width:
            the convolutional trunk pads and crops).
        latent_dim: size of the code ``z``. For ``architecture="conv"`` it may be ``None``:
            the code is then the last feature map (a fully convolutional autoencoder).
        architecture: ``"dense"`` or ``"conv"``.
        hidden_units: widths of the dense hidden layers (encoder order; the decoder mirrors them).
        filters: channels of the stride-2 convolution stages (conv only).
        convs_per_stage: 3x3 convolutions per stage, the first one strided (conv only).
        code_activation: activation of the code layer (``"linear"``, ``"relu"``, ``"sigmoid"``).
        sparsity: ``None``, ``"kl"`` or ``"l1"``: add a `SparsityPenalty` on the code.
        sparsity_weight, sparsity_target: the penalty's weight and (for ``"kl"``) target rate.
    """

    def __init__(self, *, image_shape=(28, 28, 1), latent_dim=32, architecture="dense",
                 hidden_units=(256,), filters=(32, 64), convs_per_stage=1,
                 code_activation="linear", sparsity=None, sparsity_weight=1e-3,
                 sparsity_target=0.05, **kwargs):
        name = type(self).__name__
        image_shape = check_image_shape(image_shape, f"{name} image_shape")
        check_choice(architecture, ARCHITECTURES, f"{name} architecture")
        if latent_dim is not None or architecture == "dense":
            latent_dim = check_latent_dim(latent_dim, name)
        hidden_units, filters = tuple(hidden_units), tuple(filters)
        if sparsity == "kl" and code_activation != "sigmoid":
            raise ValueError(f"{name}: sparsity='kl' needs code_activation='sigmoid' "
                             f"(codes in (0, 1)), got {code_activation!r}.")

        image = keras.Input(image_shape, name="image")
        if architecture == "dense":
            h = layers.Flatten(name="enc_flatten")(image)
            for i, units in enumerate(hidden_units):
                h = layers.Dense(units, activation="relu", name=f"enc_dense{i}")(h)
        else:
            h = layers.Identity(name="features")(conv_encoder(image, filters, convs_per_stage))
            if latent_dim is not None:
                h = layers.Flatten(name="enc_flatten")(h)
        if latent_dim is None:
            code = layers.Conv2D(filters[-1], 1, activation=code_activation, name="code")(h)
        else:
            code = layers.Dense(latent_dim, activation=code_activation, name="code")(h)
        if sparsity is not None:
            code = SparsityPenalty(kind=sparsity, weight=sparsity_weight, target=sparsity_target,
                                   name="sparsity")(code)
        encoder = keras.Model(image, code, name="encoder")

        z = keras.Input(code.shape[1:], name="code")
        if architecture == "dense":
            h = z
            for i, units in enumerate(reversed(hidden_units)):
                h = layers.Dense(units, activation="relu", name=f"dec_dense{i}")(h)
            h = layers.Dense(math.prod(image_shape), name="dec_logits")(h)
            logits = layers.Reshape(image_shape, name="dec_reshape")(h)
        else:
            h = z
            if latent_dim is not None:
                fshape = feature_shape(image_shape, filters)
                h = layers.Dense(math.prod(fshape), activation="relu", name="dec_dense")(h)
                h = layers.Reshape(fshape, name="dec_reshape")(h)
            logits = conv_decoder(h, image_shape, filters, convs_per_stage)
        reconstruction = layers.Activation("sigmoid", name="reconstruction")(logits)
        decoder = keras.Model(z, reconstruction, name="decoder")

        inputs = keras.Input(image_shape, name="image")
        super().__init__(inputs=inputs, outputs=decoder(encoder(inputs)), **kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.remember(image_shape=image_shape, latent_dim=latent_dim, architecture=architecture,
                      hidden_units=hidden_units, filters=filters, convs_per_stage=convs_per_stage,
                      code_activation=code_activation, sparsity=sparsity, sparsity_weight=sparsity_weight,
                      sparsity_target=sparsity_target)

    def encode(self, x, batch_size=256):
        """Codes of ``x`` as a numpy array, flattened to (N, code size)."""
        z = self.encoder.predict(x, batch_size=batch_size, verbose=0)
        return z.reshape(len(z), -1)

    def reconstruct(self, x, batch_size=256):
        """``decoder(encoder(x))`` as a numpy array."""
        return self.predict(x, batch_size=batch_size, verbose=0)


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class ContractiveAutoencoder(Autoencoder):
    """An autoencoder whose loss adds ``contractive_weight * mean_x ||J(x)||_F^2``, where
    ``J(x) = d encoder(x) / dx``: codes that barely move when the input moves.

    ``jacobian="exact"`` builds the full Jacobian (one backward pass per code unit, vectorised);
    ``"estimate"`` uses Hutchinson's identity ``E_v ||J^T v||^2 = ||J||_F^2`` for ``v ~ N(0, I)``
    with ``num_probes`` backward passes, unbiased and cheap for large codes; ``"auto"`` is exact
    up to 64 code units. The penalty needs gradients of gradients, so it uses TensorFlow's tape.
    """

    def __init__(self, *, contractive_weight=1e-2, jacobian="auto", num_probes=1,
                 code_activation="sigmoid", **kwargs):
        check_choice(jacobian, JACOBIAN_MODES, "ContractiveAutoencoder jacobian")
        check_int(num_probes, "ContractiveAutoencoder num_probes", minimum=1)
        super().__init__(code_activation=code_activation, **kwargs)
        self.remember(contractive_weight=contractive_weight, jacobian=jacobian, num_probes=int(num_probes))

    def jacobian_penalty(self, x, mode=None):
        """Per-image ``||d encoder(x) / dx||_F^2`` (exact or estimated, see the class doc)."""
        import tensorflow as tf

        x = tf.convert_to_tensor(x, tf.float32)
        mode = mode or self.jacobian
        code_size = math.prod(self.encoder.output.shape[1:])
        if mode == "auto":
            mode = "exact" if code_size <= 64 else "estimate"
        with tf.GradientTape(persistent=mode == "estimate") as tape:
            tape.watch(x)
            code = tf.reshape(self.encoder(x, training=True), (tf.shape(x)[0], -1))
        if mode == "exact":
            jac = tape.batch_jacobian(code, x)
            return tf.reduce_sum(tf.square(jac), axis=list(range(1, len(jac.shape))))
        total = 0.0
        for _ in range(self.num_probes):
            v = tf.random.normal(tf.shape(code))
            vjp = tape.gradient(code, x, output_gradients=v)
            total += tf.reduce_sum(tf.square(vjp), axis=list(range(1, len(vjp.shape))))
        del tape
        return total / self.num_probes

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                    training=training)
        if x is None or not self.contractive_weight:
            return loss
        return loss + self.contractive_weight * ops.mean(self.jacobian_penalty(x))


def _ae(name, description, defaults, *, test=False, **cfg):
    """Register an autoencoder variant: ``defaults`` are the builder arguments (28x28 digits, or
    16x16 for the tiny test variants); conv encoders expose their last feature map as ``features``."""
    shape = (16, 16, 1) if test else (28, 28, 1)
    conv = defaults.get("architecture") == "conv"
    cls = defaults.pop("cls", Autoencoder)
    register_model(name, task="autoencoder", defaults={"image_shape": shape, **defaults},
                   test_image_shape=(16, 16, 1), scale="unit", feature_layer="features" if conv else None,
                   description=description, **cfg)(lambda **kwargs: cls(**kwargs))


_ae("autoencoder_dense", "Fully connected autoencoder, 784-256-32-256-784.",
    dict(architecture="dense", hidden_units=(256,), latent_dim=32))
_ae("autoencoder_conv", "Convolutional autoencoder with a dense 32-unit code.",
    dict(architecture="conv", filters=(32, 64), latent_dim=32))
_ae("autoencoder_denoising", "Fully convolutional autoencoder for (noisy, clean) training pairs.",
    dict(architecture="conv", filters=(32, 64), convs_per_stage=2, latent_dim=None, code_activation="relu"))
_ae("autoencoder_sparse", "Dense autoencoder, 64-unit sigmoid code with a KL sparsity penalty.",
    dict(architecture="dense", hidden_units=(256,), latent_dim=64, code_activation="sigmoid", sparsity="kl",
         sparsity_weight=0.1, sparsity_target=0.05))
_ae("autoencoder_contractive", "Dense autoencoder with a contractive (Jacobian norm) penalty.",
    dict(cls=ContractiveAutoencoder, architecture="dense", hidden_units=(256,), latent_dim=32))

_ae("test_autoencoder_conv", "Tiny conv autoencoder.",
    dict(architecture="conv", filters=(4, 8), latent_dim=4), test=True)
_ae("test_autoencoder_denoising", "Tiny fully convolutional autoencoder.",
    dict(architecture="conv", filters=(4, 8), latent_dim=None, code_activation="relu"), test=True)
_ae("test_autoencoder_sparse", "Tiny sparse autoencoder.",
    dict(architecture="dense", hidden_units=(16,), latent_dim=8, code_activation="sigmoid", sparsity="kl"),
    test=True)
_ae("test_autoencoder_contractive", "Tiny contractive autoencoder.",
    dict(cls=ContractiveAutoencoder, architecture="dense", hidden_units=(16,), latent_dim=4), test=True)
