"""Train a variational autoencoder on digits: reconstruct, generate, and spot an unseen class.

A VAE's encoder does not output one code per image but a Gaussian over codes, ``N(mean,
exp(log_var))``. Training draws one code from it with the reparameterisation trick (``z = mean +
exp(log_var / 2) * eps``, so gradients flow through the draw), decodes it into per-pixel
Bernoulli probabilities, and minimises

    reconstruction (-log p(x|z), summed binary cross-entropy in nats) + beta * KL(q(z|x) || N(0, I)).

With ``beta = 1`` this is the negative evidence lower bound (ELBO) on ``log p(x)``; the KL term
packs the codes of all images around the origin, so decoding a code drawn from ``N(0, I)``
gives a new, plausible digit. The report gives the test ELBO in nats per image and its two
terms, ``samples.png`` (decoded draws from the prior), ``latent_traversal.png`` (one latent
dimension swept from -3 to 3 per row, the others held at 0), ``reconstructions.png`` and
``latent_scatter.png`` (posterior means coloured by class). With ``--anomaly-class K`` the VAE
trains without class K and the ROC AUC of detecting it is reported for each score, the VAE's own
``-ELBO`` among them. ``encoder.tflite`` (image -> [mean | log_var]) and ``decoder.tflite``
(code -> image) are exported to a new ``runs/vae_train/vae-<date-time>/`` folder and verified
against Keras.

Usage:
    python -m apps.vae_train
    python -m apps.vae_train --latent-dim 2 --beta 1.0 --anomaly-class 9
"""


from __future__ import annotations

from apps import _cli, _runs

APP = "vae_train"


def _parser():
    p = _cli.parser(__doc__, APP)
    _cli.add_reconstruction(p, app=APP, model_help="vae")
    p.add_argument("--beta", type=_cli.nonnegative_float, default=None,
                   help="weight of the KL term (default: the model's, 1.0)")
    return p


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _vae_report(seed):
    def report(model, x_eval, out):
        import numpy as np

        from keras_cv_apps.metrics import reconstruction as rm

        elbo = rm.elbo_per_image(model, x_eval, num_samples=10)
        reconstruction, kl = (x.numpy().mean() for x in model.loss_terms(x_eval))
        rm.plot_image_rows({f"draws {r + 1}": model.sample(12, seed=seed + r) for r in range(6)},
                           out / "samples.png", title="Decoded draws from the prior N(0, I)")
        # Sweep the dimensions that carry the most information (largest mean KL) first.
        mean, log_var = model.split_moments(model.encoder.predict(x_eval, verbose=0))
        kl_per_dim = 0.5 * np.mean(np.exp(log_var) + mean ** 2 - 1.0 - log_var, axis=0)
        dims = [int(d) for d in np.argsort(-kl_per_dim)[:8]]
        rows = model.traverse(dims, np.linspace(-3.0, 3.0, 11))
        rm.plot_image_rows({f"z[{d}] ({kl_per_dim[d]:.1f} nats)": row for d, row in zip(dims, rows)},
                           out / "latent_traversal.png", title="Latent traversal, -3 to 3")
        return {"elbo_nats": float(elbo.mean()), "reconstruction_nats": float(reconstruction),
                "kl_nats": float(kl), "beta": model.beta,
                "kl_nats_per_dimension": [round(float(v), 3) for v in kl_per_dim]}
    return report


def _main(args) -> int:
    metrics, run = _runs.train_reconstruction(args, app=APP, model_name=args.model or "vae", target="image",
                                              extra_report=_vae_report(args.seed), model_kwargs={"beta": args.beta})
    if metrics is None:
        return _runs.worker_done(args)
    _runs.print_reconstruction_summary(metrics, run)
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    raise SystemExit(main())
