"""Transfer learning: fine-tune a pretrained BiT or ViT backbone on a few labelled images.

A network pretrained on a large source learns features (strokes, corners, textures) that a new
task can reuse, so a handful of labelled images per class can suffice. The app takes a backbone
(``--backbone``, a registered BiT or ViT) and its weights (``--weights``: an official ``.npz``
such as BiT-M-R50x1.npz, a release name, a keras-hub preset ``hub:NAME``, or a ``.keras`` file),
replaces the head with a zero one for the new classes, and adapts it (``--mode``):

- ``linear``: a linear probe, logistic regression on the frozen backbone's features (of each
  support image and ``8`` augmented views of it), written into the head;
- ``finetune``: every weight (or those from ``--from-block`` on) trains with Adam, warm-up and
  cosine decay, augmentation and label smoothing (``--recipe bit-hyperrule|vit`` use the published
  recipes' SGD schedules instead);
- ``lp-ft``: the linear probe first, then fine-tuning from it (Kumar et al., 2022), which keeps the
  first gradients from distorting the pretrained features.

Offline default, an honest test of transfer: with no ``--weights``, ``bit_tiny`` is pretrained on
a source that shares no class with the target (the 8 procedural shapes, handwritten digits 0-4,
each digit also turned by 90, 180 and 270 degrees as a class of its own, and 512 classes of
random stroke glyphs drawn as the digits are stored), saved in the
official BiT ``.npz`` layout (``pretrained.npz``), loaded back through ``load_checkpoint`` (head
skipped), and adapted to digits 5-9 from ``--shots`` labelled images per class. The same
architecture trained from scratch with the same steps and augmentation is reported beside it
(``--no-scratch`` skips it). benchmarks/bench_transfer.py runs this protocol over 20 episodes x 3
seeds at 1 and 5 shots.

The run folder gets model.keras, model.tflite / model_int8.tflite (verified; RGB input unless
--tflite-input native), labels.txt,
config.json, metrics.json (test accuracy, scratch comparison, checkpoint report), history, plots.

Usage:
    python -m apps.transfer_finetune                                   # offline demo, 5-shot LP-FT
    python -m apps.transfer_finetune --shots 1 --mode linear
    python -m apps.transfer_finetune --backbone bit_m_r50x1 --weights BiT-M-R50x1.npz \\
        --dataset dir:/data/flowers --image-size 128 --shots 10 --no-scratch
"""

from __future__ import annotations

from apps import _cli, _runs
from keras_cv_apps.choices import TRANSFER_MODES, TRANSFER_RECIPES

APP = "transfer_finetune"
FINETUNE = {"learning_rate": 1e-3, "scratch_learning_rate": 1e-3, "label_smoothing": 0.1}
PROBE = {"views": 8, "C": 0.01}
PRETRAIN = {"steps": 9000, "learning_rate": 1e-3, "batch_size": 64}
DIGITS_TARGET = "5,6,7,8,9"


