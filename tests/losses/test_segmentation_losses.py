"""Dice, Jaccard, Tversky, GIoU and SSIM losses on hand-computed cases, and SSIM against
``tf.image.ssim`` (an independent implementation)."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps.losses import DiceLoss, GIoULoss, JaccardLoss, SSIMLoss, TverskyLoss  # noqa: E402

# one 2x2 binary mask: truth [[1, 1], [0, 0]], prediction [[0.5, 1], [0, 1]]
# soft counts: TP = 0.5 + 1 = 1.5, FP = 1 (last pixel), FN = 0.5 (first pixel)
TRUE = np.array([[1, 1], [0, 0]], "float32").reshape(1, 2, 2, 1)
PRED = np.array([[0.5, 1], [0, 1]], "float32").reshape(1, 2, 2, 1)


def _value(loss, y_true, y_pred):
    return float(keras.ops.convert_to_numpy(loss(y_true, y_pred)))


def test_overlap_losses_on_a_hand_computed_mask():
    assert _value(DiceLoss(smooth=0), TRUE, PRED) == pytest.approx(1 - 3 / 4.5)
    assert _value(JaccardLoss(smooth=0), TRUE, PRED) == pytest.approx(1 - 1.5 / 3)
    assert _value(TverskyLoss(alpha=0.3, beta=0.7, smooth=0), TRUE, PRED) == pytest.approx(1 - 1.5 / 2.15)
    # smooth in numerator and denominator: (2 * 1.5 + 1) / (4.5 + 1)
    assert _value(DiceLoss(smooth=1), TRUE, PRED) == pytest.approx(1 - 4 / 5.5)


def test_tversky_reduces_to_dice_and_jaccard():
    rng = np.random.default_rng(0)
    y_true = (rng.random((3, 5, 4, 2)) > 0.5).astype("float32")
    y_pred = rng.random((3, 5, 4, 2)).astype("float32")
    assert _value(TverskyLoss(alpha=0.5, beta=0.5, smooth=0), y_true, y_pred) == pytest.approx(
        _value(DiceLoss(smooth=0), y_true, y_pred), rel=1e-5)
    assert _value(TverskyLoss(alpha=1, beta=1), y_true, y_pred) == pytest.approx(
        _value(JaccardLoss(), y_true, y_pred), rel=1e-5)


def test_overlap_losses_average_classes_and_images_and_take_logits():
    # two images of two pixels and two classes; the second image is predicted exactly
    y_true = np.zeros((2, 1, 2, 2), "float32")
    y_true[0, 0, :, 0] = 1
    y_true[1, 0, 0, 1] = y_true[1, 0, 1, 0] = 1
    y_pred = y_true.copy()
    y_pred[0, 0, 1] = [0, 1]  # first image: class 1 predicted on its second pixel, which is class 0
    dice = DiceLoss(smooth=0)
    # image 1: class 0 TP=1 FN=1 -> 2/3; class 1 TP=0 FP=1 -> 0; loss 1 - 1/3. image 2: 0.
    assert _value(dice, y_true, y_pred) == pytest.approx((1 - 1 / 3) / 2)
    logits = np.log(np.clip(y_pred, 1e-6, 1))  # softmax of log-probabilities gives the probabilities back
    assert _value(DiceLoss(smooth=0, from_logits=True), y_true, logits) == pytest.approx(
        _value(dice, y_true, y_pred), abs=1e-4)
    assert _value(DiceLoss(), y_true, y_true) == pytest.approx(0.0)  # the absent class scores (0 + 1) / (0 + 1)


def test_giou_loss_on_hand_computed_boxes():
    loss = GIoULoss(box_format="xyxy", reduction=None)
    a = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 1, 1]], "float32")
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [2, 0, 3, 1]], "float32")
    # overlap: IoU 1/7, hull 9, union 7 -> GIoU 1/7 - 2/9; same box: 1; disjoint: 0 - (3 - 2)/3
    expected = [1 - (1 / 7 - 2 / 9), 0.0, 1 + 1 / 3]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss(a, b)), expected, rtol=1e-5, atol=1e-6)
    yx = GIoULoss(box_format="yxyx", reduction=None)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(yx(a[:, [1, 0, 3, 2]], b[:, [1, 0, 3, 2]])), expected,
                               rtol=1e-5, atol=1e-6)
    centre = GIoULoss(box_format="center_xywh", reduction=None)
    as_centre = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [0.5, 0.5, 1, 1]], "float32")
    b_centre = np.array([[2, 2, 2, 2], [1, 1, 2, 2], [2.5, 0.5, 1, 1]], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(centre(as_centre, b_centre)), expected, rtol=1e-5,
                               atol=1e-6)


def test_ssim_loss_matches_tensorflow():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(1)
    x = rng.random((2, 16, 20, 3)).astype("float32")
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1).astype("float32")
    expected = 1 - tf.image.ssim(x, y, max_val=1.0).numpy()
    got = keras.ops.convert_to_numpy(SSIMLoss(reduction=None)(x, y))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert _value(SSIMLoss(), x, x) == pytest.approx(0.0, abs=1e-6)
    # images smaller than the window use a window of the image side, as tf.image.ssim would
    small = x[:, :8, :8]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(SSIMLoss(reduction=None)(small, y[:, :8, :8])),
                               1 - tf.image.ssim(small, y[:, :8, :8], max_val=1.0, filter_size=8).numpy(), atol=1e-5)


def test_a_dice_loss_trains_a_tiny_segmenter():
    """Bright pixels are the mask: one 1x1 conv learns it under the Dice loss."""
    rng = np.random.default_rng(2)
    y = (rng.random((64, 8, 8, 1)) > 0.5).astype("float32")
    x = (0.2 + 0.6 * y + rng.uniform(-0.15, 0.15, y.shape)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(1, 1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.2), loss=DiceLoss())
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=12, batch_size=8, verbose=0)
    assert model.evaluate(x, y, verbose=0) < min(0.15, before / 3)  # all-ones masks would give 1/3


@pytest.mark.parametrize("build, word", [
    (lambda: TverskyLoss(alpha=0, beta=0), "alpha and beta"),
    (lambda: DiceLoss(smooth=-1), "smooth"),
    (lambda: GIoULoss(box_format="xywh"), "box_format"),
    (lambda: SSIMLoss(max_val=0), "max_val"),
])
def test_bad_arguments_are_named(build, word):
    with pytest.raises(ValueError, match=word):
        build()
