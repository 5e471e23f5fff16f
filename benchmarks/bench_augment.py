"""How fast is the package's augmentation, and what does reproducibility cost? Two measurements in one run.

1. **Against albumentations** (a benchmark-only dependency, installed in its own venv): six ops on
   224x224 uint8 scikit-image photos, every image transformed (p = 1, matching parameters):
   HorizontalFlip, Affine, GaussianBlur (sigma ~ U(0.5, 2) and the same kernel on both sides, 2 floor(3.5
   sigma) + 1 taps), Erasing, RandomResizedCrop and Elastic. The package side
   is its batched ``tf.data`` pipeline (cached batches of 64 -> keyed ``map`` of the layer,
   parallel -> prefetch) on all cores of the machine (2); albumentations is its usual loop, one
   ``Compose`` call per image, in one process, results dropped (the goal's reference) and, as a
   second column, stacked into batches of 64 as training needs them. Keras core's nearest layer
   runs in the same pipeline as a third column, to show why the package has its own. Goal:
   package >= 1.0x the plain loop.
2. **Reproducible epochs**: the digits train pipeline (32x32, batch 64) with the ``light`` preset,
   keyed (one key per batch from the seed and the epoch: bit-identical epochs) vs. the same layers
   drawing from their own generators (not reproducible) vs. the pipeline as it was before keyed
   augmentation (TensorFlow's resampler, stateful). Goal: keyed costs <= 15% against the latter.

Each rate is the best of ``--rounds`` passes after a warm-up pass, the contenders measured in
alternation (the machine may be shared); column 1 also records the least CPU time per image of
each side (all threads of the process), which other jobs on the machine disturb much less.
Writes ``benchmarks/results/augment.json`` and ``augment.png`` (only ``augment_<ops>.json`` for ``--ops``).
Needs albumentations: ``python3 -m venv /work/venvs/albu`` with the project's site-packages in a
``.pth`` file, ``pip install --no-deps albumentations albucore`` plus its pure-Python deps, then run
this script with that venv's python; without it, column 1 is skipped.

    python -m benchmarks.bench_augment [--rounds 3] [--images 256]
    python -m benchmarks.bench_augment --standard   # the standard preset against its core-layer version
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

from benchmarks._util import RESULTS, table, write_result

SIZE, BATCH = 224, 64


def photos(n):
    import cv2
    import skimage.data

    names = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")
    base = []
    for name in names:
        image = getattr(skimage.data, name)()
        h, w = image.shape[:2]
        side = min(h, w)
        crop = image[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2]
        base.append(cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA))
    return np.stack([base[i % len(base)] for i in range(n)])


def package_ops():
    from keras_cv_apps import layers as L

    return {
        "HorizontalFlip": L.RandomMirror("horizontal", probability=1.0),
        "Affine": L.RandomAffine(rotation=15, translation=0.1, zoom=0.1),
        "GaussianBlur": L.RandomBlur(sigma=(0.5, 2.0), truncate=3.5),  # 2 floor(3.5 sigma) + 1 taps, as albumentations
        "Erasing": L.Erasing(area=(0.02, 0.33), aspect=(0.3, 3.3), probability=1.0),
        "RandomResizedCrop": L.RandomResizedCrop(scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)),
        "Elastic": L.RandomElastic(displacement=0.02, smoothness=0.1),
    }


def core_ops():
    import keras

    affine = [keras.layers.RandomRotation(15 / 360), keras.layers.RandomTranslation(0.1, 0.1),
              keras.layers.RandomZoom(0.1)]
    return {
        "HorizontalFlip": [keras.layers.RandomFlip("horizontal")],
        "Affine": affine,  # core has no one-warp affine layer: rotation, translation and zoom in turn
        "GaussianBlur": [keras.layers.RandomGaussianBlur(factor=1.0, kernel_size=7, sigma=(0.5, 2.0))],
        "Erasing": [keras.layers.RandomErasing(factor=(1.0, 1.0), scale=(0.02, 0.33), fill_value=0.0)],
        "Elastic": [keras.layers.RandomElasticTransform(factor=(1.0, 1.0), scale=0.5)],
    }


def albumentations_ops(A):
    # Elastic: N(0, 1) noise blurred with sigma 11 px has a standard deviation of 0.282 / 11; alpha 175 scales
    # it to ~4.5 px, the package layer's 0.02 x 224.
    return {
        "HorizontalFlip": A.HorizontalFlip(p=1.0),
        "Affine": A.Affine(rotate=(-15, 15), translate_percent=(-0.1, 0.1), scale=(0.9, 1.1), p=1.0),
        "GaussianBlur": A.GaussianBlur(sigma_limit=(0.5, 2.0), blur_limit=0, p=1.0),  # 2 floor(3.5 sigma) + 1 taps
        "Erasing": A.Erasing(scale=(0.02, 0.33), ratio=(0.3, 3.3), fill=0, p=1.0),
        "RandomResizedCrop": A.RandomResizedCrop(size=(SIZE, SIZE), scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), p=1.0),
        "Elastic": A.ElasticTransform(alpha=175, sigma=11, p=1.0),
    }


def pipeline(images, fn, keyed=True, cast_back=False, repeats=1):
    """Cached uint8 batches (``repeats`` passes over them) -> (keyed) map(fn) in parallel -> prefetch."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(images).batch(BATCH).cache().repeat(repeats)
    if keyed:
        ds = tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed=0, rerandomize_each_iteration=True))
        ds = ds.map(lambda x, r: fn(x, tf.bitcast(r, tf.int32)), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE)
    if cast_back:
        ds = ds.map(lambda x: tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8))
    return ds.prefetch(tf.data.AUTOTUNE)


