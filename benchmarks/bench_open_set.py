"""Open-set identification with the siamese embedding: does it say "unknown" to strangers?

Protocol (seeds 0 and 1, the default ``python -m apps.siamese_train --seed S``, which trains on
digits 0-6 only): on the test split, 200 seeded galleries of one random image each of digits
0-4; known queries = the other test images of 0-4; unknown queries = every test image of the
digits 7-9, never seen in training. The operating points come from the run's threshold.json,
set on the validation split with digits 5 and 6 as the strangers (calibration roles: gallery
0-4, strangers 5-6; 7-9 are never used for any choice). Figures, for the float32 and the int8
embedding as exported (LiteRT, as ``siamese_identify`` runs them):

- rejection of unknown queries and DIR (known queries named right and accepted) at the saved
  FAR-1% and FAR-0.1% points; DIR at a *measured* FAR of 1% (the best any threshold could do);
- the old rule (plain nearest distance <= the verification threshold) for comparison;
- the rules considered, each calibrated the same way at FAR 1%: plain distance vs nearest /
  second-nearest ratio, raw vs whitened embeddings, stranger classes pooled vs each on its own,
  and cohort score normalisation (z-norm of each gallery image against training images of the
  calibration strangers);
- galleries of three images per identity: nearest image, class centroid, and per-identity
  thresholds scaled by each identity's own spread;
- a user's gallery of digits 0-6 (the calibration strangers enrolled too) against 7-9;
- the whole DIR-vs-FAR curve as a PNG.

    python -m benchmarks.bench_open_set [--seeds 0 1] [--episodes 200] [--runs DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from benchmarks._util import PY, RESULTS, run_timed, table, write_result

GALLERY, CAL_STRANGERS, STRANGERS = [0, 1, 2, 3, 4], [5, 6], [7, 8, 9]


def _episodes(labels, gallery_classes, stranger_classes, *, shots, episodes, seed):
    """Seeded draws: (gallery indices, known query indices, unknown query indices)."""
    rng = np.random.default_rng(seed)
    members = {c: np.flatnonzero(labels == c) for c in gallery_classes}
    known_all = np.flatnonzero(np.isin(labels, gallery_classes))
    unknown = np.flatnonzero(np.isin(labels, stranger_classes))
    for _ in range(episodes):
        gallery = np.concatenate([rng.choice(members[c], shots, replace=False) for c in gallery_classes])
        yield gallery, np.setdiff1d(known_all, gallery), unknown


def _collect(emb, labels, score_fn, gallery_classes, stranger_classes, *, shots=1, episodes=200, seed=0):
    """known scores, known correct flags, unknown scores, unknown classes over the episodes."""
    k, ok, u, uc = [], [], [], []
    for gallery, known, unknown in _episodes(labels, gallery_classes, stranger_classes, shots=shots,
                                             episodes=episodes, seed=seed):
        cand, score = score_fn(emb, labels, gallery, known)
        k.append(score)
        ok.append(cand == labels[known])
        u.append(score_fn(emb, labels, gallery, unknown)[1])
        uc.append(labels[unknown])
    return np.concatenate(k), np.concatenate(ok), np.concatenate(u), np.concatenate(uc)


def _rule(statistic, mode="nearest", cohort=None, spread=None):
    """A score function: candidate and score of queries against the gallery images."""
    from keras_cv_apps.metrics.open_set import identification_scores
    from keras_cv_apps.metrics.verification import distance_matrix

    def score(emb, labels, gallery, queries):
        g_emb, g_lab = emb[gallery], labels[gallery]
        if mode == "centroid":
            g_lab = np.unique(g_lab)
            g_emb = np.stack([emb[gallery][labels[gallery] == c].mean(0) for c in g_lab])
            g_emb /= np.linalg.norm(g_emb, axis=1, keepdims=True)
        d = distance_matrix(emb[queries], g_emb)
        if cohort is not None:  # z-norm: each gallery image against the cohort
            dc = distance_matrix(g_emb, cohort)
            d = (d - dc.mean(1)) / dc.std(1)
        s = identification_scores(d, g_lab, statistic=statistic)
        if spread is not None:  # per-identity threshold = global * (identity spread / typical spread)
            own = {c: distance_matrix(g_emb[g_lab == c]) for c in s["identities"]}
            scale = {c: own[c][np.triu_indices(len(own[c]), 1)].mean() / spread for c in own}
            return s["candidate"], s["score"] / np.array([scale[c] for c in s["candidate"]])
        return s["candidate"], s["score"]
    return score


def _calibrated(val, y_val, test, y_test, score_fn, *, worst=True, episodes, seed, far=0.01, shots=1,
                cal_shots=1, gallery=GALLERY, test_gallery=None):
    """Threshold at ``far`` on the validation split (gallery vs 5-6), figures on the test split (vs 7-9)."""
    from keras_cv_apps.metrics import open_set

    _, _, u, uc = _collect(val, y_val, score_fn, gallery, CAL_STRANGERS, shots=cal_shots, episodes=episodes, seed=seed)
    t = open_set.threshold_at_far(u, far, groups=uc if worst else None)
    k, ok, u, _ = _collect(test, y_test, score_fn, test_gallery or gallery, STRANGERS, shots=shots,
                           episodes=episodes, seed=seed + 1000)
    return {"rejection_%": round(100 * open_set.rejection_rate(u, t), 1),
            "dir_%": round(100 * open_set.identification_rate(k, ok, t), 1),
            "dir@far1%_%": round(100 * open_set.dir_at_far(k, ok, u, far)["dir"], 1)}


def _embeddings(run, seed):
    """LiteRT embeddings (float32 and int8 files) of the train/val/test splits the run used."""
    from keras_cv_apps import data
    from keras_cv_apps.inference import TFLiteModel

    config = json.loads((run / "config.json").read_text())
    ds = config["dataset"]
    splits = data.load(ds["spec"], image_size=ds["image_size"][0], channels=ds["channels"], scale=ds["scale"],
                       seed=config["seed"])
    arrays = {s: splits.arrays(s) for s in ("train", "val", "test")}
    out = {}
    for kind, file in (("float32", "embedding.tflite"), ("int8", "embedding_int8.tflite")):
        model = TFLiteModel(run / file)
        out[kind] = {s: model(x) for s, (x, _) in arrays.items()}
    return out, {s: y for s, (_, y) in arrays.items()}


def _seed(run, seed, episodes):
    from keras_cv_apps.metrics import open_set

    saved = json.loads((run / "threshold.json").read_text())
    ident = saved["identification"]
    assert ident["roles"]["calibration_strangers"] == ["5", "6"], ident["roles"]
    whitening = open_set.Whitening.load(run / ident["whitening_file"])
    emb, y = _embeddings(run, seed)
    points = {str(p["far"]): p["threshold"] for p in ident["points"]}
    rows, curves = [], {}
    for kind in ("float32", "int8"):
        rep = open_set.evaluate(whitening(emb[kind]["test"]), y["test"], gallery_classes=GALLERY,
                                stranger_classes=STRANGERS, thresholds=points, episodes=episodes, seed=seed + 1000)
        curves[f"seed {seed} {kind}: whitened ratio (saved rule)"] = rep.pop("roc")
        for far, at in rep["at"].items():
            rows.append({"seed": seed, "embedding": kind, "point": f"FAR {float(far):.1%}",
                         "default": float(far) == ident["default_far"], "threshold": round(at["threshold"], 4),
                         "rejection_%": round(100 * at["rejection"], 1), "dir_%": round(100 * at["dir"], 1),
                         "calibration_dir_%": round(100 * next(p["dir"] for p in ident["points"]
                                                               if str(p["far"]) == far), 1)})
        for row, far in zip(rows[-2:], rep["at"]):  # the best DIR any threshold gives at that FAR, measured
            row["best_dir_same_far_%"] = round(100 * rep["dir_at_far"][far], 1)
        old = open_set.evaluate(emb[kind]["test"], y["test"], gallery_classes=GALLERY, stranger_classes=STRANGERS,
                                thresholds={"v": saved["threshold"]}, statistic="distance", episodes=episodes,
                                seed=seed + 1000)
        curves[f"seed {seed} {kind}: plain distance (old rule)"] = old.pop("roc")
        rows.append({"seed": seed, "embedding": kind, "point": "old rule: distance <= verification threshold",
                     "threshold": round(saved["threshold"], 4),
                     "rejection_%": round(100 * old["at"]["v"]["rejection"], 1),
                     "dir_%": round(100 * old["at"]["v"]["dir"], 1)})
    return rows, curves, _methods(emb["float32"], y, whitening, seed, episodes), ident


def _methods(emb, y, whitening, seed, episodes):
    """The rules considered, each calibrated at FAR 1% on 5-6 (validation) and tested on 7-9."""
    raw = {s: emb[s] for s in emb}
    white = {s: whitening(emb[s]) for s in emb}
    cohort = emb["train"][np.isin(y["train"], CAL_STRANGERS)]
    run = dict(episodes=episodes, seed=seed)
    rows = []

    def add(name, space, fn, **kw):
        rows.append({"seed": seed, "rule": name, **_calibrated(space["val"], y["val"], space["test"], y["test"], fn,
                                                               **{**run, **kw})})

    add("plain distance, raw, strangers pooled", raw, _rule("distance"), worst=False)
    add("plain distance, raw", raw, _rule("distance"))
    add("ratio, raw, strangers pooled", raw, _rule("ratio"), worst=False)
    add("ratio, raw", raw, _rule("ratio"))
    add("z-norm distance (cohort: training images of 5-6), raw", raw, _rule("distance", cohort=cohort))
    add("plain distance, whitened", white, _rule("distance"))
    add("ratio, whitened, strangers pooled", white, _rule("ratio"), worst=False)
    add("**ratio, whitened (saved)**", white, _rule("ratio"))
    for name, fn in (("3 images/identity: ratio, nearest image (saved threshold)", _rule("ratio")),
                     ("3 images/identity: ratio, class centroid", _rule("ratio", mode="centroid"))):
        add(name, white, fn, shots=3)
    same = [np.linalg.norm(a - b) for c in GALLERY for i, a in enumerate(white["val"][y["val"] == c])
            for b in white["val"][y["val"] == c][i + 1:]]
    add("3 images/identity: distance, per-identity thresholds (calibrated on 3 images/identity)", white,
        _rule("distance", spread=float(np.mean(same))), shots=3, cal_shots=3)
    add("3 images/identity: plain distance, one threshold", white, _rule("distance"), shots=3)
    add("gallery 0-6 (5-6 enrolled too): ratio, whitened (saved)", white, _rule("ratio"),
        test_gallery=GALLERY + CAL_STRANGERS)
    return rows


def main(argv=None) -> int:
    from keras_cv_apps.metrics import open_set

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--runs", default=None, help="reuse (or keep) the app's run folders here: DIR/seedS")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    points, methods, curves, roles = [], [], {}, None
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            run = Path(args.runs or tmp) / f"seed{seed}"
            if not (run / "threshold.json").exists():
                seconds, done = run_timed([PY, "-m", "apps.siamese_train", "--seed", str(seed), "--output", str(run),
                                           "--quiet"])
                if done.returncode != 0:
                    raise SystemExit(f"siamese_train seed {seed} failed:\n{done.stderr[-2000:]}")
            rows, c, m, ident = _seed(run, seed, args.episodes)
            points += rows
            methods += m
            curves.update(c)
            roles = ident["roles"]
            print(table(rows, list(rows[0]) + ["best_dir_same_far_%"]))
    marks = {f"seed {r['seed']}, saved {r['point']}": (1 - r["rejection_%"] / 100, r["dir_%"] / 100)
             for r in points if r["point"].startswith("FAR") and r["embedding"] == "float32"}
    colors = dict(zip(args.seeds, ("tab:blue", "tab:orange", "tab:green", "tab:red")))
    styles = {name: {"color": colors[int(name.split()[1])], "linestyle": "--" if "int8" in name else "-",
                     "alpha": 0.45 if "plain" in name else 1.0, "linewidth": 1.0 if "int8" in name else 1.6}
              for name in curves}
    png = open_set.plot_dir_far(curves, RESULTS / "open_set_dir_far.png", points=marks, styles=styles,
                                title="Gallery 0-4 (one image each) vs unseen strangers 7-9")
    columns = ["seed", "embedding", "point", "default", "threshold", "rejection_%", "dir_%", "best_dir_same_far_%",
               "calibration_dir_%"]
    print(table(points, columns))
    print(table(sorted(methods, key=lambda r: (r["rule"], r["seed"])), ["rule", "seed", "rejection_%", "dir_%",
                                                                        "dir@far1%_%"]))
    out = write_result("open_set", {"episodes": args.episodes, "roles": roles, "points": points, "rules": methods,
                                    "curves_png": str(Path(png).relative_to(RESULTS.parent.parent))})
    print(f"results: {out}\nfigure: {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
