"""Train a siamese embedding for one-shot verification and export it for phones.

A siamese network learns a distance instead of a classifier: one shared tower maps each image
to a unit vector, and two images show the same thing when their vectors are close. Because it
never learns a fixed list of classes, it can recognise classes it has never seen from a single
example (one-shot): store one embedding per identity, then compare.

The default run is a real test of that promise: it trains on scikit-learn's digits of classes
0-6 only and evaluates on the held-out classes 7-9 (and on all ten classes) with seeded
episodes: one random support image per class, one random query, nearest support wins. What
makes the embedding transfer to unseen classes (see `keras_cv_apps.models.siamese`):

- supervised contrastive loss (``--loss supcon``, temperature 0.5) on P x K batches (every
  image of the batch is a positive or a negative for every other);
- the loss sits behind a projection head that is dropped after training;
- the exported embedding keeps the spatial layout of mid-level features (no global pooling),
  L2-normalised, compared by Euclidean distance;
- affine augmentation in the tf.data pipeline; 16x16 inputs (the digits are 8x8 scans).

What transferred worse to unseen classes, measured while designing it (the README has the
figures): a deeper tower with global average pooling trained directly with SupCon or triplet
losses, an extra loss term on the embedding itself, a lower temperature, strong augmentation,
larger inputs, rotated digits as extra classes and ensembles of towers.

``--loss triplet`` (online ``--mining`` batch_hard / semi_hard / batch_all) and ``--loss
contrastive`` (a two-input siamese model on balanced same/different pairs, the classic set-up)
train the same tower for comparison.

Open-set identification ("who is this, or nobody I know?") needs thresholds for a false-accept
rate, chosen where strangers play their part. The classes get explicit roles, recorded in
threshold.json: *training* classes; *held-out* classes (never seen; one-shot and open-set
evaluation only); among the training classes, *calibration strangers* (``--calibration-strangers``,
default the last 30%: digits 5,6) and the *calibration gallery* (the rest: digits 0-4). A
within-class whitening is fitted on the training images of the calibration gallery; then
seeded galleries of one validation image per gallery class meet the validation images of the
strangers, and the threshold on the whitened nearest / second-nearest distance ratio is set for
FAR 1% and 0.1%, each stranger class on its own at or below the rate.

Outputs in a new ``runs/siamese_train/<date-time>/`` folder: embedding.keras, embedding.tflite and
embedding_int8.tflite (one image in, one embedding out; verified against Keras), threshold.json
(distance threshold for "same", chosen on validation pairs, and the identification operating
points), whitening.npz, config.json (preprocessing), metrics.json (with the open-set figures on
the test split: calibration gallery vs held-out strangers), history.json and plots. Use them with
``apps.siamese_verify`` and ``apps.siamese_identify``.

Usage:
    python -m apps.siamese_train                      # digits, train 0-6, evaluate 7-9
    python -m apps.siamese_train --loss triplet --mining semi_hard
    python -m apps.siamese_train --backbone lenet5 --image-size 32 --loss contrastive
    python -m apps.siamese_train --dataset dir:/data/faces --held-out alice,bob --image-size 32
"""


from __future__ import annotations

from apps import _cli, _runs
from keras_cv_apps.choices import METRIC_LOSSES, TRIPLET_MININGS

APP = "siamese_train"