def tf_timer(dataset):
    def run():
        for _ in dataset:
            pass
    return run


def albu_timer(transform, images, collate=False):
    """One ``transform`` call per image; with ``collate``, each ``BATCH`` results stacked into one
    array, as a training loop needs them (the plain loop lets every result be freed at once, so
    the allocator hands the same cache-hot buffer to the next image)."""
    def run():
        if not collate:
            for image in images:
                transform(image=image)["image"]
            return
        for start in range(0, len(images), BATCH):
            np.stack([transform(image=image)["image"] for image in images[start:start + BATCH]])
    return run


def best_rates(timers, n, rounds, cpu=None):
    """images/s of each timer, the best of ``rounds`` passes; with a dict ``cpu``, also the least
    CPU time (all threads of this process) per image in microseconds, which a shared machine
    disturbs much less than the wall clock."""
    for run in timers.values():
        run()
    best, least = {name: math.inf for name in timers}, {name: math.inf for name in timers}
    for _ in range(rounds):
        for name, run in timers.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
            least[name] = min(least[name], time.process_time() - start_cpu)
    if cpu is not None:
        cpu.update({name: 1e6 * seconds / n for name, seconds in least.items()})
    return {name: n / seconds for name, seconds in best.items()}


class _TFAffine:
    """The train pipeline's affine augmentation before keyed layers: one TensorFlow resampling per
    batch (``keras.ops.image.affine_transform``) with angles and shifts from a stateful generator."""

    def __init__(self, rotation, translation, zoom, seed):
        import keras

        self.limits, self.generator = (math.radians(rotation), translation, zoom), keras.random.SeedGenerator(seed)

    def __call__(self, images):
        import keras
        from keras import ops

        n, h, w = ops.shape(images)[0], 32.0, 32.0
        u = keras.random.uniform((n, 4), -1.0, 1.0, seed=self.generator)
        angle, scale = u[:, 0] * self.limits[0], 1.0 + u[:, 3] * self.limits[2]
        cos, sin = ops.cos(angle) / scale, ops.sin(angle) / scale
        px, py = (w - 1) / 2 + u[:, 1] * self.limits[1] * w, (h - 1) / 2 + u[:, 2] * self.limits[1] * h
        zeros = ops.zeros_like(cos)
        matrices = ops.stack([cos, -sin, (w - 1) / 2 - (cos * px - sin * py), sin, cos,
                              (h - 1) / 2 - (sin * px + cos * py), zeros, zeros], axis=1)
        return ops.clip(ops.image.affine_transform(images, matrices, fill_mode="constant"), 0.0, 255.0)


