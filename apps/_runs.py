"""The run of a training app: its output folder from the flags, the training record that goes
into ``config.json``/``metrics.json``, and the classifier path that ``lenet_train`` and
``alexnet_train`` share. Every file is written by the library (`artifacts`, `export`)."""

from __future__ import annotations

from keras_cv_apps.choices import LABEL_MIXING_PRESETS

# flags that do not change what a run computes, so a resumed run may differ in them
NOT_SETTINGS = ("output", "overwrite", "resume", "quiet", "cache", "worker_timeout", "place")


def start(args):
    """Create the ``tf.distribute`` strategy before any other TensorFlow work (a multiworker
    strategy must come first) and record this process's place among the workers in
    ``args.place`` (a `training.Cluster`; one worker unless ``--strategy multiworker``)."""
    from apps._cli import plain_stderr
    from keras_cv_apps import training

    args.place = training.cluster() if args.strategy == "multiworker" else training.Cluster()
    with plain_stderr():
        training.get_strategy(args.strategy, timeout=args.worker_timeout)
    return args.place


def open_run(args, app: str, *, name=None, model=None):
    """The `RunFolder` of this run: ``--output`` or a new ``runs/<app>/<date-time>`` folder.
    ``args.output`` is set to it, so messages (Ctrl-C) can name it. A non-chief worker gets a
    temporary folder, removed when it is done (the chief alone writes the run folder)."""
    from keras_cv_apps.artifacts import RunFolder, default_run_path

    resume = getattr(args, "resume", False)
    identity = {"model": model, "settings": {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS}}
    if resume and not args.output:
        raise ValueError("--resume needs --output naming the folder of the run to continue.")
    place = getattr(args, "place", None)
    if place is not None and not place.is_chief:
        if resume:
            RunFolder(args.output, app=app, resume=True, identity=identity).check_resumable()
        return RunFolder(None, app=app, temporary=True, identity=identity)
    path = args.output or default_run_path(app, name=name)
    args.output = str(path)
    return RunFolder(path, app=app, overwrite=getattr(args, "overwrite", False), resume=resume,
                     resumable=hasattr(args, "resume"), identity=identity)


def global_batch(args) -> int:
    """The batch of one step over all workers: ``--batch-size`` per worker times the workers."""
    return args.batch_size * args.place.workers


def fit_options(args, run) -> dict:
    """`training.fit` arguments from the training flags: the learning rate scaled linearly with
    the number of workers (the global batch grows with them), the strategy, precision, XLA and
    the run's backup (a non-chief worker backs up into its temporary folder and restores the
    chief's backup on --resume)."""
    from pathlib import Path

    if run.temporary:
        backup, restore = run.backup_dir, Path(args.output) / "backup" if args.resume else None
    else:
        backup, restore = run.start_backup(), None
    return dict(epochs=args.epochs, learning_rate=args.learning_rate * args.place.workers,
                steps_per_epoch=args.steps_per_epoch, strategy=args.strategy, precision=args.precision,
                jit_compile=True if args.jit else "auto", backup_dir=backup, restore_dir=restore,
                verbose=0 if args.quiet else "auto")


def worker_done(args) -> int:
    """What a non-chief worker prints when training is over (the chief evaluates and exports)."""
    print(f"worker {args.place.rank} of {args.place.workers}: training done; the chief (worker 0) writes the run "
          f"folder{f' {args.output}' if args.output else ''}.")
    return 0


def training_record(args, result=None, **extra) -> dict:
    """The ``training`` section of ``config.json`` (flags) or ``metrics.json`` (with a `FitResult`)."""
    if result is not None:
        return {"epochs_run": result.epochs_run, "train_seconds": round(result.seconds, 1), **extra}
    workers = args.place.workers if hasattr(args, "place") else 1
    return {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
            "strategy": args.strategy, "steps_per_epoch": args.steps_per_epoch, "workers": workers,
            "global_batch_size": args.batch_size * workers, "effective_learning_rate": args.learning_rate * workers,
            "learning_rate_scaling": "linear in the number of workers", "precision": getattr(args, "precision", None),
            "jit": getattr(args, "jit", None), **extra}


