"""Show what a trained image classifier looks at: heatmaps of the evidence for a class.

Each method answers "which pixels made the model say this class?" differently:

- gradcam / gradcam++: weight the channels of the last convolutional feature map by the
  gradient of the class score, keep the positive part, upsample (coarse but class-specific).
- saliency: the gradient magnitude per pixel; smoothgrad averages it over noisy copies.
- ig (integrated gradients): gradients averaged along the straight path from a black image to
  the input, times the difference; the attributions add up to the change of the class score.
- occlusion: how much the class score drops when a grey square covers each pixel.

The score explained is the class's logit (before the final softmax). The images are read,
resized and scaled as the model's run folder says (config.json beside model.keras), so any
photo size or format works. The app writes one overlay PNG per image and method and
scores.json (predicted class, probabilities, the score explained and per-method figures).

Usage:
    python -m apps.lenet_train && python -m apps.explain digit.png   # the newest lenet_train model
    python -m apps.explain --model runs/alexnet_train/<date-time>/model.keras a.png b.jpg \\
        --method gradcam,ig,occlusion --output explained/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from apps import _cli, _runs

APP = "explain"
METHODS = ("gradcam", "gradcam++", "saliency", "smoothgrad", "ig", "occlusion")
DISPLAY = 256  # overlays are drawn at least this many pixels wide


def method_list(text: str) -> list:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise argparse.ArgumentTypeError(f"unknown method {bad[0] if bad else text!r}; use a comma list of "
                                         f"{', '.join(METHODS)}")
    return methods


def _parser():
    p = _cli.parser(__doc__, APP)
    p.add_argument("images", nargs="+", help="image files to explain")
    p.add_argument("--model", default=None, help="a classifier saved as .keras (default: the newest lenet_train "
                                                 "run's model.keras, else saved_models/lenet_train/model.keras)")
    p.add_argument("--method", type=method_list, default=["gradcam"],
                   help=f"comma list of {', '.join(METHODS)} (default: gradcam)")
    p.add_argument("--class-index", type=_cli.nonnegative_int, default=None,
                   help="the class to explain (default: each image's predicted class)")
    p.add_argument("--layer", default=None, help="Grad-CAM feature layer (default: the model's last feature map)")
    p.add_argument("--steps", type=_cli.positive_int, default=None, help="integrated-gradients steps (default: 64)")
    p.add_argument("--samples", type=_cli.positive_int, default=None, help="SmoothGrad samples (default: 25)")
    _cli.add_output(p, APP)
    return p


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _preprocessing(model, path: Path):
    from keras_cv_apps.artifacts import read_json
    from keras_cv_apps.explain.dream import scale_of
    from keras_cv_apps.inference import Preprocessing

    if (path.parent / "config.json").is_file():
        config = read_json(path.parent / "config.json")
        if isinstance(config.get("dataset"), dict) and "scale" in config["dataset"]:
            return Preprocessing.from_config(config)
    _, h, w, c = model.input_shape
    if h is None or w is None:
        raise ValueError(f"{path} has no config.json beside it and takes any image size; put the run's config.json "
                         "next to it.")
    spec = scale_of(model)
    return Preprocessing(image_size=(h, w), channels=c, scale=spec["scale"])


def _check_flags(args) -> None:
    for flag, value, method in (("--layer", args.layer, "gradcam"), ("--steps", args.steps, "ig"),
                                ("--samples", args.samples, "smoothgrad")):
        if value is not None and not any(m.startswith(method) for m in args.method):
            raise ValueError(f"{flag} applies to --method {method}, which was not asked for.")
    args.steps = args.steps or 64
    args.samples = args.samples or 25


def _maps(method, model, x, args):
    from keras_cv_apps import explain

    if method in ("gradcam", "gradcam++"):
        fn = explain.grad_cam if method == "gradcam" else explain.grad_cam_plus_plus
        return fn(model, x, class_index=args.class_index, layer=args.layer)
    if method in ("saliency", "smoothgrad"):
        samples = args.samples if method == "smoothgrad" else 0
        return explain.saliency(model, x, class_index=args.class_index, smooth_samples=samples)
    if method == "ig":
        return explain.integrated_gradients(model, x, class_index=args.class_index, steps=args.steps).sum(axis=-1)
    return explain.occlusion(model, x, class_index=args.class_index, patch=max(2, x.shape[1] // 8),
                             stride=max(1, x.shape[1] // 16))


def _main(args) -> int:
    import cv2
    import numpy as np

    import keras_cv_apps
    from keras_cv_apps import artifacts, explain

    _check_flags(args)
    path = _cli.resolve_model(args.model, app="lenet_train", filename="model.keras")
    model = keras_cv_apps.load_model(path, compile=False)
    prep = _preprocessing(model, path)
    pixels = np.stack([prep.load(p) for p in args.images])  # unreadable files fail here, before any work
    x = prep(pixels)
    labels_file = path.parent / "labels.txt"
    names = labels_file.read_text(encoding="utf-8").split("\n")[:-1] if labels_file.is_file() else None
    if any(m.startswith("gradcam") for m in args.method):
        explain.feature_layer(model, args.layer)  # a bad --layer fails before any map is computed
    scores = explain.class_score(model, x, args.class_index)  # so does a --class-index out of range
    probs = np.asarray(model.predict(x, verbose=0))
    idx = probs.argmax(axis=1) if args.class_index is None else np.full(len(x), args.class_index)
    maps = {m: _maps(m, model, x, args) for m in args.method}
    factor = max(1, DISPLAY // pixels.shape[2])
    with _runs.open_run(args, APP) as run:
        records = []
        for i, file in enumerate(args.images):
            big = cv2.resize(pixels[i], None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
            entry = {"file": str(file), "predicted": int(probs[i].argmax()), "probability": float(probs[i].max()),
                     "explained_class": int(idx[i]), "score": float(scores[i]), "methods": {}}
            if names:
                entry["predicted_name"], entry["explained_name"] = names[entry["predicted"]], names[int(idx[i])]
            for method, m in maps.items():
                out = f"{Path(file).stem}_{i}_{method.replace('+', 'p')}.png"
                explain.save_overlay(run.file(out), big, m[i])
                peak = np.unravel_index(int(np.argmax(m[i])), m[i].shape)
                entry["methods"][method] = {"overlay": out, "peak_row_col": [int(peak[0]), int(peak[1])],
                                            "positive_sum": float(np.maximum(m[i], 0).sum())}
            records.append(entry)
        run.write_config(model=str(path), model_kwargs={}, dataset={"images": list(map(str, args.images)),
                                                                    **prep.to_dict()},
                         seed=0, options={k: getattr(args, k) for k in ("method", "class_index", "layer", "steps",
                                                                        "samples")})
        artifacts.write_json(run.file("scores.json"), {"model": str(path), "images": records})
    for r in records:
        name = f" ({r['predicted_name']})" if names else ""
        print(f"{r['file']}: class {r['predicted']}{name} p={r['probability']:.3f}, explained class "
              f"{r['explained_class']} logit {r['score']:.3f}")
    print(f"  {len(records) * len(maps)} overlays and scores.json in {run.path}/")
    _cli.next_step(f"open {run.path / records[0]['methods'][args.method[0]]['overlay']}")
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    raise SystemExit(main())
