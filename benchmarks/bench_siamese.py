"""One-shot accuracy of the siamese embedding vs baselines on `digits`, seeds 0 and 1.

Protocol (every row, same test split and same seeded episodes): train on classes 0-6 only;
on the test images of the held-out classes 7-9, 3-way 1-shot episode accuracy (one random
support per class, one random query, nearest support wins) and verification ROC AUC over all
their pairs; on the test images of all classes, 10-way 1-shot accuracy.

Rows:
- ``siamese_train``: ``python -m apps.siamese_train --seed S`` with the app's defaults (read from
  its metrics.json; wall time includes start-up, training, evaluation and both exports), plus the
  int8 TFLite embedding's one-shot accuracy relative to float32.
- ``raw_pixels``: nearest neighbour on the scaled pixels at the app's image size.
- ``hog``: nearest neighbour on HOG descriptors (scikit-image).
- ``kerasio_contrastive``: the keras-io "siamese contrastive" architecture (BN, conv 4@5x5 tanh,
  avg-pool, conv 16@5x5 tanh, avg-pool, BN, Dense 10 tanh; distance -> BN -> sigmoid),
  28x28, contrastive loss on balanced pairs, RMSprop, batch 16, 10 epochs.
- ``softmax_penultimate``: LeNet-5 (ReLU, max-pool) trained as a 7-class softmax classifier
  with light augmentation; its L2-normalised 84-unit penultimate layer as the embedding.

    python -m benchmarks.bench_siamese [--seeds 0 1] [--episodes 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._util import PY, run_timed, table, write_result

HELD_OUT = [7, 8, 9]


def _scores(dist, labels, episodes, seed):
    """The three figures of the protocol from an (n, n) distance matrix of the test images."""
    from keras_cv_apps.metrics import verification as ver

    held = np.isin(labels, HELD_OUT)
    i, j, same = ver.verification_pairs(labels[held], seed=seed)
    auc = ver.verification_metrics(dist[held][:, held][i, j], same)["roc_auc"]
    run = dict(episodes=episodes, seed=seed)
    return {"3way_1shot_%": round(100 * ver.episode_accuracy_from_distances(
                dist[held][:, held], labels[held], n_way=3, **run), 1),
            "held_out_auc": round(auc, 3),
            "10way_1shot_%": round(100 * ver.episode_accuracy_from_distances(dist, labels, n_way=10, **run), 1)}


def _euclidean(emb):
    from keras_cv_apps.metrics.verification import distance_matrix

    return distance_matrix(emb)


def _hog(images):
    from skimage.feature import hog

    return np.stack([hog(im[..., 0], orientations=9, pixels_per_cell=(4, 4), cells_per_block=(2, 2))
                     for im in images])


def _seen(x, y):
    keep = ~np.isin(y, HELD_OUT)
    return x[keep], y[keep]


def _kerasio_contrastive(seed, run_dir):
    """keras-io's siamese_contrastive network (rebuilt with this package's serializable parts)."""
    import keras
    from keras import layers

    from keras_cv_apps import data, training
    from keras_cv_apps.data import pairs
    from keras_cv_apps.layers.distance import EuclideanDistance
    from keras_cv_apps.losses.metric_learning import ContrastiveLoss

    training.set_seed(seed)
    splits = data.load("digits", image_size=28, seed=seed)
    x, y = _seen(*splits.arrays("train", scaled=False))
    inp = keras.Input((28, 28, 1))
    h = layers.BatchNormalization()(inp)
    h = layers.AveragePooling2D(2)(layers.Conv2D(4, 5, activation="tanh")(h))
    h = layers.AveragePooling2D(2)(layers.Conv2D(16, 5, activation="tanh")(h))
    h = layers.Dense(10, activation="tanh")(layers.BatchNormalization()(layers.Flatten()(h)))
    tower = keras.Model(inp, h)
    a, b = keras.Input((28, 28, 1)), keras.Input((28, 28, 1))
    d = EuclideanDistance()([tower(a), tower(b)])
    model = keras.Model([a, b], layers.Dense(1, activation="sigmoid")(layers.BatchNormalization()(d)))
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss=ContrastiveLoss(margin=1.0))
    # keras-io's labels are 1 = same, with the loss terms swapped: its sigmoid output is a
    # similarity (same -> 1). ContrastiveLoss on "different" labels is exactly that loss.
    ds = pairs.pair_dataset(x, y, batch_size=16, seed=seed, preprocessing=splits.preprocessing)
    ds = ds.map(lambda ab, same: (ab, 1.0 - same))
    model.fit(ds, epochs=10, steps_per_epoch=2 * len(y) // 16, verbose=0)
    # keras-io scores a pair by the head's similarity output, a monotonic map of the distance
    # whose direction the BatchNormalization may flip; dissimilarity = 1 - similarity.
    x_test, y_test = splits.arrays("test")
    dist = _euclidean(tower.predict(x_test, verbose=0))
    d_in = keras.Input((1,))
    head = keras.Model(d_in, model.layers[-1](model.layers[-2](d_in)))  # BatchNorm -> sigmoid
    similarity = head.predict(dist.reshape(-1, 1), verbose=0, batch_size=8192).reshape(dist.shape)
    return 1.0 - similarity, y_test


def _softmax_penultimate(seed, run_dir):
    import keras
    import tensorflow as tf

    from keras_cv_apps import data, models, training

    training.set_seed(seed)
    splits = data.load("digits", image_size=32, seed=seed)
    augment = data.build_augmenter("light", seed=seed)

    def feed(split, train):
        x, y = _seen(*splits.arrays(split, scaled=False))
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        ds = ds.shuffle(len(y), seed=seed) if train else ds
        return ds.batch(64).map(lambda a, b: (data.scale_images(augment(tf.cast(a, tf.float32))
                                                                if train else a, "unit"), b))

    model = models.create("lenet5", num_classes=7, image_shape=(32, 32, 1), activation="relu", pooling="max")
    training.fit(model, (feed("train", True), feed("val", False)), run_dir=run_dir, epochs=40,
                 learning_rate=3e-3, schedule="cosine", verbose=0, patience=40)
    features = keras.Model(model.input, keras.layers.UnitNormalization()(model.get_layer("f6").output))
    x_test, y_test = splits.arrays("test")
    return _euclidean(features.predict(x_test, verbose=0)), y_test


def _pixel_baselines(seed, image_size):
    from keras_cv_apps import data

    splits = data.load("digits", image_size=image_size, seed=seed)
    x_test, y_test = splits.arrays("test")
    raw, _ = splits.arrays("test", scaled=False)
    return {"raw_pixels": (_euclidean(x_test.reshape(len(x_test), -1)), y_test),
            "hog": (_euclidean(_hog(raw)), y_test)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--episodes", type=int, default=1000)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            out = Path(tmp) / f"seed{seed}"
            seconds, done = run_timed([PY, "-m", "apps.siamese_train", "--seed", str(seed), "--output", str(out),
                                       "--episodes", str(args.episodes), "--quiet"])
            if done.returncode != 0:
                raise SystemExit(f"siamese_train seed {seed} failed:\n{done.stderr[-2000:]}")
            m = json.loads((out / "metrics.json").read_text())
            test, lite = m["test"], m["exports"]
            int8_ratio = (lite["embedding_int8.tflite"]["one_shot"]["held_out"]
                          / lite["embedding.tflite"]["one_shot"]["held_out"]
                          if {"embedding_int8.tflite", "embedding.tflite"} <= set(lite) else "")
            rows.append({"method": "siamese_train", "seed": seed,
                         "3way_1shot_%": round(100 * test["held_out"]["3way_1shot"], 1),
                         "held_out_auc": round(test["held_out"]["verification"]["roc_auc"], 3),
                         "10way_1shot_%": round(100 * test["all"]["10way_1shot"], 1),
                         "int8/float32": round(int8_ratio, 4) if int8_ratio != "" else "",
                         "wall_s": round(seconds, 1)})
            for name, (emb, labels) in _pixel_baselines(seed, 16).items():
                rows.append({"method": name, "seed": seed, **_scores(emb, labels, args.episodes, seed)})
            for name, fn in (("kerasio_contrastive", _kerasio_contrastive),
                             ("softmax_penultimate", _softmax_penultimate)):
                start = time.perf_counter()
                emb, labels = fn(seed, Path(tmp) / f"{name}{seed}")
                rows.append({"method": name, "seed": seed, **_scores(emb, labels, args.episodes, seed),
                             "wall_s": round(time.perf_counter() - start, 1)})
            print(table(rows[-5:], list(rows[0])))
    columns = ["method", "seed", "3way_1shot_%", "held_out_auc", "10way_1shot_%", "int8/float32", "wall_s"]
    print(table(sorted(rows, key=lambda r: (r["method"] != "siamese_train", r["method"], r["seed"])), columns))
    print(f"results: {write_result('siamese', {'episodes': args.episodes, 'rows': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