def check_image_size(cfg, size: int, model_kwargs: dict) -> int:
    """Refuse an image size the model cannot take, before any data is loaded."""
    smallest = cfg.min_size(**model_kwargs)
    if size < smallest:
        raise ValueError(f"{cfg.name} needs images of at least {smallest} px; got --image-size {size}.")
    return size


class _Accepted(Exception):
    """Raised by `_ShapeProbe` when a builder first uses its ``image_shape``."""


class _ShapeProbe:
    """An ``image_shape`` that stops a builder the moment it is used: by then Python has bound every
    keyword argument, so the builder has accepted them all, and no layer has been built yet."""

    def __getattr__(self, *_):
        raise _Accepted


for _op in ("iter", "getitem", "len", "index", "int", "eq", "ne", "lt", "le", "gt", "ge", "add", "radd", "mul",
            "rmul", "bool", "contains", "hash"):
    setattr(_ShapeProbe, f"__{_op}__", _ShapeProbe.__getattr__)


def _builds(name: str, model_kwargs: dict) -> bool:
    """Whether the registered builder of ``name`` takes ``model_kwargs``: its keyword binding, checked
    without building (a ViT-B would take seconds)."""
    from keras_cv_apps.models._registry import _lookup

    fn, cfg = _lookup(name)
    try:
        fn(**{"name": name, **cfg.defaults, **model_kwargs, "image_shape": _ShapeProbe()})
    except Exception as e:  # noqa: BLE001 - a validator may wrap the probe's exception in its own
        while e is not None and not isinstance(e, _Accepted):
            if isinstance(e, TypeError) and "unexpected keyword argument" in str(e):
                return False
            e = e.__cause__ or e.__context__
        if e is None:
            raise
    return True


def check_model_kwargs(cfg, model_kwargs: dict, app: str) -> None:
    """Refuse a model that does not take the app's architecture settings, naming those that do,
    before any data is loaded."""
    from keras_cv_apps import models

    if _builds(cfg.name, model_kwargs):
        return
    fits = [n for n in models.list_models(task=cfg.task, include_test=False) if _builds(n, model_kwargs)]
    raise ValueError(f"{app} builds its model with {', '.join(sorted(model_kwargs))}, which {cfg.name} does not "
                     f"take; models {app} can train: {', '.join(fits)} (or train {cfg.name} in your own code "
                     "with models.create).")


def train_classifier(args, *, app: str, model_kwargs: dict, fit_kwargs: dict, augment: str) -> tuple:
    """data.load -> models.create -> training.fit -> evaluation -> export + verify -> run folder.
    Returns ``(metrics, run folder)``."""
    from keras_cv_apps import artifacts, data, export, metrics, models, training
    from keras_cv_apps.data import balance
    from keras_cv_apps.models._tasks import check_model

    cfg = check_model(args.model, ("classifier",), app=app)
    size = check_image_size(cfg, args.image_size or cfg.image_shape[0], model_kwargs)
    if args.balance == "focal" and augment in LABEL_MIXING_PRESETS:
        raise ValueError(f"--balance focal trains with a focal loss on integer labels, which cannot take the soft "
                         f"labels of --augment {augment} (MixUp/CutMix); choose another --balance or --augment.")
    start(args)  # before any TensorFlow work: a multiworker strategy must come first
    check_model_kwargs(cfg, model_kwargs, app)
    data.build_augmenter(augment)  # an unknown preset fails before anything is written
    with open_run(args, app, model=args.model) as run:
        training.set_seed(args.seed)
        splits = data.load(args.dataset, image_size=size, channels=cfg.image_shape[2], scale=cfg.scale,
                           seed=args.seed, batch_size=global_batch(args), augment=augment, cache=args.cache or True)
        kwargs = {**model_kwargs, "num_classes": splits.num_classes, "image_shape": splits.image_shape}
        plan = balance.prepare(splits, args.balance)
        result = training.fit(lambda: models.create(args.model, **kwargs), (plan.train, splits.val),
                              run_dir=run.path, loss=plan.loss, class_weight=plan.class_weight,
                              **fit_options(args, run), **fit_kwargs)
        if not args.place.is_chief:
            return None, run
        model = result.model

        x_test, y_test = splits.arrays("test")
        report = test_report(model, splits, x_test, y_test)
        metrics.plot_confusion_matrix(report["confusion_matrix"], splits.class_names, run.file("confusion_matrix.png"))
        export.save_keras(model, run.file("model.keras"))
        exports = export.export_all(model, run.path, args.quantize, samples=x_test, labels=y_test,
                                    representative=splits.representative(200), class_names=splits.class_names,
                                    preprocessing=splits.preprocessing, tflite_input=args.tflite_input)
        artifacts.write_labels(run.file("labels.txt"), splits.class_names)
        run.write_config(model=args.model, model_kwargs=kwargs, dataset=splits.describe(), seed=args.seed,
                         training=training_record(args, **fit_kwargs),
                         options={"augment": augment, "augment_cooldown": data.augment.cooldown_of(augment),
                                  "balance": args.balance, "quantize": args.quantize,
                                  "tflite_input": args.tflite_input})
        out = run.write_metrics(test={k: report[k] for k in ("top1", "top5", "macro_f1", "n") if k in report},
                                exports=exports, training=training_record(args, result),
                                per_class=report.get("per_class"), confusion_matrix=report["confusion_matrix"])
        run.update_manifest({"test_top1": report["top1"],
                             **{f"{name}_accuracy": rep.get("accuracy") for name, rep in exports.items()}})
    return out, run


