"""Why the deeper b-family variants need identity-initialised residual blocks on short runs.

Trains ``effnet_b1`` on digits at its benchmark size (40x40) with `bench_mobile`'s recipe (Adam
2e-3, warm-up + cosine over 30 epochs, label smoothing 0.1, batch 64) for the first few epochs
only, once with the family's default (``zero_init=True``: the last batch-norm scale of every
block with a shortcut starts at zero, so each block starts as the identity) and once with the
paper's initialisation (``zero_init=False``, what the family did before), and records per epoch
the training accuracy (training mode), the accuracy of the same weights in inference mode on the
training split (a batch-norm statistics mismatch would show as a gap between the two) and the
validation accuracy.

    python -m benchmarks.bench_effnet_init [--model effnet_b1] [--epochs 4] [--lr 2e-3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._util import table, write_result
from benchmarks.bench_mobile import DATASETS, FIT, image_size


def probe_run(model: str, zero_init: bool, *, epochs: int, schedule_epochs: int, learning_rate: float, seed: int):
    import keras

    from keras_cv_apps import data, models, training

    spec, base, _, augment = DATASETS["digits"]
    size = image_size(model, base)
    cfg = models.get_cfg(model)
    training.set_seed(seed)
    splits = data.load(spec, image_size=size, channels=cfg.image_shape[2], scale=cfg.scale, seed=seed,
                       batch_size=64, augment=augment)
    x_train, y_train = splits.arrays("train")
    rows = []

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            inference = self.model.predict(x_train, verbose=0, batch_size=256).argmax(1)
            rows.append({"model": model, "zero_init": zero_init, "epoch": epoch + 1,
                         "train_acc": round(float(logs["accuracy"]), 3), "train_loss": round(float(logs["loss"]), 3),
                         "train_acc_inference": round(float(np.mean(inference == y_train)), 3),
                         "val_acc": round(float(logs["val_accuracy"]), 3)})
            if epoch + 1 >= epochs:  # the schedule spans schedule_epochs: stop after the first ones
                self.model.stop_training = True

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        training.fit(lambda: models.create(model, num_classes=splits.num_classes, image_shape=splits.image_shape,
                                           zero_init=zero_init),
                     splits, run_dir=Path(tmp) / "run", epochs=schedule_epochs, verbose=0,
                     extra_callbacks=[Probe()], **{**FIT, "learning_rate": learning_rate})
    keras.backend.clear_session()
    return rows, round(time.perf_counter() - start, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="effnet_b1", choices=[f"effnet_b{phi}" for phi in range(4)])
    parser.add_argument("--epochs", type=int, default=4, help="epochs run (of the 30-epoch schedule)")
    parser.add_argument("--lr", type=float, default=FIT["learning_rate"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows, seconds = [], {}
    for zero_init in (True, False):
        got, seconds[str(zero_init)] = probe_run(args.model, zero_init, epochs=args.epochs,
                                                 schedule_epochs=DATASETS["digits"][2], learning_rate=args.lr,
                                                 seed=args.seed)
        rows += got
    print(table(rows, ["model", "zero_init", "epoch", "train_loss", "train_acc", "train_acc_inference", "val_acc"]))
    payload = {"rows": rows, "seconds": seconds, "recipe": {**FIT, "learning_rate": args.lr},
               "schedule_epochs": DATASETS["digits"][2],
               "load_avg_1_5_15": [round(v, 2) for v in os.getloadavg()]}
    print(f"results: {write_result(f'effnet_init_{args.model}', payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
