"""Training images/s with mixed precision and XLA, on whatever device this machine has.

For LeNet-5 (32x32 gray, the ``lenet_train`` app's model), AlexNet (32x32 gray, the
``alexnet_train`` app's model) and the Siamese tower (16x16 gray ``siamese_triplet`` embedding
trained with the supervised contrastive loss, as ``siamese_train`` does), `training.fit` trains
on in-memory batches of ``--batch-size`` for every precision (``float32``, ``mixed_float16``,
``mixed_bfloat16``) with and without ``jit_compile`` (XLA). Each cell is bounded in time: after
``--warmup`` steps (tracing, compiling), the rate is the steps that finish within ``--budget``
seconds (at least one, at most ``--steps``) times the batch over their time; the step count and
seconds are recorded with it. The device is printed: on a CPU-only machine the figures are CPU
figures (``mixed_float16`` emulates float16 in software there and is expected to be slow); run it
on a machine with a GPU for GPU figures.

    python -m benchmarks.bench_precision [--budget 20] [--warmup 3] [--steps 2000]
        [--models lenet,alexnet,siamese] [--merge]

``--merge`` keeps the rows of other models already in ``results/precision.json`` (measured on
the same device by an earlier run), so a slow model can be measured on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from benchmarks._util import RESULTS, machine, table, write_result

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def _device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)} x{len(gpus)}"
    return f"CPU: {machine()['cpu']} ({machine()['cores']} cores)"


def _setup(name: str):
    """(builder, dataset, loss) for one model, on seeded random pixels and labels."""
    import numpy as np

    from keras_cv_apps import models

    if name == "siamese":
        from keras_cv_apps.losses.metric_learning import SupConLoss

        shape, classes, loss = (16, 16, 1), 7, SupConLoss(temperature=0.5)

        def build():
            return models.create("siamese_triplet", image_shape=shape)
    else:
        from apps.lenet_train import MODEL_KWARGS

        shape, classes, loss = (32, 32, 1), 10, None
        kwargs = MODEL_KWARGS if name == "lenet" else {"norm": "batchnorm", "dropout": 0.5}

        def build():
            return models.create("lenet5" if name == "lenet" else "alexnet", num_classes=classes,
                                 image_shape=shape, **kwargs)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (512, *shape)).astype("float32")
    y = rng.integers(0, classes, 512).astype("int32")
    return build, (x, y), loss


def measure(name, precision, jit, *, budget, warmup, steps, batch) -> dict:
    """Images/s of one cell: the steps that finish within ``budget`` seconds after ``warmup``
    steps (the first step past the budget ends the run, so a cell takes warm-up + budget + one step)."""
    import keras
    import tensorflow as tf

    from keras_cv_apps import training

    build, (x, y), loss = _setup(name)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(batch).prefetch(tf.data.AUTOTUNE)
    clock = {}

    class Budget(keras.callbacks.Callback):
        def on_train_batch_end(self, step, logs=None):
            now = time.perf_counter()
            if step + 1 == warmup:
                clock["warmup_s"], clock["start"] = now - clock["begin"], now
            elif step + 1 > warmup:
                clock["steps"], clock["seconds"] = step + 1 - warmup, now - clock["start"]
                if clock["seconds"] >= budget:
                    self.model.stop_training = True

        def on_train_begin(self, logs=None):
            clock["begin"] = time.perf_counter()

    training.set_seed(0)
    with tempfile.TemporaryDirectory() as run_dir:
        training.fit(build, ds, run_dir=run_dir, epochs=1, steps_per_epoch=warmup + steps, schedule="constant",
                     loss=loss, precision=precision, jit_compile=True if jit else "auto", extra_callbacks=[Budget()],
                     verbose=0)
    return {"images_per_s": round(clock["steps"] * batch / clock["seconds"], 1), "steps": clock["steps"],
            "seconds": round(clock["seconds"], 1), "warmup_s": round(clock["warmup_s"], 1),
            "load": round(os.getloadavg()[0], 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=float, default=20.0, help="seconds of timed steps per cell, after the warm-up")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (tracing, compiling)")
    p.add_argument("--steps", type=int, default=2000, help="at most this many timed steps per cell")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--models", default="lenet,alexnet,siamese")
    p.add_argument("--merge", action="store_true", help="keep other models' rows of an earlier run on this device")
    args = p.parse_args(argv)
    device = _device()
    print(f"device: {device}")
    rows = []
    for name in args.models.split(","):
        base = None
        for precision in PRECISIONS:
            for jit in (False, True):
                cell = measure(name, precision, jit, budget=args.budget, warmup=args.warmup, steps=args.steps,
                               batch=args.batch_size)
                base = base or cell["images_per_s"]
                rows.append({"model": name, "precision": precision, "xla": "yes" if jit else "no", **cell,
                             "vs_float32": round(cell["images_per_s"] / base, 2)})
                print(rows[-1], flush=True)
    earlier = RESULTS / "precision.json"
    if args.merge and earlier.exists() and json.loads(earlier.read_text())["device"] == device:
        names = args.models.split(",")
        rows = [r for r in json.loads(earlier.read_text())["rows"] if r["model"] not in names] + rows
    print(table(rows, ["model", "precision", "xla", "images_per_s", "vs_float32", "steps", "seconds", "warmup_s"]))
    path = write_result("precision", {"device": device, "rows": rows, "budget_s": args.budget, "warmup_steps":
                                      args.warmup, "max_steps": args.steps, "batch_size": args.batch_size,
                                      "machine_load": os.getloadavg()})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