def test_report(model, splits, x_test=None, y_test=None) -> dict:
    """The classification report of the test split: of every readable image of a streamed split,
    each once (one pass over its files; ``splits.arrays`` holds a bounded sample of a large folder,
    which the exports are checked on), else of ``x_test`` / ``y_test`` (default: the split's
    arrays) in memory."""
    from keras_cv_apps import metrics

    if splits.streamed:
        return metrics.evaluate_classifier(model, splits.dataset("test", refill=False), None, splits.class_names)
    if x_test is None:
        x_test, y_test = splits.arrays("test")
    return metrics.evaluate_classifier(model, x_test, y_test, splits.class_names)


def print_exports(exports: dict) -> list:
    """One line per exported file: size, agreement with Keras, accuracy when known."""
    lines = []
    for name, rep in exports.items():
        acc = rep.get("accuracy")
        agree = rep.get("top1_agreement")
        lines.append(f"  {name:<26} {rep['size_bytes'] / 1024:7.1f} KiB  max|diff| {rep['max_abs_diff']:.2e}"
                     + (f", top-1 agreement {100 * agree:.2f}%" if agree is not None else "")
                     + (f", accuracy {100 * acc:.2f}%" if acc is not None else ""))
    return lines


def print_classifier_summary(title: str, metrics: dict, run) -> None:
    """The short human summary every classifier app prints at the end."""
    from apps._cli import next_step

    test, record = metrics["test"], metrics["training"]
    lines = [f"{title}: test top-1 {100 * test['top1']:.2f}% (n={test['n']}), macro-F1 {test['macro_f1']:.4f}, "
             f"{record['epochs_run']} epochs in {record['train_seconds']:.0f}s"]
    lines += print_exports(metrics["exports"])
    lines.append(f"  saved to {run.path}/ (model.keras, labels.txt, config.json, metrics.json, history, plots)")
    print("\n".join(lines))
    files = list(metrics["exports"])
    tflite = next((n for n in files if n.endswith("_int8.tflite")), files[0] if files else None)
    if tflite:
        rgb = " and takes RGB images" if metrics["exports"][tflite].get("rgb_front") else ""
        next_step(f"copy {run.path / tflite} and {run.path / 'labels.txt'} into a phone app "
                  f"(config.json gives the input size and scaling; the file carries both{rgb})")


