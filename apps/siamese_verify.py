"""Do two images show the same thing? One-shot verification with an exported siamese embedding.

The embedding model that ``apps.siamese_train`` exported maps an image to a unit vector; two
images are "same" when the Euclidean distance between their vectors is at most the threshold
saved beside the model (threshold.json, chosen on validation pairs). Runs on the LiteRT
interpreter alone, as a phone app would: no TensorFlow or Keras is imported.

Each image is read with OpenCV (Pillow as fallback; EXIF rotation applied), converted to the
model's channels (RGB or gray), resized to its input size and scaled as config.json says,
so images of any size or colour mode can be compared. An int8 model (``uint8`` input) gets the
same pixels quantized with its input scale and zero point.

Without ``--model`` the app uses the newest ``runs/siamese_train/*/embedding.tflite``, else the
committed reference in ``saved_models/siamese_train/``, and says which on stderr.

Usage:
    python -m apps.siamese_verify a.png b.png
    python -m apps.siamese_verify a.png b.png --model saved_models/siamese_train/embedding_int8.tflite
    python -m apps.siamese_verify a.png b.png --threshold 0.8

Prints one line: ``distance=<float> verdict=same|different`` (``--output FILE`` also writes it as JSON).
"""


from __future__ import annotations

import sys

import numpy as np

from apps import _cli

APP = "siamese_verify"


def _parser():
    p = _cli.parser(__doc__, APP)
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--model", default=None,
                   help="exported embedding .tflite (default: the newest siamese_train run, else the reference)")
    p.add_argument("--threshold", type=_cli.nonnegative_float, default=None,
                   help="override the saved distance threshold")
    p.add_argument("--output", default=None, help="also write the answer as JSON to this file (default: print only)")
    return p


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _main(args) -> int:
    from keras_cv_apps.artifacts import check_writable, write_json
    from keras_cv_apps.inference import ExportedModel

    if args.output:
        check_writable(args.output)
    model = ExportedModel(_cli.resolve_model(args.model, app="siamese_train", filename="embedding.tflite"))
    threshold = args.threshold
    if threshold is None:
        threshold = float(model.sidecar("threshold.json")["threshold"])
    a, b = (model(path) for path in (args.image_a, args.image_b))
    distance = float(np.linalg.norm(a - b))
    verdict = "same" if distance <= threshold else "different"
    print(f"distance={distance:.4f} verdict={verdict}")
    if args.output:
        write_json(args.output, {"distance": distance, "verdict": verdict, "threshold": threshold,
                                 "model": str(model.path), "images": [args.image_a, args.image_b]})
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    sys.exit(main())