def _parser():
    p = _cli.parser(__doc__, APP)
    p.add_argument("--backbone", default="bit_tiny", help="registered BiT or ViT model (default: %(default)s)")
    p.add_argument("--weights", default=None, help="checkpoint: .npz, release name, hub:PRESET or .keras "
                                                   "(default: pretrain bit_tiny offline)")
    p.add_argument("--mode", choices=TRANSFER_MODES, default="lp-ft", help="(default: %(default)s)")
    _cli.add_data(p, batch_size=32)
    p.add_argument("--classes", default=None, help="comma list of the classes to learn (default: 5-9 for the "
                                                   "offline demo on digits, else all)")
    p.add_argument("--shots", type=_cli.nonnegative_int, default=5,
                   help="labelled training images per class; 0 = all (default: %(default)s)")
    p.add_argument("--augment", default="digits", help="augmentation preset (default: %(default)s)")
    g = p.add_argument_group("fine-tuning")
    g.add_argument("--steps", type=_cli.positive_int, default=None,
                   help="optimizer steps (default: 200, or the recipe's)")
    g.add_argument("--learning-rate", type=_cli.positive_float, default=FINETUNE["learning_rate"],
                   help="peak learning rate without a recipe (default: %(default)s)")
    g.add_argument("--recipe", choices=TRANSFER_RECIPES, default="default", help="(default: %(default)s)")
    g.add_argument("--from-block", default=None, help="fine-tune only from this block on (e.g. block3)")
    g.add_argument("--pretrain-steps", type=_cli.positive_int, default=PRETRAIN["steps"],
                   help="offline pretraining steps without --weights (default: %(default)s)")
    g.add_argument("--no-scratch", dest="scratch", action="store_false", help="skip the from-scratch baseline")
    g.add_argument("--quiet", action="store_true", help="no per-epoch progress output")
    _cli.add_export(p, classifier=True)
    _cli.add_output(p, APP)
    return p


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _main(args) -> int:
    from keras_cv_apps import artifacts, data, metrics, models, training, transfer
    from keras_cv_apps.export import export_all, save_keras

    cfg, size, classes, weights = _runs.check_transfer_args(args, app=APP, digits_target=DIGITS_TARGET)
    with _runs.open_run(args, APP) as run:
        training.set_seed(args.seed)
        splits = data.load(args.dataset, image_size=size, channels=cfg.image_shape[2], scale=cfg.scale,
                           seed=args.seed, batch_size=args.batch_size, augment=args.augment, classes=classes)
        stream, labels = None, splits.labels("train")
        if args.shots:  # picked from the labels of the whole split; only the picked files are decoded
            transfer.check_shots(labels, args.shots, splits.class_names)
            pick = transfer.few_shot_indices(labels, args.shots, seed=args.seed)
            x_train, y_train = splits.arrays("train", scaled=False, rows=pick)
        elif splits.streamed:  # every image of a folder: fine-tuned as a stream, probed on a balanced sample
            stream = splits.dataset("train", raw=True)
            pick = transfer.balanced_indices(labels, splits.read_limit, seed=args.seed)
            x_train, y_train = splits.arrays("train", scaled=False, rows=pick)
        else:
            x_train, y_train = splits.arrays("train", scaled=False)
        verbose = 0 if args.quiet else "auto"
        build = dict(num_classes=splits.num_classes, image_shape=splits.image_shape)
        if weights is None:  # offline: pretrain on shapes, digits 0-4 and turns, glyphs; write the official layout
            source, _, _ = transfer.pretrain_offline(args.backbone, image_shape=splits.image_shape,
                                                     run_dir=run.file("pretrain"), steps=args.pretrain_steps,
                                                     learning_rate=PRETRAIN["learning_rate"], seed=args.seed,
                                                     batch_size=PRETRAIN["batch_size"], verbose=verbose)
            weights = str(models.save_checkpoint(source, run.file("pretrained.npz")))
        model = models.create(args.backbone, **build)
        report = models.load_weights(model, weights)
        adapt = _runs.adapt_classifier(args, model, x_train, y_train, splits, run.path, probe=PROBE,
                                       finetune={**FINETUNE, "learning_rate": args.learning_rate}, mode=args.mode,
                                       verbose=verbose, stream=stream)
        x_test, y_test = splits.arrays("test")  # a bounded sample of a streamed folder: the exports' check
        test = _runs.test_report(model, splits, x_test, y_test)
        scratch = None
        if args.scratch:
            fresh = models.create(args.backbone, **build)
            _runs.adapt_classifier(args, fresh, x_train, y_train, splits, run.file("scratch"), probe=PROBE,
                                   finetune={**FINETUNE, "learning_rate": FINETUNE["scratch_learning_rate"]},
                                   mode="finetune", verbose=verbose, stream=stream)
            scratch = {"top1": _runs.test_report(fresh, splits, x_test, y_test)["top1"]}
        metrics.plot_confusion_matrix(test["confusion_matrix"], splits.class_names, run.file("confusion_matrix.png"))
        save_keras(model, run.file("model.keras"))
        exports = export_all(model, run.path, args.quantize, samples=x_test, labels=y_test,
                             representative=splits.representative(200), class_names=splits.class_names,
                             preprocessing=splits.preprocessing, tflite_input=args.tflite_input)
        artifacts.write_labels(run.file("labels.txt"), splits.class_names)
        run.write_config(model=args.backbone, model_kwargs=build, dataset=splits.describe(), seed=args.seed,
                         training={**adapt["settings"], "weights": weights, "pretrain_steps": args.pretrain_steps},
                         options={k: getattr(args, k) for k in ("mode", "shots", "classes", "augment", "recipe",
                                                                "from_block", "scratch", "quantize",
                                                                "tflite_input")})
        labelled = len(labels) if stream is not None else len(y_train)
        out = run.write_metrics(test={k: test[k] for k in ("top1", "macro_f1", "n")}, exports=exports,
                                training=adapt["record"], scratch=scratch, labelled_images=int(labelled),
                                checkpoint=report.to_dict() if report is not None else None,
                                linear_probe=adapt.get("probe"))
        run.update_manifest({"test_top1": test["top1"], "scratch_top1": scratch and scratch["top1"]})
    _runs.print_transfer_summary(args, out, run)
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    raise SystemExit(main())