def _parser():
    p = _cli.parser(__doc__, APP)
    p.add_argument("--model", default=None,
                   help="registered siamese or embedding model (default: siamese_contrastive for "
                        "--loss contrastive, else siamese_triplet)")
    _cli.add_data(p, image_size=16, batch_size=56)
    _cli.add_training(p, epochs=40, learning_rate=2e-3)
    g = p.add_argument_group("metric learning")
    g.add_argument("--loss", choices=METRIC_LOSSES, default="supcon", help="training objective (default: %(default)s)")
    g.add_argument("--backbone", default="convnet",
                   help="tower: convnet or a registered classifier such as lenet5 (default: %(default)s)")
    g.add_argument("--embedding-dim", type=_cli.positive_int, default=None,
                   help="linear projection size (default: none for convnet, 128 for a backbone)")
    g.add_argument("--width", type=_cli.positive_int, default=64, help="convnet width (default: %(default)s)")
    g.add_argument("--mining", choices=TRIPLET_MININGS, default="batch_hard",
                   help="triplet mining (default: %(default)s)")
    g.add_argument("--margin", type=_cli.positive_float, default=None,
                   help="triplet (0.2) / contrastive (1.0) margin")
    g.add_argument("--temperature", type=_cli.positive_float, default=0.5,
                   help="supcon temperature (default: %(default)s)")
    g.add_argument("--k", type=_cli.positive_int, default=8,
                   help="images per class in a P x K batch, at least 2 (default: %(default)s)")
    g.add_argument("--held-out", default=None, help="comma list of class names kept out of training "
                                                    "(default: the last 30%% of classes; digits: 7,8,9)")
    g.add_argument("--calibration-strangers", default=None,
                   help="comma list of training classes that play the strangers when the identification "
                        "thresholds are set (default: the last 30%% of the training classes; digits: 5,6)")
    g.add_argument("--episodes", type=_cli.positive_int, default=1000,
                   help="seeded one-shot episodes (default: %(default)s)")
    g.add_argument("--tsne", action="store_true", help="also save a t-SNE plot of the test embeddings")
    _cli.add_augment(p, default="light", labels=False)
    _cli.add_export(p)
    _cli.add_output(p, APP)
    return p


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _model_and_loss(args):
    """The model name, its keyword arguments and the loss, checked before any data is loaded."""
    from keras_cv_apps import models
    from keras_cv_apps.losses import metric_learning as losses
    from keras_cv_apps.models._tasks import check_model

    name = args.model or ("siamese_contrastive" if args.loss == "contrastive" else "siamese_triplet")
    cfg = check_model(name, ("siamese", "embedding"), app=APP)
    if (cfg.task == "siamese") != (args.loss == "contrastive"):
        raise ValueError(f"Model {name!r} ({cfg.task}) does not fit --loss {args.loss}; contrastive needs a "
                         "siamese model (siamese_contrastive), supcon/triplet an embedding model (siamese_triplet).")
    if args.k < 2 and args.loss != "contrastive":
        raise ValueError(f"--k must be at least 2 (an anchor needs a positive in its batch), got {args.k}.")
    if args.backbone != "convnet":
        check_model(args.backbone, ("classifier",), app="--backbone")
        cfg = models.get_cfg(args.backbone)  # the tower's channels and scaling come from it
    kwargs = {"backbone": args.backbone, "width": args.width, "embedding_dim": args.embedding_dim}
    if args.loss == "supcon":
        loss = losses.SupConLoss(temperature=args.temperature)
    elif args.loss == "triplet":
        loss = losses.TripletLoss(margin=args.margin or 0.2, mining=args.mining)
    else:
        loss = losses.ContrastiveLoss(margin=args.margin or 1.0)
    return name, kwargs, loss, cfg


def _held_out(args, class_names):
    """Held-out class indices: ``--held-out`` names, or the last 30% of the classes (digits: 7-9)."""
    if args.held_out is None:
        names = class_names[-max(2, round(0.3 * len(class_names))):]
    else:
        names = [n.strip() for n in args.held_out.split(",") if n.strip()]
    unknown = [n for n in names if n not in class_names]
    if unknown:
        raise ValueError(f"Held-out class(es) {unknown} are not in the dataset; classes are {class_names}.")
    return [class_names.index(n) for n in names]


def _roles(args, class_names, held) -> dict:
    """Open-set roles as class indices: the calibration strangers are training classes (default: the
    last 30%), the calibration gallery the other training classes; held-out classes stay unseen."""
    trained = [c for c in range(len(class_names)) if c not in held]
    strangers = trained[len(trained) - max(1, round(0.3 * len(trained))):] if len(trained) >= 3 else []
    if args.calibration_strangers is not None:
        names = [n.strip() for n in args.calibration_strangers.split(",") if n.strip()]
        bad = [n for n in names if n not in class_names or class_names.index(n) in held]
        if bad or len(trained) - len(set(names)) < 2:
            raise ValueError(f"--calibration-strangers must name training classes and leave at least 2 for the "
                             f"gallery; got {names}, training classes are {[class_names[c] for c in trained]}.")
        strangers = [class_names.index(n) for n in names]
    return {"calibration_gallery": [c for c in trained if c not in strangers], "calibration_strangers": strangers,
            "held_out": list(held)}