def train_reconstruction(args, *, app: str, model_name: str, target: str, model_kwargs=None, extra_report=None):
    """The autoencoder / VAE path: train on every class but ``--anomaly-class``, report
    reconstruction figures (and anomaly ROC AUC), plot, export encoder and decoder, verify.

    ``target``: ``self`` (x -> x), ``denoise`` ((noisy, clean) pairs drawn anew every epoch) or
    ``image`` (a model that computes its own loss, the VAE). Returns ``(metrics, run folder)``.
    """
    from keras_cv_apps import data, export, models, training
    from keras_cv_apps.layers.noise import ClippedGaussianNoise, SaltAndPepperNoise, denoising_pairs
    from keras_cv_apps.metrics import reconstruction as rm
    from keras_cv_apps.models._tasks import check_model, task_of

    cfg = check_model(model_name, ("autoencoder", "vae"), app=app)
    kwargs = {"latent_dim": args.latent_dim, **(model_kwargs or {})}
    size = check_image_size(cfg, args.image_size or cfg.image_shape[0], {})
    start(args)
    with open_run(args, app, name=getattr(args, "variant", None) or model_name, model=model_name) as run:
        training.set_seed(args.seed)
        splits = data.load(args.dataset, image_size=size, channels=cfg.image_shape[2], scale=cfg.scale,
                           seed=args.seed, batch_size=global_batch(args), min_classes=1, augment=args.augment,
                           cache=args.cache or True)
        k = args.anomaly_class
        if k is not None and not (splits.num_classes > 1 and 0 <= k < splits.num_classes):
            raise ValueError(f"--anomaly-class {k} is not a class index of this dataset; choose 0.."
                             f"{splits.num_classes - 1} ({', '.join(map(str, splits.class_names))}) with at "
                             "least two classes.")
        exclude = [] if k is None else [k]
        if target == "denoise":
            train = denoising_pairs(splits.dataset("train", exclude=exclude, target="none"),
                                    stddev=args.noise_stddev, salt_pepper=args.salt_pepper, seed=args.seed)
            val = denoising_pairs(splits.dataset("val", exclude=exclude, target="none"), stddev=args.noise_stddev,
                                  salt_pepper=args.salt_pepper, seed=args.seed + 7).cache()
        else:
            feed = "none" if target == "image" else "image"
            train, val = (splits.dataset(s, exclude=exclude, target=feed) for s in ("train", "val"))
        kwargs["image_shape"] = splits.image_shape
        result = training.fit(lambda: models.create(model_name, **kwargs), (train, val), run_dir=run.path,
                              loss=None if target == "image" else "binary_crossentropy", **fit_options(args, run))
        if not args.place.is_chief:
            return None, run
        model = result.model

        x_train, y_train = splits.arrays("train")
        x_test, y_test = splits.arrays("test")
        normal = y_test != k
        x_eval = x_input = x_test[normal]
        rows = {"input": x_eval}
        report = {"variant": getattr(args, "variant", None), "model": model_name}
        if target == "denoise":
            noisy = ClippedGaussianNoise(stddev=args.noise_stddev, seed=args.seed)(x_eval, training=True)
            x_input = SaltAndPepperNoise(rate=args.salt_pepper, seed=args.seed)(noisy, training=True).numpy()
            rows["noisy"] = x_input
            report["noisy"] = rm.reconstruction_metrics(x_eval, x_input)
        x_hat = model.reconstruct(x_input)
        rows["output"] = x_hat
        test = rm.reconstruction_metrics(x_eval, x_hat)
        if target == "denoise":
            report["psnr_gain_db"] = test["psnr"] - report["noisy"]["psnr"]
        if extra_report:
            report.update(extra_report(model, x_eval, run.path))
        if k is not None:
            scores = rm.anomaly_scores(model, x_train[y_train != k], x_test)
            report["anomaly"] = {"class": splits.class_names[k], "n_anomalies": int((~normal).sum()),
                                 "roc_auc": {n: rm.roc_auc(s, ~normal) for n, s in scores.items()}}
        rm.plot_image_rows(rows, run.file("reconstructions.png"), title=f"{model_name}: test images")
        codes = model.encode(x_test)
        rm.plot_latent_scatter(codes, y_test, splits.class_names, run.file("latent_scatter.png"),
                               title=f"{model_name}: test codes")

        export.save_keras(model, run.file("model.keras"))
        representative = splits.representative(200, exclude=exclude)
        code_shape = (-1, *model.decoder.input_shape[1:])  # encode() flattens feature-map codes
        samples = {"encoder": (x_test[:256], representative),
                   "decoder": (codes[:256].reshape(code_shape), model.encode(representative).reshape(code_shape))}
        exports = {}
        for stem, part in task_of(model).parts(model).items():
            exports.update(export.export_all(part, run.path, args.quantize, samples=samples[stem][0],
                                             representative=samples[stem][1], stem=stem))
        options = {key: getattr(args, key) for key in ("variant", "anomaly_class", "noise_stddev", "salt_pepper",
                                                       "beta", "augment", "quantize") if hasattr(args, key)}
        built = {k: v for k, v in model.get_config().items() if k not in ("name", "trainable")}
        run.write_config(model=model_name, model_kwargs=built, dataset=splits.describe(),
                         seed=args.seed, training=training_record(args), options=options)
        out = run.write_metrics(test=test, exports=exports, training=training_record(args, result), **report)
        aucs = report.get("anomaly", {}).get("roc_auc", {})
        run.update_manifest({"test_psnr": test["psnr"], **{f"anomaly_auc_{n}": v for n, v in aucs.items()}})
    return out, run