def reproducibility_cost(rounds):
    """images/s of the digits train pipeline: keyed, unkeyed (same layers), and as it was before."""
    import tensorflow as tf

    from keras_cv_apps import data

    splits = data.load("digits", image_size=32, batch_size=BATCH, augment="light", seed=0)
    x, y = splits.arrays("train", scaled=False)
    old = _TFAffine(10, 0.1, 0.1, seed=0)

    def unkeyed(fn):
        def prepare(images, labels):
            return fn(tf.cast(images, tf.float32)) / 255.0, labels
        return (tf.data.Dataset.from_tensor_slices((x, y)).cache().shuffle(len(x), seed=0)
                .batch(BATCH).map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))

    timers = {"keyed (reproducible)": tf_timer(splits.train),
              "same layers, unkeyed": tf_timer(unkeyed(splits.augmenter)),
              "before: TF resampler, stateful": tf_timer(unkeyed(old))}
    rates = best_rates(timers, len(x), rounds * 3)
    return {"images_per_s": {k: round(v) for k, v in rates.items()},
            "keyed_over_before": round(rates["keyed (reproducible)"] / rates["before: TF resampler, stateful"], 3),
            "keyed_over_unkeyed": round(rates["keyed (reproducible)"] / rates["same layers, unkeyed"], 3)}


