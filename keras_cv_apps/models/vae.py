"""Convolutional variational autoencoder (Kingma & Welling, 2014).

The encoder maps an image to a Gaussian ``q(z|x) = N(mean, exp(log_var))``, returned as one
tensor ``[mean, log_var]`` of width ``2 * latent_dim`` (one output keeps TFLite export and its
verification simple; `VAE.split_moments` cuts it in two); a `Sampling` layer
draws ``z`` with the reparameterisation trick; the decoder maps ``z`` to per-pixel Bernoulli
probabilities ``p(x|z)``. Training minimises, per image and in nats,

    reconstruction + beta * KL,   reconstruction = -log p(x|z) = sum_pixels BCE(x, x_hat),
                                  KL = KL(q(z|x) || N(0, I)) = 0.5 * sum(exp(lv) + mean^2 - 1 - lv)

so with ``beta=1`` the loss is the negative evidence lower bound (ELBO). ``train_step`` and
``test_step`` report ``loss``, ``reconstruction_loss`` and ``kl_loss`` separately. Called as a
model, the VAE reconstructs deterministically from the posterior mean.
"""

import math

import keras
import numpy as np
from keras import layers, ops

from keras_cv_apps._validate import check_image_shape, check_number
from keras_cv_apps.layers.sampling import Sampling
from keras_cv_apps.models._base import ConfigModel
from keras_cv_apps.models._registry import register_model
from keras_cv_apps.models.autoencoder_layers import check_latent_dim, conv_decoder, conv_encoder, feature_shape


def kl_divergence(mean, log_var):
    """Closed-form ``KL(N(mean, exp(log_var)) || N(0, I))`` per row, summed over the code."""
    return 0.5 * ops.sum(ops.exp(log_var) + ops.square(mean) - 1.0 - log_var, axis=-1)


