"""Localisation and faithfulness scores on hand-made cases; ROAD's imputation; the sanity check."""

import numpy as np
import pytest

from keras_cv_apps.explain import evaluate


def test_pointing_game_and_relevance_mass_by_hand():
    maps = np.zeros((2, 4, 4), "float32")
    maps[0, 1, 1], maps[0, 3, 3] = 2.0, 1.0  # peak on the object; a third of the mass off it
    maps[1, 0, 3] = 5.0  # peak one pixel right of the object
    masks = np.zeros((2, 4, 4), bool)
    masks[:, 1:3, 1:3] = True
    masks[1] = False
    masks[1, 0, 2] = True
    assert evaluate.pointing_game(maps, masks).tolist() == [True, False]
    assert evaluate.pointing_game(maps, masks, tolerance=1).tolist() == [True, True]
    np.testing.assert_allclose(evaluate.relevance_mass(maps, masks), [2 / 3, 0.0])
    assert evaluate.relevance_mass(-np.ones((1, 4, 4)), masks[:1]).tolist() == [0.0]  # no positive mass, no NaN


def test_spearman_matches_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    a, b = rng.random((3, 5, 5)), rng.random((3, 5, 5))
    b[0] = a[0] ** 3  # a monotone transform: rank correlation 1
    got = evaluate.spearman(a, b)
    assert got[0] == pytest.approx(1.0)
    assert got[1] == pytest.approx(spearmanr(a[1].ravel(), b[1].ravel())[0])


def test_linear_imputation_reproduces_a_plane():
    yy, xx = np.mgrid[0:8, 0:8].astype("float32")
    image = np.stack([2 * xx + yy, 3 - yy], axis=-1)
    removed = np.zeros((8, 8), bool)
    removed[2:6, 3:7] = True  # interior holes: symmetric neighbour weights keep a plane exactly
    out = evaluate.impute(image, removed, noise=0.0)
    np.testing.assert_allclose(out, image, atol=1e-4)
    noisy = evaluate.impute(image, removed, noise=0.05, rng=np.random.default_rng(0))
    assert 0 < np.abs(noisy - image)[removed].mean() < 1.0 and (noisy[~removed] == image[~removed]).all()


@pytest.fixture(scope="module")
def bright_pixel_model():
    """The probability of class 1 rises with the mean of the top-left 4x4 corner."""
    keras = pytest.importorskip("keras")
    inp = keras.Input((8, 8, 1))
    corner = keras.layers.Cropping2D(((0, 4), (0, 4)))(inp)
    mean = keras.layers.GlobalAveragePooling2D()(corner)
    out = keras.layers.Dense(2, activation="softmax", kernel_initializer=keras.initializers.Constant([[-4.0, 4.0]]))(
        mean)
    return keras.Model(inp, out)


def test_a_faithful_map_beats_an_unfaithful_one(bright_pixel_model):
    good = np.zeros((2, 8, 8), "float32")
    good[:, :4, :4] = 1.0
    x = good[..., None].copy()  # a bright corner the blur of insertion's start smears away
    bad = 1.0 - good
    d_good = evaluate.deletion_insertion(bright_pixel_model, x, good, 1, steps=8)
    d_bad = evaluate.deletion_insertion(bright_pixel_model, x, bad, 1, steps=8)
    assert (d_good["deletion"] < d_bad["deletion"]).all() and (d_good["insertion"] > d_bad["insertion"]).all()
    morf_good = evaluate.road(bright_pixel_model, x, good, 1, fractions=(0.25,))
    morf_bad = evaluate.road(bright_pixel_model, x, bad, 1, fractions=(0.25,))
    assert (morf_good < morf_bad).all()


def test_deletion_substrates(bright_pixel_model):
    x = np.zeros((1, 8, 8, 1), "float32")
    x[:, :4, :4] = 1.0
    maps = x[..., 0].copy()
    # the image itself as the substrate: nothing changes, the area is the unchanged probability
    p = float(bright_pixel_model(x)[0, 1])
    same = evaluate.deletion_insertion(bright_pixel_model, x, maps, 1, steps=4, substrate=x)
    assert same["deletion"][0] == pytest.approx(p, rel=1e-5)
    # zeros: the corner's 16 pixels go in the first 1/4 of the steps, then p(mean 0) = 0.5 to the end
    zero = evaluate.deletion_insertion(bright_pixel_model, x, maps, 1, steps=4, substrate="zero")
    assert zero["deletion"][0] == pytest.approx((p + 0.5) / 2 * 0.25 + 0.5 * 0.75, rel=1e-5)
    # a mean colour broadcasts; the blur (default) keeps some of the corner after its pixels are gone
    grey = evaluate.deletion_insertion(bright_pixel_model, x, maps, 1, steps=4, substrate=[0.25])
    blur = evaluate.deletion_insertion(bright_pixel_model, x, maps, 1, steps=4)
    assert zero["deletion"][0] < grey["deletion"][0] < p and zero["deletion"][0] < blur["deletion"][0] < p
    with pytest.raises(ValueError, match="substrate"):
        evaluate.deletion_insertion(bright_pixel_model, x, maps, 1, substrate="black")
    with pytest.raises(ValueError, match="substrate"):
        evaluate.deletion_insertion(bright_pixel_model, x, maps, 1, substrate=np.zeros(3))


def test_cascading_randomisation_decorrelates_gradients(cam_model, images):
    from keras_cv_apps import explain

    steps = evaluate.cascading_randomization(cam_model, lambda m, x, c: explain.saliency(m, x, class_index=c),
                                             images, 0, seed=0)
    assert [name for name, _ in steps] == ["predictions", "features"]
    assert steps[-1][1] < 0.9 and all(-1 <= rho <= 1 for _, rho in steps)
    assert cam_model.get_layer("features").kernel.numpy().std() > 0  # the model itself is untouched
