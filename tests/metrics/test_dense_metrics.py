"""Mask mean IoU / Dice, PSNR and SSIM metric classes: hand-computed cases, accumulation over
batches, and agreement with keras.metrics.MeanIoU, tf.image.psnr / tf.image.ssim and the NumPy
reconstruction metrics."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import metrics  # noqa: E402


def _result(metric):
    return float(keras.ops.convert_to_numpy(metric.result()))


def test_mask_metrics_on_a_hand_computed_binary_mask():
    y_true = np.array([1, 1, 0, 0, 1], "float32").reshape(1, 1, 5, 1)
    y_pred = np.array([0.9, 0.4, 0.2, 0.7, 0.6], "float32").reshape(1, 1, 5, 1)
    # hard prediction at 0.5: [1, 0, 0, 1, 1] -> TP 2, FP 1, FN 1
    iou, dice = metrics.MaskMeanIoU(), metrics.DiceScore()
    iou.update_state(y_true, y_pred)
    dice.update_state(y_true, y_pred)
    assert _result(iou) == pytest.approx(2 / 4)
    assert _result(dice) == pytest.approx(4 / 6)
    strict = metrics.DiceScore(threshold=0.8)  # [1, 0, 0, 0, 0]: TP 1, FN 2
    strict.update_state(y_true, y_pred)
    assert _result(strict) == pytest.approx(2 / 4)


def test_counts_accumulate_over_batches_not_per_batch_means():
    y_true = np.array([1, 0, 0, 0], "float32").reshape(2, 1, 2, 1)
    y_pred = np.array([1, 1, 1, 1], "float32").reshape(2, 1, 2, 1)
    iou = metrics.MaskMeanIoU()
    iou.update_state(y_true[:1], y_pred[:1])  # TP 1, FP 1 (alone: 0.5)
    iou.update_state(y_true[1:], y_pred[1:])  # FP 2 (alone: 0)
    assert _result(iou) == pytest.approx(1 / 4)
    iou.reset_state()
    iou.update_state(y_true, y_true)
    assert _result(iou) == pytest.approx(1.0)


def test_argmax_mean_iou_equals_keras_mean_iou():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (6, 5, 7))
    labels[labels == 3] = 2  # class 3 never occurs in the targets ...
    probs = rng.random((6, 5, 7, 4)).astype("float32")
    probs[..., 3] = 0  # ... nor in the predictions: both metrics leave it out
    ours = metrics.MaskMeanIoU(num_classes=4, threshold="argmax")
    ours.update_state(np.eye(4, dtype="float32")[labels], probs)
    reference = keras.metrics.MeanIoU(num_classes=4)
    reference.update_state(labels, np.argmax(probs, axis=-1))
    assert _result(ours) == pytest.approx(_result(reference), rel=1e-6)


def test_psnr_and_ssim_match_tensorflow_and_the_numpy_functions():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(1)
    x = rng.random((3, 16, 16, 1)).astype("float32")
    y = np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1).astype("float32")
    psnr, ssim = metrics.PSNR(), metrics.SSIM()
    psnr.update_state(x, y)
    ssim.update_state(x, y)
    assert _result(psnr) == pytest.approx(float(np.mean(tf.image.psnr(x, y, max_val=1.0))), rel=1e-5)
    assert _result(psnr) == pytest.approx(float(np.mean(metrics.psnr_per_image(x, y))), rel=1e-5)
    assert _result(ssim) == pytest.approx(float(np.mean(tf.image.ssim(x, y, max_val=1.0))), abs=1e-5)
    # max_val: images in [0, 255] give the same figures
    psnr255 = metrics.PSNR(max_val=255)
    psnr255.update_state(x * 255, y * 255)
    assert _result(psnr255) == pytest.approx(_result(psnr), rel=1e-4)


def test_metrics_work_in_compile_and_evaluate():
    x = (np.random.default_rng(2).random((8, 6, 6, 1)) > 0.5).astype("float32")
    inputs = keras.Input((6, 6, 1))
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    model.compile(loss="mse", metrics=[metrics.PSNR(), metrics.SSIM(), metrics.DiceScore(threshold=0.5)])
    result = model.evaluate(x, x, verbose=0, return_dict=True)
    assert result["psnr"] == pytest.approx(100.0, rel=1e-4)
    assert result["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert result["dice"] == pytest.approx(1.0)


@pytest.mark.parametrize("build, word", [
    (lambda: metrics.DiceScore(threshold=1.5), "threshold"),
    (lambda: metrics.MaskMeanIoU(num_classes=0), "num_classes"),
    (lambda: metrics.PSNR(max_val=-1), "max_val"),
])
def test_bad_arguments_are_named(build, word):
    with pytest.raises(ValueError, match=word):
        build()


def test_wrong_channel_count_is_named():
    with pytest.raises(ValueError, match="num_classes=2"):
        metrics.DiceScore(num_classes=2).update_state(np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 3)))
