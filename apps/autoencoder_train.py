"""Train an autoencoder on digits: reconstruct, denoise, spot the class it never saw.

An autoencoder learns to copy an image through a small code: the encoder compresses, the
decoder rebuilds, and the loss (per-pixel binary cross-entropy) compares the two. What the code
keeps depends on the variant:

- ``dense``: fully connected layers, a 32-number code;
- ``conv``: strided convolutions down to the code and transposed convolutions back;
- ``denoising``: a fully convolutional model fed ``(noisy, clean)`` pairs, the noise (Gaussian
  ``--noise-stddev``, clipped, then salt-and-pepper ``--salt-pepper``) drawn anew every epoch
  in the ``tf.data`` pipeline, so it learns to remove noise rather than copy it;
- ``sparse``: a sigmoid code whose units are pushed to fire rarely (KL to a 5% rate);
- ``contractive``: the squared Frobenius norm of the encoder's Jacobian is added to the loss, so
  the code ignores small input changes.

With ``--anomaly-class K`` the model trains on every class but K and the report gives the ROC AUC
of telling K apart from the rest on the test split, for several scores: reconstruction error,
distance to the nearest training codes, Mahalanobis distance in code space, and cosine distance
between encoder feature maps. The run folder (``saved_models/autoencoder_train/<variant>/`` by
default) gets ``model.keras``, ``encoder.tflite`` and ``decoder.tflite`` (verified against Keras),
``reconstructions.png`` (input / noisy / output), ``latent_scatter.png`` (coloured by class),
``config.json``, ``metrics.json`` and the training history.

Usage:
    python -m apps.autoencoder_train --variant denoising
    python -m apps.autoencoder_train --variant conv --anomaly-class 9
"""

from __future__ import annotations

import sys
import time

from apps import _common

APP = "autoencoder_train"
VARIANTS = {"dense": 40, "conv": 40, "denoising": 40, "sparse": 40, "contractive": 40}


def _parser(app=APP, doc=__doc__, variants=tuple(VARIANTS)):
    parser = _common.common_parser(doc, app=app, epochs=None, batch_size=32, image_size=28,
                                   quantize="float32")
    parser.set_defaults(output=None)
    parser.add_argument("--variant", choices=variants, default=variants[0],
                        help="which model (default: %(default)s)")
    parser.add_argument("--latent-dim", type=_common._positive_int, default=None,
                        help="size of the code (default: the model's)")
    parser.add_argument("--anomaly-class", type=int, default=None,
                        help="train without this class index and report its detection ROC AUC")
    parser.add_argument("--noise-stddev", type=float, default=0.4, help="denoising: Gaussian noise")
    parser.add_argument("--salt-pepper", type=float, default=0.02,
                        help="denoising: fraction of pixels set to 0 or 1")
    return parser


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _datasets(splits, args, target):
    """(train, val) yielding what the model trains on: ``(x, x)``, ``(noisy, clean)`` or ``x``."""
    from keras_cv_apps.layers.noise import denoising_pairs

    def prepare(ds, training):
        if args.anomaly_class is not None:
            ds = ds.unbatch().filter(lambda x, y: y != args.anomaly_class).batch(args.batch_size)
            if training and args.steps_per_epoch:
                ds = ds.repeat()  # a filtered dataset has no known length for fit to repeat
        if target == "denoise":
            ds = denoising_pairs(ds, stddev=args.noise_stddev, salt_pepper=args.salt_pepper,
                                 seed=args.seed if training else args.seed + 7)
            return ds if training else ds.cache()
        return ds.map(lambda x, y: x if target == "image" else (x, x))

    return prepare(splits.train, True), prepare(splits.val, False)


