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

import argparse
import sys
from pathlib import Path

import numpy as np

from apps.siamese_verify import DEFAULT_MODEL, Embedder


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m apps.siamese_identify", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gallery", help="folder of identities (sub-folders or one file per identity)")
    parser.add_argument("query", help="image to identify")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="exported embedding .tflite (default: %(default)s)")
    parser.add_argument("--threshold", type=float, default=None, help="override the saved distance threshold")
    parser.add_argument("--top", type=int, default=3, help="how many nearest identities to list (default: %(default)s)")
    return parser.parse_args(argv)


def gallery_files(root) -> list:
    """``(identity, path)`` for every image under ``root``: sub-folder name or file stem."""
    from keras_cv_apps.vision import io

    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"Gallery {str(root)!r} is not a folder of identity images.")
    items = []
    for path in io.list_images(root):
        rel = Path(path).relative_to(root)
        items.append((rel.parts[0] if len(rel.parts) > 1 else rel.stem, Path(path)))
    if not items:
        raise ValueError(f"Gallery {str(root)!r} holds no images; put one sub-folder or one file per identity.")
    return items


def identify(embedder, gallery, query_path):
    """Nearest distance per identity, sorted; unreadable gallery files go to stderr."""
    query = embedder.embed_file(query_path)
    best = {}
    for name, path in gallery:
        try:
            distance = float(np.linalg.norm(embedder.embed_file(path) - query))
        except ValueError as err:
            print(f"skipped: {err}", file=sys.stderr)
            continue
        best[name] = min(distance, best.get(name, np.inf))
    if not best:
        raise ValueError("No gallery image could be read.")
    return sorted(best.items(), key=lambda item: item[1])


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        embedder = Embedder(args.model)
        ranking = identify(embedder, gallery_files(args.gallery), args.query)
    except (ValueError, FileNotFoundError, NotADirectoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    threshold = embedder.threshold if args.threshold is None else args.threshold
    name, distance = ranking[0]
    if distance <= threshold:
        print(f"identity={name} distance={distance:.4f}")
    else:
        print(f"identity=unknown distance={distance:.4f} nearest={name}")
    for rank, (other, d) in enumerate(ranking[:args.top], start=1):
        print(f"  {rank}. {other} {d:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
