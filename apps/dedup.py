"""Find near-duplicate images in a folder and (only when asked) move or delete the extra copies.

Technique: every image is shrunk to a 64-bit perceptual hash (pHash by default: the signs of
the lowest 8x8 frequencies of a 32x32 DCT), so re-encoded, resized or brightened copies land
within a few bits of each other. Mirror-image and sub-region hashes catch flips and small
crops. Close hashes are found with a multi-index Hamming search (no N x N matrix), each
candidate pair is lined up and confirmed with SSIM, and confirmed pairs are joined into groups.
Each group keeps one representative: the largest image, then the sharpest. ``--method cnn``
compares CNN embeddings by cosine similarity instead (loads TensorFlow).

The default is a dry run: the groups go to a CSV (``group,file,representative,score``, paths
relative to PATH) and nothing on disk changes. ``--move-to DIR`` moves every non-representative
file of a group into DIR (keeping its relative path); ``--delete`` deletes them and asks for
confirmation, or needs ``--yes`` when not run from a terminal. The representative, the last
copy of each group, is never touched. Without PATH the app builds the demo image set in a
temporary folder and runs on it.

Usage:
    python -m apps.dedup                       # demo set, dry run
    python -m apps.dedup photos/ --out dups.csv
    python -m apps.dedup photos/ --method dhash --threshold 6 --move-to photos_dups/
    python -m apps.dedup photos/ --delete --yes
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from apps import _cli

APP = "dedup"
METHODS = ("phash", "dhash", "ahash", "whash", "cnn")


def _parser():
    p = _cli.parser(__doc__, APP)
    p.add_argument("path", nargs="?", help="folder of images (default: the demo set)")
    p.add_argument("--method", choices=METHODS, default="phash", help="(default: %(default)s)")
    p.add_argument("--threshold", type=_cli.finite_float, default=None,
                   help="max Hamming distance 0..64 (hashes) or min cosine similarity in (0, 1] (cnn); "
                        "default per method")
    _cli.add_output(p, APP, out_alias=True, run_folder=False,
                    default=None)
    p.add_argument("--no-verify", action="store_true", help="skip SSIM verification")
    p.add_argument("--workers", type=_cli.positive_int, default=None, help="decoding threads (default: one per core)")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--move-to", type=Path, help="move extra copies into this folder")
    action.add_argument("--delete", action="store_true", help="delete extra copies")
    p.add_argument("--yes", action="store_true", help="confirm --delete without asking")
    return p


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _extras(result):
    """(file, representative) for every file that is not its group's representative."""
    return [(f, g.representative) for g in result.groups for f in g.files if f != g.representative]


def _confirm_delete(n: int, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    return input(f"Delete {n} duplicate files (representatives are kept)? [y/N] ").strip() == "y"


def _move_targets(extras, root: Path, dest: Path) -> list:
    """Where each extra copy goes under ``dest`` (its path relative to ``root``), checked
    for collisions before anything moves."""
    targets = []
    for f, _ in extras:
        try:
            target = dest / f.resolve().relative_to(root.resolve())
        except ValueError:  # a file outside root keeps just its name
            target = dest / f.name
        if target.exists() or target in targets:
            raise FileExistsError(f"{target} already exists; choose an empty --move-to folder.")
        targets.append(target)
    return targets


def _apply(result, root: Path, args) -> int:
    """Move or delete the non-representative files; returns how many were handled."""
    extras = [(f, rep) for f, rep in _extras(result) if f.resolve() != rep.resolve()]
    if args.delete and not _confirm_delete(len(extras), args.yes):
        print("Nothing deleted.")
        return 0
    targets = _move_targets(extras, root, args.move_to) if args.move_to else [None] * len(extras)
    done = 0
    for (f, rep), target in zip(extras, targets):
        if not rep.exists():  # never remove what might now be the last copy
            continue
        if target is None:
            f.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(f), str(target))
        done += 1
    return done


def _check(args) -> Path:
    """Reject bad flag values in one sentence before any work starts; returns the CSV path."""
    from keras_cv_apps.artifacts import default_run_path
    from keras_cv_apps.vision.dedup import check_threshold

    check_threshold(args.method, args.threshold)
    if args.path is not None and not Path(args.path).exists():
        raise FileNotFoundError(f"Path {args.path} does not exist.")
    if args.delete and not args.yes and not sys.stdin.isatty():
        raise ValueError("--delete in a non-interactive run needs --yes to confirm.")
    out = Path(args.output) if args.output else default_run_path(APP) / "duplicates.csv"
    if out.is_dir():
        out = out / "duplicates.csv"
    blocker = next((p for p in [out, *out.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None and blocker != out:
        raise NotADirectoryError(f"--output {str(out)!r} lies under {str(blocker)!r}, which is a file.")
    return out


def _main(args) -> int:
    from keras_cv_apps.image import io
    from keras_cv_apps.vision import dedup, demo

    out = _check(args)
    with tempfile.TemporaryDirectory(prefix="dedup_demo_") as tmp:
        root = Path(args.path) if args.path else demo.make_demo_set(Path(tmp) / "demo")
        files = io.list_images(root)
        result = dedup.find_duplicates(files, method=args.method, threshold=args.threshold,
                                       verify_ssim=not args.no_verify, workers=args.workers)
        dedup.write_groups_csv(result, out, root)
        try:
            handled = _apply(result, root, args) if (args.move_to or args.delete) else 0
        except FileExistsError:  # refused before anything moved: bad input
            raise
        except OSError as exc:  # e.g. no permission to move or delete: keep what was done
            print(f"error: {exc}", file=sys.stderr)
            return 1
    extra = len(_extras(result))
    print(f"{len(files)} files, {len(result.unreadable)} unreadable, {len(result.groups)} "
          f"duplicate groups, {extra} extra copies ({result.method}, threshold {result.threshold}).")
    for path, error in result.unreadable[:5]:
        print(f"  unreadable: {error}")
    if args.move_to or args.delete:
        print(f"{'Deleted' if args.delete else 'Moved'} {handled} files; representatives kept.")
    print(f"Groups written to {out}")
    _cli.next_step(f"check the groups in {out}, then rerun with --move-to DIR (or --delete --yes) to act on them")
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    sys.exit(main())
