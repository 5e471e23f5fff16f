"""Open-set identification figures on constructed cases with hand-computed answers: scores of
queries against a gallery, DIR / FAR / rejection and the open-set ROC, thresholds for a
false-accept rate, the within-class whitening, and calibration on seeded galleries."""

import numpy as np
import pytest

from keras_cv_apps import metrics
from keras_cv_apps.metrics import open_set

KNOWN = np.array([0.1, 0.2, 0.3, 0.4])
CORRECT = np.array([True, True, False, True])
UNKNOWN = np.array([0.25, 0.5, 0.6, 0.7])


def test_identification_scores_nearest_image_per_identity_and_ratio():
    d = np.array([[0.2, 0.5, 0.4],
                  [0.9, 0.3, 0.6]])
    s = open_set.identification_scores(d, ["a", "b", "a"])
    assert s["identities"].tolist() == ["a", "b"]
    np.testing.assert_allclose(s["per_identity"], [[0.2, 0.5], [0.6, 0.3]])
    assert s["candidate"].tolist() == ["a", "b"]
    np.testing.assert_allclose(s["distance"], [0.2, 0.3])
    np.testing.assert_allclose(s["second"], [0.5, 0.6])
    np.testing.assert_allclose(s["score"], [0.4, 0.5])  # 0.2 / 0.5 and 0.3 / 0.6
    plain = open_set.identification_scores(d, ["a", "b", "a"], statistic="distance")
    np.testing.assert_allclose(plain["score"], [0.2, 0.3])
    single = open_set.identification_scores([[0.3, 0.1]], ["a", "a"], statistic="distance")
    assert single["candidate"][0] == "a" and single["second"][0] == np.inf
    with pytest.raises(ValueError, match="at least 2 identities"):
        open_set.identification_scores([[0.3, 0.1]], ["a", "a"])
    with pytest.raises(ValueError, match="not one of"):
        open_set.identification_scores(d, ["a", "b", "a"], statistic="cosine")


def test_dir_far_rejection_and_open_set_roc_hand_computed():
    assert metrics.identification_rate(KNOWN, CORRECT, 0.35) == 0.5  # 0.1, 0.2 right; 0.3 wrong
    assert metrics.identification_rate(KNOWN, CORRECT, 0.4) == 0.75
    assert metrics.rejection_rate(UNKNOWN, 0.55) == 0.5
    assert metrics.rejection_rate(UNKNOWN, 0.1) == 1.0
    roc = metrics.open_set_roc(KNOWN, CORRECT, UNKNOWN)
    assert roc["far"][0] == 0.0 and roc["dir"][0] == 0.0 and roc["threshold"][0] < 0.1
    at = dict(zip(roc["threshold"].round(6).tolist(), zip(roc["far"].tolist(), roc["dir"].tolist())))
    assert at[0.2] == (0.0, 0.5) and at[0.25] == (0.25, 0.5) and at[0.3] == (0.25, 0.5)
    assert at[0.4] == (0.25, 0.75) and at[0.7] == (1.0, 0.75)
    assert np.all(np.diff(roc["far"]) >= 0) and np.all(np.diff(roc["dir"]) >= 0)
    assert metrics.dir_at_far(KNOWN, CORRECT, UNKNOWN, 0.0) == {"dir": 0.5, "far": 0.0, "threshold": 0.2}
    assert metrics.dir_at_far(KNOWN, CORRECT, UNKNOWN, 0.1)["dir"] == 0.5
    best = metrics.dir_at_far(KNOWN, CORRECT, UNKNOWN, 0.25)
    assert best["dir"] == 0.75 and best["far"] == 0.25 and best["threshold"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="known and unknown"):
        metrics.open_set_roc(KNOWN, CORRECT, [])


def test_threshold_at_far_hand_computed_groups_and_ties():
    scores = np.arange(1, 11) / 10.0  # 0.1 ... 1.0
    t = metrics.threshold_at_far(scores, 0.2)
    assert t == pytest.approx(0.25) and np.mean(scores <= t) == 0.2
    t = metrics.threshold_at_far(scores, 0.05)  # 0.05 * 10 = 0.5 scores: none may be accepted
    assert t < 0.1 and t == pytest.approx(0.1) and np.mean(scores <= t) == 0.0
    groups = np.array(["a"] * 4 + ["b"] * 4)
    both = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    # group a alone allows one score (0.1) -> 0.15; group b -> 0.55; pooled -> 0.25; the strictest wins
    assert metrics.threshold_at_far(both, 0.25, groups=groups) == pytest.approx(0.15)
    assert metrics.threshold_at_far(both, 0.25) == pytest.approx(0.25)
    ties = np.array([0.2, 0.2, 0.2, 0.5])  # two may be accepted, but not two of three equal scores
    assert np.mean(ties <= metrics.threshold_at_far(ties, 0.5)) == 0.0
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            metrics.threshold_at_far(scores, bad)


