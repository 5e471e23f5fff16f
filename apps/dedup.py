"""Find near-duplicate images in a folder and (only when asked) move or delete the extra copies.

Technique: every image is shrunk to a 64-bit perceptual hash (pHash by default: the signs of
the lowest 8x8 frequencies of a 32x32 DCT), so re-encoded, resized or brightened copies land
within a few bits of each other. Mirror-image and sub-region hashes catch flips and small
crops. Close hashes are found with a multi-index Hamming search (no N x N matrix), each
candidate pair is lined up and confirmed with SSIM, and confirmed pairs are joined into groups
(files with identical pixels are joined first, so 10,000 copies of one photo cost no more than
10,000 distinct photos). ``--method cnn`` compares CNN embeddings by cosine similarity instead
(loads TensorFlow).

Each group keeps one file, by default the best copy: a real file over a symlink, lossless over
lossy, 16-bit over 8-bit, more pixels, less compression (estimated JPEG quality), sharper,
older, shorter path. ``--keep newest|oldest|largest`` or ``--keep pattern:GLOB`` (paths relative
to PATH, e.g. ``pattern:originals/*``) put another criterion first. The CSV says which file is
kept and why, for every file.

The default is a dry run: the groups go to a CSV (``group,file,representative,score,kept,
reason,format,link_target``, paths relative to PATH, symlinks under their own name) and nothing
on disk changes. Files that cannot be used (corrupt, truncated, empty, HTML saved as .jpg,
decompression bombs over ``--max-pixels``, dangling symlinks, symlink loops, no permission) are
listed with their reason in ``<output>_skipped.csv``. ``--move-to DIR`` moves every
non-representative file of a group into DIR (keeping its relative path); ``--delete`` deletes
them and asks for confirmation, or needs ``--yes`` when not run from a terminal. The
representative, the copy each group keeps, is never touched, nor the file a kept symlink points
to. Without PATH the app builds the demo image set in a temporary folder and runs on it.

Usage:
    python -m apps.dedup                       # demo set, dry run
    python -m apps.dedup photos/ --out dups.csv
    python -m apps.dedup photos/ --method dhash --threshold 6 --move-to photos_dups/
    python -m apps.dedup photos/ --keep pattern:originals/* --delete --yes
"""

from __future__ import annotations

import os
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
    p.add_argument("--keep", default="quality", metavar="RULE",
                   help="which copy each group keeps: quality (the best copy), newest, oldest, largest "
                        "or pattern:GLOB (default: %(default)s)")
    p.add_argument("--max-pixels", type=_cli.positive_int, default=None,
                   help="refuse images whose header announces more pixels, without decoding them "
                        "(default: 100,000,000)")
    p.add_argument("--no-verify", action="store_true", help="skip SSIM verification")
    p.add_argument("--workers", type=_cli.positive_int, default=None, help="decoding threads (default: one per core)")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--move-to", type=_folder, help="move extra copies into this folder")
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


def _folder(text: str) -> Path:
    return Path(_cli.folder(text))


def _move_targets(extras, root: Path, dest: Path) -> list:
    """Where each extra copy goes under ``dest`` (its path relative to ``root``, links not
    followed), checked for collisions before anything moves."""
    base = Path(os.path.abspath(root))
    targets = []
    for f, _ in extras:
        try:
            target = dest / Path(os.path.abspath(f)).relative_to(base)
        except ValueError:  # a file outside root keeps just its name
            target = dest / f.name
        if os.path.lexists(target) or target in targets:
            raise FileExistsError(f"{target} already exists; choose an empty --move-to folder.")
        targets.append(target)
    return targets


def _apply(result, root: Path, args) -> int:
    """Move or delete the non-representative files; returns how many were handled.

    A file whose real path is a kept file's real path (the target of a kept symlink) is left
    alone, and a symlink is moved or removed as a link: its target is never touched.
    """
    kept = {g.representative.resolve() for g in result.groups}
    extras = [(f, rep) for f, rep in _extras(result) if f.is_symlink() or f.resolve() not in kept]
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
    from keras_cv_apps.artifacts import check_writable, default_run_path
    from keras_cv_apps.vision.dedup import check_threshold
    from keras_cv_apps.vision.keep import check_rule

    check_threshold(args.method, args.threshold)
    check_rule(args.keep)
    if args.delete and not args.yes and not sys.stdin.isatty():
        raise ValueError("--delete in a non-interactive run needs --yes to confirm.")
    out = Path(args.output) if args.output else default_run_path(APP) / "duplicates.csv"
    if out.is_dir():
        out = out / "duplicates.csv"
    return check_writable(out)


def _main(args) -> int:
    from keras_cv_apps.image import io
    from keras_cv_apps.vision import dedup, demo

    out = _check(args)
    listing = io.check_folder(args.path) if args.path else None  # whole-run problems: exit 2 now
    with tempfile.TemporaryDirectory(prefix="dedup_demo_") as tmp:
        root = Path(args.path) if args.path else demo.make_demo_set(Path(tmp) / "demo")
        listing = listing or io.scan_folder(root)
        result = dedup.find_duplicates(listing.files, method=args.method, threshold=args.threshold,
                                       verify_ssim=not args.no_verify, workers=args.workers,
                                       keep_rule=args.keep, max_pixels=args.max_pixels or io.MAX_PIXELS,
                                       root=root, links=listing.links)
        result.unreadable[:0] = listing.skipped
        dedup.write_groups_csv(result, out, root)
        skipped_csv = out.with_name(out.stem + "_skipped.csv")
        if result.unreadable:
            dedup.write_skipped_csv(result, skipped_csv, root)
        try:
            handled = _apply(result, root, args) if (args.move_to or args.delete) else 0
        except FileExistsError:  # refused before anything moved: bad input
            raise
        except OSError as exc:  # e.g. no permission to move or delete: keep what was done
            print(f"error: {exc}", file=sys.stderr)
            return 1
    extra = len(_extras(result))
    print(f"{len(listing.files) + len(listing.skipped)} files, {len(result.unreadable)} skipped, "
          f"{len(result.groups)} duplicate groups, {extra} extra copies ({result.method}, threshold "
          f"{result.threshold}; keeping the {'best copy' if args.keep == 'quality' else args.keep}).")
    for _, reason in result.unreadable[:5]:
        print(f"  skipped: {reason}")
    if len(result.unreadable) > 5:
        print(f"  ... {len(result.unreadable) - 5} more in {skipped_csv}")
    if result.notes:
        print(f"  {len(result.notes)} unusual files were read (e.g. {result.notes[0][1]}).")
    if args.move_to or args.delete:
        print(f"{'Deleted' if args.delete else 'Moved'} {handled} files; representatives kept.")
    print(f"Groups written to {out} (column 'kept' and 'reason' say which copy stays and why)")
    _cli.next_step(f"check the groups in {out}, then rerun with --move-to DIR (or --delete --yes) to act on them")
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    sys.exit(main())
