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
    python -m apps.alexnet_train                           # digits, saved_models/alexnet_train/
    python -m apps.alexnet_train --norm lrn --epochs 30
    python -m apps.alexnet_train --dataset keras:cifar10 --image-size 64
"""

from __future__ import annotations

from apps import _common

APP = "alexnet_train"
FIT_KWARGS = {"optimizer": "adamw", "schedule": "onecycle", "patience": 1000}
AUGMENT = "light"


def _parser():
    parser = _common.common_parser(__doc__, app=APP, model="alexnet", epochs=25, batch_size=64,
                                   image_size=32, learning_rate=2e-3)
    parser.add_argument("--norm", choices=("batchnorm", "lrn", "none"), default="batchnorm",
                        help="normalisation after the convolutions (default: %(default)s)")
    parser.add_argument("--dropout", type=float, default=0.5, help="dropout before the dense layers (default: %(default)s)")
    return parser


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _main(args) -> int:
    model_kwargs = {"norm": args.norm, "dropout": args.dropout}
    result = _common.train_classifier(args, app=APP, model_kwargs=model_kwargs, fit_kwargs=FIT_KWARGS,
                                      augment=AUGMENT)
    _common.print_summary("AlexNet", result, args.output)
    return 0


def main(argv=None) -> int:
    return _common.run(_main, argv, _parser())


if __name__ == "__main__":
    raise SystemExit(main())
