"""Few-shot transfer on digits 5-9 from an offline source, against training from scratch; and the
fine-tuning throughput of every registered backbone.

Protocol (``transfer_finetune``'s defaults): ``bit_tiny`` is pretrained once on the offline source
(`transfer.offline_source`: procedural shapes, handwritten digits 0-4 and their quarter turns as
classes of their own, 512 classes of random stroke glyphs drawn as the digits are stored; no
class of the target),
written in the official BiT ``.npz`` layout and loaded back with ``load_checkpoint`` (head
skipped). For each seed the digits 5-9 are split 70/10/20 (seeded, stratified); an episode draws
K labelled training images per class (K = 1, 5) and is scored on the seed's test split:

- LP: logistic regression on the frozen features of the support images and 8 augmented views;
- FT: the whole pretrained network fine-tuned from a zero head;
- LP-FT: the same fine-tuning started from the LP head;
- scratch: the same architecture from a fresh initialisation (zero head), fine-tuned alike.

FT, LP-FT and scratch take the same optimizer steps (Adam, 5% warm-up, cosine decay), batch size,
label smoothing, augmentation and peak learning rate (the app's). Each method is
compiled once and reset between episodes (weights and optimizer state), so episodes cost no
retracing. Each episode sets the global seed from (seed, K, episode) before it builds its feed, so
its figures do not depend on the episodes run before it. Mean and 95% interval over all episodes of
all seeds.

Throughput: images per second of ``train_on_batch`` (SGD with momentum, batch 8) for every
registered ViT/BiT backbone at its default input size.

    python -m benchmarks.bench_transfer [--episodes 20] [--seeds 0 1 2] [--pretrain-seed 0] [--quick]
                                        [--skip throughput]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._util import table, write_result

BACKBONE, SHAPE, CLASSES = "bit_tiny", (32, 32, 1), ["5", "6", "7", "8", "9"]
# the app's settings before the glyph classes joined the source (--previous-defaults: a before/after)
PREVIOUS = {"pretrain": {"glyph_classes": 0}}


def _compiled(weights_path, learning_rate, steps, label_smoothing):
    """A 5-way bit_tiny compiled once for ``steps``-step episodes; its initial weights."""
    from keras_cv_apps import models, training
    from keras_cv_apps.losses.classification import SparseCategoricalCrossentropyWithSmoothing

    model = models.create(BACKBONE, num_classes=len(CLASSES), image_shape=SHAPE)
    if weights_path is not None:
        models.load_checkpoint(model, weights_path)
    model.compile(optimizer=training.build_optimizer("adam", training.learning_rate_schedule("cosine", learning_rate,
                                                                                             steps)),
                  loss=SparseCategoricalCrossentropyWithSmoothing(label_smoothing=label_smoothing))
    return model, [w.copy() for w in model.get_weights()]


def _train(model, weights, feed, steps):
    model.set_weights(weights)
    for variable in model.optimizer.variables:
        variable.assign(np.zeros(variable.shape, variable.dtype))
    model.fit(feed, steps_per_epoch=steps, epochs=1, verbose=0)


def episodes(args, folder: Path) -> dict:
    from apps import transfer_finetune as app
    from keras_cv_apps import data, models, training, transfer

    steps = args.steps
    start = time.time()
    old = PREVIOUS if args.previous_defaults else {}
    training.set_seed(args.pretrain_seed)  # as `transfer_finetune --seed N` pretrains: the same network every run
    source, fit, _ = transfer.pretrain_offline(BACKBONE, image_shape=SHAPE, run_dir=folder / "pretrain",
                                               steps=args.pretrain_steps, learning_rate=app.PRETRAIN["learning_rate"],
                                               batch_size=app.PRETRAIN["batch_size"], seed=args.pretrain_seed,
                                               **old.get("pretrain", {}))
    path = models.save_checkpoint(source, folder / "pretrained.npz")
    pretrain_seconds = time.time() - start
    ft = {**app.FINETUNE, "learning_rate": old.get("learning_rate", app.FINETUNE["learning_rate"])}
    probe_c = old.get("C", app.PROBE["C"])
    tuned, tuned_init = _compiled(path, ft["learning_rate"], steps, ft["label_smoothing"])
    scratch, _ = _compiled(None, ft["scratch_learning_rate"], steps, ft["label_smoothing"])
    results = {m: {k: [] for k in args.shots} for m in ("LP", "FT", "LP-FT", "scratch")}
    for seed in args.seeds:
        splits = data.load("digits", image_size=32, channels=1, scale="symmetric", seed=seed, classes=CLASSES,
                           augment="digits")
        images, labels = splits.arrays("train", scaled=False)
        x_test, y_test = splits.arrays("test")
        augmenter = data.build_augmenter("digits", seed=seed)
        tuned.set_weights(tuned_init)
        bank, bank_y = transfer.view_features(tuned, images, labels, preprocessing=splits.preprocessing,
                                              augmenter=augmenter, views=app.PROBE["views"])
        bank = bank.reshape(app.PROBE["views"] + 1, len(images), -1)
        test_features = transfer.extract_features(tuned, x_test)
        for k in args.shots:
            for e in range(args.episodes):
                episode_seed = 10_000 * seed + 100 * k + e
                training.set_seed(episode_seed)  # the feed's shuffle and augmentation: this episode's alone
                pick = transfer.few_shot_indices(labels, k, seed=episode_seed)
                feed = transfer.feed(images[pick], labels[pick], batch_size=app._parser().get_default("batch_size"),
                                     preprocessing=splits.preprocessing, augmenter=augmenter, seed=e)
                tuned.set_weights(tuned_init)
                transfer.linear_probe(tuned, None, np.tile(labels[pick], len(bank)),
                                      features=bank[:, pick].reshape(-1, bank.shape[-1]), C=probe_c)
                head = tuned.get_layer("head")
                logits = test_features @ head.kernel.numpy() + head.bias.numpy()
                results["LP"][k].append(float(np.mean(logits.argmax(1) == y_test)))
                lp_init = [w.copy() for w in tuned.get_weights()]
                for name, model, init in (("FT", tuned, tuned_init), ("LP-FT", tuned, lp_init)):
                    _train(model, init, feed, steps)
                    results[name][k].append(float(np.mean(model.predict(x_test, verbose=0).argmax(1) == y_test)))
                training.set_seed(episode_seed)
                fresh = models.create(BACKBONE, num_classes=len(CLASSES), image_shape=SHAPE).get_weights()
                _train(scratch, fresh, feed, steps)
                results["scratch"][k].append(float(np.mean(scratch.predict(x_test, verbose=0).argmax(1) == y_test)))
            print(f"seed {seed} {k}-shot: " + ", ".join(f"{m} {100 * np.mean(r[k][-args.episodes:]):.1f}"
                                                       for m, r in results.items()), flush=True)
    summary = {f"{m} {k}-shot": _mean_ci(v[k]) for m, v in results.items() for k in args.shots}
    return {"steps": steps, "pretrain_steps": args.pretrain_steps, "pretrain_seconds": round(pretrain_seconds, 1),
            "pretrain_val_accuracy": fit.history.get("val_accuracy", [None])[-1], "summary": summary,
            "episodes_per_seed": args.episodes, "pretrain_seed": args.pretrain_seed, "seeds": args.seeds,
            "results": results, "seconds": round(time.time() - start, 1)}


def _mean_ci(values) -> dict:
    v = 100 * np.asarray(values)
    return {"mean_%": round(float(v.mean()), 2), "ci95_pts": round(float(1.96 * v.std(ddof=1) / np.sqrt(len(v))), 2),
            "n": len(v)}


def throughput(batch: int, steps: int) -> list:
    import keras

    from keras_cv_apps import models

    rows = []
    for name in models.list_models(include_test=False):
        cfg = models.get_cfg(name)
        if cfg.load_weights is None:
            continue
        model = models.create(name)
        model.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9), loss="sparse_categorical_crossentropy")
        x = np.random.default_rng(0).uniform(-1, 1, (batch, *cfg.image_shape)).astype("float32")
        y = np.zeros(batch, "int32")
        model.train_on_batch(x, y)  # trace and warm up
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        seconds = (time.perf_counter() - start) / steps
        rows.append({"backbone": name, "input": "x".join(map(str, cfg.image_shape)),
                     "params_M": round(model.count_params() / 1e6, 2), "images_per_s": round(batch / seconds, 2)})
        print(rows[-1], flush=True)
        del model
        keras.backend.clear_session()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--steps", type=int, default=200, help="fine-tuning steps (the app's default)")
    parser.add_argument("--pretrain-steps", type=int, default=None, help="(default: the app's)")
    parser.add_argument("--pretrain-seed", type=int, default=0,
                        help="seed of the pretraining (source, split, initialisation), as the app's --seed")
    parser.add_argument("--throughput-batch", type=int, default=8)
    parser.add_argument("--throughput-steps", type=int, default=3)
    parser.add_argument("--skip", nargs="*", default=[], choices=["episodes", "throughput"])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 2 episodes, few steps")
    parser.add_argument("--previous-defaults", action="store_true",
                        help="the episodes with the app's earlier settings (PREVIOUS), for a before/after")
    args = parser.parse_args(argv)
    from apps import transfer_finetune as app

    args.pretrain_steps = args.pretrain_steps or app.PRETRAIN["steps"]
    if args.quick:
        args.seeds, args.episodes, args.steps, args.pretrain_steps = [0], 2, 10, 20
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        if "episodes" not in args.skip:
            out["episodes"] = episodes(args, Path(tmp))
            s = out["episodes"]["summary"]
            print(table([{"method": m, **v} for m, v in s.items()], ["method", "mean_%", "ci95_pts", "n"]))
            goals = {}
            gains = {1: 15, 5: 8}
            floors = {1: 80, 5: 95}
            for k in args.shots:
                ours, scratch = s[f"LP-FT {k}-shot"]["mean_%"], s[f"scratch {k}-shot"]["mean_%"]
                if k in floors:
                    goals[f"transfer (LP-FT) {k}-shot >= {floors[k]}"] = ours >= floors[k]
                    goals[f"{k}-shot gain over scratch >= {gains[k]}"] = ours - scratch >= gains[k]
                best = max(s[f"LP {k}-shot"]["mean_%"], s[f"FT {k}-shot"]["mean_%"])
                goals[f"LP-FT {k}-shot >= max(LP, FT) - 0.5"] = ours >= best - 0.5
            out["episodes"]["goals_met"] = goals
            print("\n".join(f"{k}: {v}" for k, v in goals.items()))
    if "throughput" not in args.skip:
        out["throughput"] = throughput(args.throughput_batch, 1 if args.quick else args.throughput_steps)
        print(table(out["throughput"], ["backbone", "input", "params_M", "images_per_s"]))
    name = "transfer_quick" if args.quick else "transfer" + "".join(f"_{part}" for part in out if args.skip)
    name += "_previous_defaults" if args.previous_defaults else ""
    name += f"_pretrain{args.pretrain_seed}" if args.pretrain_seed else ""
    name += f"_{args.pretrain_steps}steps" if args.pretrain_steps != app.PRETRAIN["steps"] and not args.quick else ""
    print(f"results: {write_result(name, out)}")  # a partial run writes its own file
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
