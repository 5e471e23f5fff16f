"""Hyperparameter search for a registered classifier family with KerasTuner.

The search covers the four knobs of compound scaling: width (``width_multiplier``), depth
(``depth_multiplier``), input resolution (``--image-sizes``: the dataset is loaded again at each
size) and the learning rate of Adam. Each trial trains from the same seed for ``--epochs`` and is
scored on the validation split (best epoch); the test split is never looked at during the search.
The best configuration is then retrained from scratch with the same seed and evaluated on the
validation and test splits, so ``metrics.json`` shows whether the search score reproduces.

Random search tries ``--trials`` configurations; ``--tuner bayesian`` fits a Gaussian process to
the scores so far to pick the next. A family that lacks a knob (LeNet-5 has no width multiplier)
is refused before any training unless that knob is given a single value (``--widths 1``).

Writes ``config.json`` (search space, best configuration), ``metrics.json`` (search score,
retrained validation and test accuracy) and ``trials.csv`` (one row per trial) into the run folder.
Needs KerasTuner: ``pip install 'keras-cv-apps[tune]'`` (or ``pip install keras-tuner``).

Usage:
    python -m apps.tune --model mobilenetv2 --trials 8 --epochs 10
    python -m apps.tune --model ghostnet --widths 0.5,0.75,1 --depths 1 --image-sizes 32,48 --tuner bayesian
"""

from __future__ import annotations

import tempfile

from apps import _cli, _runs

APP = "tune"
TUNERS = ("random", "bayesian")
KNOBS = {"widths": "width_multiplier", "depths": "depth_multiplier"}


def _floats(text: str) -> list:
    return [_cli.positive_float(part) for part in text.split(",") if part.strip()]


def _ints(text: str) -> list:
    return [_cli.positive_int(part) for part in text.split(",") if part.strip()]


def _parser():
    p = _cli.parser(__doc__, APP)
    _cli.add_model(p, default="mobilenetv2", tasks=("classifier",), app=APP)
    _cli.add_data(p, batch_size=64)
    g = p.add_argument_group("search")
    g.add_argument("--tuner", choices=TUNERS, default="random", help="(default: %(default)s)")
    g.add_argument("--trials", type=_cli.positive_int, default=6,
                   help="configurations to try (default: %(default)s)")
    g.add_argument("--epochs", type=_cli.positive_int, default=8, help="epochs per trial (default: %(default)s)")
    g.add_argument("--steps-per-epoch", type=_cli.positive_int, default=None, help="limit steps (quick runs)")
    g.add_argument("--widths", type=_floats, default=[0.35, 0.5, 0.75],
                   help="width multipliers (default: 0.35,0.5,0.75)")
    g.add_argument("--depths", type=_floats, default=[0.5, 1.0], help="depth multipliers (default: 0.5,1)")
    g.add_argument("--image-sizes", type=_ints, default=[32], help="input sizes in pixels (default: 32)")
    g.add_argument("--learning-rates", type=_floats, default=[1e-3, 3e-3],
                   help="Adam rates (default: 0.001,0.003)")
    g.add_argument("--quiet", action="store_true", help="no per-trial progress output")
    _cli.add_output(p, APP)
    return p


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _space(args, cfg) -> dict:
    """Search axes, refusing knobs the family lacks (tried on a tiny build) before any training."""
    from keras_cv_apps import models

    space = {"image_size": args.image_sizes, "learning_rate": args.learning_rates}
    for flag, kwarg in KNOBS.items():
        values = getattr(args, flag)
        if len(values) > 1 or values != [1.0]:
            try:
                models.create(cfg.name, image_shape=cfg.test_image_shape, num_classes=2, **{kwarg: values[0]})
            except TypeError:
                raise ValueError(f"{cfg.name} has no {kwarg}; give --{flag} 1 to search without it.") from None
            space[kwarg] = values
    for size in args.image_sizes:
        _runs.check_image_size(cfg, size, {})
    return space