def _identification(embedding, splits, roles, seed, run) -> tuple:
    """threshold.json's ``identification`` section (whitening.npz written beside it) and the
    whitening, or ``({"skipped": why}, None)`` when the roles or the data are too few."""
    from keras_cv_apps import artifacts
    from keras_cv_apps.metrics import open_set

    try:
        if not roles["calibration_strangers"]:
            raise ValueError("fewer than 3 training classes, so none can play the strangers")
        (x_tr, y_tr), (x_val, y_val) = splits.arrays("train"), splits.arrays("val")
        whitening, record = open_set.operating_points(
            embedding.predict(x_tr, verbose=0), y_tr, embedding.predict(x_val, verbose=0), y_val, seed=seed,
            gallery_classes=roles["calibration_gallery"], stranger_classes=roles["calibration_strangers"])
    except ValueError as err:
        return {"skipped": f"no identification operating points: {err}"}, None
    artifacts.write_bytes(run.file("whitening.npz"), whitening.to_bytes())
    names = {role: [splits.class_names[c] for c in idx] for role, idx in roles.items()}
    return {**record, "whitening_file": "whitening.npz", "roles": names}, whitening


def _open_set_test(emb, y, ident, whitening, roles, seed):
    """The saved operating points on the test split: calibration gallery vs the held-out classes."""
    from keras_cv_apps.metrics import open_set

    if whitening is None:
        return None
    rep = open_set.evaluate(whitening(emb), y, gallery_classes=roles["calibration_gallery"], seed=seed,
                            stranger_classes=roles["held_out"],
                            thresholds={str(p["far"]): p["threshold"] for p in ident["points"]})
    return {k: v for k, v in rep.items() if k != "roc"}


