"""VAE: Sampling statistics, KL equals the closed form, the reported losses add up, ELBO,
learning on real digits, sample/reconstruct, bad input."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from keras_cv_apps import models  # noqa: E402
from keras_cv_apps.layers.sampling import Sampling  # noqa: E402
from keras_cv_apps.metrics import reconstruction as rm  # noqa: E402
from keras_cv_apps.models.vae import VAE, kl_divergence  # noqa: E402


def test_sampling_draws_from_the_given_gaussian():
    mean = np.full((20000, 2), [1.0, -2.0], "float32")
    log_var = np.full((20000, 2), np.log([0.25, 4.0]), "float32")
    z = Sampling(seed=0)([mean, log_var]).numpy()
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(z.std(axis=0), [0.5, 2.0], rtol=0.03)


def test_kl_closed_form_matches_monte_carlo():
    # KL(q || p) = E_q[log q(z) - log p(z)], estimated from samples of q as an independent check.
    mean, log_var = np.array([[0.7, -0.3]]), np.array([[-1.0, 0.5]])
    rng = np.random.default_rng(0)
    std = np.exp(0.5 * log_var)
    z = mean + std * rng.standard_normal((200000, 2))
    log_q = np.sum(-0.5 * ((z - mean) / std) ** 2 - np.log(std), axis=1)
    log_p = np.sum(-0.5 * z ** 2, axis=1)
    closed = kl_divergence(mean.astype("float32"), log_var.astype("float32")).numpy()[0]
    assert closed == pytest.approx(np.mean(log_q - log_p), rel=0.01)


def test_model_kl_term_uses_the_encoder_posterior():
    keras.utils.set_random_seed(0)
    model = models.create("test_vae")
    x = np.random.default_rng(0).random((6, 16, 16, 1)).astype("float32")
    moments = model.encoder(x).numpy().astype("float64")
    mean, log_var = moments[:, :2], moments[:, 2:]
    expected = 0.5 * np.sum(np.exp(log_var) + mean ** 2 - 1 - log_var, axis=1)
    np.testing.assert_allclose(model.loss_terms(x)[1].numpy(), expected, rtol=1e-5)


def test_reported_losses_add_up_and_elbo_is_their_negative_sum():
    keras.utils.set_random_seed(0)
    model = models.create("test_vae", beta=2.0)
    model.compile(keras.optimizers.Adam())
    x = np.random.default_rng(0).random((16, 16, 16, 1)).astype("float32")
    logs = model.evaluate(x, batch_size=16, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "reconstruction_loss", "kl_loss"}
    assert logs["loss"] == pytest.approx(logs["reconstruction_loss"] + 2.0 * logs["kl_loss"],
                                         rel=1e-5)
    # Reconstruction is a per-image sum of 256 Bernoulli cross-entropies near log(2) each.
    assert 0.5 * 256 * np.log(2) < logs["reconstruction_loss"] < 2 * 256 * np.log(2)
    elbo = rm.elbo_per_image(model, x, num_samples=200)
    assert np.mean(elbo) == pytest.approx(-(logs["reconstruction_loss"] + logs["kl_loss"]),
                                          rel=0.01)


def test_vae_learns_digits(digits16):
    x, _, x_test, _ = digits16
    keras.utils.set_random_seed(0)
    model = models.create("vae", image_shape=(16, 16, 1), latent_dim=8, filters=(16, 32),
                           hidden_units=64)
    model.compile(keras.optimizers.Adam(2e-3))
    before = float(np.mean(rm.elbo_per_image(model, x_test)))
    history = model.fit(x, epochs=8, batch_size=32, verbose=0)
    after = float(np.mean(rm.elbo_per_image(model, x_test, num_samples=2)))
    assert history.history["kl_loss"][-1] > 1.0  # the code is used, not collapsed to the prior
    assert after > before + 50.0
    samples = model.sample(5, seed=1)
    assert samples.shape == (5, 16, 16, 1) and 0.0 <= samples.min() and samples.max() <= 1.0
    recon = model.reconstruct(x_test[:5])
    assert np.mean(rm.mse_per_image(x_test[:5], recon)) < 0.05


@pytest.mark.parametrize("kwargs, words", [
    ({"latent_dim": 0}, "latent_dim"), ({"beta": -1.0}, "beta"), ({"image_shape": (0, 28, 1)},
                                                                  "image_shape")])
def test_bad_arguments_raise(kwargs, words):
    with pytest.raises(ValueError, match=words):
        VAE(**kwargs)


def test_odd_image_size_round_trips():
    model = VAE(image_shape=(13, 11, 1), latent_dim=2, filters=(4, 8), hidden_units=0)
    assert model(np.zeros((1, 13, 11, 1), "float32")).shape == (1, 13, 11, 1)
    assert model.sample(2).shape == (2, 13, 11, 1)
