"""DeepDream: the objective's rise per octave, tiles against the whole image, seams, speed against
the keras-io step, and memory of a large tiled dream.

- rise: `deep_dream` with the app's defaults (3 octaves x 20 steps, step 0.01, the default
  layers; and with ``clip=True``) on scikit-image's 512x512 astronaut photo with the AlexNet
  `apps.alexnet_train` trains offline (its newest run, else trained here with the app's defaults);
  the objective before the last step over the one before the first, per octave. The photo and
  both dreams are saved side by side as results/dream_astronaut.png.
- tiles: relative L2 between the tiled and the whole-image gradient with a tile covering the
  image (and, for reference, with 256-px tiles on 512 px).
- seams: on the photo enlarged to 1024 px, with 256-px tiles, the energy of the gradient's jumps
  across the tile cores' borders over its energy across all rows and columns (1.0 = no seam), for
  one gradient without jitter (the strict case; the whole image's gradient on the same lines is the
  reference) and for the whole dream's change (3 octaves x 5 steps), divided by the untiled dream's
  on the same lines (image content alone moves the raw ratio by +-0.3 with 10 lines); windows without margins are
  shown for contrast (their dead bands give a ratio well below 1).
- speed: ms per step at 512x512 on InceptionV3's architecture (``weights=None``, mixed3 + mixed5)
  of our step against keras-io's ``gradient_ascent_step`` (written below as that example writes
  it), interleaved in one process, best of --reps (the least disturbed by other jobs; the median
  and the CPU time are kept too), beside our step unfused and fused with TensorFlow's own input
  gradients (``Conv2DBackpropInput``) instead of forward convolutions; and a whole 3-octave dream
  (5 steps each) with both loops.
- memory: peak resident memory (sampled every 5 ms) of a 2048-px dream in 512-px tiles against a
  512-px dream (one step, separate processes, InceptionV3 mixed3 + mixed5), and the same above
  each process's memory before the dream (model built, weights in memory).

  --variants adds two trials to the speed part: the same step compiled with XLA (``jit_compile``)
  and with the convolutions in bfloat16; --only-speed redoes the speed part alone; --profile
  profiles keras-io's step and ours op by op (CPU time per op type, convolutions, their input
  gradients and the rest) into the results; --conv-trials times single convolutions of
  InceptionV3's shapes (forward and input gradient) in float32, bfloat16, float16 and by Winograd
  F(2x2, 3x3) and F(4x4, 3x3) written in TensorFlow ops: the ways a convolution could cost less.

    python -m benchmarks.bench_dream [--reps 3] [--skip-memory] [--only-speed] [--variants] [--profile]
                                     [--conv-trials]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._util import PY, RESULTS, run_timed, table, write_result

INCEPTION = {"mixed3": 1.0, "mixed5": 1.5}
SEAM_STEPS = 5  # steps per octave of the two 1024-px dreams the seams are measured on


def _alexnet():
    """The app's default dream model: the newest alexnet_train run, else one trained here."""
    import keras_cv_apps
    from keras_cv_apps.inference import find_model

    path = find_model("alexnet_train", "model.keras") or Path("runs/bench_dream/alexnet_train/model.keras")
    if not path.is_file():
        cmd = [PY, "-m", "apps.alexnet_train", "--quiet", "--quantize", "none", "--output", str(path.parent)]
        seconds, done = run_timed(cmd, env={"TF_CPP_MIN_LOG_LEVEL": "2"})
        if done.returncode != 0:
            raise SystemExit(f"alexnet_train failed:\n{done.stderr[-2000:]}")
        print(f"trained the default dream model in {seconds:.0f}s")
    return keras_cv_apps.load_model(path, compile=False), str(path)