def test_whitening_is_the_inverse_square_root_of_the_shrunk_within_class_covariance(tmp_path):
    # within-class variation only along x (variance 1), none along y: W = diag(1, 0), a = 1 * 1/2
    x = np.array([[-1.0, 0.0], [1.0, 0.0], [-1.0, 2.0], [1.0, 2.0]])
    w = open_set.Whitening.fit(x, [0, 0, 1, 1], rank=4, shrinkage=1.0)
    assert w.rank == 1 and w.scale == pytest.approx(0.5)
    np.testing.assert_allclose(w.mean, [0.0, 1.0])
    query = np.array([[1.0, 2.0], [3.0, -1.0]])
    z = (query - [0.0, 1.0]) / np.sqrt([1.5, 0.5])  # (W + aI)^(-1/2) = diag(1/sqrt(1.5), 1/sqrt(0.5))
    np.testing.assert_allclose(w(query), z / np.linalg.norm(z, axis=1, keepdims=True), rtol=1e-5)
    path = tmp_path / "w.npz"
    path.write_bytes(w.to_bytes())
    np.testing.assert_array_equal(open_set.Whitening.load(path)(query), w(query))
    path.write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="not a whitening file"):
        open_set.Whitening.load(path)
    with pytest.raises(ValueError, match="at least 2 classes"):
        open_set.Whitening.fit(x, [0, 1, 2, 3])


def _clusters():
    """Gallery classes 0 and 1 as tight pairs far apart; stranger class 2 has one image midway
    and one that sits right next to class 0."""
    x = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.1, 0.0], [5.0, 0.0], [0.05, 0.0]])
    return x, np.array([0, 0, 1, 1, 2, 2])


def test_simulate_and_evaluate_on_constructed_galleries():
    x, y = _clusters()
    sim = open_set.simulate(x, y, gallery_classes=[0, 1], stranger_classes=[2], statistic="distance",
                            episodes=20, seed=0)
    assert len(sim["known_score"]) == 2 * 20 and len(sim["unknown_score"]) == 2 * 20
    np.testing.assert_allclose(sim["known_score"], 0.1)  # the other image of its own class
    assert sim["known_correct"].all()
    # the look-alike stranger is 0.05 from either class-0 image; the midway one 4.9 to 5.0 away
    np.testing.assert_allclose(np.sort(sim["unknown_score"])[:20], 0.05)
    assert sim["unknown_score"].max() <= 5.0 + 1e-9 and np.sort(sim["unknown_score"])[20] >= 4.9 - 1e-9
    rep = open_set.evaluate(x, y, gallery_classes=[0, 1], stranger_classes=[2], statistic="distance",
                            thresholds={"loose": 1.0, "strict": 0.01}, episodes=20)
    assert rep["at"]["loose"]["rejection"] == 0.5 and rep["at"]["loose"]["dir"] == 1.0
    assert rep["at"]["strict"]["rejection"] == 1.0 and rep["at"]["strict"]["dir"] == 0.0
    assert rep["identification"] == 1.0 and rep["dir_at_far"]["0.01"] == 0.0  # the look-alike beats every known
    with pytest.raises(ValueError, match="both gallery and stranger"):
        open_set.simulate(x, y, gallery_classes=[0, 1], stranger_classes=[1])
    with pytest.raises(ValueError, match="at least 3 images"):
        open_set.simulate(x, y, gallery_classes=[0, 1], stranger_classes=[2], shots=2)


def test_calibrated_points_refuse_strangers_and_default_to_the_strictest_usable():
    x, y = _clusters()
    keep = np.arange(5)  # without the look-alike: strangers and known queries separate cleanly
    cal = open_set.calibrate(x[keep], y[keep], gallery_classes=[0, 1], stranger_classes=[2], episodes=20)
    assert [p["far"] for p in cal["points"]] == [0.01, 0.001]
    for p in cal["points"]:
        assert p["dir"] == 1.0 and p["far_measured"] == 0.0
        # ratio scores: known 0.1 / 9.9..10.1 (about 0.01); the stranger at least 4.9 / 5.1
        assert 0.0102 < p["threshold"] < 0.9608 and p["threshold"] == pytest.approx(4.9 / 5.1)
    train = np.repeat(x[keep], 2, axis=0) + np.tile([[0.0, 0.0], [0.0, 0.01]], (5, 1))
    whitening, record = open_set.operating_points(train, np.repeat(y[keep], 2), x[keep], y[keep],
                                                  gallery_classes=[0, 1], stranger_classes=[2], episodes=20)
    assert record["default_far"] == 0.001 and record["statistic"] == "ratio"
    assert record["whitening"]["images"] == 8 and isinstance(whitening, open_set.Whitening)


def test_plot_dir_far_writes_png(tmp_path):
    roc = metrics.open_set_roc(KNOWN, CORRECT, UNKNOWN)
    path = open_set.plot_dir_far({"float32": roc}, tmp_path / "roc.png", points={"FAR 1%": (0.01, 0.5)})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
