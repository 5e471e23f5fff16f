"""Explanations measured on `shapes_target`, where the class is the shape of one target among
distractors and the target's mask is known.

- model: a small GAP-headed CNN (3 blocks of two conv-BN-ReLU, 16/32/64 filters, the last
  block dilated, the last feature map 32x32 with an L1 penalty of 1e-5 on its activations, so
  that few places switch on) trained here on 3,000 images (seed 0) and tested on 500 others
  (seed 1); cached in runs/bench_explain/.
- localisation (the true class explained): pointing-game hit rate and relevance-mass accuracy
  per method, against a uniform random map on the same images: Grad-CAM, Grad-CAM++ and saliency
  on all 500 test images; SmoothGrad (16 samples), IG (32 steps) and occlusion (8 px patches,
  stride 8), which cost 16-64 model calls per image, on 100 of them (25 per class).
- faithfulness: deletion and insertion AUC of the class probability on those 100 (deletion with
  removed pixels set to the blurred image, the default, and for reference to zero and to the test
  images' mean colour), and ROAD (noisy linear imputation) MoRF / LeRF mean probability over
  10-90% removed on 40 of them, per method and for the random map; each paired with the random
  map per image (mean difference and its 95% interval).
- sanity (20 images): cascading randomisation from the output down; Spearman rho between the
  trained model's maps and the fully randomised model's.
- integrated gradients: completeness error at 64 steps per rule (20 images), and the time of our
  batched IG against keras-io's loop of one gradient call per path point (written below as that
  example does it), same model, images and process (3 images, best of 2 interleaved runs; --only-ig
  redoes this part alone).
- Grad-CAM diagnosis (all test images): relevance mass per class, per feature layer, per
  upsampling of the cell-grid map and within the mask grown by 1-5 px, and the class maps on plain
  backgrounds over their peaks on test images (--only-diagnosis redoes this part alone).
- results/explain_maps.png: one test image per class (target outlined) and each method's map.

Results are written after every part, so a run cut short keeps what it measured.

- --cnn dilated: the default CNN without the L1 penalty (the earlier default; cached as
  runs/bench_explain/cnn_dilated.keras, into results/explain_dilated.json and
  results/explain_maps_dilated.png); --cnn plain: that one without dilation (receptive field 22 px
  instead of 30 px, trained the same way, cnn_plain.keras, results/explain_plain.json and
  results/explain_maps_plain.png); --cnn nocenter: the dilated CNN whose last block's batch-norms
  have no learned shift (cnn_nocenter.keras, results/explain_nocenter.json); --cnn maxpool and
  --cnn classmaps: the nocenter CNN with a global max-pool head, or with a 1x1 convolution to one
  ReLU map per class before the average pool (results/explain_maxpool.json,
  results/explain_classmaps.json); --cnn nocenter_plain: the nocenter CNN without dilation
  (results/explain_nocenter_plain.json); --cnn sparser: the default CNN with a 3x stronger L1
  penalty (3e-5, results/explain_sparser.json); --train-seed N trains the CNN from another seed
  (results/explain[_<cnn>]_seedN.json); --skip ig sanity faith leaves those parts out (kept from the
  last run on the same CNN where there is one).

    python -m benchmarks.bench_explain [--retrain] [--n-test 500] [--n-costly 100] [--figure-only]
                                       [--cnn sparse|sparser|dilated|plain|nocenter|maxpool|classmaps|nocenter_plain]
                                       [--train-seed 0] [--skip ig sanity faith]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._util import RESULTS, table, write_result

MODEL = Path("runs/bench_explain/cnn.keras")
# --cnn: the default CNN (last block dilated, receptive field 30 px, an L1 penalty on the last feature map's
# activations), the same without the penalty (--cnn dilated), that one without dilation (22 px, --cnn plain)
# or with no learned shift in its last block's batch-norms (--cnn nocenter), ...
CNNS = {"sparse": {"dilations": (1, 1, 2), "activity_l1": 1e-5, "suffix": ""},
        "sparser": {"dilations": (1, 1, 2), "activity_l1": 3e-5, "suffix": "_sparser"},
        "dilated": {"dilations": (1, 1, 2), "suffix": "_dilated"},
        "plain": {"dilations": (1, 1, 1), "suffix": "_plain"},
        "nocenter": {"dilations": (1, 1, 2), "centers": (1, 1, 0), "suffix": "_nocenter"},
        "maxpool": {"dilations": (1, 1, 2), "centers": (1, 1, 0), "head": "max", "suffix": "_maxpool"},
        "classmaps": {"dilations": (1, 1, 2), "centers": (1, 1, 0), "head": "class_maps", "suffix": "_classmaps"},
        "nocenter_plain": {"dilations": (1, 1, 1), "centers": (1, 1, 0), "suffix": "_nocenter_plain"}}
SIZE = (64, 64)


def build_cnn(num_classes: int = 4, widths=(16, 32, 64), dilations=(1, 1, 2), pools=(1, 0, 0), centers=(1, 1, 1),
              head: str = "average", activity_l1: float = 0.0):
    """Blocks of two conv-BN-ReLU; a 2x2 pool after each block flagged in ``pools`` (the first one by
    default, so the last feature map is 32x32 at stride 2); with the default dilations the last
    feature map's receptive field is 30 px, without dilation (``--cnn plain``) 22 px. A block not
    flagged in ``centers`` has batch-norms without the learned shift (``--cnn nocenter``): its
    channels cannot switch on over a plain background by a bias alone. ``head="max"`` pools the last
    feature map globally by its maximum instead of its mean (``--cnn maxpool``, with the
    ``nocenter`` batch-norms): a class's evidence is read at one place, so nothing rewards a
    channel for switching on around the target rather than on it. ``head="class_maps"`` (``--cnn
    classmaps``, with the ``nocenter`` batch-norms) ends the body with a 1x1 convolution to one map
    per class (no bias) and a ReLU, averaged and weighted by the dense layer: a class map cannot be
    cancelled by negative evidence elsewhere, so a map that switches on over a distractor raises
    its class's score on every image that holds such a distractor. Grad-CAM then weights those
    maps (the last 4-D layer). ``activity_l1`` adds that multiple of the sum of the last ReLU's
    outputs to the training loss (the default ``--cnn sparse``, 1e-5): a place of the last feature
    map costs something wherever it switches on, so the channels switch on only where the evidence
    is, and the class map, Grad-CAM's, no longer spreads around the target (the maps are the same
    channels read the same way; the penalty changes only how they are trained)."""
    import keras

    inp = keras.Input((*SIZE, 3))
    x = inp
    for i, (filters, dilation, pool, center) in enumerate(zip(widths, dilations, pools, centers)):
        for j in range(2):
            x = keras.layers.Conv2D(filters, 3, padding="same", dilation_rate=dilation, use_bias=False,
                                    name=f"conv{i + 1}_{j + 1}")(x)
            x = keras.layers.BatchNormalization(center=bool(center), name=f"bn{i + 1}_{j + 1}")(x)
            last = i == len(widths) - 1 and j == 1
            reg = keras.regularizers.L1(activity_l1) if last and activity_l1 else None
            x = keras.layers.ReLU(name=f"relu{i + 1}_{j + 1}", activity_regularizer=reg)(x)
        if pool:
            x = keras.layers.MaxPooling2D(name=f"pool{i + 1}")(x)
    if head == "class_maps":
        x = keras.layers.Conv2D(num_classes, 1, use_bias=False, name="class_conv")(x)
        x = keras.layers.ReLU(name="class_relu")(x)
    pool = keras.layers.GlobalMaxPooling2D if head == "max" else keras.layers.GlobalAveragePooling2D
    x = pool(name="gmp" if head == "max" else "gap")(x)
    return keras.Model(inp, keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x),
                       name="shapes_cnn")


def train(x, y, epochs: int = 15, validation=None, cnn: str = "sparse", path: Path = MODEL, seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    model = build_cnn(dilations=CNNS[cnn]["dilations"], centers=CNNS[cnn].get("centers", (1, 1, 1)),
                      head=CNNS[cnn].get("head", "average"), activity_l1=CNNS[cnn].get("activity_l1", 0.0))
    steps = epochs * int(np.ceil(len(x) / 64))
    schedule = keras.optimizers.schedules.CosineDecay(0.0, steps, warmup_target=3e-3, warmup_steps=steps // 10)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=2, validation_data=validation)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model


def methods(n_samples: int, ig_steps: int):
    from keras_cv_apps import explain

    return {
        "gradcam": lambda m, x, c: explain.grad_cam(m, x, class_index=c),
        "gradcam++": lambda m, x, c: explain.grad_cam_plus_plus(m, x, class_index=c),
        "saliency": lambda m, x, c: explain.saliency(m, x, class_index=c),
        "smoothgrad": lambda m, x, c: explain.saliency(m, x, class_index=c, smooth_samples=n_samples),
        "ig": lambda m, x, c: explain.integrated_gradients(m, x, class_index=c, steps=ig_steps).sum(-1),
        "occlusion": lambda m, x, c: explain.occlusion(m, x, class_index=c, patch=8, stride=8),
    }


def keras_io_integrated_gradients(model, img_input, top_pred_idx, num_steps=64):
    """keras-io integrated_gradients.py's loop: one gradient call per path point (trapezoid)."""
    import tensorflow as tf

    def get_gradients(img, idx):
        images = tf.cast(img, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(images)
            preds = model(images)
            top_class = preds[:, idx]
        return tape.gradient(top_class, images)

    baseline = np.zeros(img_input.shape, np.float32)
    path = np.array([baseline + (s / num_steps) * (img_input - baseline) for s in range(num_steps + 1)], np.float32)
    grads = tf.convert_to_tensor([get_gradients(tf.expand_dims(p, 0), top_pred_idx)[0] for p in path])
    avg = tf.reduce_mean((grads[:-1] + grads[1:]) / 2.0, axis=0)
    return (img_input - baseline) * avg.numpy()


def completeness_and_speed(model, x, y, n_speed: int, reps: int = 2) -> dict:
    from keras_cv_apps import explain

    target = explain.class_score(model, x, y) - explain.class_score(model, np.zeros_like(x), y)
    out = {}
    for rule in explain.IG_RULES:
        attr = explain.integrated_gradients(model, x, class_index=y, steps=64, rule=rule)
        err = np.abs(attr.sum(axis=(1, 2, 3)) - target) / np.abs(target)
        out[rule] = {"mean_rel_error": float(err.mean()), "median": float(np.median(err)), "max": float(err.max())}
    xs, ys = x[:n_speed], y[:n_speed]
    explain.integrated_gradients(model, xs, class_index=ys, steps=64, rule="trapezoid")  # trace every batch shape
    keras_io_integrated_gradients(model, xs[0], int(ys[0]))  # warm up
    times = {"ours": [], "keras_io": []}
    for _ in range(reps):  # interleaved; the best of each is the least disturbed by other jobs
        t = time.perf_counter()
        explain.integrated_gradients(model, xs, class_index=ys, steps=64, rule="trapezoid")  # keras-io's rule
        times["ours"].append(time.perf_counter() - t)
        t = time.perf_counter()
        for img, c in zip(xs, ys):
            keras_io_integrated_gradients(model, img, int(c))
        times["keras_io"].append(time.perf_counter() - t)
    ours, theirs = min(times["ours"]), min(times["keras_io"])
    out["speed"] = {"images": n_speed, "ours_s": ours, "keras_io_s": theirs, "speedup": theirs / ours,
                    "all_s": times, "load_average_1_5_15min": os.getloadavg()}
    return out


def gradcam_diagnosis(model, x, y, masks, layers=("relu3_2", "relu3_1", "conv3_2", "bn3_2", "relu2_2")) -> dict:
    """Where Grad-CAM's mass goes: relevance mass per class, within the mask dilated by 1-5 px,
    per feature layer and per upsampling of the cell-grid map (the library's bilinear resize with
    half-pixel centres, OpenCV's linear, nearest and cubic), and the class maps on plain noisy
    backgrounds as the image generator draws them (no shape) over the maps' peaks on test images."""
    import cv2
    import keras

    from keras_cv_apps.data.sources import TARGET_CLASSES
    from keras_cv_apps.explain import _core, evaluate, grad_cam
    from keras_cv_apps.explain.gradcam import _weights

    def raw(layer, images, classes):
        fn, out = _core.score_gradients(model, (layer,)), []
        for s in _core.batches(len(images), 100):
            _, _, _, captured = fn(images[s], classes[s])
            a, g = captured[layer]
            cam = keras.ops.relu(keras.ops.sum(a * _weights(a, g, False)[:, None, None, :], axis=-1))
            out.append(keras.ops.convert_to_numpy(cam))
        return np.concatenate(out)

    h, w = x.shape[1:3]
    resize = {"library_bilinear": lambda c: keras.ops.convert_to_numpy(_core.resize_maps(c, (h, w))),
              **{name: lambda c, f=flag: np.stack([cv2.resize(m, (w, h), interpolation=f) for m in c])
                 for name, flag in (("cv2_linear", cv2.INTER_LINEAR), ("nearest", cv2.INTER_NEAREST),
                                    ("cubic", cv2.INTER_CUBIC))}}
    out = {"layers": {}}
    for layer in layers:
        cells = raw(layer, x, y)
        out["layers"][layer] = {"grid": list(cells.shape[1:]), **{
            name: float(evaluate.relevance_mass(np.maximum(up(cells), 0), masks).mean())
            for name, up in resize.items()}}
    maps = grad_cam(model, x, class_index=y)
    rm = evaluate.relevance_mass(maps, masks)
    out["per_class"] = {TARGET_CLASSES[c]: float(rm[y == c].mean()) for c in np.unique(y)}
    out["mask_dilated"] = {}
    for r in (1, 2, 3, 5):
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)
        grown = np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in masks])
        out["mask_dilated"][f"{r}px"] = {"relevance_mass": float(evaluate.relevance_mass(maps, grown).mean()),
                                         "area_share": float(grown.mean())}
    rng = np.random.default_rng(0)  # plain backgrounds: dark or light colour plus noise, as the generator's
    colours = np.where((np.arange(40) % 2 == 0)[:, None], rng.uniform(0, 90, (40, 3)), rng.uniform(165, 255, (40, 3)))
    plain = (np.clip(colours[:, None, None] + rng.normal(0, 12, (40, h, w, 3)), 0, 255) / 255).astype(np.float32)
    peaks = {c: float(raw(layers[0], x[y == c], y[y == c]).max(axis=(1, 2)).mean()) for c in np.unique(y)}
    out["background_over_peak"] = {
        TARGET_CLASSES[c]: float(raw(layers[0], plain, np.full(len(plain), c)).mean() / peaks[c]) for c in np.unique(y)}
    return out


