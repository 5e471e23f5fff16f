"""Siamese models: the tower contract, backbones by name, learning on real digits, and TFLite
parity of the exported embedding. (Build / config / save-load / fit-step checks of the
registered variants live in the generic registry tests.)"""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import models  # noqa: E402
from keras_cv_apps.data import pairs  # noqa: E402
from keras_cv_apps.losses.metric_learning import ContrastiveLoss, SupConLoss  # noqa: E402
from keras_cv_apps.metrics import verification as ver  # noqa: E402
from keras_cv_apps.models.siamese import EmbeddingNetwork, SiameseNetwork  # noqa: E402


@pytest.fixture(scope="module")
def digits16(digits_8x8):
    """Real digits resized to 16x16, pixel units, split into train/test halves."""
    import cv2

    images, labels = digits_8x8
    big = np.stack([cv2.resize(im[..., 0], (16, 16), interpolation=cv2.INTER_LINEAR)
                    for im in images])[..., None]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(labels))
    half = len(order) // 2
    return (big[order[:half]], labels[order[:half]]), (big[order[half:]], labels[order[half:]])


def test_distance_is_the_norm_of_the_embedding_difference():
    keras.utils.set_random_seed(0)  # an untrained tiny tower can map an image to all-zero ReLU features
    model = models.create("test_siamese_contrastive")
    x = np.random.default_rng(0).uniform(size=(5, 16, 16, 1)).astype("float32")
    emb = keras.ops.convert_to_numpy(model.embedding(x))
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    distance = keras.ops.convert_to_numpy(model([x, x[::-1]]))
    np.testing.assert_allclose(distance[:, 0], np.linalg.norm(emb - emb[::-1], axis=1),
                               atol=1e-5)
    assert np.all(distance[2] < 1e-6)  # the middle pair is one image with itself


def test_named_backbone_and_embedding_size():
    model = models.create("siamese_triplet", backbone="test_lenet5", embedding_dim=6,
                          head_units=0)
    assert model.embedding.output_shape == (None, 6)
    assert any(layer.name == "f6" for layer in model.embedding.layers)  # LeNet's penultimate
    convnet = SiameseNetwork(width=4, grid=2, image_shape=(16, 16, 3))
    assert convnet.embedding.output_shape == (None, 2 * 2 * 8)


def test_bad_backbones_and_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown model 'resnet9000'"):
        EmbeddingNetwork(backbone="resnet9000")
    with pytest.raises(ValueError, match="too small"):
        SiameseNetwork(image_shape=(8, 8, 1))


def _fit(model, dataset, loss, steps):
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss)
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)


def test_supcon_embedding_learns_seen_classes_and_still_separates_unseen(digits16):
    """Train on classes 0-6 only: one-shot episodes on seen classes improve a lot, and the
    held-out classes 7-9 stay well separated (no collapse onto the training classes)."""
    keras.utils.set_random_seed(0)
    (xtr, ytr), (xte, yte) = digits16
    (xa, ya), _ = pairs.class_disjoint_split(xtr, ytr, [7, 8, 9])
    model = EmbeddingNetwork(width=8, head_units=32, head_dim=16)
    held = np.isin(yte, [7, 8, 9])
    x_test = xte.astype("float32") / 255.0

    def one_shot(mask):
        emb = keras.ops.convert_to_numpy(model.embedding(x_test[mask]))
        n_way = len(np.unique(yte[mask]))
        return ver.episode_accuracy(emb, yte[mask], n_way=n_way, episodes=400, seed=0)

    seen_before = one_shot(~held)
    ds = pairs.pk_dataset(xa, ya, p=7, k=6, seed=0,
                          preprocessing={"scale": "unit", "mean": None, "std": None})
    _fit(model, ds, SupConLoss(temperature=0.5), steps=60)
    seen_after, held_after = one_shot(~held), one_shot(held)
    assert seen_after > 0.8 and seen_after > seen_before + 0.1, (seen_before, seen_after)
    assert held_after > 0.7


def test_contrastive_siamese_learns_verification(digits16):
    keras.utils.set_random_seed(1)
    (xtr, ytr), (xte, yte) = digits16
    model = SiameseNetwork(width=8, embedding_dim=16)
    ds = pairs.pair_dataset(xtr, ytr, batch_size=64, seed=0,
                            preprocessing={"scale": "unit", "mean": None, "std": None})
    _fit(model, ds, ContrastiveLoss(margin=1.0), steps=60)
    emb = keras.ops.convert_to_numpy(model.embedding(xte[:300].astype("float32") / 255.0))
    i, j, same = ver.verification_pairs(yte[:300])
    scores = ver.verification_metrics(np.linalg.norm(emb[i] - emb[j], axis=1), same)
    assert scores["roc_auc"] > 0.9


def test_exported_embedding_agrees_with_keras(tmp_path, digits16):
    from keras_cv_apps import export

    model = models.create("test_siamese_triplet")
    x = digits16[1][0][:32].astype("float32") / 255.0
    path = export.export_tflite(model.embedding, tmp_path / "embedding.tflite")
    report = export.verify_tflite(model.embedding, path, x)
    assert report["max_abs_diff"] < 1e-4
    int8 = export.export_tflite(model.embedding, tmp_path / "embedding_int8.tflite",
                                quantization="int8", representative=x)
    lite = export.run_tflite(int8, x)
    assert lite.shape == (32, model.embedding.output_shape[-1])
    assert np.abs(lite - keras.ops.convert_to_numpy(model.embedding(x))).max() < 0.1
