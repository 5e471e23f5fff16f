"""Is the tf.data pipeline fast enough to never starve training?

Measures, in one run on one machine (digits at 32x32, batch 64):

1. images/s of the train pipeline alone (``light`` augmentation), batch-then-map (ours) and
   map-then-batch (per-image augmentation) for comparison;
2. images/s of LeNet-5 training through that pipeline (``model.fit``), and the ratio
   pipeline / training (goal >= 3: the pipeline is not the bottleneck);
3. ``model.fit`` images/s through our pipeline vs. from in-memory numpy arrays (no augmentation
   in both; goal >= 0.95).

Each rate is the fastest of ``--rounds`` epochs, measured in alternation after a warm-up epoch
(the machine may be shared). Prints a table and writes ``benchmarks/results/pipeline.json``.

    python -m benchmarks.bench_pipeline [--rounds 5] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline.json"


def build_lenet(num_classes):
    """The registry's ``lenet5`` when available, else an equivalent small Sequential LeNet-5."""
    import keras

    try:
        from keras_cv_apps import models

        return models.create("lenet5", num_classes=num_classes), "models.create('lenet5')"
    except (ImportError, ValueError):
        model = keras.Sequential([
            keras.Input((32, 32, 1)),
            keras.layers.Conv2D(6, 5, activation="tanh"),
            keras.layers.AveragePooling2D(),
            keras.layers.Conv2D(16, 5, activation="tanh"),
            keras.layers.AveragePooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(120, activation="tanh"),
            keras.layers.Dense(84, activation="tanh"),
            keras.layers.Dense(num_classes, activation="softmax"),
        ])
        return model, "Sequential LeNet-5 (lenet5 not registered yet)"


def epoch_of_iteration(dataset):
    """A zero-arg timer: seconds to iterate ``dataset`` once."""

    def run():
        start = time.perf_counter()
        for _ in dataset:
            pass
        return time.perf_counter() - start

    return run


def per_image_pipeline(splits):
    """The same data and augmentation, mapped per image *before* batching (the slow order)."""
    import tensorflow as tf

    x, y = splits.arrays("train", scaled=False)
    augmenter = splits.augmenter

    def prepare(image, label):
        image = augmenter(tf.cast(image, tf.float32)[None])[0]
        return image / 255.0, label

    return (tf.data.Dataset.from_tensor_slices((x, y)).cache()
            .shuffle(len(x), seed=0, reshuffle_each_iteration=True)
            .map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(splits.batch_size).prefetch(tf.data.AUTOTUNE))


def epoch_of_fit(x, y, batch_size, seed=0):
    """A zero-arg timer: seconds of one ``model.fit`` epoch of a LeNet-5 built once here."""
    import keras

    keras.utils.set_random_seed(seed)
    model, _ = build_lenet(10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    kwargs = {"shuffle": False} if y is None else {"batch_size": batch_size, "shuffle": True}
    times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    def run():
        model.fit(x, y, epochs=1, verbose=0, callbacks=[EpochTimer()], **kwargs)
        return times[-1]

    return run


def best_rates(timers, num_images, rounds):
    """Images/s of each timer: one warm-up call, then the fastest of ``rounds`` calls made in
    alternation, so that load from other processes hits every measurement alike."""
    for run in timers.values():
        run()
    best = {name: float("inf") for name in timers}
    for _ in range(rounds):
        for name, run in timers.items():
            best[name] = min(best[name], run())
    return {name: num_images / seconds for name, seconds in best.items()}


def write_json(obj, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per measurement")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_cv_apps import data

    light = data.load("digits", image_size=32, batch_size=args.batch_size, augment="light")
    plain = data.load("digits", image_size=32, batch_size=args.batch_size, augment="none")
    n = len(light.indices["train"])
    _, model_name = build_lenet(10)

    timers = {
        "pipeline_light_batch_then_map": epoch_of_iteration(light.train),
        "pipeline_light_map_then_batch": epoch_of_iteration(per_image_pipeline(light)),
        "fit_lenet5_pipeline_light": epoch_of_fit(light.train, None, args.batch_size),
        "fit_lenet5_pipeline_none": epoch_of_fit(plain.train, None, args.batch_size),
        "fit_lenet5_numpy_none": epoch_of_fit(*plain.arrays("train"), args.batch_size),
    }
    rates = best_rates(timers, n, args.rounds)
    ratios = {
        "pipeline_over_training": rates["pipeline_light_batch_then_map"]
        / rates["fit_lenet5_pipeline_light"],
        "batch_then_map_over_map_then_batch": rates["pipeline_light_batch_then_map"]
        / rates["pipeline_light_map_then_batch"],
        "fit_pipeline_over_numpy": rates["fit_lenet5_pipeline_none"]
        / rates["fit_lenet5_numpy_none"],
    }
    goals = {"pipeline_over_training": 3.0, "fit_pipeline_over_numpy": 0.95}
    result = {
        "dataset": "digits 32x32x1", "train_images": n, "batch_size": args.batch_size,
        "rounds": args.rounds, "model": model_name,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}",
        "images_per_s": {k: round(v, 1) for k, v in rates.items()},
        "ratios": {k: round(v, 2) for k, v in ratios.items()},
        "goals": {k: {"min": g, "met": ratios[k] >= g} for k, g in goals.items()},
    }
    write_json(result, args.output)

    print(f"{'measurement':40s} {'images/s':>10s}")
    for key, value in rates.items():
        print(f"{key:40s} {value:10.0f}")
    for key, value in ratios.items():
        goal = f"(goal >= {goals[key]})" if key in goals else ""
        print(f"{key:40s} {value:10.2f} {goal}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
