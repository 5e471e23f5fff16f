"""Distance layer, metric-learning losses, pair/P x K samplers and verification metrics.

Loss values are checked on hand-computed cases and against plain-Python loop implementations
written independently of the vectorised code (keras-cv has no triplet/contrastive losses).
"""

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps.data import pairs  # noqa: E402
from keras_cv_apps.layers.distance import EuclideanDistance, pairwise_distances  # noqa: E402
from keras_cv_apps.losses.metric_learning import (  # noqa: E402
    ArcFace,
    ArcFaceLoss,
    ContrastiveLoss,
    SupConLoss,
    TripletLoss,
)
from keras_cv_apps.metrics import verification as ver  # noqa: E402


def _np(x):
    return keras.ops.convert_to_numpy(x)


# ---------------------------------------------------------------- distance layer


def test_euclidean_distance_values_and_finite_gradient_at_zero():
    import tensorflow as tf

    a = tf.constant([[0.0, 0.0], [3.0, 4.0]])
    b = tf.constant([[0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(_np(EuclideanDistance()([a, b])), [[0.0], [5.0]], atol=1e-6)
    np.testing.assert_allclose(_np(EuclideanDistance(squared=True)([a, b])), [[0.0], [25.0]])
    with tf.GradientTape() as tape:
        tape.watch(a)
        d = tf.reduce_sum(EuclideanDistance()([a, b]))
    assert np.all(np.isfinite(_np(tape.gradient(d, a))))


def test_pairwise_distances_match_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(4, 3)).astype("float32")
    expected = np.linalg.norm(a[:, None] - b[None], axis=-1)
    np.testing.assert_allclose(_np(pairwise_distances(a, b)), expected, atol=1e-5)
    self_d = _np(pairwise_distances(a))
    assert np.all(np.diag(self_d) == 0.0)
    np.testing.assert_allclose(self_d, np.linalg.norm(a[:, None] - a[None], axis=-1), atol=1e-5)


# ---------------------------------------------------------------- losses


def test_contrastive_loss_hand_computed():
    # d=0.5 same: 0.25; d=0.5 different: (1-0.5)^2 = 0.25; d=1.5 different: 0.
    loss = ContrastiveLoss(margin=1.0)
    value = _np(loss(np.array([1.0, 0.0, 0.0]), np.array([[0.5], [0.5], [1.5]])))
    assert value == pytest.approx((0.25 + 0.25 + 0.0) / 3, abs=1e-6)
    # the label convention: a distance of 0 costs nothing for "same" and margin^2 for "different"
    assert _np(ContrastiveLoss(margin=2.0)(np.array([0.0]), np.array([[0.0]]))) == pytest.approx(4.0)


# 1-D embeddings: class 0 at 0 and 1, class 1 at 1.5 and 4 (distances are easy to read off).
E1 = np.array([[0.0], [1.0], [1.5], [4.0]], "float32")
L1 = np.array([0, 0, 1, 1])


@pytest.mark.parametrize("mining, expected", [
    # anchors 0..3: hardest pos/neg (1, 1.5), (1, 0.5), (2.5, 0.5), (2.5, 3) -> 0, .7, 2.2, 0
    ("batch_hard", (0.0 + 0.7 + 2.2 + 0.0) / 4),
    # the positive triplets are (1,0,2)=0.7, (2,3,0)=1.2, (2,3,1)=2.2
    ("batch_all", (0.7 + 1.2 + 2.2) / 3),
    # pair (2,3) has no negative beyond 2.5 -> farthest negative 1.5; the others are satisfied
    ("semi_hard", (0.0 + 0.0 + 1.2 + 0.0) / 4),
])
def test_triplet_mining_hand_computed(mining, expected):
    value = _np(TripletLoss(margin=0.2, mining=mining)(L1, E1))
    assert value == pytest.approx(expected, abs=1e-5)


def _triplet_reference(emb, labels, margin, mining):
    """Plain loops over anchors, positives and negatives."""
    d = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    n = len(labels)
    values = []
    for a in range(n):
        pos = [p for p in range(n) if p != a and labels[p] == labels[a]]
        neg = [q for q in range(n) if labels[q] != labels[a]]
        if not pos or not neg:
            continue
        if mining == "batch_hard":
            values.append(max(max(d[a, p] for p in pos) - min(d[a, q] for q in neg) + margin, 0))
            continue
        for p in pos:
            if mining == "batch_all":
                values.extend(max(d[a, p] - d[a, q] + margin, 0) for q in neg)
            else:
                farther = [d[a, q] for q in neg if d[a, q] > d[a, p]]
                chosen = min(farther) if farther else max(d[a, q] for q in neg)
                values.append(max(d[a, p] - chosen + margin, 0))
    values = np.array(values)
    if mining == "batch_all":
        values = values[values > 1e-16]
    return values.mean() if len(values) else 0.0


@pytest.mark.parametrize("mining", ["batch_all", "batch_hard", "semi_hard"])
def test_triplet_loss_matches_loop_reference_on_random_batch(mining):
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(12, 4)).astype("float32")
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = rng.integers(0, 3, size=12)
    got = _np(TripletLoss(margin=0.3, mining=mining)(labels, emb))
    assert got == pytest.approx(_triplet_reference(emb, labels, 0.3, mining), abs=1e-5)


def test_supcon_loss_hand_computed_and_loop_reference():
    z = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], "float32")
    # each anchor: one positive at similarity 1, two negatives at 0, t = 1
    expected = math.log(math.e + 2) - 1.0
    assert _np(SupConLoss(temperature=1.0)(np.array([0, 0, 1, 1]), z)) == pytest.approx(expected, abs=1e-5)

    rng = np.random.default_rng(2)
    z = rng.normal(size=(10, 5))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    labels = rng.integers(0, 3, size=10)
    t = 0.5
    per_anchor = []
    for i in range(10):
        others = [a for a in range(10) if a != i]
        denom = sum(math.exp(z[i] @ z[a] / t) for a in others)
        pos = [p for p in others if labels[p] == labels[i]]
        if pos:
            per_anchor.append(-np.mean([z[i] @ z[p] / t - math.log(denom) for p in pos]))
    got = _np(SupConLoss(temperature=t)(labels, z.astype("float32")))
    assert got == pytest.approx(np.mean(per_anchor), abs=1e-4)