@keras.saving.register_keras_serializable(package="keras_cv_apps")
class VAE(ConfigModel):
    """Variational autoencoder with ``.encoder`` (image -> [mean | log_var]), ``.decoder``
    (code -> image probabilities) and a `Sampling` layer in between.

    Args:
        image_shape: input shape, HWC, pixels in [0, 1] (any size: the trunk pads and crops).
        latent_dim: size of the code ``z``.
        filters: channels of the stride-2 convolution stages.
        convs_per_stage: 3x3 convolutions per stage, the first one strided.
        hidden_units: width of the dense layer between the feature map and the code (0: none).
        beta: weight of the KL term (``beta > 1`` gives a beta-VAE).
        seed: seed of the sampling layer's random stream.
    """

    def __init__(self, *, image_shape=(28, 28, 1), latent_dim=16, filters=(32, 64),
                 convs_per_stage=1, hidden_units=256, beta=1.0, seed=None, **kwargs):
        image_shape = check_image_shape(image_shape, "VAE image_shape")
        latent_dim = check_latent_dim(latent_dim, "VAE")
        filters = tuple(filters)
        check_number(beta, "VAE beta", minimum=0)

        image = keras.Input(image_shape, name="image")
        features = layers.Identity(name="features")(conv_encoder(image, filters, convs_per_stage))
        h = layers.Flatten(name="enc_flatten")(features)
        if hidden_units:
            h = layers.Dense(hidden_units, activation="relu", name="enc_dense")(h)
        mean = layers.Dense(latent_dim, name="z_mean")(h)
        log_var = layers.Dense(latent_dim, name="z_log_var")(h)
        moments = layers.Concatenate(name="z_moments")([mean, log_var])
        encoder = keras.Model(image, moments, name="encoder")

        z = keras.Input((latent_dim,), name="z")
        h = z
        if hidden_units:
            h = layers.Dense(hidden_units, activation="relu", name="dec_dense")(h)
        fshape = feature_shape(image_shape, filters)
        h = layers.Dense(math.prod(fshape), activation="relu", name="dec_features")(h)
        h = layers.Reshape(fshape, name="dec_reshape")(h)
        logits = conv_decoder(h, image_shape, filters, convs_per_stage)
        decoder = keras.Model(z, layers.Activation("sigmoid", name="reconstruction")(logits),
                              name="decoder")

        inputs = keras.Input(image_shape, name="image")
        super().__init__(inputs=inputs, outputs=decoder(encoder(inputs)[:, :latent_dim]), **kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.sampling = Sampling(seed=seed, name="sampling")
        self.remember(image_shape=image_shape, latent_dim=latent_dim, filters=filters,
                      convs_per_stage=convs_per_stage, hidden_units=hidden_units, beta=beta, seed=seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    def split_moments(self, moments):
        """``(mean, log_var)`` from the encoder's output."""
        return moments[..., :self.latent_dim], moments[..., self.latent_dim:]

    def loss_terms(self, x, training=False):
        """Per-image ``(reconstruction, kl)`` in nats for one posterior sample each."""
        x = ops.convert_to_tensor(x, "float32")
        mean, log_var = self.split_moments(self.encoder(x, training=training))
        x_hat = self.decoder(self.sampling([mean, log_var]), training=training)
        bce = ops.binary_crossentropy(x, x_hat)
        reconstruction = ops.sum(ops.reshape(bce, (ops.shape(x)[0], -1)), axis=-1)
        return reconstruction, kl_divergence(mean, log_var)

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def _step(self, data, training):
        x = data[0] if isinstance(data, (tuple, list)) else data
        reconstruction, kl = self.loss_terms(x, training=training)
        loss = ops.mean(reconstruction + self.beta * kl)
        return loss, reconstruction, kl

    def _report(self, loss, reconstruction, kl):
        self.loss_tracker.update_state(loss)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss, reconstruction, kl = self._step(data, training=True)
            scaled = self.optimizer.scale_loss(loss)  # loss scaling under mixed_float16, else unchanged
        grads = tape.gradient(scaled, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return self._report(loss, reconstruction, kl)

    def test_step(self, data):
        return self._report(*self._step(data, training=False))

    def sample(self, n, seed=None):
        """Decode ``n`` codes drawn from the prior ``N(0, I)``; numpy images."""
        z = keras.random.normal((n, self.latent_dim), seed=seed)
        return ops.convert_to_numpy(self.decoder(z))

    def traverse(self, dims, values):
        """Decode codes that are zero except ``z[d] = v``: images of shape
        ``(len(dims), len(values), H, W, C)``, one row per latent dimension ``d``."""
        z = np.zeros((len(dims), len(values), self.latent_dim), "float32")
        for row, d in enumerate(dims):
            z[row, :, d] = values
        images = ops.convert_to_numpy(self.decoder(z.reshape(-1, self.latent_dim)))
        return images.reshape(len(dims), len(values), *images.shape[1:])

    def encode(self, x, batch_size=256):
        """Posterior means of ``x`` as a numpy array (N, latent_dim)."""
        return self.encoder.predict(x, batch_size=batch_size, verbose=0)[:, :self.latent_dim]

    def reconstruct(self, x, batch_size=256):
        """Decode the posterior mean of each image; numpy images."""
        return self.predict(x, batch_size=batch_size, verbose=0)


def _vae(**kwargs):
    return VAE(**kwargs)


register_model("vae", task="vae", defaults=dict(image_shape=(28, 28, 1), latent_dim=16, filters=(32, 64)),
               test_image_shape=(16, 16, 1), scale="unit", feature_layer="features",
               description="Convolutional VAE, 16-d code, Bernoulli likelihood.")(_vae)
register_model("test_vae", task="vae", defaults=dict(image_shape=(16, 16, 1), latent_dim=2, filters=(4, 8),
                                                     hidden_units=8),
               scale="unit", feature_layer="features", description="Tiny VAE for tests.")(_vae)
