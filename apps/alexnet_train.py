"""Train AlexNet, scaled to the input size, and export it for phones.

AlexNet (Krizhevsky, Sutskever and Hinton, 2012) won ImageNet with five convolutions (an 11x11
stride-4 stem, then 5x5 and three 3x3 layers), overlapping max pooling, ReLU, local response
normalisation and two 4096-unit dense layers with dropout. On 227x227 photos it has 62M weights;
`models.create("alexnet", image_shape=...)` scales the stem, widths and dense layers down for small
inputs, so the same layout trains on 32x32 digits in a couple of minutes on a CPU.

`--norm lrn` uses the paper's local response normalisation after conv1 and conv2; the default
`batchnorm` is the modern replacement that trains faster and more reliably.

The run walks the library's path: data.load -> models.create -> training.fit (early stopping,
best checkpoint, LR schedule, history and curves) -> evaluation (top-1/top-5, per-class
precision/recall/F1, confusion matrix) -> model.keras + TFLite float32/int8, verified with LiteRT.

Usage:
    python -m apps.alexnet_train                           # digits, a new runs/alexnet_train/ folder
    python -m apps.alexnet_train --norm lrn --epochs 30
    python -m apps.alexnet_train --dataset keras:cifar10 --image-size 64
"""


from __future__ import annotations

from apps import _cli, _runs
from keras_cv_apps.choices import ALEXNET_NORMS

APP = "alexnet_train"
FIT_KWARGS = {"optimizer": "adamw", "schedule": "onecycle", "patience": 1000}


def _architecture(p):
    g = p.add_argument_group("AlexNet")
    g.add_argument("--norm", choices=ALEXNET_NORMS, default="batchnorm",
                   help="normalisation after the convolutions (default: %(default)s)")
    g.add_argument("--dropout", type=_cli.fraction, default=0.5,
                   help="dropout before the dense layers, in [0, 1) (default: %(default)s)")


def _parser():
    p = _cli.parser(__doc__, APP)
    _cli.add_classifier(p, app=APP, model="alexnet", epochs=25, learning_rate=2e-3, augment="light", image_size=32,
                        architecture=_architecture)
    return p


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _main(args) -> int:
    if args.dropout >= 1:
        raise ValueError(f"--dropout must be below 1, got {args.dropout}.")
    metrics, run = _runs.train_classifier(args, app=APP, model_kwargs={"norm": args.norm, "dropout": args.dropout},
                                          fit_kwargs=FIT_KWARGS, augment=args.augment)
    if metrics is None:
        return _runs.worker_done(args)
    _runs.print_classifier_summary("AlexNet", metrics, run)
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    raise SystemExit(main())
