"""Who is this, or nobody I know? Open-set identification against a small gallery.

The gallery holds one or a few images per identity, either as sub-folders
(``gallery/alice/1.jpg``, ``gallery/alice/2.jpg``, ``gallery/bob/x.png``) or as single files
whose stem names the identity (``gallery/alice.jpg``). Every gallery image and the query go
through the exported embedding model (LiteRT interpreter, no TensorFlow). Adding a person is
adding a picture: nothing is retrained.

Most queries of an open-set system come from strangers, so the answer must be "unknown" unless
the query is clearly one identity. ``siamese_train`` saved operating points for false-accept
rates (threshold.json, FAR 1% and 0.1%, set where other classes played the strangers): the
embeddings are whitened (whitening.npz), the candidate is the identity of the nearest gallery
image, and it is accepted when its distance divided by the distance to the nearest *other*
identity is at most the point's threshold. ``--far`` picks a saved point (the strictest one at
or below the rate asked); ``--threshold`` instead accepts when the plain embedding distance to
the nearest image is at most that value (the rule of ``siamese_verify``). A model without saved
points (trained before they existed) falls back to its verification threshold.

Gallery files that cannot be read are reported and skipped; an identity none of whose images
can be read, an empty gallery or an unreadable query is an error.

Usage:
    python -m apps.siamese_identify gallery/ query.jpg
    python -m apps.siamese_identify gallery/ query.jpg --far 0.01 --top 5
    python -m apps.siamese_identify gallery/ query.jpg --model my_run/embedding_int8.tflite --threshold 0.7

Prints ``identity=<name> distance=<float> ratio=<float>`` (or ``identity=unknown ... nearest=<name>``),
the operating point used, then the ``--top`` candidates with their distances.
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
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--far", type=_cli.finite_float, default=None,
                      help="false-accept rate in (0, 1): use the strictest saved operating point at or below it "
                           "(default: threshold.json's default_far, the strictest saved point, FAR 1%% or 0.1%%, "
                           "whose calibration identification rate is at least 80%%)")
    rule.add_argument("--threshold", type=_cli.nonnegative_float, default=None,
                      help="accept when the plain distance to the nearest gallery image is at most this")
    p.add_argument("--top", type=_cli.positive_int, default=3,
                   help="how many candidate identities to list (default: %(default)s)")
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
    try:
        files = io.list_images(root)
    except ValueError:
        raise ValueError(f"Gallery {str(root)!r} has no images; put one sub-folder per identity "
                         "(gallery/alice/1.jpg) or one file per identity (gallery/alice.jpg).") from None
    rel = [Path(f).relative_to(root) for f in files]
    return [(r.parts[0] if len(r.parts) > 1 else r.stem, Path(f)) for r, f in zip(rel, files)]


def embed_gallery(model, gallery) -> tuple:
    """Embeddings and identity names of the readable gallery images; unreadable ones go to stderr."""
    from keras_cv_apps.image.io import ImageReadError

    rows, names, skipped = [], [], []
    for name, path in gallery:
        try:
            rows.append(model(path))
            names.append(name)
        except ImageReadError as err:
            skipped.append(str(err))
    lost = sorted({name for name, _ in gallery} - set(names))
    if lost:
        files = [str(path) for name, path in gallery if name == lost[0]]
        raise ValueError(f"Gallery identity {lost[0]!r} has no readable image ({', '.join(files)}); fix or remove "
                         "its files.")
    for message in skipped:
        print(f"skipped: {message}", file=sys.stderr)
    return np.stack(rows), np.array(names)


def operating_point(model, args) -> dict:
    """The rule to apply: ``statistic``, ``threshold``, ``whitening`` (or None) and a description."""
    from keras_cv_apps.metrics.open_set import Whitening

    if args.far is not None and not 0.0 < args.far < 1.0:
        raise ValueError(f"--far must be between 0 and 1 (exclusive), e.g. 0.01; got {args.far}.")
    if args.threshold is not None:
        return {"statistic": "distance", "threshold": args.threshold, "whitening": None,
                "text": f"--threshold {args.threshold:g} on the plain nearest distance"}
    saved = model.sidecar("threshold.json")
    ident = saved.get("identification") or {}
    if "points" not in ident:
        if args.far is not None:
            raise ValueError(f"{model.path.parent / 'threshold.json'} has no identification operating points "
                             f"({ident.get('skipped', 'saved before they existed')}); retrain with siamese_train "
                             "or pass --threshold.")
        return {"statistic": "distance", "threshold": float(saved["threshold"]), "whitening": None,
                "text": f"verification threshold {float(saved['threshold']):.4f} on the plain nearest distance "
                        "(this model has no identification operating points)"}
    points = sorted(ident["points"], key=lambda p: p["far"])
    far = ident["default_far"] if args.far is None else args.far
    fitting = [p for p in points if p["far"] <= far + 1e-12]
    if not fitting:
        saved_fars = ", ".join(f"{p['far']:g}" for p in points)
        raise ValueError(f"No saved operating point at or below FAR {far:g}; saved: {saved_fars}; or pass --threshold.")
    point = fitting[-1]
    how = "default" if args.far is None else ("as asked" if point["far"] == far else f"strictest at or below {far:g}")
    return {"statistic": ident["statistic"], "threshold": point["threshold"], "far": point["far"],
            "whitening": Whitening.load(model.path.parent / ident["whitening_file"]),
            "text": f"FAR {point['far']:.1%} ({how}): {ident['statistic']} <= {point['threshold']:.4f} on whitened "
                    f"embeddings, calibrated with strangers {', '.join(ident['roles']['calibration_strangers'])}"}


def _main(args) -> int:
    from keras_cv_apps.artifacts import check_writable, write_json
    from keras_cv_apps.inference import ExportedModel
    from keras_cv_apps.metrics.open_set import identification_scores
    from keras_cv_apps.metrics.verification import distance_matrix

    if args.output:
        check_writable(args.output)
    gallery = gallery_files(args.gallery)
    model = ExportedModel(_cli.resolve_model(args.model, app="siamese_train", filename="embedding.tflite"))
    point = operating_point(model, args)
    query = model(args.query)
    emb, names = embed_gallery(model, gallery)
    if point["whitening"] is not None:
        emb, query = point["whitening"](emb), point["whitening"](query[None])[0]
    if point["statistic"] == "ratio" and len(set(names)) < 2:
        raise ValueError("The saved operating points compare the two nearest identities, so the gallery needs at "
                         "least 2; pass --threshold to check a single identity.")
    s = identification_scores(distance_matrix(query[None], emb), names, statistic=point["statistic"])
    name, distance, score = str(s["candidate"][0]), float(s["distance"][0]), float(s["score"][0])
    accepted = score <= point["threshold"]
    ranking = sorted(zip(s["identities"].tolist(), s["per_identity"][0].tolist()), key=lambda item: item[1])
    ratio = f" ratio={score:.4f}" if point["statistic"] == "ratio" else ""
    print(f"identity={name if accepted else 'unknown'} distance={distance:.4f}{ratio}"
          + ("" if accepted else f" nearest={name}"))
    print(f"operating point: {point['text']}")
    for rank, (other, d) in enumerate(ranking[:args.top], start=1):
        print(f"  {rank}. {other} {d:.4f}")
    if args.output:
        write_json(args.output, {"identity": name if accepted else "unknown", "nearest": name, "distance": distance,
                                 "score": score, "statistic": point["statistic"], "threshold": point["threshold"],
                                 "far": point.get("far"), "operating_point": point["text"], "model": str(model.path),
                                 "ranking": [{"identity": n, "distance": d} for n, d in ranking[:args.top]]})
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    sys.exit(main())