def test_arcface_head_and_loss_hand_computed():
    head = ArcFace(num_classes=2)
    head.build((None, 2))
    head.centres.assign(np.array([[2.0, 0.0], [0.0, 3.0]], "float32"))  # unit columns e_x, e_y
    cos = _np(head(np.array([[3.0, 4.0]], "float32")))
    np.testing.assert_allclose(cos, [[0.6, 0.8]], atol=1e-6)
    # cos(theta) = 0.5 -> theta = 60 deg; + 30 deg margin -> cos 90 deg = 0; logits s * [0, 0.2]
    loss = ArcFaceLoss(margin=math.pi / 6, scale=2.0)
    value = _np(loss(np.array([0]), np.array([[0.5, 0.2]], "float32")))
    assert value == pytest.approx(math.log(1 + math.exp(0.4)), abs=1e-5)


@pytest.mark.parametrize("obj", [
    EuclideanDistance(squared=True), ArcFace(num_classes=5), ContrastiveLoss(margin=0.7),
    TripletLoss(margin=0.1, mining="semi_hard", squared=True), SupConLoss(temperature=0.2),
    ArcFaceLoss(margin=0.3, scale=16.0),
])
def test_objects_round_trip_through_keras_serialization(obj):
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
    assert type(clone) is type(obj)
    config = {k: v for k, v in obj.get_config().items() if k not in ("dtype", "name")}
    assert {k: clone.get_config()[k] for k in config} == config


def test_bad_mining_is_a_clear_error():
    with pytest.raises(ValueError, match="batch_hard"):
        TripletLoss(mining="hardest")


# ---------------------------------------------------------------- samplers


def _indexed_images(labels):
    """Images whose every pixel is the image's own index, so a batch tells which were drawn."""
    n = len(labels)
    return np.broadcast_to(np.arange(n, dtype="float32")[:, None, None, None], (n, 2, 2, 1))


def test_pair_dataset_is_balanced_and_correct():
    labels = np.repeat(np.arange(4), [2, 3, 5, 10])
    ds = pairs.pair_dataset(_indexed_images(labels), labels, batch_size=16, seed=3)
    n_same = 0
    for (a, b), same in ds.take(20):
        ia, ib = _np(a)[:, 0, 0, 0].astype(int), _np(b)[:, 0, 0, 0].astype(int)
        same = _np(same).astype(bool)
        n_same += same.sum()
        np.testing.assert_array_equal(labels[ia] == labels[ib], same)
        assert np.all(ia[same] != ib[same])  # a same pair is two different images
    assert n_same == 20 * 8