def _main(args) -> int:
    import tensorflow as tf

    from keras_cv_apps import artifacts, data, export, models, training
    from keras_cv_apps.data import pairs
    from keras_cv_apps.metrics import verification as metrics

    name, kwargs, loss, cfg = _model_and_loss(args)
    _runs.start(args)
    augmenter = data.build_augmenter(args.augment, seed=args.seed)
    with _runs.open_run(args, APP, model=name) as run:
        training.set_seed(args.seed)
        tf.config.experimental.enable_op_determinism()  # a seed then gives the same figures every run
        batch = _runs.global_batch(args)
        splits = data.load(args.dataset, image_size=args.image_size, channels=cfg.image_shape[2], scale=cfg.scale,
                           seed=args.seed, batch_size=batch, cache=args.cache or True)
        held = _held_out(args, splits.class_names)
        roles = _roles(args, splits.class_names, held)
        train, val, info = pairs.training_feeds(
            splits, held_out=held, pairs=args.loss == "contrastive", batch_size=batch, k=args.k,
            augment=augmenter, seed=args.seed)
        options = {**_runs.fit_options(args, run), "steps_per_epoch": args.steps_per_epoch
                   or -(-info["train_images"] // batch)}
        steps = options["steps_per_epoch"]
        kwargs["image_shape"] = splits.image_shape
        result = training.fit(models.create(name, **kwargs), (train, val), run_dir=run.path, schedule="cosine",
                              loss=loss, patience=args.epochs, **options)
        if not args.place.is_chief:
            return _runs.worker_done(args)
        embedding = result.model.embedding

        x_val, y_val = splits.arrays("val")
        chosen = metrics.choose_threshold(embedding.predict(x_val, verbose=0), y_val, seed=args.seed)
        x_test, y_test = splits.arrays("test")
        e_test = embedding.predict(x_test, verbose=0)
        evaluate = dict(held_out_classes=held, episodes=args.episodes, seed=args.seed,
                        threshold=chosen["best_threshold"])
        report = metrics.embedding_report(e_test, y_test, **evaluate)
        ident, whitening = _identification(embedding, splits, roles, args.seed, run)
        open_test = _open_set_test(e_test, y_test, ident, whitening, roles, args.seed)
        for method in ("pca", "tsne") if args.tsne else ("pca",):
            metrics.plot_embeddings(e_test, y_test, run.file(f"embedding_{method}.png"), method=method,
                                    class_names=splits.class_names)

        export.save_keras(embedding, run.file("embedding.keras"))
        exports = export.export_all(embedding, run.path, args.quantize, samples=x_test,
                                    representative=splits.representative(200), stem="embedding")
        for file, rep in exports.items():  # the one-shot and open-set figures again, with the exported model
            e_lite = export.run_tflite(run.file(file), x_test)
            lite = metrics.embedding_report(e_lite, y_test, **evaluate)
            rep["one_shot"] = {g: lite[g][k] for g in lite for k in lite[g] if "way_" in k}
            rep["open_set"] = _open_set_test(e_lite, y_test, ident, whitening, roles, args.seed)
        artifacts.write_json(run.file("threshold.json"), {
            "threshold": chosen["best_threshold"], "distance": "euclidean", "rule": "same when distance <= threshold",
            "chosen_on": "balanced same/different pairs of the validation split (all classes), threshold of "
                         "best accuracy", "val_accuracy": chosen["best_accuracy"], "identification": ident})
        run.write_config(model=name, model_kwargs=kwargs, dataset=splits.describe(), seed=args.seed,
                         training=_runs.training_record(args, steps_per_epoch=steps, schedule="cosine",
                                                        loss=loss.get_config()),
                         options={"held_out": [splits.class_names[c] for c in held], "augment": args.augment,
                                  "episodes": args.episodes, "quantize": args.quantize,
                                  "calibration_strangers": [splits.class_names[c] for c in
                                                            roles["calibration_strangers"]],
                                  "embedding_dim": int(embedding.output_shape[-1])})
        out = run.write_metrics(test=report, exports=exports, training=_runs.training_record(args, result),
                                threshold=chosen["best_threshold"], dropped_classes=info["dropped"],
                                open_set=open_test or ident.get("skipped"))
        run.update_manifest({
            "one_shot": {g: report[g][k] for g in report if isinstance(report[g], dict) for k in report[g]
                         if "way_" in k},
            "held_out_roc_auc": report["held_out"]["verification"]["roc_auc"], "threshold": chosen["best_threshold"],
            "open_set_at_far": open_test and open_test["at"]})
    _summary(out, run)
    return 0


def _summary(metrics, run):
    from apps._cli import next_step

    lines = [f"siamese embedding: trained in {metrics['training']['train_seconds']:.0f}s, "
             f"threshold {metrics['threshold']:.3f}"]
    for group, rep in metrics["test"].items():
        way = next(k for k in rep if "way_" in k)
        ver = rep["verification"]
        lines.append(f"  {group:<8} {way} {100 * rep[way]:.1f}% ({rep['episodes']} episodes)  ROC AUC "
                     f"{ver['roc_auc']:.3f}  EER {ver['eer']:.3f}  TPR@FPR=1e-2 {ver['tpr_at_fpr']:.3f}  "
                     f"best acc {100 * ver['best_accuracy']:.1f}%  recall@1 {rep['retrieval']['recall@1']:.3f}  "
                     f"mAP {rep['retrieval']['map']:.3f}")
    for file, rep in metrics["exports"].items():
        shots = "  ".join(f"{g} {100 * v:.1f}%" for g, v in rep["one_shot"].items())
        lines.append(f"  {file:<24} {rep['size_bytes'] / 1024:7.1f} KiB  max|diff| "
                     f"{rep['max_abs_diff']:.2e}  one-shot {shots}")
    if isinstance(metrics["open_set"], dict):
        at = "; ".join(f"FAR {float(far):.1%}: unknown rejected {100 * r['rejection']:.1f}%, known named "
                       f"{100 * r['dir']:.1f}%" for far, r in metrics["open_set"]["at"].items())
        lines.append(f"  open set (test, held-out classes as strangers): {at}")
    elif metrics["open_set"]:
        lines.append(f"  {metrics['open_set']}")
    if metrics["dropped_classes"]:
        lines.append(f"  left out (fewer than 2 training images): classes {metrics['dropped_classes']}")
    lines.append(f"  saved to {run.path}/ (embedding.keras/.tflite, threshold.json, config.json, metrics.json)")
    print("\n".join(lines))
    model = next(iter(metrics["exports"]), None)
    if model:
        next_step(f"python -m apps.siamese_verify A.png B.png --model {run.path / model}")


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    raise SystemExit(main())