def figure(maps: dict, x, masks, picks, suffix: str = "") -> Path:
    """results/explain_maps.png: per row one test image (the target outlined in green), then each
    method's map over it."""
    import cv2

    from keras_cv_apps.explain.overlay import heatmap_overlay, save_png, tile_images

    tiles = []
    for i in picks:
        image = cv2.resize(np.rint(x[i] * 255).astype(np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        outline = image.copy()
        contours, _ = cv2.findContours(cv2.resize(masks[i].astype(np.uint8), None, fx=2, fy=2,
                                                  interpolation=cv2.INTER_NEAREST), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(outline, contours, -1, (0, 255, 0), 1)
        tiles += [outline] + [heatmap_overlay(image, maps[name][i]) for name in maps]
    path = Path(__file__).resolve().parent / "results" / f"explain_maps{suffix}.png"
    save_png(path, tile_images(np.stack(tiles), columns=len(maps) + 1))
    return path


def _spread(n_total: int, n: int) -> np.ndarray:
    """``n`` indices spread evenly over ``n_total`` images ordered by class (so classes stay balanced)."""
    return np.unique(np.linspace(0, n_total, min(n, n_total), endpoint=False).astype(int))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--n-test", type=int, default=500, help="test images (localisation of the cheap methods)")
    parser.add_argument("--n-costly", type=int, default=100, help="images for SmoothGrad, IG and occlusion maps")
    parser.add_argument("--n-faith", type=int, default=40, help="images for ROAD (deletion/insertion: all n-costly)")
    parser.add_argument("--n-sanity", type=int, default=20, help="images for cascading randomisation")
    parser.add_argument("--n-complete", type=int, default=20, help="images for IG completeness")
    parser.add_argument("--n-speed", type=int, default=3, help="images for the IG timing against keras-io")
    parser.add_argument("--figure-only", action="store_true", help="only draw results/explain_maps.png")
    parser.add_argument("--only-ig", action="store_true", help="only redo the integrated-gradients part "
                                                               "in results/explain.json")
    parser.add_argument("--only-diagnosis", action="store_true", help="only redo the Grad-CAM diagnosis "
                                                                       "(where its mass goes) in the results")
    parser.add_argument("--cnn", choices=list(CNNS), default="sparse",
                        help="the CNN explained; all but the default write results/explain_<cnn>.json")
    parser.add_argument("--train-seed", type=int, default=0,
                        help="the CNN's initialisation and shuffling seed (not 0: results/explain_<cnn>_seed<n>.json)")
    parser.add_argument("--skip", nargs="*", choices=("ig", "sanity", "faith"), default=[],
                        help="parts not measured (localisation always is)")
    args = parser.parse_args(argv)
    suffix = CNNS[args.cnn]["suffix"]
    suffix += f"_seed{args.train_seed}" if args.train_seed else ""
    model_path = MODEL.with_name(f"cnn{suffix}.keras")
    out_name = f"explain{suffix}"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    import keras_cv_apps
    from keras_cv_apps.data.sources import shapes_with_masks
    from keras_cv_apps.explain import evaluate
    from keras_cv_apps.image.ops import scale

    t0 = time.perf_counter()
    test, masks = shapes_with_masks(size=SIZE, per_class=args.n_test // 4, seed=1)
    x, y = scale(test.images, "unit"), test.labels
    if args.retrain or not model_path.is_file():
        data, _ = shapes_with_masks(size=SIZE, per_class=750, seed=0)
        model = train(scale(data.images, "unit"), data.labels, cnn=args.cnn, path=model_path, seed=args.train_seed)
    else:
        model = keras_cv_apps.load_model(model_path, compile=False)
    accuracy = float((np.asarray(model.predict(x, verbose=0)).argmax(1) == y).mean())
    print(f"test accuracy {accuracy:.4f} on {len(x)} images", flush=True)

    fns = methods(n_samples=16, ig_steps=32)
    costly = _spread(len(x), args.n_costly)
    picks = [int(costly[y[costly] == c][0]) for c in np.unique(y)]  # one image per class for the figure
    if args.figure_only:
        few_maps = {n: fn(model, x[picks], y[picks]) for n, fn in fns.items()}
        print(f"figure: {figure(few_maps, x[picks], masks[picks], range(len(picks)), suffix)}")
        return 0
    few = _spread(len(x), args.n_complete)
    if args.only_ig:
        import json

        result = json.loads((RESULTS / f"{out_name}.json").read_text())
        result.pop("machine", None), result.pop("date", None)
        result["integrated_gradients"] = completeness_and_speed(model, x[few], y[few], n_speed=args.n_speed)
        print(f"IG: {result['integrated_gradients']}\nresults: {write_result(out_name, result)}")
        return 0
    if args.only_diagnosis:
        import json

        result = json.loads((RESULTS / f"{out_name}.json").read_text())
        result.pop("machine", None), result.pop("date", None)
        result["gradcam_diagnosis"] = gradcam_diagnosis(model, x, y, masks)
        print(f"Grad-CAM diagnosis: {result['gradcam_diagnosis']}\nresults: {write_result(out_name, result)}")
        return 0
    result = {"cnn": args.cnn, "train_seed": args.train_seed, "test_accuracy": accuracy, "n_test": len(x),
              "keras": keras.__version__,
              "settings": {k: v for k, v in vars(args).items() if k.startswith("n_")} |
              {"smoothgrad_samples": 16, "ig_steps_maps": 32, "occlusion": "patch 8, stride 8"},
              "localisation": {}, "faithfulness": {}, "sanity": {}}
    previous = RESULTS / f"{out_name}.json"
    if args.skip and not args.retrain and previous.is_file():  # skipped parts: kept from the last run on this model
        import json

        old = json.loads(previous.read_text())
        # (results without "cnn" are the dilated CNN's)
        if old.get("cnn", "dilated") == args.cnn and old.get("train_seed", 0) == args.train_seed:
            kept = {"ig": "integrated_gradients", "sanity": "sanity", "faith": "faithfulness"}
            result |= {kept[part]: old[kept[part]] for part in args.skip if kept[part] in old}
            result["kept_from_previous_run"] = [kept[part] for part in args.skip if kept[part] in old]

    def save(part):
        result["seconds"] = time.perf_counter() - t0
        write_result(out_name, result)
        print(f"[{result['seconds']:.0f}s] {part} done", flush=True)

    everyone = np.arange(len(x))
    where = {n: (costly if n in ("smoothgrad", "ig", "occlusion") else everyone) for n in fns} | {"random": everyone}
    maps, seconds = {}, {}
    rand = evaluate.random_maps(x.shape, seed=0)

    def localise(names):
        for name in names:
            idx = where[name]
            t = time.perf_counter()
            maps[name] = rand[idx] if name == "random" else fns[name](model, x[idx], y[idx])
            seconds[name] = time.perf_counter() - t
            m = maps[name]
            loc = {"images": len(idx), "pointing_game": float(evaluate.pointing_game(m, masks[idx]).mean()),
                   "relevance_mass": float(evaluate.relevance_mass(m, masks[idx]).mean()),
                   "seconds": seconds[name]}
            # the chance level on the same images
            chance = {k: float(f(rand[idx], masks[idx]).mean()) for k, f in
                      (("pointing_game", evaluate.pointing_game), ("relevance_mass", evaluate.relevance_mass))}
            for key in ("pointing_game", "relevance_mass"):
                loc[f"{key}_random"] = chance[key]
                loc[f"{key}_x_random"] = loc[key] / max(chance[key], 1e-12)
            result["localisation"][name] = loc
            save(f"localisation {name}")

    localise(["random", "gradcam", "gradcam++", "saliency"])
    result["gradcam_diagnosis"] = gradcam_diagnosis(model, x, y, masks)
    save("Grad-CAM diagnosis")

    if "ig" not in args.skip:
        result["integrated_gradients"] = completeness_and_speed(model, x[few], y[few], n_speed=args.n_speed)
        save("integrated gradients completeness and speed")

    localise(["smoothgrad", "ig", "occlusion"])
    figure({n: maps[n][np.searchsorted(where[n], picks)] for n in fns}, x[picks], masks[picks], range(len(picks)),
           suffix)

    few = _spread(len(x), args.n_sanity)
    sanity_fns = {"gradcam": fns["gradcam"], "gradcam++": fns["gradcam++"], "saliency": fns["saliency"],
                  "ig": methods(0, ig_steps=16)["ig"]}
    for name, fn in sanity_fns.items() if "sanity" not in args.skip else ():
        cascade = evaluate.cascading_randomization(model, fn, x[few], y[few], seed=0)
        result["sanity"][name] = {"images": len(few), "final_rho": cascade[-1][1], "cascade": cascade}
        save(f"sanity {name}")

    # deletion/insertion (cheap: 17 model calls per image and substrate) on every image that has
    # all the maps; ROAD (a sparse solve per image and fraction) on n_faith of them
    sub = costly[_spread(len(costly), args.n_faith)]
    mean_colour = x.mean(axis=(0, 1, 2))  # what zero is in mean-subtracted inputs
    substrates = {"": "blur", "_zero": "zero", "_mean": mean_colour}
    per_image = {}
    for name in ["random", *fns] if "faith" not in args.skip else ():
        m = maps[name][np.searchsorted(where[name], costly)]
        scores = {}
        for tag, substrate in substrates.items():
            di = evaluate.deletion_insertion(model, x[costly], m, y[costly], substrate=substrate)
            scores[f"deletion_auc{tag}"] = di["deletion"]
            if not tag:
                scores["insertion_auc"] = di["insertion"]
        m = maps[name][np.searchsorted(where[name], sub)]
        scores["road_morf"] = evaluate.road(model, x[sub], m, y[sub], order="morf").mean(1)
        scores["road_lerf"] = evaluate.road(model, x[sub], m, y[sub], order="lerf").mean(1)
        per_image[name] = scores
        # paired with the random map on the same images: mean difference and its 95% interval
        diff = {k: v - per_image["random"][k] for k, v in scores.items()}
        result["faithfulness"][name] = {
            "images": len(costly), "images_road": len(sub), **{k: float(v.mean()) for k, v in scores.items()},
            "minus_random_mean_ci95": {k: [float(d.mean()), float(1.96 * d.std(ddof=1) / np.sqrt(len(d)))]
                                       for k, d in diff.items()}}
        save(f"faithfulness {name}")
    faith = result["faithfulness"]
    for name, f in faith.items():
        r = faith["random"]
        f["beats_random"] = bool(f["deletion_auc"] < r["deletion_auc"] and f["insertion_auc"] > r["insertion_auc"]
                                 and f["road_morf"] < r["road_morf"] and f["road_lerf"] > r["road_lerf"])
        # the whole 95% interval of the paired difference on the better side of the random map
        sign = {"insertion_auc": 1, "road_lerf": 1}
        f["beats_random_ci95"] = {k: bool(sign.get(k, -1) * d > ci) for k, (d, ci) in
                                  f["minus_random_mean_ci95"].items()}
    save("all")

    loc, sanity, ig = result["localisation"], result["sanity"], result.get("integrated_gradients")
    rows = [{"method": n, **faith.get(n, {}), **{k: v for k, v in loc[n].items() if k != "seconds"},
             "sanity_rho": sanity.get(n, {}).get("final_rho", "")} for n in faith or loc]
    print(table(rows, ["method", "images", "pointing_game", "pointing_game_x_random", "relevance_mass",
                       "relevance_mass_x_random", "deletion_auc", "deletion_auc_zero", "deletion_auc_mean",
                       "insertion_auc", "road_morf", "road_lerf",
                       "beats_random", "sanity_rho"]))
    if ig:
        print(table([{"rule": r, **ig[r]} for r in ("trapezoid", "midpoint", "gauss_legendre")],
                    ["rule", "mean_rel_error", "median", "max"]))
        print(f"IG speed-up over the keras-io loop: {ig['speed']['speedup']:.1f}x ({ig['speed']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