def test_pk_dataset_has_p_classes_by_k_images_and_is_seeded():
    labels = np.repeat(np.arange(6), [2, 4, 4, 6, 8, 9])
    x = _indexed_images(labels)
    batches = [(_np(xb)[:, 0, 0, 0].astype(int), _np(yb))
               for xb, yb in pairs.pk_dataset(x, labels, p=3, k=4, seed=1).take(10)]
    for idx, y in batches:
        groups = y.reshape(3, 4)
        assert len(set(groups[:, 0])) == 3 and np.all(groups == groups[:, :1])
        np.testing.assert_array_equal(labels[idx], y)
        for g, c in zip(idx.reshape(3, 4), groups[:, 0]):
            # without replacement when the class has >= k images; class 0 has 2, repeats
            assert len(set(g)) == min(4, np.sum(labels == c))
    again = [(_np(xb)[:, 0, 0, 0].astype(int)) for xb, _ in
             pairs.pk_dataset(x, labels, p=3, k=4, seed=1).take(10)]
    assert all(np.array_equal(a, b[0]) for a, b in zip(again, batches))


def test_pk_dataset_rejects_impossible_batches():
    labels = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="p <= number of classes"):
        pairs.pk_dataset(_indexed_images(labels), labels, p=3, k=2)
    with pytest.raises(ValueError, match="at least 2 classes"):
        pairs.pair_dataset(_indexed_images(labels[:2]), labels[:2])


def test_class_disjoint_split_and_small_classes():
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4])
    x = np.arange(len(labels))
    (xt, yt), (xh, yh) = pairs.class_disjoint_split(x, labels, [3, 4])
    assert set(yt) == {0, 1, 2} and set(yh) == {3, 4} and not set(xt) & set(xh)
    with pytest.raises(ValueError, match="at least 2 training and 2 held-out"):
        pairs.class_disjoint_split(x, labels, [4])
    with pytest.raises(ValueError, match="do not occur"):
        pairs.class_disjoint_split(x, labels, [7, 8])
    xs, ys, dropped = pairs.drop_small_classes(x, labels)
    assert dropped == [4] and 4 not in ys and len(xs) == 8


# ---------------------------------------------------------------- verification metrics


def test_verification_metrics_hand_computed():
    perfect = ver.verification_metrics([0.1, 0.2, 0.3, 0.4], [1, 1, 0, 0])
    assert perfect["roc_auc"] == 1.0 and perfect["eer"] == 0.0 and perfect["tpr_at_fpr"] == 1.0
    assert perfect["best_accuracy"] == 1.0 and perfect["best_threshold"] == pytest.approx(0.2)
    # same at 0.1, 0.3; different at 0.2, 0.4: 3 of 4 (same, different) orderings are right
    mixed = ver.verification_metrics([0.1, 0.3, 0.2, 0.4], [1, 1, 0, 0])
    assert mixed["roc_auc"] == pytest.approx(0.75)
    assert mixed["best_accuracy"] == pytest.approx(0.75)
    assert mixed["best_threshold"] in (pytest.approx(0.1), pytest.approx(0.3))
    assert mixed["eer"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="both same and different"):
        ver.verification_metrics([0.1, 0.2], [1, 1])


def test_verification_pairs_all_or_balanced_sample():
    labels = np.repeat(np.arange(3), 4)
    i, j, same = ver.verification_pairs(labels)
    assert len(i) == 66 and same.sum() == 18 and np.all(i < j)
    i, j, same = ver.verification_pairs(labels, max_pairs=20, seed=0)
    assert len(i) == 20 and same.sum() == 10
    i, j, same = ver.verification_pairs(labels, balanced=True)
    assert len(i) == 36 and same.sum() == 18
    np.testing.assert_array_equal(labels[i] == labels[j], same)