def run(args, *, app, model_name, target, extra_report=None, model_kwargs=None):
    """The whole path shared with ``vae_train``; returns metrics.json's content."""
    from keras_cv_apps import data, export, models, training
    from keras_cv_apps.layers.noise import ClippedGaussianNoise, SaltAndPepperNoise
    from keras_cv_apps.metrics import reconstruction as rm
    from keras_cv_apps.models import autoencoders, vae  # noqa: F401  (register the variants)

    start = time.time()
    if not 0.0 <= args.salt_pepper <= 1.0 or args.noise_stddev < 0:
        raise ValueError(f"--salt-pepper must be between 0 and 1 and --noise-stddev >= 0, got "
                         f"{args.salt_pepper} and {args.noise_stddev}.")
    cfg = models.get_cfg(model_name)
    args.output = str(args.output or f"saved_models/{app}/{args.variant}")
    out = _common.prepare_output(args.output)
    training.set_seed(args.seed)
    splits = data.load(args.dataset, image_size=args.image_size, channels=cfg.image_shape[2],
                       scale=cfg.scale, seed=args.seed, batch_size=args.batch_size)
    k = args.anomaly_class
    if k is not None and not 0 <= k < splits.num_classes:
        raise ValueError(f"--anomaly-class {k} is not a class index; choose 0..{splits.num_classes - 1} "
                         f"({', '.join(map(str, splits.class_names))}).")
    kwargs = {"image_shape": splits.image_shape, "latent_dim": args.latent_dim, **(model_kwargs or {})}
    holder = {}

    def build():
        holder["model"] = models.create(model_name, **kwargs)
        return holder["model"]

    history = training.fit(build, _datasets(splits, args, target), run_dir=out, epochs=args.epochs,
                           learning_rate=args.learning_rate, steps_per_epoch=args.steps_per_epoch,
                           strategy=args.strategy, verbose=0 if args.quiet else "auto",
                           loss=None if target == "image" else "binary_crossentropy")
    model, train_seconds = holder["model"], time.time() - start

    x_train, y_train = splits.arrays("train")
    x_test, y_test = splits.arrays("test")
    normal = y_test != k
    x_eval, x_input = x_test[normal], x_test[normal]
    rows = {"input": x_eval}
    result = {"variant": args.variant, "model": model_name}
    if target == "denoise":
        noisy = ClippedGaussianNoise(stddev=args.noise_stddev, seed=args.seed)(x_eval, training=True)
        x_input = SaltAndPepperNoise(rate=args.salt_pepper, seed=args.seed)(noisy, training=True).numpy()
        rows["noisy"] = x_input
        result["noisy"] = rm.reconstruction_metrics(x_eval, x_input)
    x_hat = model.reconstruct(x_input)
    rows["output"] = x_hat
    result["test"] = rm.reconstruction_metrics(x_eval, x_hat)
    if target == "denoise":
        result["psnr_gain_db"] = result["test"]["psnr"] - result["noisy"]["psnr"]
    if extra_report:
        result.update(extra_report(model, x_eval, out))
    if k is not None:
        scores = rm.anomaly_scores(model, x_train[y_train != k], x_test)
        result["anomaly"] = {"class": splits.class_names[k], "n_anomalies": int((~normal).sum()),
                             "roc_auc": {n: rm.roc_auc(s, ~normal) for n, s in scores.items()}}
    rm.plot_image_rows(rows, out / "reconstructions.png", title=f"{model_name}: test images")
    codes = model.encode(x_test)
    rm.plot_latent_scatter(codes, y_test, splits.class_names, out / "latent_scatter.png",
                           title=f"{model_name}: test codes")

    _common.save_keras(model, out / "model.keras")
    representative = splits.representative(200)
    code_shape = (-1, *model.decoder.input_shape[1:])  # encode() flattens feature-map codes
    tflite = {
        "encoder": _common.export_and_verify(model.encoder, out, args.quantize, samples=x_test[:256],
                                             representative=representative, stem="encoder"),
        "decoder": _common.export_and_verify(model.decoder, out, args.quantize,
                                             samples=codes[:256].reshape(code_shape),
                                             representative=model.encode(representative).reshape(code_shape),
                                             stem="decoder"),
    }
    config = {"app": app, "command": f"python -m apps.{app} " + " ".join(sys.argv[1:]),
              "model": model_name, "model_config": model.get_config(),
              **{key: value for key, value in vars(args).items() if key != "quantize"},
              "quantize": args.quantize, "preprocessing": splits.preprocessing,
              "class_names": splits.class_names}
    export.write_json(config, out / "config.json")
    result.update(epochs_run=len(history.history.get("loss", [])), train_seconds=round(train_seconds, 1),
                  total_seconds=round(time.time() - start, 1), tflite=tflite, data=splits.info)
    export.write_json(result, out / "metrics.json")
    summary = {"test_psnr": result["test"]["psnr"], **{f"anomaly_auc_{n}": v for n, v in
                                                       result.get("anomaly", {}).get("roc_auc", {}).items()}}
    _common.update_manifest(out, app=app, command=config["command"], summary=summary)
    return result, out


def print_summary(result, out):
    test = result["test"]
    lines = [f"{result['model']}: test PSNR {test['psnr']:.2f} dB, SSIM {test['ssim']:.3f}, "
             f"MSE {test['mse']:.5f} ({result['epochs_run']} epochs, {result['train_seconds']:.0f}s)"]
    if "noisy" in result:
        lines.append(f"  denoising: noisy input {result['noisy']['psnr']:.2f} dB -> "
                     f"{test['psnr']:.2f} dB (gain {result['psnr_gain_db']:.2f} dB)")
    if "elbo_nats" in result:
        lines.append(f"  test ELBO {result['elbo_nats']:.1f} nats per image")
    for name, auc in result.get("anomaly", {}).get("roc_auc", {}).items():
        lines.append(f"  anomaly class {result['anomaly']['class']}: ROC AUC {auc:.4f} by {name}")
    for part, reports in result["tflite"].items():
        for rep in reports.values():
            lines.append(f"  {rep['file']:<22} {rep['size_bytes'] / 1024:7.1f} KiB  max|diff| "
                         f"{rep['max_abs_diff']:.2e}")
    lines.append(f"  saved to {out}/")
    print("\n".join(lines))


def _main(args) -> int:
    args.epochs = args.epochs or VARIANTS[args.variant]
    model_name = args.model or f"autoencoder_{args.variant}"
    result, out = run(args, app=APP, model_name=model_name,
                      target="denoise" if args.variant == "denoising" else "self")
    print_summary(result, out)
    return 0


def main(argv=None) -> int:
    return _common.run(_main, argv, _parser())


if __name__ == "__main__":
    raise SystemExit(main())
