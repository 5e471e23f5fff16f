"""DeepDream: let a trained network paint what it sees into a photo.

The app climbs the activations of chosen layers by gradient ascent on the pixels (DeepDream,
Mordvintsev et al., 2015): the objective is the weighted mean square of those activations, the
gradient is normalised so each step changes the image by about --step-size (in the model's input
units), and the dream grows over --octaves image sizes, each --octave-scale larger, with the
photo's own detail put back at every size. Each step rolls the image by a random shift drawn from
--seed (same seed, same bytes). --tile-size dreams large photos window by window, so memory
follows the tile, not the photo.

Which model: by default the AlexNet that `python -m apps.alexnet_train` trains offline (its newest
run, else saved_models/alexnet_train/model.keras), so nothing is downloaded. --model also takes
any .keras file, a registered model name with --weights, or inception_v3 with a local --weights
file of Keras' InceptionV3 ImageNet weights (include_top or notop .h5). Early layers paint
strokes and textures, later ones parts of what the model was trained on.

Writes dream.png (and dream.mp4 of every step with --video), config.json and metrics.json with
the objective at the start and end of each octave.

Usage:
    python -m apps.deepdream photo.jpg --output dreams/
    python -m apps.deepdream photo.jpg --model inception_v3 --weights inception_v3_notop.h5 \\
        --layers mixed3:1.0,mixed5:1.5 --tile-size 512 --video
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from apps import _cli, _runs

APP = "deepdream"


def _parser():
    p = _cli.parser(__doc__, APP)
    p.add_argument("image", help="the photo to dream on")
    p.add_argument("--model", default=None, help="a .keras file, a registered model name or inception_v3 (default: "
                                                 "the newest alexnet_train model)")
    p.add_argument("--weights", default=None, help="weights file for a registered name or inception_v3")
    p.add_argument("--layers", default=None, help="name:weight,... (default: mixed3:1.0,mixed5:1.5 for inception_v3, "
                                                  "else the model's last two activation layers)")
    p.add_argument("--octaves", type=_cli.positive_int, default=3, help="(default: %(default)s)")
    p.add_argument("--octave-scale", type=_cli.positive_float, default=1.4, help="(default: %(default)s)")
    p.add_argument("--steps", type=_cli.positive_int, default=20, help="steps per octave (default: %(default)s)")
    p.add_argument("--step-size", type=_cli.positive_float, default=0.01, help="(default: %(default)s)")
    p.add_argument("--max-loss", type=_cli.finite_float, default=None, help="end an octave before the objective "
                                                                            "passes this")
    p.add_argument("--tile-size", type=_cli.positive_int, default=None, help="dream in windows of this size")
    p.add_argument("--max-side", type=_cli.positive_int, default=1024, help="shrink larger photos (default: "
                                                                            "%(default)s)")
    p.add_argument("--seed", type=_cli.seed, default=0, help="seed of the random shifts (default: %(default)s)")
    p.add_argument("--clip", action="store_true", help="keep the image in the pixel range after every step")
    p.add_argument("--video", action="store_true", help="also write dream.mp4 of every step")
    _cli.add_output(p, APP)
    return p


def parse_args(argv=None):
    return _parser().parse_args(argv)


def _load(args):
    """(model, pixel scaling or None for the cfg's, what the model is)."""
    import keras_cv_apps
    from keras_cv_apps import models
    from keras_cv_apps.artifacts import read_json

    name = args.model
    if name == "inception_v3" or (name and not name.endswith(".keras") and name in models.list_models()):
        if args.weights is None or not Path(args.weights).is_file():
            raise FileNotFoundError(f"--model {name} needs --weights FILE (an existing local weights file); nothing is "
                                    "downloaded.")
        if name != "inception_v3":
            return models.create(name, weights=args.weights), None, name
        import keras

        file = Path(args.weights).name
        if not file.endswith(".h5"):
            raise ValueError(f"--weights for inception_v3 takes Keras' InceptionV3 ImageNet weights (an .h5 file, "
                             f"include_top or notop); got {file}.")
        top = "notop" not in file
        try:
            return keras.applications.InceptionV3(weights=args.weights, include_top=top), "symmetric", name
        except (ValueError, OSError) as err:
            raise ValueError(f"{file} does not load into InceptionV3 with include_top={top} (chosen by 'notop' in the "
                             f"file name): {str(err).splitlines()[0][:160]}") from None
    if args.weights is not None:
        raise ValueError("--weights applies to a registered model name or inception_v3, not to a .keras file.")
    path = _cli.resolve_model(name, app="alexnet_train", filename="model.keras")
    config = path.parent / "config.json"
    data = read_json(config).get("dataset", {}) if config.is_file() else {}
    scale = {k: data.get(k) for k in ("scale", "mean", "std")} if isinstance(data, dict) and "scale" in data else None
    return keras_cv_apps.load_model(path, compile=False), scale, str(path)


def _main(args) -> int:
    import cv2

    from keras_cv_apps import artifacts, dream
    from keras_cv_apps.explain.overlay import save_png
    from keras_cv_apps.image import io, ops

    photo = ops.fit_max_side(io.read_image(args.image), args.max_side)  # a bad file fails first
    model, scale, label = _load(args)
    layers = dream.parse_layers(args.layers) if args.layers else dream.default_layers(model)
    dreamer = dream.Dreamer(model, layers, scale)  # an unknown layer fails here
    losses = {}
    with _runs.open_run(args, APP) as run:
        writer = artifacts.atomic_path(run.file("dream.mp4")) if args.video else contextlib.nullcontext()
        with writer as tmp:
            size = (photo.shape[1], photo.shape[0])
            video = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), 10, size) if tmp else None

            def progress(info):
                losses.setdefault(info["octave"], []).append(info["loss"])
                if video is not None:
                    video.write(cv2.cvtColor(cv2.resize(info["image"], size), cv2.COLOR_RGB2BGR))

            out = dream.deep_dream(dreamer, photo, layers=layers, octaves=args.octaves,
                                   octave_scale=args.octave_scale, steps=args.steps, step_size=args.step_size,
                                   max_loss=args.max_loss, tile_size=args.tile_size, seed=args.seed,
                                   clip=args.clip, callback=progress)
            if video is not None:
                video.release()
        save_png(run.file("dream.png"), out)
        options = {k: getattr(args, k) for k in ("layers", "octaves", "octave_scale", "steps", "step_size",
                                                 "max_loss", "tile_size", "max_side", "clip", "video")}
        run.write_config(model=label, model_kwargs={"layers": layers},
                         dataset={"image": args.image, "shape": list(photo.shape), "scale": dreamer.scale},
                         seed=args.seed, options=options)
        octaves = [{"start": v[0], "end": v[-1], "rise": v[-1] / v[0] if v[0] else None, "steps": len(v)}
                   for _, v in sorted(losses.items())]
        run.write_metrics(test={}, exports={}, objective=octaves)
    rises = ", ".join(f"{o['start']:.3g} -> {o['end']:.3g}" for o in octaves)
    print(f"DeepDream on {args.image} ({photo.shape[1]}x{photo.shape[0]}) with {', '.join(layers)}: "
          f"objective per octave {rises}")
    print(f"  saved to {run.path}/ (dream.png{', dream.mp4' if args.video else ''}, config.json, metrics.json)")
    _cli.next_step(f"open {run.path / 'dream.png'}, or try other --layers (see --help)")
    return 0


def main(argv=None) -> int:
    return _cli.run(_main, argv, _parser())


if __name__ == "__main__":
    raise SystemExit(main())