def _train(args, cfg, config: dict, *, verbose=0):
    """Train one configuration from the seed; returns (model, history, splits)."""
    import keras
    import tensorflow as tf

    from keras_cv_apps import data, models, training

    tf.config.experimental.enable_op_determinism()  # same seed, same configuration -> same score
    training.set_seed(args.seed)
    splits = data.load(args.dataset, image_size=config["image_size"], channels=cfg.image_shape[2],
                       scale=cfg.scale, seed=args.seed, batch_size=args.batch_size, augment="light")
    kwargs = {k: v for k, v in config.items() if k not in ("image_size", "learning_rate")}
    model = models.create(cfg.name, num_classes=splits.num_classes, image_shape=splits.image_shape, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(splits.train, validation_data=splits.val, epochs=args.epochs,
                        steps_per_epoch=args.steps_per_epoch, verbose=verbose)
    return model, history, splits


def _search(args, cfg, space: dict) -> list:
    """KerasTuner over ``space``; returns ``[(config, best val accuracy)]`` in trial order."""
    try:
        import keras_tuner as kt
    except ImportError:
        raise ImportError("apps.tune needs KerasTuner: pip install 'keras-cv-apps[tune]'") from None

    base = kt.RandomSearch if args.tuner == "random" else kt.BayesianOptimization

    class FamilySearch(base):
        def run_trial(self, trial, *unused, **kwargs):  # one seeded training per configuration
            config = {name: trial.hyperparameters.Choice(name, values) for name, values in space.items()}
            _, history, _ = _train(args, cfg, config)
            return {"score": max(history.history["val_accuracy"])}

    with tempfile.TemporaryDirectory() as scratch:  # KerasTuner's own trial files
        tuner = FamilySearch(objective=kt.Objective("score", "max"), max_trials=args.trials, seed=args.seed,
                             directory=scratch, project_name=APP, overwrite=True)
        tuner.search(verbose=0 if args.quiet else 1)
        trials = sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id))
        return [(dict(t.hyperparameters.values), t.score) for t in trials if t.score is not None]


def _main(args) -> int:
    from keras_cv_apps import artifacts
    from keras_cv_apps.models._tasks import check_model

    cfg = check_model(args.model, ("classifier",), app=APP)
    space = _space(args, cfg)
    with _runs.open_run(args, APP) as run:
        trials = _search(args, cfg, space)
        best, score = max(trials, key=lambda t: t[1])
        model, history, splits = _train(args, cfg, best)
        test = _runs.test_report(model, splits)
        retrained = max(history.history["val_accuracy"])
        names = list(space)
        artifacts.write_csv(run.file("trials.csv"), ["trial", *names, "val_accuracy"],
                            [[i, *(c.get(n) for n in names), round(s, 4)] for i, (c, s) in enumerate(trials)])
        run.write_config(model=args.model, model_kwargs={k: v for k, v in best.items() if k not in
                                                         ("image_size", "learning_rate")},
                         dataset=splits.describe(), seed=args.seed,
                         training={"epochs": args.epochs, "batch_size": args.batch_size,
                                   "learning_rate": best["learning_rate"], "steps_per_epoch": args.steps_per_epoch},
                         options={"tuner": args.tuner, "trials": args.trials, "space": space, "best": best})
        run.write_metrics(test={"top1": test["top1"], "n": test["n"]}, exports={},
                          search={"best_val_accuracy": score, "retrained_val_accuracy": retrained,
                                  "reproduced": abs(retrained - score) <= 1e-6, "trials": len(trials)})
    print(f"best of {len(trials)} trials: {best} -> val accuracy {100 * score:.2f}% "
          f"(retrained: {100 * retrained:.2f}%), test top-1 {100 * test['top1']:.2f}%")
    print(f"  saved to {run.path}/ (config.json, metrics.json, trials.csv)")
    _cli.next_step(f"models.create({args.model!r}, **config.json's model_kwargs) at image size {best['image_size']} "
                   f"with Adam {best['learning_rate']:g} for a full run, or search again with more --trials")
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    raise SystemExit(main())
