"""How far apart do one and two workers end, and would a broken two-worker setup show it?

LeNet-5 (`apps.lenet_train`) on scikit-learn's digits, trained by one worker at batch ``2 x B`` and
learning rate ``2 x L``, and by two workers on loopback ports (``--strategy multiworker``, TF_CONFIG)
at ``--batch-size B --learning-rate L`` each (the app scales the rate linearly: the same global batch
and rate), for each seed of ``--seeds`` (the seed fixes the split, the initialisation and the shuffle).
Two broken variants of the two-worker run show what the suite's "within one point" check can catch:

- ``unscaled``: the workers train at the rate one worker uses at its own batch (``L`` instead of
  ``2 x L``), as if the rate were not scaled with the workers;
- ``unsharded``: every worker reads the whole dataset (`tf.data`'s auto-sharding turned off), so the
  two workers train on the same half-batches.

The defaults are the settings of the suite's test (`tests/apps/test_multiworker.py`); ``--epochs 40
--steps-per-epoch 0 --augment digits --image-size 16 --batch-size 64 --learning-rate 0.002`` is the
`large` test (the app's defaults). Prints a table (test top-1 of each run and its difference to one
worker, the difference of the last epoch's mean training loss, the seconds) and writes
``benchmarks/results/multiworker.json`` (``--name`` another file).

    python -m benchmarks.bench_multiworker [--seeds 0,1,2] [--variants one,two,unscaled,unsharded]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._util import free_ports, loopback_tf_config, table, write_result

ROOT = Path(__file__).resolve().parents[1]
# a worker with tf.data's auto-sharding off: every worker reads all the data (the broken variant)
UNSHARDED = """
import sys, tensorflow as tf
cls = tf.distribute.MultiWorkerMirroredStrategy
original = cls.experimental_distribute_dataset
def unsharded(self, dataset, options=None):
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return original(self, dataset.with_options(opts), options)
cls.experimental_distribute_dataset = unsharded
from apps import lenet_train
raise SystemExit(lenet_train.main(sys.argv[1:]))
"""


def _command(argv, unsharded=False):
    return [sys.executable, *(["-c", UNSHARDED] if unsharded else ["-m", "apps.lenet_train"]), *argv]


def _run(argv, out: Path, *, workers: int, unsharded=False) -> dict:
    """Train into ``out`` with ``workers`` processes; its test top-1, seconds and the load after."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    argv = [*argv, "--output", str(out)]
    start = time.perf_counter()
    if workers == 1:
        procs = [subprocess.Popen(_command(argv), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)]
    else:
        ports = free_ports(workers)
        procs = []
        for i in range(workers):
            procs.append(subprocess.Popen(_command([*argv, "--strategy", "multiworker"], unsharded), cwd=ROOT,
                                          env={**env, "TF_CONFIG": loopback_tf_config(ports, i)},
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    logs = [p.communicate(timeout=1800)[0].decode(errors="replace") for p in procs]
    seconds = time.perf_counter() - start
    if any(p.returncode for p in procs):
        raise RuntimeError("a worker failed:\n" + "\n".join(log[-2000:] for log in logs))
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text())
    return {"top1": metrics["test"]["top1"], "seconds": round(seconds, 1), "load": round(os.getloadavg()[0], 2),
            "first_epoch_loss": round(history["loss"][0], 4), "last_loss": round(history["loss"][-1], 4)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--variants", default="one,two,unscaled,unsharded")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--steps-per-epoch", type=int, default=75, help="0: one pass over the data")
    p.add_argument("--batch-size", type=int, default=32, help="per worker")
    p.add_argument("--learning-rate", type=float, default=0.01, help="per worker flag (scaled by the workers)")
    p.add_argument("--image-size", type=int, default=16)
    p.add_argument("--augment", default="none")
    p.add_argument("--name", default="multiworker")
    args = p.parse_args(argv)

    common = ["--quiet", "--quantize", "none", "--image-size", str(args.image_size), "--augment", args.augment,
              "--epochs", str(args.epochs)]
    if args.steps_per_epoch:
        common += ["--steps-per-epoch", str(args.steps_per_epoch)]
    b, lr = args.batch_size, args.learning_rate
    variants = {
        "one": (1, ["--batch-size", str(2 * b), "--learning-rate", str(2 * lr)], False),
        "two": (2, ["--batch-size", str(b), "--learning-rate", str(lr)], False),
        "unscaled": (2, ["--batch-size", str(b), "--learning-rate", str(lr / 2)], False),
        "unsharded": (2, ["--batch-size", str(b), "--learning-rate", str(lr)], True),
    }
    chosen = args.variants.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in [int(s) for s in args.seeds.split(",")]:
            row = {"seed": seed}
            for name in chosen:
                workers, extra, unsharded = variants[name]
                res = _run([*common, *extra, "--seed", str(seed)], Path(tmp) / f"{name}-{seed}", workers=workers,
                           unsharded=unsharded)
                row[name] = res
                print(f"seed {seed} {name}: {res}", flush=True)
            rows.append(row)
    flat = []
    for row in rows:
        r = {"seed": row["seed"]}
        for name in chosen:
            r[f"{name} top-1 %"] = round(100 * row[name]["top1"], 2)
            if name != "one" and "one" in row:
                r[f"{name} - one"] = round(100 * (row[name]["top1"] - row["one"]["top1"]), 2)
                r[f"{name} - one, last loss"] = round(row[name]["last_loss"] - row["one"]["last_loss"], 4)
            r[f"{name} s"] = row[name]["seconds"]
        flat.append(r)
    columns = ["seed"] + [c for c in flat[0] if c != "seed"]
    print(table(flat, columns))
    path = write_result(args.name, {"settings": vars(args), "app_flags": common, "runs": rows, "table": flat})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