def print_reconstruction_summary(metrics: dict, run) -> None:
    from apps._cli import next_step

    test, record = metrics["test"], metrics["training"]
    lines = [f"{metrics['model']}: test PSNR {test['psnr']:.2f} dB, SSIM {test['ssim']:.3f}, "
             f"MSE {test['mse']:.5f} ({record['epochs_run']} epochs, {record['train_seconds']:.0f}s)"]
    if "noisy" in metrics:
        lines.append(f"  denoising: noisy input {metrics['noisy']['psnr']:.2f} dB -> "
                     f"{test['psnr']:.2f} dB (gain {metrics['psnr_gain_db']:.2f} dB)")
    if "elbo_nats" in metrics:
        lines.append(f"  test ELBO {metrics['elbo_nats']:.1f} nats per image")
    for name, auc in metrics.get("anomaly", {}).get("roc_auc", {}).items():
        lines.append(f"  anomaly class {metrics['anomaly']['class']}: ROC AUC {auc:.4f} by {name}")
    lines += print_exports(metrics["exports"])
    lines.append(f"  saved to {run.path}/")
    print("\n".join(lines))
    next_step(f"open {run.path / 'reconstructions.png'}, or audit a folder with "
              f"python -m apps.dataset_audit PATH --autoencoder {run.path / 'model.keras'}")


# ----------------------------------------------------------------------- transfer learning


def check_transfer_args(args, *, app: str, digits_target: str) -> tuple:
    """Everything about a transfer run's flags that can be refused before any work:
    ``(cfg, image size, classes or None, weights path / hub: preset / None for offline)``."""
    from keras_cv_apps import models, transfer
    from keras_cv_apps.models import checkpoints
    from keras_cv_apps.models._tasks import check_model
    from keras_cv_apps.models.vit import check_patch_grid

    cfg = check_model(args.backbone, ("classifier",), app=app)
    if cfg.load_weights is None:
        readers = [n for n in models.list_models(include_test=False) if models.get_cfg(n).load_weights]
        raise ValueError(f"{args.backbone} reads no pretrained checkpoint; {app} fine-tunes {', '.join(readers)}.")
    size = check_image_size(cfg, args.image_size or cfg.image_shape[0], {})
    if "patch_size" in cfg.defaults:
        check_patch_grid((size, size, cfg.image_shape[2]), cfg.defaults["patch_size"], model=args.backbone)
    weights = args.weights
    if weights is not None and not str(weights).startswith("hub:"):
        weights = str(checkpoints.resolve(cfg.name, weights))
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    if weights is None and args.dataset == "digits":
        classes = classes or digits_target.split(",")
        seen = sorted(set(classes) & {"0", "1", "2", "3", "4"})
        if seen:
            raise ValueError(f"The offline pretraining source already holds digits 0-4, so digit(s) {', '.join(seen)} "
                             "cannot be a transfer target; choose among 5-9 or pass --weights.")
    if args.from_block is not None:  # a block name is checked on a small build of the backbone
        transfer.unfreeze(models.create(args.backbone, image_shape=(size, size, cfg.image_shape[2])),
                          from_block=args.from_block)
    from keras_cv_apps.data import augment

    augment.check_preset(args.augment)
    return cfg, size, classes, weights