def _seam_ratio(change: np.ndarray, borders) -> float:
    """Mean squared jump across ``borders`` (columns and rows) over the mean across all of them."""
    g = change / max(float(np.abs(change).mean()), 1e-12)
    cols = ((g[:, 1:] - g[:, :-1]) ** 2).mean(axis=(0, 2))  # jump between column j-1 and j at index j-1
    rows = ((g[1:] - g[:-1]) ** 2).mean(axis=(1, 2))
    at = [cols[b - 1] for b in borders] + [rows[b - 1] for b in borders]
    return float(np.mean(at) / np.mean(np.concatenate([cols, rows])))


def rise_tiles_seams(reps: int) -> dict:
    import cv2
    from skimage.data import astronaut

    from keras_cv_apps import dream
    from keras_cv_apps.explain import dream as dream_module
    from keras_cv_apps.explain.overlay import save_png, tile_images

    model, path = _alexnet()
    photo = astronaut()  # 512x512x3
    layers = dream.default_layers(model)
    d = dream.Dreamer(model, layers)
    losses = {}
    start = time.perf_counter()
    plain = dream.deep_dream(d, photo, layers=layers,
                             callback=lambda i: losses.setdefault(i["octave"], []).append(i["loss"]))
    seconds = time.perf_counter() - start
    rises = [v[-1] / v[0] for _, v in sorted(losses.items())]
    clipped = {}
    out = dream.deep_dream(d, photo, layers=layers, clip=True,
                           callback=lambda i: clipped.setdefault(i["octave"], []).append(i["loss"]))
    rises_clipped = [v[-1] / v[0] for _, v in sorted(clipped.items())]
    result_rise = dream.objective(d, out, layers=layers) / dream.objective(d, photo, layers=layers)
    grid = tile_images(np.stack([photo, plain, out]), columns=3)
    save_png(RESULTS / "dream_astronaut.png", cv2.resize(grid, (grid.shape[1] // 2, grid.shape[0] // 2),
                                                         interpolation=cv2.INTER_AREA))  # half size: 0.5 MB

    x = photo.astype(np.float32) / 255
    _, whole = d.gradient(x)
    _, covered = d.gradient(x, tile_size=512)
    _, tiled256 = d.gradient(x, tile_size=256)
    rel = float(np.linalg.norm(covered - whole) / np.linalg.norm(whole))
    rel256 = float(np.linalg.norm(tiled256 / np.abs(tiled256).mean() - whole / np.abs(whole).mean())
                   / np.linalg.norm(whole / np.abs(whole).mean()))

    big = cv2.resize(photo, (1024, 1024), interpolation=cv2.INTER_LINEAR)
    xb = big.astype(np.float32) / 255
    borders = [c0 for _, c0, _ in dream.dream_windows(1024, 256)][1:]
    _, g_whole = d.gradient(xb)
    _, g_tiled = d.gradient(xb, tile_size=256)
    margin, dream_module.MARGIN = dream_module.MARGIN, 10 ** 9  # windows without margins, for contrast
    try:
        naive_borders = [c0 for _, c0, _ in dream.dream_windows(1024, 256)][1:]
        _, g_naive = d.gradient(xb, tile_size=256)
    finally:
        dream_module.MARGIN = margin
    dreamed = dream.deep_dream(d, big, layers=layers, tile_size=256, steps=SEAM_STEPS)
    untiled = dream.deep_dream(d, big, layers=layers, steps=SEAM_STEPS)
    dream_tiled = _seam_ratio(dreamed.astype(np.float32) - big, borders)
    dream_whole = _seam_ratio(untiled.astype(np.float32) - big, borders)
    seams = {"dream_whole_same_lines": dream_whole, "dream_tiled_over_whole": dream_tiled / dream_whole,
             "gradient_tiled": _seam_ratio(g_tiled, borders),
             "gradient_whole_same_lines": _seam_ratio(g_whole, borders),
             "gradient_no_margin": _seam_ratio(g_naive, naive_borders),
             "dream_tiled": dream_tiled}
    return {"model": path, "layers": layers, "octave_rise": rises, "octave_losses": losses, "dream_seconds": seconds,
            "octave_rise_clip": rises_clipped, "uint8_result_over_photo_clip": result_rise,
            "tile_covering_rel_l2": rel, "tile256_on_512_rel_l2": rel256, "seam_energy_ratio": seams}


def _kio_step_fn(feature_extractor, layer_settings):
    """keras-io deep_dream.py's loss and step, as that example writes them."""
    import tensorflow as tf

    def compute_loss(input_image):
        features = feature_extractor(input_image)
        loss = tf.zeros(shape=())
        for name in features.keys():
            activation = features[name]
            scaling = tf.reduce_prod(tf.cast(tf.shape(activation), "float32"))
            loss += layer_settings[name] * tf.reduce_sum(tf.square(activation[:, 2:-2, 2:-2, :])) / scaling
        return loss

    @tf.function
    def gradient_ascent_step(img, learning_rate):
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = compute_loss(img)
        grads = tape.gradient(loss, img)
        grads /= tf.maximum(tf.reduce_mean(tf.abs(grads)), 1e-6)
        img += learning_rate * grads
        return loss, img

    return gradient_ascent_step


def _kio_dream(step, img, octaves=3, octave_scale=1.4, iterations=20):
    """keras-io's octave loop (resize, ascend, re-inject lost detail)."""
    import tensorflow as tf

    original_shape = img.shape[1:3]
    shapes = [tuple(int(d / octave_scale ** i) for d in original_shape) for i in range(octaves)][::-1]
    shrunk = tf.image.resize(img, shapes[0])
    x = tf.identity(img)
    for shape in shapes:
        x = tf.image.resize(x, shape)
        for _ in range(iterations):
            _, x = step(x, 0.01)
        x += tf.image.resize(img, shape) - tf.image.resize(shrunk, shape)
        shrunk = tf.image.resize(img, shape)
    return x


def _bf16_dreamer(base):
    """A Dreamer whose fused convolutions run in bfloat16 (inputs, weights and outputs cast)."""
    import tensorflow as tf

    from keras_cv_apps import dream
    from keras_cv_apps.explain import _fold

    def fused(tf_, conv, kernel, bias, relu):
        strides, dilations, padding = (1, *conv.strides, 1), (1, *conv.dilation_rate, 1), conv.padding.upper()
        k16, b16 = tf.cast(kernel, tf.bfloat16), tf.cast(bias, tf.bfloat16)

        def call(x, *args, **kwargs):
            y = tf.nn.bias_add(tf.nn.conv2d(tf.cast(x, tf.bfloat16), k16, strides, padding, dilations=dilations), b16)
            return tf.cast(tf.nn.relu(y) if relu else y, tf.float32)

        return call

    original, _fold._fused = _fold._fused, fused
    try:
        return dream.Dreamer(base, INCEPTION, "symmetric")
    finally:
        _fold._fused = original


def speed(reps: int, variants: bool = False) -> dict:
    import keras
    import tensorflow as tf

    from keras_cv_apps import dream
    from keras_cv_apps.explain import _fold

    base = keras.applications.InceptionV3(weights=None, include_top=False)
    extractor = keras.Model(base.inputs, {n: base.get_layer(n).output for n in INCEPTION})
    kio = _kio_step_fn(extractor, INCEPTION)
    ours = {name: dream.Dreamer(base, INCEPTION, "symmetric", fuse=fuse) for name, fuse in (("ours", True),
                                                                                             ("ours_unfused", False))}
    _fold.FORWARD_GRADIENT = False  # fused, but TensorFlow's Conv2DBackpropInput for the input gradients
    try:
        ours["ours_backprop_input"] = dream.Dreamer(base, INCEPTION, "symmetric")
    finally:
        _fold.FORWARD_GRADIENT = True
    if variants:  # trials: the same step compiled with XLA, and with the convolutions in bfloat16
        ours["ours_xla"] = dream.Dreamer(base, INCEPTION, "symmetric")
        ours["ours_xla"]._step = tf.function(ours["ours_xla"]._step.python_function, jit_compile=True)
        ours["ours_bf16"] = _bf16_dreamer(base)
    x = np.random.default_rng(0).uniform(-1, 1, (512, 512, 3)).astype(np.float32)
    xt = tf.constant(x[None])
    rng = np.random.default_rng(0)

    def our_step(d):
        dy, dx = rng.integers(-16, 17, size=2)
        _, g = d.gradient(np.roll(x, (dy, dx), axis=(0, 1)))
        g = np.roll(g, (-dy, -dx), axis=(0, 1))
        return np.clip(x + 0.01 * g / max(float(np.abs(g).mean()), 1e-8), -1, 1)

    runs = {"keras_io": lambda: kio(xt, 0.01)[1].numpy(), **{k: (lambda d=d: our_step(d)) for k, d in ours.items()}}
    for fn in runs.values():
        fn()  # trace and warm up
    times = {k: [] for k in runs}
    cpu = {k: [] for k in runs}
    before = os.getloadavg()
    for _ in range(reps):
        for k, fn in runs.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            times[k].append(time.perf_counter() - t)
            cpu[k].append(time.process_time() - c)
    loadavg = {"before": before, "after": os.getloadavg()}
    ms = {k: 1000 * float(np.min(v)) for k, v in times.items()}
    median = {k: 1000 * float(np.median(v)) for k, v in times.items()}
    cpu_ms = {k: 1000 * float(np.median(v)) for k, v in cpu.items()}
    photo = ((x + 1) * 127.5).astype(np.uint8)
    t = time.perf_counter()
    dream.deep_dream(base, photo, layers=INCEPTION, scale="symmetric", steps=5)
    whole_ours = time.perf_counter() - t
    fresh = _kio_step_fn(extractor, INCEPTION)  # a new tf.function: keras-io traces once per octave size
    t = time.perf_counter()
    _kio_dream(fresh, tf.constant(x[None]), iterations=5).numpy()
    whole_kio = time.perf_counter() - t
    trials = {k: {"ratio_cpu": cpu_ms[k] / cpu_ms["keras_io"], "ratio": ms[k] / ms["keras_io"]}
              for k in ("ours_xla", "ours_bf16") if k in ms}
    return {"ms_per_step": ms, "median_ms": median, "cpu_ms": cpu_ms, "trials": trials, "loadavg": loadavg,
            "all_cpu_ms": {k: [1000 * s for s in v] for k, v in cpu.items()},
            "all_ms": {k: [1000 * s for s in v] for k, v in times.items()},
            "ratio": ms["ours"] / ms["keras_io"], "ratio_unfused": ms["ours_unfused"] / ms["keras_io"],
            "ratio_cpu_backprop_input": cpu_ms["ours_backprop_input"] / cpu_ms["keras_io"],
            "ratio_median": median["ours"] / median["keras_io"], "ratio_cpu": cpu_ms["ours"] / cpu_ms["keras_io"],
            "whole_dream_3x5_steps_s": {"ours": whole_ours, "keras_io": whole_kio, "ratio": whole_ours / whole_kio}}


# Winograd F(m x m, 3 x 3) (Lavin and Gray, 2016): input tiles of m + 2 pixels at stride m, each
# turned by B^T d B, multiplied channel-wise with the turned kernels G g G^T, and turned back by A^T . A
_WINOGRAD = {2: ([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
                 [[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], [[1, 1, 1, 0], [0, 1, -1, -1]]),
             4: ([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                  [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
                 [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                  [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
                 [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]])}


def _winograd_conv(kernel: np.ndarray, m: int, size: int):
    """A 3x3 stride-1 VALID convolution of (1, size, size, C) images by Winograd F(m x m, 3 x 3)
    in TensorFlow ops: tiles gathered by reshapes and concatenations, transforms as matrix products."""
    import tensorflow as tf

    bt, g, at = (np.array(v, np.float64) for v in _WINOGRAD[m])
    a, (c, co) = m + 2, kernel.shape[2:]
    u = tf.constant(np.einsum("ik,klcd,jl->ijcd", g, kernel.astype(np.float64), g).reshape(a * a, c, co), tf.float32)
    kb, ka = tf.constant(np.kron(bt, bt), tf.float32), tf.constant(np.kron(at, at), tf.float32)
    out = size - 2
    n = -(-out // m)

    def call(x):
        x = tf.pad(x, [[0, 0], [0, m * (n + 1) - size], [0, m * (n + 1) - size], [0, 0]])
        t = tf.reshape(x, (n + 1, m, m * (n + 1), c))
        t = tf.reshape(tf.concat([t[:-1], t[1:, :2]], axis=1), (n, a, n + 1, m, c))
        t = tf.concat([t[:, :, :-1], t[:, :, 1:, :2]], axis=3)  # (n, a, n, a, c): the overlapping tiles
        v = tf.matmul(kb, tf.reshape(tf.transpose(t, (1, 3, 0, 2, 4)), (a * a, n * n * c)))
        y = tf.matmul(tf.reshape(v, (a * a, n * n, c)), u)
        y = tf.reshape(tf.matmul(ka, tf.reshape(y, (a * a, n * n * co))), (m, m, n, n, co))
        return tf.reshape(tf.transpose(y, (2, 0, 3, 1, 4)), (1, n * m, n * m, co))[:, :out, :out]

    return call


# InceptionV3's convolutions at 512 px: (what, kernel, in, out, input size as run VALID, stride)
CONV_TRIALS = [("stem 3x3, 80->192", 3, 80, 192, 126, 1), ("stem 3x3, 32->64", 3, 32, 64, 255, 1),
               ("mixed0 3x3, 64->96", 3, 64, 96, 63, 1), ("mixed0 1x1, 192->64", 1, 192, 64, 61, 1),
               ("mixed3 3x3/2, 288->384", 3, 288, 384, 61, 2)]


def conv_trials(reps: int) -> dict:
    """Milliseconds (best and median of ``reps``) of one convolution's forward pass and input
    gradient (through a ReLU) for some of InceptionV3's layer shapes: in float32 (what both steps
    run), in bfloat16 and float16 throughout (no casts timed), and, for the 3x3 stride-1 ones, by
    Winograd F(2x2, 3x3) and F(4x4, 3x3) written in TensorFlow ops (with their relative L2 error)."""
    import tensorflow as tf

    def step(conv):
        @tf.function
        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(tf.cast(tf.nn.relu(conv(x)), tf.float32))
            return tape.gradient(loss, x)

        return run

    def timed(fn, x):
        fn(x), fn(x)
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn(x).numpy()
            ts.append(1000 * (time.perf_counter() - t))
        return {"best_ms": min(ts), "median_ms": float(np.median(ts))}

    rng = np.random.default_rng(0)
    out = {"loadavg_before": os.getloadavg()}
    for what, k, cin, cout, size, stride in CONV_TRIALS:
        kernel = (rng.standard_normal((k, k, cin, cout)) * 0.05).astype(np.float32)
        x = rng.standard_normal((1, size, size, cin)).astype(np.float32)
        row = {}
        for dtype in (tf.float32, tf.bfloat16, tf.float16):
            w = tf.constant(kernel, dtype)
            row[dtype.name] = timed(step(lambda v, w=w: tf.nn.conv2d(v, w, stride, "VALID")), tf.constant(x, dtype))
        if k == 3 and stride == 1:
            ref = tf.nn.conv2d(x, kernel, 1, "VALID").numpy()
            for m in (2, 4):
                conv = _winograd_conv(kernel, m, size)
                err = float(np.linalg.norm(conv(tf.constant(x)).numpy() - ref) / np.linalg.norm(ref))
                row[f"winograd_f{m}"] = {**timed(step(conv), tf.constant(x)), "rel_l2": err}
        for name in list(row)[1:]:
            row[name]["over_float32"] = row[name]["best_ms"] / row["float32"]["best_ms"]
        out[what] = row
        print(what, {n: round(r["best_ms"], 1) for n, r in row.items()}, flush=True)
    out["loadavg_after"] = os.getloadavg()
    return out


def _op_times(fn, reps: int) -> dict:
    """Milliseconds per call spent in each ``(node name, op type)`` while ``fn`` runs ``reps`` times:
    the durations of the profiler's op events summed (ops that run side by side both count, and an
    op preempted by other jobs counts its wait: shares within one step are what it tells)."""
    import tempfile

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(reps):
            fn()
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    out: dict = {}
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                node, _, op = names.get(event.metadata_id, "").rpartition(":")
                # op events are "node name:OpType"; executor and function bookkeeping events (which
                # span the ops they run) are not
                if node and "::" not in node and op.isidentifier() and op not in ("Run", "Process"):
                    out[node, op] = out.get((node, op), 0.0) + event.duration_ps / 1e9 / reps
    return out


def profile(reps: int = 3, rounds: int = 3) -> dict:
    """Op-level profiles of keras-io's step and ours (fused and unfused) at 512 px, each step's op
    time grouped into convolutions, their input gradients and the rest; for our fused step also the
    convolutions' share (forward and input gradient) by kernel shape and stride. The steps are
    profiled in turn for ``rounds`` rounds and each keeps its round with the least op time."""
    import keras
    import tensorflow as tf

    from keras_cv_apps import dream

    base = keras.applications.InceptionV3(weights=None, include_top=False)
    extractor = keras.Model(base.inputs, {n: base.get_layer(n).output for n in INCEPTION})
    kio = _kio_step_fn(extractor, INCEPTION)
    x = np.random.default_rng(0).uniform(-1, 1, (512, 512, 3)).astype(np.float32)
    xt = tf.constant(x[None])
    runs = {"keras_io": lambda: kio(xt, 0.01)[1].numpy()}
    for name, fuse in (("ours", True), ("ours_unfused", False)):
        d = dream.Dreamer(base, INCEPTION, "symmetric", fuse=fuse)
        runs[name] = lambda d=d: d.gradient(x)
    kinds = {layer.name: f"{layer.kernel_size[0]}x{layer.kernel_size[1]}/{layer.strides[0]}" for layer in base.layers
             if isinstance(layer, keras.layers.Conv2D)}
    out = {"loadavg_before": os.getloadavg()}
    for fn in runs.values():
        fn(), fn()  # trace and warm up
    least: dict = {}  # per step, the round with the least op time (the least disturbed by other jobs)
    for _ in range(rounds):
        for name, fn in runs.items():
            events = _op_times(fn, reps)
            if name not in least or sum(events.values()) < sum(least[name].values()):
                least[name] = events
    for name, events in least.items():
        ops, kernels = {}, {}
        for (node, op), ms in events.items():
            ops[op] = ops.get(op, 0.0) + ms
            if "Conv2D" in op:
                kind = next((kinds[part] for part in node.split("/") if part in kinds), "unnamed")
                kernels[kind] = kernels.get(kind, 0.0) + ms
        ops = dict(sorted(ops.items(), key=lambda kv: -kv[1]))
        groups = {"convolution": 0.0, "convolution_input_gradient": 0.0, "other": 0.0}
        for (node, op), ms in events.items():  # our step computes input gradients as forward convolutions
            key = ("convolution_input_gradient" if "BackpropInput" in op or "/input_gradient/" in node else
                   "convolution" if "Conv2D" in op else "other")
            groups[key] += ms
        total = sum(ops.values())
        out[name] = {"total_ms": total, "groups_ms": groups, "ops_ms": dict(list(ops.items())[:15])}
        if name == "ours":  # its ops carry the layers' names (Keras's own calls add call-count suffixes)
            out[name]["convolution_share_by_kernel"] = {k: v / total for k, v in sorted(kernels.items())}
    out["loadavg_after"] = os.getloadavg()
    out["multiply_adds_by_kernel"] = _multiply_adds(base, kinds, x.shape)
    return out


def _multiply_adds(base, kinds: dict, shape) -> dict:
    """Forward multiply-adds of the step's convolutions at ``shape`` (the input gradients do as
    many), in total and by kernel shape and stride, counted from each layer's output size."""
    import keras

    last = max(base.layers.index(base.get_layer(n)) for n in INCEPTION)  # InceptionV3 needs all before it
    names = [layer.name for layer in base.layers[:last + 1] if layer.name in kinds]
    probe = keras.Model(base.inputs, [base.get_layer(n).output for n in names])
    counts: dict = {}
    for name, out in zip(names, probe(np.zeros((1, *shape), np.float32))):
        kh, kw, cin, cout = base.get_layer(name).kernel.shape
        counts[kinds[name]] = counts.get(kinds[name], 0) + int(out.shape[1] * out.shape[2] * kh * kw * cin * cout)
    total = sum(counts.values())
    return {"total_gmac": total / 1e9, "share": {k: v / total for k, v in sorted(counts.items())}}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_probe(size: int, tile) -> dict:
    """Run in a child process: resident memory before and at its peak during a one-step dream at
    ``size`` px (``tile`` px windows), sampled every 5 ms."""
    import threading

    import keras

    from keras_cv_apps import dream

    base = keras.applications.InceptionV3(weights=None, include_top=False)
    d = dream.Dreamer(base, INCEPTION, "symmetric")
    photo = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    baseline, peak, done = _rss_mb(), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    dream.deep_dream(d, photo, layers=INCEPTION, octaves=1, steps=1, tile_size=tile)
    seconds = time.perf_counter() - t
    done.set()
    sampler.join()
    return {"size": size, "tile": tile, "baseline_mb": baseline, "peak_mb": max(peak[0], _rss_mb()),
            "process_max_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "seconds": seconds}


def memory() -> dict:
    out = {}
    for size, tile in ((512, None), (2048, 512)):
        cmd = [PY, "-m", "benchmarks.bench_dream", "--memory-probe", str(size), str(tile or 0)]
        _, done = run_timed(cmd, env={"TF_CPP_MIN_LOG_LEVEL": "3"})
        if done.returncode != 0:
            raise SystemExit(f"memory probe failed:\n{done.stderr[-2000:]}")
        out[f"{size}px_tile{tile}"] = json.loads(done.stdout.strip().splitlines()[-1])
    small, large = out["512px_tileNone"], out["2048px_tile512"]
    out["peak_ratio"] = large["peak_mb"] / small["peak_mb"]
    out["above_baseline_ratio"] = (large["peak_mb"] - large["baseline_mb"]) / (small["peak_mb"] - small["baseline_mb"])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=6, help="timed repetitions per variant (best and median kept)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--only-speed", action="store_true", help="only redo the speed part in results/dream.json")
    parser.add_argument("--variants", action="store_true", help="also time the step with XLA and in bfloat16")
    parser.add_argument("--profile", action="store_true", help="only profile both steps op by op "
                                                                 "(into results/dream.json)")
    parser.add_argument("--conv-trials", action="store_true", help="only time one convolution's forward pass "
                        "and input gradient in float32, bfloat16, float16 and by Winograd (into results/dream.json)")
    parser.add_argument("--memory-probe", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.memory_probe:
        size, tile = args.memory_probe
        print(json.dumps(memory_probe(size, tile or None)))
        return 0
    if args.profile:
        result = json.loads((RESULTS / "dream.json").read_text())
        result.pop("machine", None), result.pop("date", None)
        result["profile"] = profile(args.reps)
        print(json.dumps({k: v for k, v in result["profile"].items() if not k.startswith("load")}, indent=1))
        print(f"results: {write_result('dream', result)}")
        return 0
    if args.conv_trials:
        result = json.loads((RESULTS / "dream.json").read_text())
        result.pop("machine", None), result.pop("date", None)
        result["conv_trials"] = conv_trials(args.reps)
        print(f"results: {write_result('dream', result)}")
        return 0
    if args.only_speed:
        result = json.loads((RESULTS / "dream.json").read_text())
        result.pop("machine", None), result.pop("date", None)
        if "speed" in result:  # earlier reruns kept, newest first (the step's code may differ between them)
            result["speed_earlier"] = ([{"date": result["speed"].get("date"), **result["speed"]}]
                                       + result.get("speed_earlier", []))[:5]
        result["speed"] = {"date": time.strftime("%Y-%m-%d %H:%M"), **speed(args.reps, args.variants)}
        print(json.dumps(result["speed"], indent=1))
        print(f"results: {write_result('dream', result)}")
        return 0
    result = {"quality": rise_tiles_seams(args.reps)}
    write_result("dream", result)  # what is measured is kept if a later part fails
    result["speed"] = {"date": time.strftime("%Y-%m-%d %H:%M"), **speed(args.reps, args.variants)}
    write_result("dream", result)
    if not args.skip_memory:
        result["memory"] = memory()
    q, s = result["quality"], result["speed"]
    rows = [{"figure": f"objective rise, octave {i}", "value": r, "target": ">= 5"}
            for i, r in enumerate(q["octave_rise"])]
    rows += [{"figure": f"  with clip=True, octave {i}", "value": r, "target": "(reported)"}
             for i, r in enumerate(q["octave_rise_clip"])]
    rows += [{"figure": "objective of the uint8 dream / of the photo (clip=True)",
              "value": q["uint8_result_over_photo_clip"], "target": "(reported)"}]
    rows += [{"figure": "tiled vs whole gradient, tile covers image (rel. L2)", "value": q["tile_covering_rel_l2"],
              "target": "<= 1e-5"},
             {"figure": "seam energy ratio, one gradient, 256-px tiles on 1024 px", "value":
              q["seam_energy_ratio"]["gradient_tiled"], "target": "<= 1.1"},
             {"figure": "  the whole image's gradient on the same lines", "value":
              q["seam_energy_ratio"]["gradient_whole_same_lines"], "target": "(reference)"},
             {"figure": "seam energy ratio, whole dream, tiled / untiled on the same lines", "value":
              q["seam_energy_ratio"]["dream_tiled_over_whole"], "target": "<= 1.1"},
             {"figure": "seam energy ratio, windows without margins", "value":
              q["seam_energy_ratio"]["gradient_no_margin"], "target": "(contrast)"},
             {"figure": "ms/step ours / keras-io (InceptionV3 512 px), best of reps", "value": s["ratio"],
              "target": "<= 0.67"},
             {"figure": "  median of reps / CPU time / unfused", "value":
              f"{s['ratio_median']:.3f} / {s['ratio_cpu']:.3f} / {s['ratio_unfused']:.3f}", "target": "(reported)"},
             {"figure": "  CPU time with TensorFlow's input gradients", "value": s["ratio_cpu_backprop_input"],
              "target": "(reported)"},
             {"figure": "whole 3-octave dream ours / keras-io", "value": s["whole_dream_3x5_steps_s"]["ratio"],
              "target": "(reported)"}]
    if "memory" in result:
        rows += [{"figure": "peak memory 2048 px in 512 tiles / 512 px", "value": result["memory"]["peak_ratio"],
                  "target": "<= 2"},
                 {"figure": "  the same above each process's baseline", "value":
                  result["memory"]["above_baseline_ratio"], "target": "(stricter)"}]
    print(table(rows, ["figure", "value", "target"]))
    print(f"ms per step: {s['ms_per_step']}")
    print(f"results: {write_result('dream', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