def profile(images, rounds, batches_per_pass=4):
    """Where a batched pipeline's time goes, CPU us per image (least over ``rounds`` passes, the
    entries of each group in alternation).

    1. The ``tf.data`` pipeline with no work (identity map; a ``numpy_function`` handing its input
       back or a recycled buffer), and the flip's OpenCV call in a plain loop into one reused
       (cache-hot) output buffer, into six in turn (as batches in flight use them), through a
       cache-hot scratch of two images copied on into six, and a plain copy into six; the flip and the
       copy also on two threads at once (each its own batches and buffers): whether a second core
       writes batches any faster, or memory bandwidth is the limit.
    2. The flip layer in the benchmark's pipeline: as measured (a new iterator per pass), one
       iterator for eight passes (its start-up shared by 8x the images), the same flip as a bare
       ``numpy_function`` (its OpenCV call's own thread CPU time recorded) and with the recycled
       buffers handed back last-freed-first instead of first-found.
    3. TensorFlow's own flips of one batch (``tf.reverse``, ``tf.gather`` on the width axis, and a
       byte reverse of ``[B, H, W * 3]``, which swaps the channels too: a bound for reverse-then-fix).
    Also the CPU milliseconds of creating the pipeline's iterator (``iter``), paid once per pass."""
    import itertools
    import sys
    import threading

    import cv2
    import tensorflow as tf

    from keras_cv_apps.layers import augment_base

    def nf(fn):
        def call(x, key):
            out = tf.numpy_function(fn, [x, key], tf.uint8, stateful=False)
            out.set_shape(x.shape)
            return out
        return call

    n_images = len(images) * batches_per_pass
    batches = [images[i:i + BATCH] for i in range(0, len(images), BATCH)] * batches_per_pass
    outputs = [np.ones((BATCH,) + images.shape[1:], np.uint8) for _ in range(6)]
    scratch = np.empty((2,) + images.shape[1:], np.uint8)

    def loop(op, buffers, threads=1):
        if threads > 1:  # the batches dealt out to ``threads`` threads, each with its own buffers
            parts = [loop_over(op, buffers[k::threads], batches[k::threads]) for k in range(threads)]

            def run_threads():
                workers = [threading.Thread(target=part) for part in parts]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
            return run_threads
        return loop_over(op, buffers, batches)

    def loop_over(op, buffers, batches):
        def run():
            for j, b in enumerate(batches):
                out = buffers[j % len(buffers)]
                n, h, w, c = b.shape
                if op == "flip":
                    cv2.flip(b.reshape(n * h, w, c), 1, dst=out.reshape(n * h, w, c))
                elif op == "scratch":
                    for i in range(0, n, len(scratch)):
                        cv2.flip(b[i:i + 2].reshape(-1, w, c), 1, dst=scratch.reshape(-1, w, c))
                        np.copyto(out[i:i + 2], scratch)
                else:
                    np.copyto(out, b)
        return run

    def per_image():
        for b in batches:
            for image in b:
                cv2.flip(image, 1)

    flip_cpu = {"seconds": 0.0, "images": 0}
    lock = threading.Lock()

    def bare_flip(a, key, allocate=augment_base.empty_aligned):
        out = allocate(a.shape, a.dtype)
        n, h, w, c = a.shape
        start = time.thread_time()
        cv2.flip(a.reshape(n * h, w, c), 1, dst=out.reshape(n * h, w, c))
        with lock:
            flip_cpu["seconds"] += time.thread_time() - start
            flip_cpu["images"] += n
        return out

    pool, stamps, counter = [], {}, itertools.count()

    def last_freed_first(shape, dtype):  # as augment_base.empty_aligned, but the idle buffer handed out last
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        with lock:
            idle = [b for b in pool if sys.getrefcount(b) <= augment_base._IDLE_REFS and b.nbytes == nbytes + 64]
            buffer = max(idle, key=lambda b: stamps[id(b)]) if idle else np.empty(nbytes + 64, np.uint8)
            if not idle:
                pool.append(buffer)
            stamps[id(buffer)] = next(counter)
        start = (-buffer.ctypes.data) % 64
        return buffer[start:start + nbytes].view(dtype).reshape(shape)

    layer = package_ops()["HorizontalFlip"]

    def flip_layer(x, key):
        return layer(x, training=True, key=key)

    long_pass = 8
    cpu = {}
    groups = [
        {"tf.data, identity map": tf_timer(pipeline(images, lambda x, key: x, repeats=batches_per_pass)),
         "tf.data, numpy_function returning its input": tf_timer(
             pipeline(images, nf(lambda a, k: a), repeats=batches_per_pass)),
         "tf.data, numpy_function returning a recycled buffer": tf_timer(
             pipeline(images, nf(lambda a, k: augment_base.empty_aligned(a.shape, a.dtype)), repeats=batches_per_pass)),
         "loop: flip into one reused buffer": loop("flip", outputs[:1]),
         "loop: flip into six buffers in turn": loop("flip", outputs),
         "loop: flip two images at a time into a hot scratch, copied into six buffers": loop("scratch", outputs),
         "loop: copy into six buffers in turn": loop("copy", outputs),
         "loop: one cv2.flip per image into a new array (as albumentations calls it)": per_image,
         "loop, two threads: flip into six buffers in turn": loop("flip", outputs, threads=2),
         "loop, two threads: copy into six buffers in turn": loop("copy", outputs, threads=2)},
        {"tf.data, flip layer, a new iterator per pass (as measured)": tf_timer(
            pipeline(images, flip_layer, repeats=batches_per_pass)),
         f"tf.data, flip layer, one iterator for {long_pass} passes": tf_timer(
             pipeline(images, flip_layer, repeats=batches_per_pass * long_pass)),
         "tf.data, bare numpy_function flip": tf_timer(pipeline(images, nf(bare_flip), repeats=batches_per_pass)),
         "tf.data, bare flip, recycled buffers last-freed-first": tf_timer(
             pipeline(images, nf(lambda a, k: bare_flip(a, k, last_freed_first)), repeats=batches_per_pass))},
    ]
    wall = {}
    for timers in groups:
        part = {}
        rates = best_rates(timers, n_images, rounds, part)
        cpu.update(part)
        wall.update({name: 1e6 / rate for name, rate in rates.items()})
    cpu[f"tf.data, flip layer, one iterator for {long_pass} passes"] /= long_pass
    wall[f"tf.data, flip layer, one iterator for {long_pass} passes"] /= long_pass
    bare, inside = tf_timer(pipeline(images, nf(bare_flip), repeats=batches_per_pass)), []
    for _ in range(rounds):
        flip_cpu["seconds"], flip_cpu["images"] = 0.0, 0
        bare()
        inside.append(1e6 * flip_cpu["seconds"] / flip_cpu["images"])
    cpu["of which cv2.flip inside the numpy_function (its thread's CPU)"] = min(inside)

    batch = tf.constant(images[:BATCH])
    flat, reverse = tf.reshape(batch, [BATCH, SIZE, -1]), tf.range(SIZE - 1, -1, -1)
    native = {"TensorFlow: tf.reverse on the width axis": tf.function(lambda: tf.reverse(batch, [2])),
              "TensorFlow: tf.gather on the width axis": tf.function(lambda: tf.gather(batch, reverse, axis=2)),
              "TensorFlow: byte reverse of [B, H, W*3] (channels swapped too)": tf.function(
                  lambda: tf.reverse(flat, [2]))}
    for name, fn in native.items():
        fn()
        least = min(_cpu_seconds(fn) for _ in range(rounds))
        cpu[name] = 1e6 * least / BATCH
    ds = pipeline(images, flip_layer, repeats=batches_per_pass)
    starts = []
    for _ in range(rounds):
        start = time.process_time()
        iterator = iter(ds)
        starts.append(time.process_time() - start)
        for _ in iterator:
            pass
    rounded = {name: round(us, 1) for name, us in cpu.items()}
    return rounded, round(1e3 * min(starts), 2), {name: round(us, 1) for name, us in wall.items()}