def test_episode_accuracy_perfect_chance_and_errors():
    labels = np.repeat(np.arange(5), 6)
    separated = np.eye(5)[labels] * 10 + np.random.default_rng(0).normal(0, 0.1, (30, 5))
    assert ver.episode_accuracy(separated, labels, n_way=5, episodes=200) == 1.0
    noise = np.random.default_rng(1).normal(size=(30, 4))
    chance = ver.episode_accuracy(noise, labels, n_way=3, episodes=3000, seed=0)
    assert abs(chance - 1 / 3) < 0.05
    # 3-shot: nearest of the 3 supports per class
    assert ver.episode_accuracy(separated, labels, n_way=2, k_shot=3, episodes=50) == 1.0
    lonely = np.r_[labels, 9]  # class 9 has one image: skipped, so only 5 classes are eligible
    with pytest.raises(ValueError, match="6-way 1-shot"):
        ver.episode_accuracy(np.r_[separated, np.zeros((1, 5))], lonely, n_way=6)
    assert ver.episode_accuracy(separated, labels, n_way=2, episodes=10, seed=4) == \
        ver.episode_accuracy(separated, labels, n_way=2, episodes=10, seed=4)


def test_retrieval_metrics_hand_computed():
    emb = np.array([[0.0], [2.1], [1.0], [10.0]])
    out = ver.retrieval_metrics(emb, [0, 0, 1, 1], ks=(1, 2))
    # rankings (by hand): relevant at rank 2, 2, 3, 2
    assert out["recall@1"] == 0.0 and out["recall@2"] == pytest.approx(0.75)
    assert out["map"] == pytest.approx((0.5 + 0.5 + 1 / 3 + 0.5) / 4)
    tight = ver.retrieval_metrics(np.array([[0.0], [1.0], [10.0], [11.0]]), [0, 0, 1, 1])
    assert tight == {"recall@1": 1.0, "recall@5": 1.0, "map": 1.0}


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_plot_embeddings_writes_png(tmp_path, method):
    rng = np.random.default_rng(0)
    path = ver.plot_embeddings(rng.normal(size=(30, 8)), np.arange(30) % 3, tmp_path / "e.png",
                               method=method, class_names=["a", "b", "c"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="pca"):
        ver.plot_embeddings(np.zeros((3, 2)), [0, 1, 2], tmp_path / "x.png", method="umap")



def test_distance_matrix_episodes_threshold_and_report():
    labels = np.repeat(np.arange(4), 5)
    emb = np.eye(4)[labels] + np.random.default_rng(0).normal(0, 0.05, (20, 4))
    dist = ver.distance_matrix(emb)
    assert ver.episode_accuracy_from_distances(dist, labels, n_way=3, episodes=100) == 1.0
    # a "distance" that ranks the far images first always picks a wrong class
    assert ver.episode_accuracy_from_distances(-dist, labels, n_way=3, episodes=100) == 0.0
    chosen = ver.choose_threshold(emb, labels)
    assert chosen["best_accuracy"] == 1.0 and 0.05 < chosen["best_threshold"] < 1.0
    report = ver.embedding_report(emb, labels, held_out_classes=[2, 3], episodes=50,
                                  threshold=chosen["best_threshold"])
    assert report["held_out"]["classes"] == [2, 3] and report["held_out"]["2way_1shot"] == 1.0
    assert report["all"]["4way_1shot"] == 1.0 and report["all"]["n_images"] == 20
    assert report["all"]["verification"]["accuracy_at_threshold"] == 1.0


def test_training_feeds_keep_held_out_classes_out(digits_8x8):
    from keras_cv_apps import data

    images, labels = digits_8x8
    splits = data.load((images, labels), image_size=None, seed=0)
    train, val, info = pairs.training_feeds(splits, held_out=[7, 8, 9], batch_size=28, k=4)
    n_seen = int(np.isin(splits.arrays("train")[1], np.arange(7)).sum())
    assert info == {"train_images": n_seen, "dropped": []}
    for xb, yb in train.take(3):
        assert set(_np(yb)) <= set(range(7)) and xb.shape == (28, 8, 8, 1)
        assert 0.0 <= float(_np(xb).min()) and float(_np(xb).max()) <= 1.0  # scaled
    assert sum(1 for _ in val) == 4
    pair_train, _, _ = pairs.training_feeds(splits, held_out=[7, 8, 9], pairs=True, batch_size=8)
    (a, b), same = next(iter(pair_train))
    assert a.shape == b.shape == (8, 8, 8, 1) and _np(same).tolist() == [1.0] * 4 + [0.0] * 4
