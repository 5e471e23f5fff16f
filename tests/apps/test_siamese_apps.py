"""siamese_train end to end with tiny settings, then siamese_verify / siamese_identify on real
image files written to disk, and the bad-input paths of all three."""

import json
import re

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
                 "config.json", "metrics.json", "history.json", "embedding_pca.png"):
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


def test_identify_finds_the_gallery_identity_or_unknown(run_dir, digit_files, tmp_path, capsys):
    gallery = tmp_path / "gallery"
    for digit in (3, 7):
        (gallery / f"digit{digit}").mkdir(parents=True)
        for n in (0, 1):
            (gallery / f"digit{digit}" / f"{n}.png").write_bytes(digit_files[(digit, n)].read_bytes())
    (gallery / "eight.png").write_bytes(digit_files[(8, 0)].read_bytes())  # a file-stem identity
    (gallery / "broken.png").write_bytes(digit_files["broken"].read_bytes())
    model = ["--model", str(run_dir / "embedding.tflite")]
    assert siamese_identify.main([str(gallery), str(digit_files[(8, 0)])] + model) == 0
    captured = capsys.readouterr()
    assert re.match(r"^identity=eight distance=0\.0000$", captured.out.splitlines()[0])
    assert "broken.png" in captured.err  # reported and skipped
    assert siamese_identify.main([str(gallery), str(digit_files[(8, 1)]), "--threshold", "0"] + model) == 0
    assert captured.out and capsys.readouterr().out.startswith("identity=unknown ")


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


@pytest.mark.parametrize("argv", [["--top", "-2"], ["--threshold", "nan"]])
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