def standard_preset(images, rounds, repeats):
    """The ``standard`` photo preset in the train map (float batches of 64, keyed, parallel) against the
    same preset with core's ``RandomFlip`` and ``RandomContrast`` (what it was before 2026-12-03), and
    each contrast layer alone: images/s (best of ``rounds`` passes of ``repeats`` times the images) and CPU
    µs per image (least)."""
    import keras
    import tensorflow as tf

    from keras_cv_apps import layers as L
    from keras_cv_apps.data import augment

    floats = images.astype(np.float32)

    def run(augmenter):
        ds = tf.data.Dataset.from_tensor_slices(floats).batch(BATCH).cache().repeat(repeats)
        ds = tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed=0, rerandomize_each_iteration=True))
        return tf_timer(ds.map(lambda x, r: augmenter(x, tf.bitcast(r, tf.int32)),
                               num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))

    before = [keras.layers.RandomFlip("horizontal", seed=0),
              L.RandomAffine(rotation=15, translation=0.1, zoom=0.15, fill_mode="reflect", seed=0),
              keras.layers.RandomContrast(0.2, seed=0), keras.layers.RandomBrightness(0.15, seed=0)]
    timers = {"standard now": run(augment.Augmenter([f(0) for f in augment.PRESETS["standard"]])),
              "standard before (core flip and contrast)": run(augment.Augmenter(before)),
              "package RandomContrast alone": run(augment.Augmenter([L.RandomContrast(contrast=(0.8, 1.2))])),
              "core RandomContrast alone": run(augment.Augmenter([keras.layers.RandomContrast(0.2, seed=0)]))}
    cpu = {}
    rates = best_rates(timers, len(floats) * repeats, rounds, cpu)
    return {name: {"images_per_s": round(rates[name]), "cpu_us_per_image": round(cpu[name], 1)} for name in timers}


