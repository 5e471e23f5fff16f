"""Train LeNet-5 on handwritten digits and export it for phones.

LeNet-5 (LeCun et al., 1998) reads a 32x32 grey image through two convolution + subsampling
stages (6 and 16 feature maps of 5x5 filters) and three fully connected layers (120, 84, classes).
It has about 62 thousand weights, so it trains in seconds on a laptop CPU and its int8 TFLite file
is under 100 KB.

The default run uses scikit-learn's 1,797 real 8x8 digits (no download), upsampled to 32x32 and
split 70/10/20 with stratification. What lifts the plain network on this small set is the recipe,
not the size of the network: random affine augmentation in the `tf.data` pipeline (rotations up
to ~14 degrees, 10% shifts and zooms), ReLU + max pooling, "same" padding in C1 (the digit's
strokes reach the border), batch normalisation, dropout 0.2 before the dense layers, label
smoothing 0.1, and Adam with a warm-up + cosine learning-rate schedule over 40 epochs. Early
stopping keeps the best validation weights.

After training the app evaluates on the test split (top-1/top-5, per-class precision/recall/F1,
confusion matrix), saves `model.keras`, exports `model.tflite` (float32) and `model_int8.tflite`
(full-integer, uint8 in/out: feed raw pixel bytes), both taking RGB images (a fixed RGB -> gray
convolution in front of the grey model, so phone cameras and MediaPipe's ImageClassifier can feed
them; `--tflite-input native` keeps one channel), verifies both against Keras with the LiteRT
interpreter, and writes labels.txt, config.json, metrics.json, history.json and PNG plots into a
new run folder (runs/lenet_train/<date-time>/ unless --output says otherwise).

Usage:
    python -m apps.lenet_train                       # digits, app defaults
    python -m apps.lenet_train --dataset keras:mnist --image-size 32 --epochs 20
    python -m apps.lenet_train --dataset dir:/data/letters --quantize float32,float16,int8
    python -m apps.lenet_train --augment strong       # robust to corruptions (see apps.augment_preview)
"""

from __future__ import annotations

from apps import _cli, _runs

APP = "lenet_train"
MODEL_KWARGS = {"activation": "relu", "pooling": "max", "padding": "same", "batch_norm": True, "dropout": 0.2}
FIT_KWARGS = {"optimizer": "adam", "schedule": "cosine", "label_smoothing": 0.1, "patience": 1000}


def _parser():
    p = _cli.parser(__doc__, APP)
    _cli.add_classifier(p, app=APP, model="lenet5", epochs=40, learning_rate=2e-3, augment="digits")
    return p


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _main(args) -> int:
    metrics, run = _runs.train_classifier(args, app=APP, model_kwargs=MODEL_KWARGS, fit_kwargs=FIT_KWARGS,
                                          augment=args.augment)
    if metrics is None:
        return _runs.worker_done(args)
    _runs.print_classifier_summary("LeNet-5", metrics, run)
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    raise SystemExit(main())
