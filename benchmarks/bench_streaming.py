"""Does a streamed dataset keep memory flat and keep up with the in-memory path?

1. Memory: one epoch of ``model.fit`` (a small GAP + Dense head, so decoding dominates) over a
   ``dir:`` folder of ``--files`` JPEGs (256x256, random crops of the photos scikit-image ships,
   6 classes) at ``image_size=224``, in a fresh process, against the same run over the first
   1,000 of those files (a folder of links to them). Peak RSS (``ru_maxrss``) of each; goal: the
   big run needs at most 400 MB more. The decoded 224 px set would take ``files * 150 KB``.
2. Throughput: ``model.fit`` images/s of LeNet-5 (the ``lenet_train`` app's model, batch 64,
   32x32 gray, the app's ``digits`` augmentation and none) on scikit-learn's digits held in
   memory vs the same digits written as a folder of PNGs and streamed (``dir:``), the same PNGs
   in TFRecord shards (``write_shards``, streamed as ``tfrecord:``), and ``dir:`` with ``cache=DIR``.
   Each rate is the best of ``--rounds`` calls of ``model.fit`` over ``--epochs`` epochs fed as
   ``training.fit`` feeds them (one repeated iterator, ``steps_per_epoch`` = one pass; its start-up
   counted), after a warm-up; beside it the best one-epoch ``fit`` with a new iterator per epoch
   (how ``fit`` ran before). The paths are measured in alternation (the machine may be shared):
   every round's rates, their ratio to the in-memory rate of the same round and the load average
   are kept (``rounds``), and the table gives the best rate and the median of those per-round
   ratios, and the median CPU time (all threads of the process) per trained image, which a
   shared machine disturbs less than the rates; goal: stream >= 0.9 x memory. The same figures
   are given for the training alone (``training_*``: from the call to the end of the last step),
   without the time ``model.fit`` then spends deleting its iterator (``teardown_s``): TensorFlow's
   iterator destructor waits for the ``tf.data`` autotuning thread's next wake-up, which adds 0 to
   2.6 s at random to a 2.6-s call whatever the data path (seen in gdb: ``~RootDataset::Iterator``
   joining a thread parked in ``Model::OptimizeLoop``). ``--paths`` picks
   the paths (e.g. ``memory,dir``; ``dirpool`` is ``dir:`` with its decoding map on a thread pool, as
   every folder had before small one-size PNG folders decoded inline), ``--augments`` the
   augmentations (default: the app's, then ``none``).

3. Pipeline CPU (``--pipeline-cpu``, merged into the last result file): CPU time per image of
   one pass of the train pipelines alone (no model, no augmentation): in memory, the ``dir:``
   stream, the same stream with its decoding map on a thread pool and through the general decoder
   (format switch, resize per image), and ``tf.io.read_file`` alone (on a thread pool and in an
   inline map) and with ``decode_png`` over the same files, and the operating
   system's open/read/close of them from Python; best and median of
   ``--rounds`` passes, in alternation.

Prints tables and writes ``benchmarks/results/streaming.json``.

    python -m benchmarks.bench_streaming [--files 20000] [--rounds 4] [--epochs 5] [--data DIR]
        [--throughput-only] [--paths memory,dir,tfrecord,cache] [--pipeline-cpu]

``--throughput-only`` measures part 2 alone and keeps part 1's figures from the last result file;
``--result NAME`` writes (and merges into) ``benchmarks/results/NAME.json`` instead.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._util import machine, table, write_result

PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "rocket")


def make_jpegs(root: Path, count: int, seed: int = 0) -> Path:
    """``count`` 256x256 JPEGs of random crops (25-100% of the short side) of the photos, one
    class folder per photo; kept between runs (a finished folder has a ``.done`` marker)."""
    import cv2
    import numpy as np
    import skimage.data

    done = root / f".done-{count}"
    if done.exists():
        return root
    rng = np.random.default_rng(seed)
    photos = [np.ascontiguousarray(getattr(skimage.data, name)()[..., :3][..., ::-1]) for name in PHOTOS]
    for name in PHOTOS:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        c = i % len(PHOTOS)
        photo = photos[c]
        h, w = photo.shape[:2]
        side = int(rng.uniform(0.25, 1.0) * min(h, w))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = cv2.resize(photo[top:top + side, left:left + side], (256, 256), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(root / PHOTOS[c] / f"{i:06d}.jpg"), crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
    done.touch()
    return root


def subset(root: Path, out: Path, count: int) -> Path:
    """A folder of symbolic links to the first ``count`` files of ``root`` (same classes)."""
    files = sorted(p for p in root.rglob("*.jpg"))
    files = sorted(files, key=lambda p: int(p.stem))[:count]
    for path in files:
        link = out / path.parent.name / path.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(path)
    return out


def epoch_run(folder: str, image_size: int, batch: int) -> dict:
    """One epoch of fit over a streamed folder; what this process's peak RSS was."""
    import keras

    from keras_cv_apps import data

    start = time.perf_counter()
    splits = data.load(f"dir:{folder}", image_size=image_size, channels=3, batch_size=batch)
    model = keras.Sequential([keras.Input(splits.image_shape), keras.layers.Conv2D(8, 3, strides=4),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(splits.num_classes,
                                                                                        activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(splits.train, validation_data=splits.val, epochs=1, verbose=0)
    return {"files": int(splits.info["num_images"]), "train_images": len(splits.indices["train"]),
            "seconds": round(time.perf_counter() - start, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "val_accuracy": round(float(history.history["val_accuracy"][-1]), 4)}


def memory(root: Path, files: int) -> list:
    rows = []
    small = subset(root, root.parent / f"{root.name}-first1000", 1000)
    for folder in (small, root):
        cmd = [sys.executable, "-m", "benchmarks.bench_streaming", "--epoch-run", str(folder)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    rows[1]["in_memory_decoded_mb"] = round(rows[1]["files"] * 224 * 224 * 3 / 2 ** 20)
    return rows


def digits_folder(root: Path) -> Path:
    """scikit-learn's digits as 8x8 PNGs, a folder per digit."""
    import cv2
    import numpy as np
    from sklearn.datasets import load_digits

    bunch = load_digits()
    for i, (image, label) in enumerate(zip(bunch.images, bunch.target)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.rint(image * 255 / 16).astype(np.uint8))
    return root


PATHS = {"memory": "in memory", "dir": "streamed (dir:)", "dir1": "streamed (dir:, one decoding thread)",
         "dirpool": "streamed (dir:, decoding map on a thread pool, as before)",
         "dirfile": "streamed (dir:, one read_file + decode_png per file, as before)",
         "tfrecord": "streamed (tfrecord:)", "cache": "streamed, disk cache"}


def _cpu_seconds() -> float:
    """CPU time of this process so far (user + system, all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pooled(splits):
    """``splits`` with its folder's decoding map on ``AUTOTUNE`` threads, as every folder had before
    small one-size PNG folders decoded inline (set before the first pipeline is built)."""
    import tensorflow as tf

    splits._images._parallel = lambda: tf.data.AUTOTUNE
    return splits


def _per_file(splits):
    """``splits`` with its folder read by one ``read_file`` + ``decode_png`` graph call per file, as
    small one-size PNG folders were before they were read in groups (`streaming.read_png_group`)."""
    splits._images.reads_paths = False
    return splits


def throughput(rounds: int, batch: int, work: Path, epochs: int = 5, paths=("memory", "dir", "tfrecord", "cache"),
               augments=None):
    import keras
    import numpy as np

    from apps.lenet_train import MODEL_KWARGS, parse_args
    from keras_cv_apps import data, models, training

    folder = digits_folder(work / "digits")
    if "tfrecord" in paths:
        data.write_shards(f"dir:{folder}", work / "shards", channels=1)  # the same PNGs, 1,000 per shard
    rows = []
    for augment in augments or (parse_args([]).augment, "none"):  # the app's default augmentation, and none
        loaders = {"memory": lambda: data.load("digits", image_size=32, batch_size=batch, augment=augment),
                   "dir": lambda: data.load(f"dir:{folder}", image_size=32, batch_size=batch, augment=augment),
                   "dir1": lambda: data.load(f"dir:{folder}", image_size=32, batch_size=batch, augment=augment,
                                             workers=1),
                   "dirpool": lambda: _pooled(data.load(f"dir:{folder}", image_size=32, batch_size=batch,
                                                        augment=augment)),
                   "dirfile": lambda: _per_file(data.load(f"dir:{folder}", image_size=32, batch_size=batch,
                                                          augment=augment)),
                   "tfrecord": lambda: data.load(f"tfrecord:{work / 'shards'}", image_size=32, batch_size=batch,
                                                 augment=augment),
                   "cache": lambda: data.load(f"dir:{folder}", image_size=32, batch_size=batch, augment=augment,
                                              cache=str(work / f"cache-{augment}"))}
        measured = {PATHS[key]: loaders[key]() for key in ("memory", *[k for k in paths if k != "memory"])}
        fits = {}
        for name, splits in measured.items():
            keras.utils.set_random_seed(0)
            model = models.create("lenet5", num_classes=10, image_shape=(32, 32, 1), **MODEL_KWARGS)
            model.compile("adam", "sparse_categorical_crossentropy")
            train = splits.train
            # warm-up: tracing, and filling a disk cache
            model.fit(training.repeated(train), steps_per_epoch=int(train.cardinality()), epochs=2, verbose=0)
            fits[name] = (model, train, len(splits.indices["train"]))
        runs = {name: [] for name in measured}  # per round: (rate, restarted rate, load, cpu, training rate, teardown)
        clock = _train_end_clock()
        for _ in range(rounds):
            for name, (model, train, n) in fits.items():
                # as training.fit runs it: one iterator over `epochs` epochs (its start-up included)
                start, cpu = time.perf_counter(), _cpu_seconds()
                model.fit(training.repeated(train), steps_per_epoch=int(train.cardinality()), epochs=epochs,
                          verbose=0, callbacks=[clock])
                end = time.perf_counter()
                rate, cpu = epochs * n / (end - start), (_cpu_seconds() - cpu) / (epochs * n)
                trained, teardown = epochs * n / (clock.at - start), end - clock.at
                # as before: a new iterator for the epoch
                start = time.perf_counter()
                model.fit(train, epochs=1, verbose=0)
                runs[name].append((rate, n / (time.perf_counter() - start), round(os.getloadavg()[0], 2), cpu,
                                   trained, teardown))
        memory = runs["in memory"]
        for name, got in runs.items():
            ratios = [r[0] / m[0] for r, m in zip(got, memory)]
            trained = [r[4] / m[4] for r, m in zip(got, memory)]
            rows.append({"augmentation": augment, "path": name, "images_per_s": round(max(r[0] for r in got)),
                         "vs_memory": round(max(r[0] for r in got) / max(m[0] for m in memory), 3),
                         "median_round_ratio": round(float(np.median(ratios)), 3),
                         "training_images_per_s": round(max(r[4] for r in got)),
                         "training_vs_memory": round(max(r[4] for r in got) / max(m[4] for m in memory), 3),
                         "training_median_round_ratio": round(float(np.median(trained)), 3),
                         "teardown_s_max": round(max(r[5] for r in got), 2),
                         "restarted_each_epoch_images_per_s": round(max(r[1] for r in got)),
                         "restarted_vs_memory": round(max(r[1] for r in got) / max(m[1] for m in memory), 3),
                         "cpu_us_per_image": round(1e6 * float(np.median([r[3] for r in got])), 1),
                         "rounds": [{"images_per_s": round(r[0]), "vs_memory": round(x, 3),
                                     "training_images_per_s": round(r[4]), "training_vs_memory": round(t, 3),
                                     "teardown_s": round(r[5], 3), "restarted_images_per_s": round(r[1]),
                                     "load": r[2], "cpu_us_per_image": round(1e6 * r[3], 1)}
                                    for r, x, t in zip(got, ratios, trained)]})
    return rows


def _train_end_clock():
    """A Keras callback recording when the last training step ended (``.at``, ``perf_counter``):
    ``model.fit`` returns later by the time TensorFlow takes to delete the run's iterator, which
    waits for the ``tf.data`` autotuning thread's next wake-up (10 ms after the iterator starts,
    then periods doubling to 60 s): 0 to 2.6 s at random after a 2.6-s fit."""
    import keras

    class TrainEnd(keras.callbacks.Callback):
        at = None

        def on_train_end(self, logs=None):
            self.at = time.perf_counter()

    return TrainEnd()


def pipeline_cpu(rounds: int, batch: int, work: Path) -> list:
    import numpy as np
    import tensorflow as tf

    from keras_cv_apps import data

    folder = digits_folder(work / "digits")
    memory = data.load("digits", image_size=32, batch_size=batch)
    fast = data.load(f"dir:{folder}", image_size=32, batch_size=batch)
    general = data.load(f"dir:{folder}", image_size=32, batch_size=batch)
    general._images.plain = False  # what every folder took before: the format switch, a resize per image
    pooled = _pooled(data.load(f"dir:{folder}", image_size=32, batch_size=batch))
    per_file = _per_file(data.load(f"dir:{folder}", image_size=32, batch_size=batch))
    paths = tf.constant(fast._images.paths[fast.indices["train"]])
    files = tf.data.Dataset.from_tensor_slices(paths)
    pipelines = {
        "in memory (train)": memory.train, "dir: stream (train)": fast.train,
        "dir: stream, one read_file + decode_png per file (train)": per_file.train,
        "dir: stream, decoding map on a thread pool (train)": pooled.train,
        "dir: stream, general decoder (train)": general.train,
        "tf.io.read_file alone": files.map(tf.io.read_file, num_parallel_calls=tf.data.AUTOTUNE).batch(batch),
        "tf.io.read_file alone, inline map": files.map(tf.io.read_file).batch(batch),
        "read_file + decode_png": files.map(lambda f: tf.io.decode_png(tf.io.read_file(f), channels=1),
                                            num_parallel_calls=tf.data.AUTOTUNE).batch(batch)}
    n = len(fast.indices["train"])
    cpu = {name: [] for name in pipelines}
    for ds in pipelines.values():
        for _ in ds:  # warm-up
            pass
    names = [str(f) for f in fast._images.paths[fast.indices["train"]]]

    def os_read():  # the same files read by the operating system's calls from Python, for scale
        for name in names:
            fd = os.open(name, os.O_RDONLY)
            os.read(fd, 1 << 20)
            os.close(fd)
        return ()
    pipelines["os.open + read + close (Python, no TensorFlow)"] = os_read
    cpu[next(reversed(pipelines))] = []
    for _ in range(rounds):
        for name, ds in pipelines.items():
            start = _cpu_seconds()
            for _ in (ds() if callable(ds) else ds):
                pass
            cpu[name].append(1e6 * (_cpu_seconds() - start) / n)
    return [{"pipeline": name, "best_cpu_us_per_image": round(min(v), 1),
             "median_cpu_us_per_image": round(float(np.median(v)), 1)} for name, v in cpu.items()]


def pipeline_cpu_only(args) -> int:
    last = Path(__file__).resolve().parent / "results" / f"{args.result}.json"
    previous = json.loads(last.read_text(encoding="utf-8")) if last.exists() else {}
    previous.pop("machine", None)
    previous.pop("date", None)
    with tempfile.TemporaryDirectory() as tmp:
        rows = pipeline_cpu(max(args.rounds, 3), args.batch_size, Path(tmp))
    print(table(rows, list(rows[0])))
    path = write_result(args.result, {**previous, "pipeline_cpu": rows, "pipeline_cpu_rounds": max(args.rounds, 3),
                                      "pipeline_cpu_load": os.getloadavg()})
    print(f"wrote {path}")
    return 0


def throughput_only(args) -> int:
    last = Path(__file__).resolve().parent / "results" / f"{args.result}.json"
    previous = json.loads(last.read_text(encoding="utf-8")) if last.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        speed = throughput(args.rounds, args.batch_size, Path(tmp), args.epochs, args.paths.split(","),
                           args.augments.split(",") if args.augments else None)
    print(table(speed, [k for k in speed[0] if k != "rounds"]))
    keep = {key: previous[key] for key in ("memory", "rss_difference_mb", "pipeline_cpu", "pipeline_cpu_rounds",
                                           "pipeline_cpu_load") if key in previous}
    if keep:
        keep["memory_measured"] = previous.get("memory_measured", previous.get("date"))
    path = write_result(args.result, {**keep, "throughput": speed, "rounds": args.rounds, "epochs": args.epochs,
                                      "batch_size": args.batch_size, "machine_load": os.getloadavg(),
                                      "host": machine()})
    print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--epochs", type=int, default=5, help="epochs per timed fit (one iterator)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--paths", default="memory,dir,tfrecord,cache",
                   help=f"throughput paths, of {','.join(PATHS)} (memory is always measured)")
    p.add_argument("--result", default="streaming", help="name of the result file in benchmarks/results")
    p.add_argument("--augments", default=None, help="throughput augmentations (default: the app's, then none)")
    p.add_argument("--data", default=None, help="folder for the generated JPEGs (kept; default: a temp folder)")
    p.add_argument("--throughput-only", action="store_true",
                   help="measure the throughput part only; keep the memory part of the last result file")
    p.add_argument("--pipeline-cpu", action="store_true",
                   help="measure the pipelines' CPU per image alone; merge into the last result file")
    p.add_argument("--epoch-run", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.epoch_run:
        print(json.dumps(epoch_run(args.epoch_run, 224, args.batch_size)))
        return 0
    if args.pipeline_cpu:
        return pipeline_cpu_only(args)
    if args.throughput_only:
        return throughput_only(args)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data or Path(tmp) / "jpegs") / f"photos{args.files}"
        make_jpegs(root, args.files)
        mem = memory(root, args.files)
        speed = throughput(args.rounds, args.batch_size, Path(tmp), args.epochs, args.paths.split(","),
                           args.augments.split(",") if args.augments else None)
    print(table(mem, ["files", "train_images", "seconds", "peak_rss_mb", "val_accuracy"]))
    print(f"peak RSS difference: {mem[1]['peak_rss_mb'] - mem[0]['peak_rss_mb']:.0f} MB (goal <= 400); the decoded "
          f"images would take {mem[1]['in_memory_decoded_mb']} MB in memory")
    print(table(speed, [k for k in speed[0] if k != "rounds"]))
    path = write_result(args.result, {"memory": mem, "rss_difference_mb": mem[1]["peak_rss_mb"] - mem[0]["peak_rss_mb"],
                                      "throughput": speed, "rounds": args.rounds, "epochs": args.epochs,
                                      "batch_size": args.batch_size,
                                      "machine_load": os.getloadavg(), "host": machine()})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