def adapt_classifier(args, model, images, labels, splits, run_dir, *, probe: dict, finetune: dict, mode: str,
                     verbose, stream=None) -> dict:
    """Adapt ``model`` to the labelled uint8 ``images`` as ``mode`` says (linear probe, fine-tuning or
    both); returns the settings, the training record and the probe's report. With ``stream`` (the
    whole train split as raw batches, ``splits.dataset("train", raw=True)``) the fine-tuning reads
    that and ``images`` (a bounded sample of it) serve the probe alone."""
    from keras_cv_apps import data, transfer

    augmenter = data.build_augmenter(args.augment, seed=args.seed)
    out = {"settings": {"mode": mode, "batch_size": args.batch_size, **finetune}, "record": {}}
    if mode in ("linear", "lp-ft"):
        transfer.freeze_backbone(model)
        features, targets = transfer.view_features(model, images, labels, preprocessing=splits.preprocessing,
                                                   augmenter=augmenter, views=probe["views"])
        out["probe"] = {**probe, **transfer.linear_probe(model, None, targets, features=features, C=probe["C"])}
    if mode in ("finetune", "lp-ft"):
        recipe = {"default": None, "bit-hyperrule": transfer.bit_hyperrule, "vit": transfer.vit_finetune}[args.recipe]
        n = len(labels) if stream is None else len(splits.labels("train"))
        if recipe is not None:
            recipe = recipe(n, splits.image_shape, batch_size=args.batch_size) \
                if args.recipe == "bit-hyperrule" else recipe(n, batch_size=args.batch_size)
        steps = args.steps or (recipe.steps if recipe else 200)
        source = (images, labels) if stream is None else (stream, None)
        feed = transfer.feed(*source, batch_size=args.batch_size, preprocessing=splits.preprocessing,
                             augmenter=augmenter, seed=args.seed, mixup=recipe.mixup if recipe else 0.0,
                             num_classes=splits.num_classes)
        result = transfer.fine_tune(model, feed, steps=steps, run_dir=run_dir, learning_rate=finetune["learning_rate"],
                                    recipe=recipe, from_block=args.from_block,
                                    label_smoothing=finetune["label_smoothing"], verbose=verbose)
        out["settings"].update(steps=steps, recipe=recipe.to_dict() if recipe else None, images=n,
                               streamed=stream is not None)
        out["record"] = {"epochs_run": result.epochs_run, "train_seconds": round(result.seconds, 1)}
    return out


def print_transfer_summary(args, metrics: dict, run) -> None:
    from apps._cli import next_step

    test, scratch, report = metrics["test"], metrics.get("scratch"), metrics.get("checkpoint")
    shots = f"{args.shots} labelled images per class" if args.shots else "every labelled training image"
    lines = [f"{args.backbone} {args.mode} from {shots}: test top-1 {100 * test['top1']:.2f}% (n={test['n']})"]
    if scratch:
        lines.append(f"  from scratch (same architecture, steps, augmentation): {100 * scratch['top1']:.2f}% -> "
                     f"transfer {100 * (test['top1'] - scratch['top1']):+.2f} points")
    if report:
        lines.append(f"  checkpoint: {len(report['loaded'])} arrays loaded, {len(report['resized'])} resized, "
                     f"{len(report['skipped'])} skipped ({', '.join(report['skipped'][:2]) or 'none'})")
    lines += print_exports(metrics["exports"])
    lines.append(f"  saved to {run.path}/ (model.keras, labels.txt, config.json, metrics.json, plots)")
    print("\n".join(lines))
    next_step(f"python -m apps.transfer_finetune --shots 1 --mode {args.mode} to see the one-shot case, or "
              f"--weights BiT-M-R50x1.npz --backbone bit_m_r50x1 --dataset dir:YOUR_FOLDER")
