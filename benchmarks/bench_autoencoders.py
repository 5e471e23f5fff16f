"""Autoencoders vs the keras-io tutorials' models on the same `digits` split.

For each seed, `digits` at 28x28 (bilinear, [0, 1], stratified 70/10/20 split of that seed):

- denoising: test images corrupted once with ``x + 0.4 * N(0, 1)``, clipped (fixed noise seed);
  PSNR/SSIM of the noisy input and of each model's output. Ours: ``apps.autoencoder_train
  --variant denoising`` with its defaults. keras-io: two conv(32)+max-pool stages, two stride-2
  transposed convs, a sigmoid conv; trained on one fixed noisy copy of the train split (BCE,
  Adam, batch 128), as the tutorial does.
- VAE, Bernoulli likelihood: test ELBO in nats per image (10 posterior draws). Ours: ``apps.
  vae_train`` defaults. keras-io: conv(32, s2), conv(64, s2), dense 16, a 2-d code, a
  transposed-conv decoder, 30 epochs of batch 128.
- anomaly detection, class 9 held out of training: test ROC AUC of each score of our conv
  autoencoder and VAE (``--anomaly-class 9``), beside keras-io's conv autoencoder scored by
  reconstruction MSE, PCA reconstruction error (16 components), and k-nearest-neighbour
  distance (k=5) on raw pixels, Euclidean and cosine.

Our models run through the apps as a user would (wall time includes start-up and export).

    python -m benchmarks.bench_autoencoders [--seeds 0 1] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from benchmarks._util import PY, run_timed, table, write_result

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _app(module, args, out):
    """Run an app as a subprocess; return (wall seconds, metrics.json, loaded model)."""
    import keras

    from keras_cv_apps.models import autoencoders, vae  # noqa: F401  (register the classes)

    seconds, done = run_timed([PY, "-m", f"apps.{module}", *args, "--output", str(out), "--quiet",
                               "--quantize", "none"])
    if done.returncode != 0:
        raise SystemExit(f"apps.{module} {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return seconds, metrics, keras.models.load_model(out / "model.keras")


def keras_io_denoiser():
    """The keras-io image-denoising tutorial's convolutional autoencoder, rebuilt."""
    import keras
    from keras import layers

    x = inputs = keras.Input((28, 28, 1))
    for _ in range(2):
        x = layers.Conv2D(32, 3, activation="relu", padding="same")(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    for _ in range(2):
        x = layers.Conv2DTranspose(32, 3, strides=2, activation="relu", padding="same")(x)
    return keras.Model(inputs, layers.Conv2D(1, 3, activation="sigmoid", padding="same")(x))


def keras_io_vae():
    """The keras-io VAE tutorial's model (2-d code), trained by our VAE's train_step."""
    import keras
    from keras import layers

    from keras_cv_apps.layers.sampling import Sampling
    from keras_cv_apps.models.vae import VAE

    class KerasIoVAE(VAE):
        def __init__(self):
            keras.Model.__init__(self)
            image = keras.Input((28, 28, 1))
            h = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(image)
            h = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(h)
            h = layers.Dense(16, activation="relu")(layers.Flatten()(h))
            moments = layers.Concatenate()([layers.Dense(2)(h), layers.Dense(2)(h)])
            self.encoder = keras.Model(image, moments)
            z = keras.Input((2,))
            h = layers.Reshape((7, 7, 64))(layers.Dense(7 * 7 * 64, activation="relu")(z))
            h = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(h)
            h = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(h)
            out = layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid")(h)
            self.decoder = keras.Model(z, out)
            self.latent_dim, self.beta, self.sampling = 2, 1.0, Sampling()
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
            self.kl_tracker = keras.metrics.Mean(name="kl_loss")

        def call(self, x):
            return self.decoder(self.encoder(x)[:, :2])

    return KerasIoVAE()


def _fit(model, x, y, epochs, loss="binary_crossentropy", batch_size=128):
    import keras

    model.compile(keras.optimizers.Adam(), loss=loss)
    model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
    return model


def bench_seed(seed, tmp, quick):
    import keras
    from sklearn.decomposition import PCA

    from keras_cv_apps import data
    from keras_cv_apps.metrics import reconstruction as rm

    splits = data.load("digits", image_size=28, seed=seed, val_fraction=0.1, test_fraction=0.2)
    (x_train, y_train), (x_test, y_test) = splits.arrays("train"), splits.arrays("test")
    rng = np.random.default_rng(1000 + seed)
    noisy = lambda x: np.clip(x + 0.4 * rng.standard_normal(x.shape), 0, 1).astype("float32")  # noqa: E731
    x_test_noisy, x_train_noisy = noisy(x_test), noisy(x_train)
    fast = ["--epochs", "2"] if quick else []
    rows = []

    def psnr_row(name, output, seconds=None):
        m = rm.reconstruction_metrics(x_test, output)
        rows.append({"seed": seed, "task": "denoising", "model": name, "psnr_db": m["psnr"],
                     "ssim": m["ssim"], **({"wall_s": seconds} if seconds else {})})

    psnr_row("noisy input", x_test_noisy)
    keras.utils.set_random_seed(seed)
    ref = _fit(keras_io_denoiser(), x_train_noisy, x_train, 2 if quick else 100)
    psnr_row("keras-io denoiser", ref.predict(x_test_noisy, verbose=0))
    seconds, _, ours = _app("autoencoder_train", ["--variant", "denoising", "--seed", str(seed), *fast],
                            tmp / f"den{seed}")
    psnr_row("autoencoder_denoising (app)", ours.predict(x_test_noisy, verbose=0), round(seconds, 1))

    keras.utils.set_random_seed(seed)
    ref = keras_io_vae()
    ref.compile(keras.optimizers.Adam())
    ref.fit(x_train, epochs=2 if quick else 30, batch_size=128, verbose=0)
    rows.append({"seed": seed, "task": "vae", "model": "keras-io VAE (2-d code)",
                 "elbo_nats": float(rm.elbo_per_image(ref, x_test, num_samples=10).mean())})
    seconds, _, ours = _app("vae_train", ["--seed", str(seed), *fast], tmp / f"vae{seed}")
    rows.append({"seed": seed, "task": "vae", "model": "vae (app)", "wall_s": round(seconds, 1),
                 "elbo_nats": float(rm.elbo_per_image(ours, x_test, num_samples=10).mean())})

    normal, anomaly = y_train != 9, y_test == 9
    keras.utils.set_random_seed(seed)
    ref = _fit(keras_io_denoiser(), x_train[normal], x_train[normal], 2 if quick else 50)
    aucs = {"keras-io conv AE, reconstruction MSE":
            rm.mse_per_image(x_test, ref.predict(x_test, verbose=0))}
    pca = PCA(16, random_state=seed).fit(x_train[normal].reshape(normal.sum(), -1))
    flat = x_test.reshape(len(x_test), -1)
    aucs["PCA(16) reconstruction error"] = np.sum((flat - pca.inverse_transform(pca.transform(flat))) ** 2, 1)
    aucs["pixel kNN, Euclidean"] = rm.knn_distance(x_train[normal], x_test)
    unit = lambda a: a.reshape(len(a), -1) / np.linalg.norm(a.reshape(len(a), -1), axis=1, keepdims=True)  # noqa: E731
    aucs["pixel kNN, cosine"] = rm.knn_distance(unit(x_train[normal]), unit(x_test))
    for name, scores in aucs.items():
        rows.append({"seed": seed, "task": "anomaly 9", "model": name, "roc_auc": rm.roc_auc(scores, anomaly)})
    for module, args in (("autoencoder_train", ["--variant", "conv"]), ("vae_train", [])):
        seconds, metrics, _ = _app(module, [*args, "--anomaly-class", "9", "--seed", str(seed), *fast],
                                   tmp / f"{module}_anomaly{seed}")
        for score, auc in metrics["anomaly"]["roc_auc"].items():
            rows.append({"seed": seed, "task": "anomaly 9", "model": f"{metrics['model']} (app), {score}",
                         "roc_auc": auc, "wall_s": round(seconds, 1)})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--quick", action="store_true", help="2 epochs everywhere (a smoke run)")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            rows += bench_seed(seed, Path(tmp), args.quick)
    print(table(rows, ["seed", "task", "model", "psnr_db", "ssim", "elbo_nats", "roc_auc", "wall_s"]))
    print(f"results: {write_result('autoencoders' + ('_quick' if args.quick else ''), {'rows': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
