"""Inverted residual (MBConv), Ghost module, dynamic convolution and FPN: their structure, MAC
counts, equivalences with plainer formulations, and one TFLite export of them all."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from keras_cv_apps import export, layers  # noqa: E402
from keras_cv_apps.models import complexity  # noqa: E402

RNG = np.random.default_rng(2)


def _model(layer, shape):
    x = keras.Input(shape)
    return keras.Model(x, layer(x))


def test_inverted_residual_structure_and_macs():
    block = layers.InvertedResidual(8, expansion=6, se_ratio=0.25, drop_rate=0.2)
    model = _model(block, (6, 6, 8))
    assert block.residual and block.drop  # stride 1, 8 -> 8 channels
    x = RNG.normal(size=(2, 6, 6, 8)).astype("float32")
    np.testing.assert_allclose(model(x, training=False), model(x, training=False))  # no randomness at inference
    # expand 8->48, depthwise 3x3, SE 48->2->48 (2 = 0.25 x 8 inputs), project 48->8
    assert complexity(model)["macs"] == 36 * 8 * 48 + 36 * 9 * 48 + 48 * 2 + 2 * 48 + 36 * 48 * 8
    strided = layers.InvertedResidual(16, expansion=1, strides=2, kernel_size=5)
    assert _model(strided, (7, 7, 8)).output_shape == (None, 4, 4, 16)
    assert not strided.residual and strided.expand == []


def test_inverted_residual_project_is_linear_and_shortcut_adds():
    block = layers.InvertedResidual(4, expansion=2)
    model = _model(block, (5, 5, 4))
    for weights in block.project[0].weights:  # zero projection: the block is the identity
        weights.assign(np.zeros(weights.shape, "float32"))
    x = RNG.normal(size=(2, 5, 5, 4)).astype("float32")
    bn = block.project[1]
    shift = bn.beta.numpy() - bn.gamma.numpy() * bn.moving_mean.numpy() / np.sqrt(bn.moving_variance.numpy() + 1e-3)
    np.testing.assert_allclose(model(x), x + shift, atol=1e-5)


def test_inverted_residual_zero_init_starts_as_the_identity():
    block = layers.InvertedResidual(8, expansion=4, se_ratio=0.25, zero_init=True)
    model = _model(block, (5, 5, 8))
    x = RNG.normal(size=(4, 5, 5, 8)).astype("float32")
    for training in (False, True):  # the branch is zero whatever the batch statistics
        np.testing.assert_array_equal(model(x, training=training), x)
    assert block.get_config()["zero_init"] is True
    # without a shortcut a zero branch would be a zero block: the scale starts at one there
    strided = layers.InvertedResidual(8, expansion=4, strides=2, zero_init=True)
    _model(strided, (6, 6, 8))
    np.testing.assert_array_equal(strided.project[1].gamma.numpy(), np.ones(8, "float32"))
    plain = layers.InvertedResidual(8, expansion=4)  # off by default (MobileNetV2's block as measured)
    _model(plain, (5, 5, 8))
    np.testing.assert_array_equal(plain.project[1].gamma.numpy(), np.ones(8, "float32"))


def test_ghost_module_half_primary_half_cheap():
    ghost = layers.GhostModule(9, ratio=3, activation=None)
    model = _model(ghost, (6, 6, 10))
    assert ghost.intrinsic == 3 and model.output_shape == (None, 6, 6, 9)
    x = RNG.normal(size=(2, 6, 6, 10)).astype("float32")
    y = np.asarray(model(x))
    primary = np.asarray(ghost.primary[1](ghost.primary[0](x), training=False))
    np.testing.assert_allclose(y[..., :3], primary, atol=1e-5)
    # a 1x1 conv to 9 channels costs 36*10*9; the module 36*10*3 + 36*9*6 (3x3 depthwise, 2 per map)
    assert complexity(model)["macs"] == 36 * 10 * 3 + 36 * 9 * 6
    odd = _model(layers.GhostModule(5), (4, 4, 3))  # ceil(5/2) = 3 intrinsic, 6 maps cut to 5
    assert odd.output_shape == (None, 4, 4, 5)


def test_dynamic_conv_equals_convolution_with_the_mixed_kernel():
    layer = layers.DynamicConv2D(4, 3, num_experts=3, routing="softmax", temperature=2.0)
    model = _model(layer, (7, 6, 5))
    x = RNG.normal(size=(3, 7, 6, 5)).astype("float32")
    y = np.asarray(model(x))
    routing = np.asarray(layer.routing_weights(x))
    np.testing.assert_allclose(routing.sum(1), 1.0, rtol=1e-5)
    kernel, bias = layer.experts.get_weights()
    kernels = kernel.reshape(3, 3, 5, 3, 4)  # (kh, kw, in, expert, out)
    for i in range(len(x)):  # CondConv: one convolution with the per-image mixture of kernels
        mixed = np.einsum("hwiek,e->hwik", kernels, routing[i])
        out = tf.nn.conv2d(x[i:i + 1], mixed, 1, "SAME") + bias.reshape(3, 4).T @ routing[i]
        np.testing.assert_allclose(y[i], out[0], atol=1e-4)
    assert complexity(model)["macs"] == 42 * 9 * 5 * 12 + 5 * 3  # three experts' convs + the router


def test_feature_pyramid_top_down_merge():
    fpn = layers.FeaturePyramid(3)
    inputs = [keras.Input((7, 7, 2)), keras.Input((4, 4, 5)), keras.Input((2, 2, 6))]
    model = keras.Model(inputs, fpn(inputs))
    assert [tuple(o.shape) for o in model.outputs] == [(None, 7, 7, 3), (None, 4, 4, 3), (None, 2, 2, 3)]
    x = [RNG.normal(size=(1, *t.shape[1:])).astype("float32") for t in inputs]
    fine = np.asarray(model(x)[0])
    p4 = np.asarray(fpn.lateral[1](x[1])) + np.asarray(fpn.lateral[2](x[2])).repeat(2, 1).repeat(2, 2)
    merged = np.asarray(fpn.lateral[0](x[0])) + np.asarray(tf.image.resize(p4, (7, 7), method="nearest"))
    np.testing.assert_allclose(fine, fpn.smooth[0](merged), atol=1e-4)
    coarse_changed = [x[0], x[1], x[2] + 1.0]
    assert not np.allclose(model(coarse_changed)[0], fine)  # the top reaches the finest level
    with pytest.raises(ValueError, match="fine to coarse"):
        layers.FeaturePyramid(3)([inputs[2], inputs[0]])


def test_every_block_exports_to_tflite_with_builtin_ops(tmp_path):
    x_in = keras.Input((16, 16, 3))
    x = layers.DepthwiseSeparableConv2D(8, strides=2)(x_in)
    x = layers.SpatiallySeparableConv2D(8, activation="relu")(x)
    x = layers.BottleneckResidual(2)(x)
    x = layers.InvertedResidual(8, se_ratio=0.25, activation="hard_swish", drop_rate=0.1)(x)
    x = layers.GhostModule(8)(x)
    x = layers.DropBlock(0.1, 3)(x)
    x = layers.DynamicConv2D(8, num_experts=2)(x)
    x = layers.MultiHeadSelfAttention2D(num_heads=2, position_embedding=True)(x)
    x = layers.SqueezeExcitation(ratio=0.5, gate="sigmoid")(x)
    pyramid = layers.FeaturePyramid(4)([x, keras.layers.MaxPooling2D()(x)])
    model = keras.Model(x_in, keras.layers.Concatenate()([pyramid[0], keras.layers.UpSampling2D()(pyramid[1])]))
    path = export.export_tflite(model, tmp_path / "blocks.tflite")
    samples = RNG.uniform(size=(3, 16, 16, 3)).astype("float32")
    assert export.verify_tflite(model, path, samples)["max_abs_diff"] < 1e-4


def test_hard_swish_equals_keras_hard_swish():
    x = np.linspace(-5, 5, 41, dtype="float32").reshape(1, 41)
    np.testing.assert_allclose(layers.HardSwish()(x), keras.activations.hard_swish(x), atol=1e-6)
