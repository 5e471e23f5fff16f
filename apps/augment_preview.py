"""See what an augmentation preset does before training with it: a PNG grid of images and their
augmented versions.

Augmentation changes training images at random every epoch (rotations, crops, colour, noise,
erasing, elastic warps, MixUp/CutMix, ...), inside the ``tf.data`` pipeline. A preset that is too
strong teaches the model on images that no longer look like their class (a mirrored "2", a digit
rotated into a "6"); one that is too weak adds nothing. This app draws ``--samples`` training
images of ``--dataset`` and puts each next to ``--versions`` augmented copies made exactly as the
train pipeline makes them (the same layers, keys from ``--seed``), so you can judge a preset by
eye. Label-mixing presets (``strong``: MixUp/CutMix) caption each copy with its two largest label
weights. ``--dataset digits-c:CORRUPTION:SEVERITY`` shows the corrupted test sets the robustness
benchmark uses.

Usage:
    python -m apps.augment_preview --augment strong
    python -m apps.augment_preview --augment standard --dataset photos --image-size 96
    python -m apps.augment_preview --augment none --dataset digits-c:elastic:5
"""

from __future__ import annotations

from apps import _cli

APP = "augment_preview"


def _parser():
    p = _cli.parser(__doc__, APP)
    _cli.add_augment(p, default="strong")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="digits", help="dataset spec, as for the training apps (default: %(default)s)")
    g.add_argument("--image-size", type=_cli.positive_int, default=32,
                   help="square size in pixels (default: %(default)s)")
    g.add_argument("--channels", type=int, choices=(1, 3), default=None,
                   help="1 (grey) or 3 (RGB) (default: 1 for digits, else 3)")
    g.add_argument("--seed", type=_cli.seed, default=0,
                   help="which images and which augmentations (default: %(default)s)")
    g.add_argument("--samples", type=_cli.positive_int, default=6, help="images, one per row (default: %(default)s)")
    g.add_argument("--versions", type=_cli.positive_int, default=6,
                   help="augmented copies of each, one per column (default: %(default)s)")
    p.add_argument("--output", default=None,
                   help=f"the PNG to write (default: a new runs/{APP}/<preset>-<date-time>.png)")
    return p


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _main(args) -> int:
    from pathlib import Path

    import numpy as np

    from keras_cv_apps import artifacts, data
    from keras_cv_apps.data import augment

    channels = args.channels or (1 if args.dataset.startswith("digits") else 3)
    output = Path(args.output or artifacts.default_run_path(APP, name=args.augment).with_suffix(".png"))
    if output.suffix.lower() != ".png":
        raise ValueError(f"--output must name a .png file; got {str(output)!r}.")
    artifacts.check_writable(output)
    splits = data.load(args.dataset, image_size=args.image_size, channels=channels, seed=args.seed,
                       augment=args.augment)
    images, labels = splits.arrays("train", scaled=False)
    pick = np.sort(np.random.default_rng(args.seed).choice(len(images), min(args.samples, len(images)), replace=False))
    outputs, mixed = augment.preview(splits.augmenter, images[pick], labels[pick], num_classes=splits.num_classes,
                                     versions=args.versions, seed=args.seed)
    output.parent.mkdir(parents=True, exist_ok=True)
    augment.plot_preview(output, images[pick], outputs, labels=labels[pick], mixed=mixed,
                         class_names=splits.class_names, title=f"--augment {args.augment} on {args.dataset}")
    layers = ", ".join(type(layer).__name__ for layer in splits.augmenter.layers) if splits.augmenter else "none"
    print(f"augment_preview: {len(pick)} {args.dataset} images x {args.versions} versions of preset "
          f"{args.augment!r} ({layers})\n  saved to {output}")
    _cli.next_step(f"train with it: python -m apps.lenet_train --augment {args.augment}")
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    raise SystemExit(main())
