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
between encoder feature maps. A dataset of one class (a folder of normal images, ``dir:PATH``
with one sub-folder) trains a detector of everything else. The run folder
(``runs/autoencoder_train/<variant>-<date-time>/`` by default) gets ``model.keras``,
``encoder.tflite`` and ``decoder.tflite`` (verified against Keras),
``reconstructions.png`` (input / noisy / output), ``latent_scatter.png`` (coloured by class),
``config.json``, ``metrics.json`` and the training history.

Usage:
    python -m apps.autoencoder_train --variant denoising
    python -m apps.autoencoder_train --variant conv --anomaly-class 9
"""


from __future__ import annotations

from apps import _cli, _runs

APP = "autoencoder_train"
VARIANTS = ("dense", "conv", "denoising", "sparse", "contractive")


def _parser():
    p = _cli.parser(__doc__, APP)
    _cli.add_reconstruction(p, app=APP, variants=VARIANTS, model_help="autoencoder_<variant>")
    g = p.add_argument_group("denoising")
    g.add_argument("--noise-stddev", type=_cli.nonnegative_float, default=0.4,
                   help="Gaussian noise added to the inputs, [0, 1] pixel units (default: %(default)s)")
    g.add_argument("--salt-pepper", type=_cli.fraction, default=0.02,
                   help="fraction of pixels set to 0 or 1 (default: %(default)s)")
    return p


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _main(args) -> int:
    model_name = args.model or f"autoencoder_{args.variant}"
    metrics, run = _runs.train_reconstruction(args, app=APP, model_name=model_name,
                                              target="denoise" if args.variant == "denoising" else "self")
    if metrics is None:
        return _runs.worker_done(args)
    _runs.print_reconstruction_summary(metrics, run)
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    raise SystemExit(main())
