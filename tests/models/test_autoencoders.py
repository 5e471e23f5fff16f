"""Autoencoder family: penalties against their formulas, each variant learns on real digits,
noise layers, padding/cropping, bad input, and the reconstruction/anomaly metrics."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from keras_cv_apps import models  # noqa: E402
from keras_cv_apps.layers.noise import ClippedGaussianNoise, SaltAndPepperNoise, denoising_pairs  # noqa: E402
from keras_cv_apps.metrics import reconstruction as rm  # noqa: E402
from keras_cv_apps.models import autoencoders as ae  # noqa: E402
from keras_cv_apps.models.autoencoder_layers import SparsityPenalty  # noqa: E402


def _held_out_mse(model, x):
    return float(np.mean(rm.mse_per_image(x, model.predict(x, verbose=0))))


# ---------------------------------------------------------------- penalties vs their formulas

def test_contractive_penalty_equals_closed_form_jacobian_norm():
    # One sigmoid layer h = s(Wx + b): dh_j/dx_i = h_j (1 - h_j) W_ij, so
    # ||J||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ij^2.
    keras.utils.set_random_seed(0)
    model = ae.ContractiveAutoencoder(image_shape=(4, 4, 1), hidden_units=(), latent_dim=3)
    x = np.random.default_rng(1).random((5, 4, 4, 1)).astype("float32")
    w, b = model.encoder.get_layer("code").get_weights()
    h = 1 / (1 + np.exp(-(x.reshape(5, -1) @ w + b)))
    expected = np.sum((h * (1 - h)) ** 2 * np.sum(w ** 2, axis=0), axis=1)
    np.testing.assert_allclose(model.jacobian_penalty(x, mode="exact").numpy(), expected,
                               rtol=1e-4)
    estimates = np.mean([model.jacobian_penalty(x, mode="estimate").numpy() for _ in range(400)],
                        axis=0)
    np.testing.assert_allclose(estimates, expected, rtol=0.15)


def test_contractive_loss_adds_weighted_penalty():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(2).random((8, 4, 4, 1)).astype("float32")
    model = ae.ContractiveAutoencoder(image_shape=(4, 4, 1), hidden_units=(6,), latent_dim=3,
                                      contractive_weight=0.5)
    model.compile(loss="mse")
    base = np.mean((model.predict(x, verbose=0) - x) ** 2)
    penalty = np.mean(model.jacobian_penalty(x).numpy())
    assert model.evaluate(x, x, batch_size=8, verbose=0) == pytest.approx(base + 0.5 * penalty,
                                                                         rel=1e-4)


def test_sparsity_penalty_formulas():
    code = np.array([[0.1, 0.5], [0.3, 0.5]], "float32")
    kl = SparsityPenalty(kind="kl", target=0.2).penalty(code).numpy()
    rho = np.array([0.2, 0.5])
    expected = np.sum(0.2 * np.log(0.2 / rho) + 0.8 * np.log(0.8 / (1 - rho)))
    assert kl == pytest.approx(expected, rel=1e-5)
    assert SparsityPenalty(kind="l1").penalty(-code).numpy() == pytest.approx(0.7, rel=1e-6)


def test_sparse_penalty_lowers_mean_activation(digits16):
    x, _, x_test, _ = digits16
    means = {}
    for sparsity in (None, "kl"):
        keras.utils.set_random_seed(0)
        model = ae.Autoencoder(image_shape=(16, 16, 1), hidden_units=(64,), latent_dim=32,
                               code_activation="sigmoid", sparsity=sparsity, sparsity_weight=0.5,
                               sparsity_target=0.05)
        model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy")
        model.fit(x, x, epochs=8, batch_size=64, verbose=0)
        means[sparsity] = float(np.mean(model.encode(x_test)))
    assert means["kl"] < 0.5 * means[None]
    assert means["kl"] < 0.15


# ------------------------------------------------------------------------- each variant learns

@pytest.mark.parametrize("name", ["autoencoder_dense", "autoencoder_conv", "autoencoder_sparse",
                                  "autoencoder_contractive"])
def test_variant_learns(digits16, name):
    x, _, x_test, _ = digits16
    keras.utils.set_random_seed(0)
    model = models.create(name, image_shape=(16, 16, 1))
    model.compile(keras.optimizers.Adam(2e-3), "binary_crossentropy")
    untrained = _held_out_mse(model, x_test)
    model.fit(x, x, epochs=6, batch_size=32, verbose=0)
    assert _held_out_mse(model, x_test) < 0.35 * untrained


def test_denoising_variant_removes_noise(digits16):
    x, _, x_test, _ = digits16
    keras.utils.set_random_seed(0)
    model = models.create("autoencoder_denoising", image_shape=(16, 16, 1), filters=(16, 32))
    model.compile(keras.optimizers.Adam(2e-3), "binary_crossentropy")
    pairs = denoising_pairs(tf.data.Dataset.from_tensor_slices(x).batch(32), stddev=0.4,
                            salt_pepper=0.05, seed=0)
    model.fit(pairs, epochs=6, verbose=0)
    noisy, clean = next(iter(denoising_pairs(tf.data.Dataset.from_tensor_slices(x_test)
                                             .batch(len(x_test)), stddev=0.4, seed=1)))
    before = np.mean(rm.psnr_per_image(clean, noisy))
    after = np.mean(rm.psnr_per_image(clean, model.predict(noisy, verbose=0)))
    assert after > before + 6.0


# ----------------------------------------------------------------------- shapes and bad input

@pytest.mark.parametrize("shape", [(15, 17, 1), (28, 28, 3), (9, 9, 2)])
def test_conv_autoencoder_reproduces_any_size(shape):
    model = ae.Autoencoder(image_shape=shape, architecture="conv", filters=(4, 8), latent_dim=3)
    x = np.zeros((2, *shape), "float32")
    assert model(x).shape == x.shape
    assert model.decoder(model.encoder(x)).shape == x.shape


@pytest.mark.parametrize("kwargs, words", [
    ({"latent_dim": 0}, "latent_dim"),
    ({"architecture": "resnet"}, "architecture"),
    ({"image_shape": (28, 28)}, "image_shape"),
    ({"sparsity": "kl", "code_activation": "relu"}, "sigmoid"),
])
def test_bad_arguments_raise_one_clear_error(kwargs, words):
    with pytest.raises(ValueError, match=words):
        ae.Autoencoder(**kwargs)


def test_unknown_variant_names_the_choices():
    from keras_cv_apps import models

    with pytest.raises(ValueError, match="autoencoder_dense"):
        models.create("autoencoder_dens")


def test_config_round_trip_keeps_the_architecture():
    model = models.create("autoencoder_contractive", image_shape=(8, 8, 1), latent_dim=5, jacobian="estimate")
    clone = ae.ContractiveAutoencoder.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.count_params() == model.count_params()


# ------------------------------------------------------------------------------ noise layers

def test_noise_layers_corrupt_only_in_training():
    x = np.full((4, 32, 32, 1), 0.5, "float32")
    gauss = ClippedGaussianNoise(stddev=0.1, seed=0)
    noisy = gauss(x, training=True).numpy()
    assert np.std(noisy - x) == pytest.approx(0.1, rel=0.1)
    np.testing.assert_array_equal(gauss(x).numpy(), x)
    assert ClippedGaussianNoise(stddev=5.0, seed=0)(x, training=True).numpy().max() <= 1.0
    sp = SaltAndPepperNoise(rate=0.2, seed=0)(x, training=True).numpy()
    assert np.mean(sp == 0.0) == pytest.approx(0.1, abs=0.02)
    assert np.mean(sp == 1.0) == pytest.approx(0.1, abs=0.02)
    with pytest.raises(ValueError, match="rate"):
        SaltAndPepperNoise(rate=1.5)


def test_denoising_pairs_draws_fresh_noise_each_epoch():
    ds = denoising_pairs(tf.data.Dataset.from_tensor_slices(np.full((2, 4, 4, 1), 0.5, "float32")),
                         stddev=0.3, seed=0)
    first, second = [np.stack([n.numpy() for n, _ in ds]) for _ in range(2)]
    clean = np.stack([c.numpy() for _, c in ds])
    np.testing.assert_array_equal(clean, 0.5)
    assert not np.allclose(first, second)


# ---------------------------------------------------------------------------------- metrics

def test_reconstruction_metrics_hand_values():
    x = np.zeros((2, 16, 16, 1), "float32")
    y = x + 0.1
    np.testing.assert_allclose(rm.mse_per_image(x, y), 0.01, rtol=1e-5)
    np.testing.assert_allclose(rm.psnr_per_image(x, y), 20.0, rtol=1e-5)
    image = np.random.default_rng(0).random((1, 16, 16, 1)).astype("float32")
    assert rm.ssim_per_image(image, image)[0] == pytest.approx(1.0, abs=1e-5)
    assert rm.ssim_per_image(image, 1 - image)[0] < 0
    with pytest.raises(ValueError, match="same shape"):
        rm.mse_per_image(x, y[:1])


def test_roc_auc_matches_counting_definition_and_sklearn():
    from sklearn.metrics import roc_auc_score

    # Anomalies 0.9, 0.5; normals 0.1, 0.5, 0.3: pairs won 1+1+1 and 1+0.5+1 of 6.
    assert rm.roc_auc([0.9, 0.5, 0.1, 0.5, 0.3], [1, 1, 0, 0, 0]) == pytest.approx(5.5 / 6)
    rng = np.random.default_rng(0)
    scores, labels = rng.integers(0, 5, 200), rng.random(200) < 0.3
    assert rm.roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    with pytest.raises(ValueError, match="both"):
        rm.roc_auc([0.1, 0.2], [0, 0])


def test_knn_and_mahalanobis_distances():
    rng = np.random.default_rng(0)
    ref, q = rng.normal(size=(50, 3)), rng.normal(size=(7, 3))
    brute = np.sort(np.linalg.norm(q[:, None] - ref[None], axis=-1), axis=1)[:, :4].mean(axis=1)
    np.testing.assert_allclose(rm.knn_distance(ref, q, k=4, chunk=3), brute, rtol=1e-6)
    ref = rng.normal(size=(20000, 2)) * [1.0, 3.0]
    d = rm.mahalanobis_distance(ref, np.array([[2.0, 0.0], [0.0, 6.0]]), ridge=0.0)
    np.testing.assert_allclose(d, [4.0, 4.0], rtol=0.05)
