"""Who is this? One-shot identification against a small gallery with a siamese embedding.

The gallery holds one or a few images per identity, either as sub-folders
(``gallery/alice/1.jpg``, ``gallery/alice/2.jpg``, ``gallery/bob/x.png``) or as single files
whose stem names the identity (``gallery/alice.jpg``). Every gallery image and the query go
through the exported embedding model (LiteRT interpreter, no TensorFlow); the query gets the
identity of its nearest gallery image, or ``unknown`` when even that one is farther than the
threshold saved beside the model. Adding a person is adding a picture: nothing is retrained.

Gallery files that cannot be read are reported and skipped; an unreadable query is an error.

Usage:
    python -m apps.siamese_identify gallery/ query.jpg
    python -m apps.siamese_identify gallery/ query.jpg --model my_run/embedding_int8.tflite --top 3

Prints ``identity=<name> distance=<float>`` (or ``identity=unknown distance=<float> nearest=<name>``),
then the ``--top`` nearest identities.
"""


from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from apps import _cli

APP = "siamese_identify"


def _parser():
    p = _cli.parser(__doc__, APP)
    p.add_argument("gallery", help="folder of identities (sub-folders or one file per identity)")
    p.add_argument("query", help="image to identify")
    p.add_argument("--model", default=None,
                   help="exported embedding .tflite (default: the newest siamese_train run, else the reference)")
    p.add_argument("--threshold", type=_cli.nonnegative_float, default=None,
                   help="override the saved distance threshold")
    p.add_argument("--top", type=_cli.positive_int, default=3,
                   help="how many nearest identities to list (default: %(default)s)")
    p.add_argument("--output", default=None, help="also write the answer as JSON to this file (default: print only)")
    return p


def parse_args(argv=None):
    return _parser().parse_args(argv)


def gallery_files(root) -> list:
    """``(identity, path)`` for every image under ``root``: sub-folder name or file stem."""
    from keras_cv_apps.image import io

    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"Gallery {str(root)!r} is not a folder of identity images.")
    items = []
    for path in io.list_images(root):
        rel = Path(path).relative_to(root)
        items.append((rel.parts[0] if len(rel.parts) > 1 else rel.stem, Path(path)))
    return items


def identify(model, gallery, query_path):
    """Nearest distance per identity, sorted; unreadable gallery files go to stderr."""
    from keras_cv_apps.image.io import ImageReadError

    query = model(query_path)
    best = {}
    for name, path in gallery:
        try:
            distance = float(np.linalg.norm(model(path) - query))
        except ImageReadError as err:
            print(f"skipped: {err}", file=sys.stderr)
            continue
        best[name] = min(distance, best.get(name, np.inf))
    if not best:
        raise ValueError("No gallery image could be read.")
    return sorted(best.items(), key=lambda item: item[1])


def _main(args) -> int:
    from keras_cv_apps.artifacts import write_json
    from keras_cv_apps.inference import ExportedModel

    model = ExportedModel(_cli.resolve_model(args.model, app="siamese_train", filename="embedding.tflite"))
    threshold = args.threshold
    if threshold is None:
        threshold = float(model.sidecar("threshold.json")["threshold"])
    ranking = identify(model, gallery_files(args.gallery), args.query)
    name, distance = ranking[0]
    if args.output:
        write_json(args.output, {"identity": name if distance <= threshold else "unknown", "nearest": name,
                                 "distance": distance, "threshold": threshold, "model": str(model.path),
                                 "ranking": [{"identity": n, "distance": d} for n, d in ranking[:args.top]]})
    if distance <= threshold:
        print(f"identity={name} distance={distance:.4f}")
    else:
        print(f"identity=unknown distance={distance:.4f} nearest={name}")
    for rank, (other, d) in enumerate(ranking[:args.top], start=1):
        print(f"  {rank}. {other} {d:.4f}")
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    sys.exit(main())
