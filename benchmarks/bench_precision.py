"""Training images/s with mixed precision and XLA, on whatever device this machine has.

For LeNet-5 (32x32 gray, the ``lenet_train`` app's model), AlexNet (32x32 gray, the
``alexnet_train`` app's model) and the Siamese tower (16x16 gray ``siamese_triplet`` embedding
trained with the supervised contrastive loss, as ``siamese_train`` does), `training.fit` runs
``--steps`` steps per epoch on in-memory batches of ``--batch-size`` for every precision
(``float32``, ``mixed_float16``, ``mixed_bfloat16``) with and without ``jit_compile`` (XLA). The
rate is the best of ``--epochs - 1`` epochs after a warm-up epoch (tracing, compiling). The device
is printed: on a CPU-only machine the figures are CPU figures (``mixed_float16`` emulates float16
in software there and is expected to be slow); run it on a machine with a GPU for GPU figures.

    python -m benchmarks.bench_precision [--steps 20] [--epochs 3] [--models lenet,alexnet,siamese] [--merge]

``--merge`` keeps the rows of other models already in ``results/precision.json`` (measured on
the same device by an earlier run), so a slow model can be measured on its own.
"""

from __future__ import annotations

import argparse
import json
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


def measure(name, precision, jit, *, steps, epochs, batch) -> float:
    import keras
    import tensorflow as tf

    from keras_cv_apps import training

    build, (x, y), loss = _setup(name)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(batch).prefetch(tf.data.AUTOTUNE)
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    training.set_seed(0)
    with tempfile.TemporaryDirectory() as run_dir:
        training.fit(build, ds, run_dir=run_dir, epochs=epochs, steps_per_epoch=steps, schedule="constant", loss=loss,
                     precision=precision, jit_compile=True if jit else "auto", extra_callbacks=[Timer()], verbose=0)
    return steps * batch / min(times[1:])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--epochs", type=int, default=3)
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
                rate = measure(name, precision, jit, steps=args.steps, epochs=args.epochs, batch=args.batch_size)
                base = base or rate
                rows.append({"model": name, "precision": precision, "xla": "yes" if jit else "no",
                             "images_per_s": round(rate), "vs_float32": round(rate / base, 2)})
                print(rows[-1], flush=True)
    earlier = RESULTS / "precision.json"
    if args.merge and earlier.exists() and json.loads(earlier.read_text())["device"] == device:
        names = args.models.split(",")
        rows = [r for r in json.loads(earlier.read_text())["rows"] if r["model"] not in names] + rows
    print(table(rows, ["model", "precision", "xla", "images_per_s", "vs_float32"]))
    path = write_result("precision", {"device": device, "rows": rows, "steps": args.steps, "epochs": args.epochs,
                                      "batch_size": args.batch_size})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
