"""siamese_train end to end with tiny settings, then siamese_verify / siamese_identify on real
image files written to disk, and the bad-input paths of all three."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")
cv2 = pytest.importorskip("cv2")

from apps import siamese_identify, siamese_train, siamese_verify  # noqa: E402

TINY = ["--epochs", "2", "--steps-per-epoch", "3", "--width", "4", "--episodes", "50", "--quiet"]
LINE = re.compile(r"^distance=(\d+\.\d+) verdict=(same|different)$")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("siamese") / "run"
    assert siamese_train.main(TINY + ["--output", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory, digits_8x8):
    """Real digits as files: 64x64 RGB JPEG-free PNGs and a 16x16 gray one, plus a corrupt file."""
    root = tmp_path_factory.mktemp("digits")
    images, labels = digits_8x8
    files = {}
    for digit in (3, 7, 8):
        idx = np.flatnonzero(labels == digit)[:2]
        for n, i in enumerate(idx):
            big = cv2.resize(images[i, ..., 0], (64, 64), interpolation=cv2.INTER_LINEAR)
            path = root / f"d{digit}_{n}.png"
            cv2.imwrite(str(path), cv2.cvtColor(big, cv2.COLOR_GRAY2BGR))
            files[(digit, n)] = path
    small = root / "d3_small.png"
    cv2.imwrite(str(small), cv2.resize(images[np.flatnonzero(labels == 3)[0], ..., 0], (16, 16)))
    files["small"] = small
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    files["broken"] = root / "broken.png"
    return files


def test_train_app_writes_verified_artifacts(run_dir, capsys):
    for name in ("embedding.keras", "embedding.tflite", "embedding_int8.tflite", "threshold.json",
                 "whitening.npz", "config.json", "metrics.json", "history.json", "embedding_pca.png"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    held, everything = metrics["test"]["held_out"], metrics["test"]["all"]
    assert held["classes"] == [7, 8, 9] and 0.0 <= held["3way_1shot"] <= 1.0
    assert len(everything["classes"]) == 10 and "10way_1shot" in everything
    assert 0.0 <= held["verification"]["roc_auc"] <= 1.0
    assert metrics["exports"]["embedding.tflite"]["max_abs_diff"] < 1e-4
    assert metrics["exports"]["embedding_int8.tflite"]["one_shot"]["held_out"] >= 0.0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["dataset"]["image_size"] == [16, 16] and config["options"]["held_out"] == ["7", "8", "9"]
    threshold = json.loads((run_dir / "threshold.json").read_text())
    assert threshold["threshold"] > 0 and "validation" in threshold["chosen_on"]
    ident = threshold["identification"]  # the roles: no stranger of the evaluation is seen in calibration
    assert ident["roles"] == {"calibration_gallery": ["0", "1", "2", "3", "4"], "calibration_strangers": ["5", "6"],
                              "held_out": ["7", "8", "9"]}
    assert [p["far"] for p in ident["points"]] == [0.01, 0.001] and ident["statistic"] == "ratio"
    assert ident["points"][0]["threshold"] >= ident["points"][1]["threshold"] > 0
    assert all(p["far_measured"] <= p["far"] for p in ident["points"])
    assert ident["default_far"] in (0.01, 0.001) and ident["whitening_file"] == "whitening.npz"
    for report in (metrics["open_set"], metrics["exports"]["embedding_int8.tflite"]["open_set"]):
        assert set(report["at"]) == {"0.01", "0.001"}
        assert report["at"]["0.001"]["rejection"] >= report["at"]["0.01"]["rejection"]


def test_verify_same_file_and_different_sizes(run_dir, digit_files, capsys):
    model = str(run_dir / "embedding.tflite")
    assert siamese_verify.main([str(digit_files[(3, 0)]), str(digit_files[(3, 0)]), "--model", model]) == 0
    distance, verdict = LINE.match(capsys.readouterr().out.strip()).groups()
    assert float(distance) < 1e-4 and verdict == "same"
    # a 64x64 RGB file against a 16x16 gray one of the same digit image: resized, not an error
    assert siamese_verify.main([str(digit_files[(3, 0)]), str(digit_files["small"]), "--model", model]) == 0
    assert float(LINE.match(capsys.readouterr().out.strip()).group(1)) < 0.5
    assert siamese_verify.main([str(digit_files[(3, 0)]), str(digit_files[(8, 0)]), "--model", model,
                                "--threshold", "0"]) == 0
    assert LINE.match(capsys.readouterr().out.strip()).group(2) == "different"


def test_verify_int8_model_matches_float(run_dir, digit_files, capsys):
    pair = [str(digit_files[(7, 0)]), str(digit_files[(8, 1)])]
    siamese_verify.main(pair + ["--model", str(run_dir / "embedding.tflite")])
    d32 = float(LINE.match(capsys.readouterr().out.strip()).group(1))
    siamese_verify.main(pair + ["--model", str(run_dir / "embedding_int8.tflite")])
    d8 = float(LINE.match(capsys.readouterr().out.strip()).group(1))
    assert abs(d32 - d8) < 0.05


def _gallery(tmp_path, digit_files):
    gallery = tmp_path / "gallery"
    for digit in (3, 7):
        (gallery / f"digit{digit}").mkdir(parents=True)
        for n in (0, 1):
            (gallery / f"digit{digit}" / f"{n}.png").write_bytes(digit_files[(digit, n)].read_bytes())
    (gallery / "eight.png").write_bytes(digit_files[(8, 0)].read_bytes())  # a file-stem identity
    (gallery / "digit3" / "broken.png").write_bytes(digit_files["broken"].read_bytes())
    return gallery


IDENTITY = re.compile(r"^identity=(\S+) distance=(\d+\.\d+)( ratio=(\d+\.\d+))?( nearest=(\S+))?$")


def test_identify_names_the_gallery_identity_at_a_saved_operating_point(run_dir, digit_files, tmp_path, capsys):
    gallery = _gallery(tmp_path, digit_files)
    model = ["--model", str(run_dir / "embedding.tflite")]
    answer = tmp_path / "answer.json"
    assert siamese_identify.main([str(gallery), str(digit_files[(8, 0)]), "--output", str(answer)] + model) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    name, distance, _, ratio, *_ = IDENTITY.match(lines[0]).groups()
    assert name == "eight" and float(distance) == 0.0 and float(ratio) == 0.0  # the query is a gallery image
    default = json.loads((run_dir / "threshold.json").read_text())["identification"]["default_far"]
    assert lines[1].startswith(f"operating point: FAR {default:.1%} (default): ratio <= ")
    assert "strangers 5, 6" in lines[1] and len(lines) == 2 + 3  # --top 3 candidates by default
    assert [line.split()[1] for line in lines[2:]][0] == "eight"
    assert "broken.png" in captured.err  # reported and skipped; digit3 still has two images
    saved = json.loads(answer.read_text())
    assert saved["identity"] == "eight" and saved["statistic"] == "ratio" and saved["far"] == default
    assert [r["identity"] for r in saved["ranking"]][0] == "eight" and len(saved["ranking"]) == 3

    assert siamese_identify.main([str(gallery), str(digit_files[(8, 1)]), "--far", "0.02", "--top", "2"] + model) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("operating point: FAR 1.0% (strictest at or below 0.02)") and len(lines) == 4
    distances = [float(line.split()[2]) for line in lines[2:]]
    assert distances == sorted(distances)
    # --threshold: the plain distance rule; 0 refuses anything that is not the very same image
    assert siamese_identify.main([str(gallery), str(digit_files[(8, 1)]), "--threshold", "0"] + model) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("identity=unknown ") and IDENTITY.match(lines[0]).group(6) in ("eight", "digit3",
                                                                                             "digit7")
    assert lines[1] == "operating point: --threshold 0 on the plain nearest distance"


def test_identify_falls_back_to_the_verification_threshold_of_an_older_model(run_dir, digit_files, tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    for name in ("embedding.tflite", "config.json"):
        (old / name).write_bytes((run_dir / name).read_bytes())
    saved = json.loads((run_dir / "threshold.json").read_text())
    (old / "threshold.json").write_text(json.dumps({k: v for k, v in saved.items() if k != "identification"}))
    argv = [str(_gallery(tmp_path, digit_files)), str(digit_files[(8, 0)]), "--model", str(old / "embedding.tflite")]
    assert siamese_identify.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "identity=eight distance=0.0000"
    assert out[1].startswith(f"operating point: verification threshold {saved['threshold']:.4f}")
    assert siamese_identify.main(argv + ["--far", "0.01"]) == 2
    assert "no identification operating points" in capsys.readouterr().err


@pytest.mark.parametrize("case, message", [
    ("empty", "has no images"),
    ("unreadable", "Gallery identity 'ghost' has no readable image"),
    ("far=0", "--far must be between 0 and 1"),
    ("far=1", "--far must be between 0 and 1"),
    ("far=-0.5", "--far must be between 0 and 1"),
    ("far=1e-9", "No saved operating point at or below FAR 1e-09; saved: 0.001, 0.01"),
    ("one identity", "needs at least 2"),
])
def test_identify_bad_input_is_one_sentence_and_exit_2(run_dir, digit_files, tmp_path, capsys, case, message):
    gallery = _gallery(tmp_path, digit_files)
    extra = []
    if case == "empty":
        gallery = tmp_path / "empty"
        gallery.mkdir()
    elif case == "unreadable":
        (gallery / "ghost").mkdir()
        (gallery / "ghost" / "1.png").write_bytes(digit_files["broken"].read_bytes())
    elif case == "one identity":
        shutil.rmtree(gallery / "digit3")
        (gallery / "eight.png").unlink()
    else:
        extra = ["--far", case.split("=")[1]]
    rc = siamese_identify.main([str(gallery), str(digit_files[(8, 0)]), "--model", str(run_dir / "embedding.tflite")]
                               + extra)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.startswith("error: ") and err.count("\n") == 1, err


def test_a_keras_file_as_model_is_refused_by_name(run_dir, digit_files, tmp_path, capsys):
    """The phone-side apps take the exported .tflite; a .keras beside a config.json is named as the
    wrong kind of file, not reported as a missing config."""
    keras_file = run_dir / "embedding.keras"  # what siamese_train saved beside its .tflite files
    assert keras_file.is_file() and (run_dir / "config.json").is_file()
    pair = [str(digit_files[(3, 0)]), str(digit_files[(8, 0)])]
    assert siamese_verify.main(pair + ["--model", str(keras_file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --model takes a .tflite file") and "embedding.keras" in err and err.count("\n") == 1
    gallery = _gallery(tmp_path, digit_files)
    assert siamese_identify.main([str(gallery), pair[1], "--model", str(keras_file)]) == 2
    assert "--model takes a .tflite file" in capsys.readouterr().err


@pytest.mark.parametrize("which", ["missing", "broken"])
def test_verify_and_identify_reject_unreadable_query(run_dir, digit_files, tmp_path, capsys, which):
    bad = str(tmp_path / "nope.png") if which == "missing" else str(digit_files["broken"])
    model = ["--model", str(run_dir / "embedding.tflite")]
    assert siamese_verify.main([str(digit_files[(3, 0)]), bad] + model) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert siamese_identify.main([str(digit_files[(3, 0)].parent), bad] + model) == 2
    assert "error: " in capsys.readouterr().err


def test_verify_without_a_trained_model_is_a_clear_error(digit_files, tmp_path, capsys):
    f = str(digit_files[(3, 0)])
    assert siamese_verify.main([f, f, "--model", str(tmp_path / "none.tflite")]) == 2
    assert "siamese_train" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--held-out", "7,x"], "not in the dataset"),
    (["--held-out", "0,1,2,3,4,5,6,7,8"], "at least 2 training and 2 held-out"),
    (["--backbone", "lenet"], "Unknown model 'lenet'; --backbone trains classifier models"),
    (["--model", "lenet5"], "Model 'lenet5' is a classifier model; siamese_train trains siamese or embedding"),
    (["--calibration-strangers", "7"], "--calibration-strangers must name training classes"),
    (["--calibration-strangers", "0,1,2,3,4,5"], "leave at least 2 for the gallery"),
    (["--loss", "contrastive", "--model", "siamese_triplet"], "does not fit --loss contrastive"),
])
def test_train_app_bad_input_fails_fast(tmp_path, capsys, extra, message):
    rc = siamese_train.main(TINY + ["--output", str(tmp_path / "x")] + extra)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.startswith("error: ")
    assert not (tmp_path / "x").exists()


def test_contrastive_pairs_path_runs(tmp_path):
    out = tmp_path / "pairs"
    rc = siamese_train.main(TINY + ["--loss", "contrastive", "--quantize", "none", "--output", str(out)])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["exports"] == {} and "3way_1shot" in metrics["test"]["held_out"]


@pytest.mark.parametrize("argv", [["--k", "0"], ["--episodes", "0"], ["--mining", "hardest"],
                                  ["--temperature", "nan"], ["--width", "-3"]])
def test_train_app_bad_values_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as info:
        siamese_train.parse_args(argv)
    assert info.value.code == 2


@pytest.mark.parametrize("argv", [["--top", "-2"], ["--threshold", "nan"], ["--far", "x"],
                                  ["--far", "0.01", "--threshold", "0.5"]])
def test_identify_bad_values_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as info:
        siamese_identify.parse_args(["gallery", "query.png", *argv])
    assert info.value.code == 2


def test_phone_apps_say_which_model_they_use(run_dir, digit_files, tmp_path, monkeypatch, capsys):
    """Without --model: the newest run under runs/siamese_train/, named on stderr."""
    newest = tmp_path / "runs" / "siamese_train" / "20990101-000000"
    newest.mkdir(parents=True)
    for name in ("embedding.tflite", "config.json", "threshold.json"):
        (newest / name).write_bytes((run_dir / name).read_bytes())
    monkeypatch.chdir(tmp_path)
    f = str(digit_files[(3, 0)])
    assert siamese_verify.main([f, f]) == 0
    captured = capsys.readouterr()
    assert LINE.match(captured.out.strip())
    assert "runs/siamese_train/20990101-000000/embedding.tflite (the newest run" in captured.err


def test_phone_apps_work_with_a_reference_export_and_without_tensorflow(run_dir, digit_files, tmp_path, monkeypatch,
                                                                        capsys):
    """A saved_models/siamese_train/ reference as `make reference` leaves it (no .keras files):
    verify and identify find it without --model, float32 and int8, and never import TensorFlow."""
    reference = tmp_path / "saved_models" / "siamese_train"
    reference.mkdir(parents=True)
    for path in run_dir.iterdir():
        if path.is_file() and path.suffix != ".keras":
            (reference / path.name).write_bytes(path.read_bytes())
    gallery = _gallery(tmp_path, digit_files)
    monkeypatch.chdir(tmp_path)
    f = str(digit_files[(8, 0)])
    assert siamese_verify.main([f, f]) == 0 and LINE.match(capsys.readouterr().out.strip())
    for model in ([], ["--model", str(reference / "embedding_int8.tflite")]):
        assert siamese_identify.main([str(gallery), f] + model) == 0
        captured = capsys.readouterr()
        assert captured.out.startswith("identity=eight ") and "operating point: FAR" in captured.out
    assert siamese_identify.main([str(gallery), f]) == 0
    assert "saved_models/siamese_train/embedding.tflite (the reference model" in capsys.readouterr().err
    code = ("import sys; from apps import siamese_identify as app; rc = app.main(sys.argv[1:]); "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; print(bad); sys.exit(rc or bool(bad))")
    root = Path(siamese_identify.__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code, str(gallery), f], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "[]", done.stderr