def _ThreeChannelFlip(*args, **kwargs):
    """`RandomMirror` as it flipped before `augmentation._mirror_rgb`: one OpenCV three-channel flip
    of the whole batch (``cv2.flip`` moves three-byte pixels one value at a time)."""
    import cv2

    from keras_cv_apps import layers as L
    from keras_cv_apps.layers.augment_base import output_batch

    class ThreeChannelFlip(L.RandomMirror):
        def transform(self, images, rng, chosen):
            n, h, w, c = images.shape
            out = output_batch(images, ~chosen)
            cv2.flip(images.reshape(n * h, w, c), 1, dst=out.reshape(n * h, w, c))
            return out

    return ThreeChannelFlip(*args, **kwargs)


def _cpu_seconds(fn):
    start = time.process_time()
    np.asarray(fn())
    return time.process_time() - start


def _autogroup():
    """Whether Linux shares the CPU between sessions first (then ``nice`` in another session does not
    make room for this run, and a second thread of the package pipeline buys little on a busy machine)."""
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            return f.read().strip() == "1"
    except OSError:
        return None


def figure(rows, path):
    from keras_cv_apps._figures import new_figure, save_figure

    fig = new_figure((9, 3.6))
    ax = fig.subplots()
    names = [r["op"] for r in rows]
    columns = [("package", "tab:blue"), ("albumentations", "tab:orange"),
               ("albumentations, collated", "navajowhite"), ("keras core", "tab:grey")]
    width = 0.2
    for k, (column, colour) in enumerate(columns):
        values = [r.get(column) or 0 for r in rows]
        ax.bar(np.arange(len(rows)) + (k - 1.5) * width, values, width, label=column, color=colour)
    ax.set_xticks(np.arange(len(rows)), names, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("images / s (224x224 uint8)")
    ax.legend(fontsize=8)
    ax.set_title("Augmentation throughput, 2-core CPU: package tf.data pipeline vs albumentations per image")
    return save_figure(fig, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=256, help="distinct photos in memory")
    parser.add_argument("--repeats", type=int, default=4, help="passes over them per timed pass")
    parser.add_argument("--ops", default=None, help="comma list (default: all six); a subset skips the "
                        "reproducibility part and the figure and writes augment_<ops>.json")
    parser.add_argument("--name", default=None, help="stem of the result files (default: augment or augment_<ops>)")
    parser.add_argument("--profile", action="store_true", help="only the breakdown of a batch's cost (CPU us per "
                        "image of the pipeline without work, of the flip into hot or cold buffers and in the pipeline, "
                        "of TensorFlow's flips; the iterator's creation), written to augment_profile.json (or --name)")
    parser.add_argument("--standard", action="store_true", help="only the standard preset against its core-layer "
                        "version, written to augment_standard.json")
    args = parser.parse_args(argv)
    load_start = round(os.getloadavg()[0], 1)  # the machine may be shared: recorded with the result
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        import albumentations as A
    except ImportError:
        A = None
        print("albumentations is not installed here: its column is skipped (see the module docstring)")
    images = photos(args.images)
    if args.standard:
        rows = standard_preset(images, args.rounds, args.repeats)
        for name, row in rows.items():
            print(f"{name:45s} {row['images_per_s']:7d} images/s {row['cpu_us_per_image']:8.1f} us/image CPU")
        path = write_result(args.name or "augment_standard", {
            "image_size": SIZE, "batch_size": BATCH, "rounds": args.rounds,
            "images_per_pass": len(images) * args.repeats, "presets": rows,
            "load_average_1min": {"start": load_start, "end": round(os.getloadavg()[0], 1)}})
        print(f"wrote {path}")
        return 0
    if args.profile:
        cpu, start_ms, wall = profile(images, args.rounds, args.repeats)
        for name, us in cpu.items():
            print(f"{name:80s} {us:7.1f} us/image CPU, {wall.get(name, float('nan')):7.1f} wall")
        print(f"creating the flip pipeline's iterator: {start_ms} ms CPU")
        path = write_result(args.name or "augment_profile", {
                                                "image_size": SIZE, "batch_size": BATCH, "rounds": args.rounds,
                                                "images_per_pass": len(images) * args.repeats,
                                                "cpu_us_per_image": cpu, "wall_us_per_image": wall,
                                                "iterator_start_ms_cpu": start_ms,
                                                "sched_autogroup": _autogroup(),
                                                "load_average_1min": {"start": load_start,
                                                                      "end": round(os.getloadavg()[0], 1)}})
        print(f"wrote {path}")
        return 0
    ours, core = package_ops(), core_ops()
    albu = albumentations_ops(A) if A else {}
    rows = []
    for op in (args.ops.split(",") if args.ops else list(ours)):
        layer = ours[op]
        timers = {"package": tf_timer(pipeline(images, lambda x, key, layer=layer: layer(x, training=True, key=key),
                                               repeats=args.repeats))}
        if op == "HorizontalFlip":  # the layer's kernel before `_mirror_rgb`, in the same run
            before = _ThreeChannelFlip("horizontal", probability=1.0)
            timers["package, before"] = tf_timer(pipeline(
                images, lambda x, key: before(x, training=True, key=key), repeats=args.repeats))
        if op in albu:
            transform, repeated = A.Compose([albu[op]]), np.concatenate([images] * args.repeats)
            timers["albumentations"] = albu_timer(transform, repeated)
            timers["albumentations, collated"] = albu_timer(transform, repeated, collate=True)
        if op in core:
            def apply(x, chain=core[op]):
                x = tf.cast(x, tf.float32)
                for layer in chain:
                    x = layer(x, training=True)
                return x
            timers["keras core"] = tf_timer(pipeline(images[:BATCH], apply, keyed=False, cast_back=True))
        cpu = {}
        rates = best_rates(timers, len(images) * args.repeats, args.rounds, cpu)
        if "keras core" in rates:  # one batch per pass: core layers are slow
            rates["keras core"] *= BATCH / (len(images) * args.repeats)
        row = {"op": op, **{k: round(v) for k, v in rates.items()}}
        if "package, before" in rates:
            row["package / before"] = round(rates["package"] / rates["package, before"], 2)
            row["CPU us/image package, before"] = round(cpu["package, before"], 1)
        if "albumentations" in rates:
            row["package / albumentations"] = round(rates["package"] / rates["albumentations"], 2)
            row["package / albumentations, collated"] = round(rates["package"] / rates["albumentations, collated"], 2)
            row["CPU us/image package"] = round(cpu["package"], 1)
            row["CPU us/image albumentations"] = round(cpu["albumentations"], 1)
            row["CPU albumentations / package"] = round(cpu["albumentations"] / cpu["package"], 2)
        rows.append(row)
        print(row, flush=True)
    name = args.name or ("augment" if not args.ops else "augment_" + "_".join(op.lower() for op in args.ops.split(",")))
    repro = None if args.ops else reproducibility_cost(args.rounds)  # a subset of ops: the throughput part only
    print(repro)
    if not args.ops:
        figure(rows, RESULTS / f"{name}.png")
    columns = ["op", "package", "albumentations", "albumentations, collated", "keras core", "package / albumentations",
               "package / albumentations, collated", "CPU us/image package",
               "CPU us/image albumentations", "CPU albumentations / package"]
    text = table(rows, columns)
    goals = {"package_at_least_albumentations": {r["op"]: r.get("package / albumentations", 0) >= 1.0 for r in rows},
             "keyed_cost_at_most_15_percent": repro and repro["keyed_over_before"] >= 0.85}
    path = write_result(name, {"image_size": SIZE, "batch_size": BATCH, "images": args.images,
                                    "repeats": args.repeats,
                                    "rounds": args.rounds, "cpu_threads_tf": os.cpu_count(),
                                    "load_average_1min": {"start": load_start, "end": round(os.getloadavg()[0], 1)},
                                    "sched_autogroup": _autogroup(),
                                    "albumentations": getattr(A, "__version__", None), "throughput": rows,
                                    "reproducibility": repro, "goals": goals, "table": text})
    print(text)
    print(f"goals: {goals}\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
