"""Compound scaling, the mobile families (MobileNetV2-, GhostNet- and EfficientNet-style) and
their int8 exports staying on XNNPACK's integer kernels.

(Build, fit step, float32 TFLite parity and ``.keras`` loading of the ``test_*`` variants are in
the generic registry tests.)
"""

import json
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import export, models  # noqa: E402
from keras_cv_apps.layers import InvertedResidual  # noqa: E402
from keras_cv_apps.models import complexity, compound_scaling  # noqa: E402
from keras_cv_apps.models.scaling import make_divisible  # noqa: E402


def test_compound_scaling_values_and_constraint():
    s = compound_scaling(2)
    assert s["depth"] == pytest.approx(1.44) and s["width"] == pytest.approx(1.21)
    assert s["resolution"] == pytest.approx(1.3225) and s["macs"] == pytest.approx(1.9203 ** 2, rel=1e-4)
    assert compound_scaling(0)["macs"] == 1.0
    with pytest.raises(ValueError, match="phi"):
        compound_scaling(-1)
    with pytest.raises(ValueError, match="alpha=1.5, beta=1.1, gamma=1.15 give 2.400"):
        compound_scaling(1, alpha=1.5)
    with pytest.raises(ValueError, match="beta"):
        compound_scaling(1, beta=0.9)


def test_make_divisible_rounds_to_multiples_without_losing_10_percent():
    assert [make_divisible(c) for c in (32 * 0.35, 16 * 1.1, 1280 * 1.21, 20)] == [16, 16, 1552, 24]
    assert make_divisible(3) == 8


def test_effnet_variants_follow_the_scaling_rule():
    cfgs = [models.get_cfg(f"effnet_b{phi}") for phi in range(4)]
    assert [c.image_shape[0] for c in cfgs] == [224, 256, 288, 352]  # 224 x 1.15^phi, multiples of 32
    small = [complexity(models.create(f"effnet_b{phi}", image_shape=(32, 32, 3), num_classes=10,
                                      width_multiplier=0.25))["params"] for phi in (0, 1)]
    assert small[1] > small[0]  # wider and deeper at the same resolution


@pytest.mark.large
def test_effnet_macs_double_per_phi_step_and_match_published_figures():
    macs = [complexity(models.create(f"effnet_b{phi}"))["macs"] for phi in range(4)]
    steps = [b / a for a, b in zip(macs, macs[1:])]
    assert all(1.8 <= s <= 2.3 for s in steps), steps
    assert macs[0] == complexity(keras.applications.EfficientNetB0(weights=None))["macs"]  # B0: 385.8M


def test_effnet_residual_blocks_start_as_the_identity():
    """Each MBConv block with a shortcut starts as the identity (its last batch-norm scale is
    zero): without it the deeper variants stayed at chance for epochs on short runs."""
    model = models.create("effnet_b1", image_shape=(40, 40, 3), num_classes=10, width_multiplier=0.25)
    blocks = [layer for layer in model.layers if isinstance(layer, InvertedResidual)]
    residual = [block for block in blocks if block.residual]
    assert len(residual) >= 10 and len(residual) < len(blocks)
    probe = keras.Model(model.input, [(block.input, block.output) for block in residual])
    x = np.random.default_rng(0).uniform(size=(4, 40, 40, 3)).astype("float32")
    for block_in, block_out in probe(x, training=True):
        np.testing.assert_array_equal(block_out, block_in)
    plain = models.create("test_effnet", zero_init=False)  # the paper's initialisation on request
    assert all(np.all(b.project[1].gamma.numpy() == 1) for b in plain.layers if isinstance(b, InvertedResidual))


def test_mobilenetv2_matches_keras_applications():
    ours = models.create("mobilenetv2", image_shape=(96, 96, 3), width_multiplier=0.35)
    theirs = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None)
    a, b = complexity(ours), complexity(theirs)
    assert (a["macs"], a["params"]) == (b["macs"], b["params"])


def test_ghostnet_costs_less_than_mobilenetv2():
    shape = dict(image_shape=(64, 64, 3), num_classes=10)
    ghost = complexity(models.create("ghostnet", **shape))["macs"]
    mobile = complexity(models.create("mobilenetv2", **shape))["macs"]
    assert ghost <= 0.6 * mobile


def test_too_small_images_and_bad_widths_are_refused():
    with pytest.raises(ValueError, match="at least 32x32"):
        models.create("test_ghostnet", image_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="width_multiplier"):
        models.create("test_mobilenetv2", width_multiplier=0)
    with pytest.raises(ValueError, match="phi"):
        models.create("test_effnet", phi=-1)


def _settle_batch_norm(model, images):
    """Give every batch-norm the statistics of ``images`` (an untrained network's activations
    otherwise shrink layer after layer to ~1e-8, far from what a trained one feeds the quantizer)."""
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(images, training=True)


@pytest.mark.parametrize("name", ["test_mobilenetv2", "test_ghostnet", "test_effnet"])
def test_int8_export_runs_in_one_xnnpack_partition(name, tmp_path):
    """SE (mean, 1x1 convs, hard-sigmoid, multiply), hard-swish and depthwise layers all run on
    XNNPACK's int8 kernels; only the uint8 <-> int8 QUANTIZE at the edges and the int8 SOFTMAX
    stay on the built-in kernels."""
    keras.utils.set_random_seed(0)  # one file every run: LiteRT aborted on some random initialisations (noted)
    model = models.create(name, num_classes=4, activation="hard_swish")
    images = np.random.default_rng(0).uniform(size=(16, 32, 32, 3)).astype("float32")
    _settle_batch_norm(model, images)
    path = export.export_tflite(model, tmp_path / "int8.tflite", quantization="int8", representative=images)
    # read by LiteRT in a fresh process, as on a phone: without TensorFlow's own copy of XNNPACK
    # in the same process (together they intermittently aborted in allocate_tensors)
    code = f"import json; from keras_cv_apps import export; print(json.dumps(export.xnnpack_report({str(path)!r})))"
    for _ in range(3):  # LiteRT has aborted here once in many runs (a native "double free"); a signal is retried
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        if done.returncode >= 0:
            break
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["partitions"] == 1, report
    assert set(report["fallback"]) <= {"QUANTIZE", "SOFTMAX"}, report
