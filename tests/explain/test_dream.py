"""DeepDream: determinism, tiles equal to the whole image, octaves, max_loss, bad input; filter
visualisation and activation grids; the fused convolution path."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import dream  # noqa: E402
from keras_cv_apps.explain._graph import GraphRunner  # noqa: E402

LAYERS = {"r1": 1.0, "r2": 1.5}


@pytest.fixture(scope="module")
def small_rf():
    """conv3x3 -> BN -> ReLU twice (receptive-field radius 2) on any image size, with a fixed-size head."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((16, 16, 3))
    x = inp
    for i in (1, 2):
        x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name=f"c{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}", beta_initializer="random_normal",
                                            moving_mean_initializer="random_normal")(x)
        x = keras.layers.ReLU(name=f"r{i}")(x)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(inp, out, name="small_rf")


@pytest.fixture(scope="module")
def photo():
    from skimage.data import astronaut

    return np.ascontiguousarray(astronaut()[::8, ::8])  # 64x64x3 uint8


def test_same_seed_same_bytes_and_a_covering_tile_changes_nothing(small_rf, photo):
    a = dream.deep_dream(small_rf, photo, layers=LAYERS, steps=4, octaves=2)
    assert a.shape == photo.shape and a.dtype == np.uint8 and (a != photo).any()
    np.testing.assert_array_equal(a, dream.deep_dream(small_rf, photo, layers=LAYERS, steps=4, octaves=2))
    np.testing.assert_array_equal(a, dream.deep_dream(small_rf, photo, layers=LAYERS, steps=4, octaves=2,
                                                      tile_size=64))
    assert (a != dream.deep_dream(small_rf, photo, layers=LAYERS, steps=4, octaves=2, seed=1)).any()


@pytest.mark.parametrize("shift", [(0, 0), (5, -3)])
def test_tiled_gradient_equals_the_whole_one_when_margins_cover_the_receptive_field(small_rf, photo, shift):
    """Also under a jitter roll: the whole image is rolled as one array, the tiles are gathered
    from the unrolled one; both give the gradient back in the image's own coordinates."""
    d = dream.Dreamer(small_rf, LAYERS)
    x = photo.astype("float32") / 255
    _, whole = d.gradient(x, shift=shift)
    _, tiled = d.gradient(x, tile_size=32, shift=shift)  # margin 4 >= twice the receptive-field radius
    whole, tiled = whole / np.abs(whole).mean(), tiled / np.abs(tiled).mean()
    assert np.linalg.norm(tiled - whole) / np.linalg.norm(whole) < 1e-5
    if shift != (0, 0):  # the roll matters: the unrolled image's gradient differs
        _, unrolled = d.gradient(x)
        assert np.linalg.norm(unrolled / np.abs(unrolled).mean() - whole) / np.linalg.norm(whole) > 1e-3
    assert [w for w in dream.dream_windows(64, 32)] == [(0, 0, 24), (20, 24, 48), (32, 48, 64)]


def test_objective_rises_and_octaves_progress(small_rf, photo):
    seen = []
    out = dream.deep_dream(small_rf, photo, layers=LAYERS, steps=5, octaves=3, callback=seen.append)
    assert [(s["octave"], s["image"].shape[:2]) for s in seen[::5]] == [(0, (33, 33)), (1, (46, 46)), (2, (64, 64))]
    assert dream.objective(small_rf, out, layers=LAYERS) > 1.2 * dream.objective(small_rf, photo, layers=LAYERS)
    assert dream.octave_shapes((64, 64), 3, 1.4) == [(33, 33), (46, 46), (64, 64)]


def test_max_loss_stops_before_the_step_that_passes_it(small_rf, photo):
    free = []
    dream.deep_dream(small_rf, photo, layers=LAYERS, steps=6, octaves=1, jitter=0, callback=free.append)
    losses = [s["loss"] for s in free]
    assert losses == sorted(losses)
    limit = (losses[2] + losses[3]) / 2
    capped = []
    out = dream.deep_dream(small_rf, photo, layers=LAYERS, steps=6, octaves=1, jitter=0, max_loss=limit,
                           callback=capped.append)
    # steps 0, 1 and 2 ran; the image step 2 made passes the limit, so the octave ends on the one before
    assert [s["loss"] for s in capped] == losses[:3]
    reference = dream.deep_dream(small_rf, photo, layers=LAYERS, steps=2, octaves=1, jitter=0)
    np.testing.assert_array_equal(out, reference)


def test_grey_images_and_channel_conversion(small_rf, photo):
    grey = photo[..., 0].copy()
    out = dream.deep_dream(small_rf, grey, layers=LAYERS, steps=2, octaves=1)
    assert out.shape == grey.shape and out.dtype == np.uint8


def test_layers_parse_and_unknown_names_fail(small_rf, photo):
    assert dream.parse_layers("r1:1,r2:2.5") == {"r1": 1.0, "r2": 2.5}
    assert dream.parse_layers(["r1"]) == {"r1": 1.0}
    assert dream.default_layers(small_rf) == {"r1": 1.0, "r2": 1.5}
    with pytest.raises(ValueError, match="has no layer 'mixed9'; layers with feature maps are: c1, bn1, r1"):
        dream.deep_dream(small_rf, photo, layers={"mixed9": 1.0})
    with pytest.raises(ValueError, match="Bad layer weight"):
        dream.parse_layers("r1:x")
    with pytest.raises(ValueError, match="uint8 HxW or HxWx3"):
        dream.deep_dream(small_rf, photo.astype("float32"), layers=LAYERS)


def test_fused_convolutions_compute_the_same(small_rf, photo):
    x = photo[None].astype("float32") / 255
    plain = GraphRunner(small_rf, capture=("r1", "r2"), scores=False)(x)[1]
    fused = GraphRunner(small_rf, capture=("r2",), scores=False, fuse=True)(x)[1]
    np.testing.assert_allclose(np.asarray(fused["r2"]), np.asarray(plain["r2"]), rtol=1e-5, atol=1e-5)


def test_filter_visualisation_excites_its_filter(small_rf):
    images = dream.visualize_filters(small_rf, "r2", [0, 3], steps=15, size=24)
    assert images.shape == (2, 24, 24, 3) and images.dtype == np.uint8
    runner = GraphRunner(small_rf, capture=("r2",), scores=False)
    start = np.full((1, 24, 24, 3), 128 / 255, "float32")
    for image, f in zip(images, (0, 3)):
        after = np.asarray(runner(image[None].astype("float32") / 255)[1]["r2"])[..., f].mean()
        assert after > np.asarray(runner(start)[1]["r2"])[..., f].mean()
    with pytest.raises(ValueError, match="has 4 filters"):
        dream.visualize_filters(small_rf, "r2", [4])


def test_activation_grid(small_rf, photo):
    grid = dream.activation_grid(small_rf, photo, "r1")
    assert grid.dtype == np.uint8 and grid.shape == (16 * 2 + 1, 16 * 2 + 1)  # 4 channels, 2x2, 1-px gaps
    with pytest.raises(ValueError, match="not a 4-D feature map"):
        dream.activation_grid(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")]),
                              photo, "d")


def _randomise_batch_norms(model, seed):
    """Moving statistics, shifts and scales drawn at random, so folding them changes the kernels."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            for weight in layer.weights:
                shape = tuple(weight.shape)
                if "variance" in weight.path:
                    value = rng.uniform(0.5, 2.0, shape)
                elif "gamma" in weight.path:
                    value = rng.uniform(0.5, 1.5, shape)
                else:
                    value = rng.normal(0, 0.2, shape)
                weight.assign(value.astype("float32"))


@pytest.mark.parametrize("which", ["conv_bn", "inception_v3"])
def test_folded_batch_norms_give_the_same_objective_and_gradient(which, small_rf, photo):
    """The dream's folded path (each conv + batch-norm (+ ReLU) as one convolution) against the
    layers run one by one: objective and input gradient equal within float32 round-off."""
    if which == "conv_bn":
        model, layers, image = small_rf, LAYERS, photo
    else:
        keras.utils.set_random_seed(1)
        model = keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(None, None, 3))
        _randomise_batch_norms(model, seed=2)
        from skimage.data import astronaut

        # a photo with no repeated pixels: max-pool ties (as in an enlarged image) route the
        # gradient by round-off, which would differ between any two ways of computing the same maps
        layers, image = {"mixed3": 1.0, "mixed5": 1.5}, np.ascontiguousarray(astronaut()[::4, ::4][:100, :100])
    folded = dream.Dreamer(model, layers, "symmetric", fuse=True)
    plain = dream.Dreamer(model, layers, "symmetric", fuse=False)
    x = image.astype("float32") / 127.5 - 1
    loss_f, grad_f = folded.gradient(x)
    loss_p, grad_p = plain.gradient(x)
    assert loss_p > 0 and np.abs(grad_p).max() > 0
    np.testing.assert_allclose(loss_f, loss_p, rtol=2e-5)
    assert np.linalg.norm(grad_f - grad_p) / np.linalg.norm(grad_p) < 1e-5
    np.testing.assert_allclose(folded.objective(x), plain.objective(x), rtol=2e-5)


def test_fused_convolutions_take_any_layer_name_and_carry_it(photo):
    """Layer names that are no valid TensorFlow scope (a space, a leading underscore, a colon) still
    fuse and give the unfused gradient; the fused ops are named after their layer (for profiles)."""
    import tensorflow as tf

    keras.utils.set_random_seed(3)
    inp = keras.Input((None, None, 3))
    x = inp
    for i, name in enumerate(("conv 1", "_conv:2")):
        x = keras.layers.Conv2D(4, 3, padding="same", name=name)(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}", moving_mean_initializer="random_normal")(x)
        x = keras.layers.ReLU(name=f"act{i}")(x)
    model = keras.Model(inp, x)
    layers = {"act0": 1.0, "act1": 1.0}
    fused, plain = (dream.Dreamer(model, layers, "unit", fuse=f) for f in (True, False))
    image = photo[:24, :24].astype("float32") / 255
    _, g_fused = fused.gradient(image)
    # Keras's own graph-mode call rejects such a name, so the unfused reference runs eagerly
    _, g_plain = plain._step.python_function(tf.constant(image[None]))
    g_plain = g_plain.numpy()[0]
    assert np.linalg.norm(g_fused - g_plain) / np.linalg.norm(g_plain) < 1e-5
    graph = fused._step.get_concrete_function(tf.constant(image[None])).graph
    names = {op.name.split("/")[0] for op in graph.get_operations() if op.type == "Conv2D"}
    assert names == {"conv_1", "conv_conv_2"}


def test_forward_form_input_gradients_equal_keras_gradients(photo):
    """Stride-1 fused convolutions compute their input gradient as a forward convolution (flipped,
    channel-swapped kernel, mirrored padding): on odd, even and one-sided kernels, SAME and VALID,
    with and without batch-norm or ReLU, beside a strided and a dilated convolution (TensorFlow's
    own gradient), the dream's objective gradient equals the plain Keras model's under a tape."""
    import tensorflow as tf

    keras.utils.set_random_seed(7)
    inp = keras.Input((None, None, 3))
    x = inp
    specs = [((2, 2), "same", 1, 1, True, True), ((1, 4), "valid", 1, 1, True, True),
             ((3, 2), "same", 1, 1, True, False), ((5, 1), "same", 1, 1, False, True),
             ((1, 1), "same", 1, 1, True, True), ((3, 3), "valid", 2, 1, True, True),
             ((3, 3), "same", 1, 2, True, True), ((4, 3), "valid", 1, 1, True, True)]
    for i, (kernel, padding, stride, dilation, bn, relu) in enumerate(specs):
        x = keras.layers.Conv2D(6, kernel, strides=stride, dilation_rate=dilation, padding=padding, name=f"k{i}")(x)
        if bn:
            x = keras.layers.BatchNormalization(name=f"n{i}")(x)
        if relu:
            x = keras.layers.ReLU(name=f"a{i}")(x)
    model = keras.Model(inp, x)
    _randomise_batch_norms(model, seed=4)
    layers = {"a4": 1.0, "a7": 1.5}
    d = dream.Dreamer(model, layers, "unit")
    image = np.ascontiguousarray(photo[5:45, 3:41]).astype("float32") / 255  # 40x38: no size a multiple of the kernels
    loss, grad = d.gradient(image)
    features = keras.Model(inp, [model.get_layer(n).output for n in layers])
    xt = tf.constant(image[None])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        acts = features(xt, training=False)
        want = tf.add_n([w * tf.reduce_mean(tf.square(a)) for w, a in zip(layers.values(), acts)])
    ref = tape.gradient(want, xt).numpy()[0]
    assert float(want) > 0 and np.abs(ref).max() > 0
    np.testing.assert_allclose(loss, float(want), rtol=2e-5)
    assert np.linalg.norm(grad - ref) / np.linalg.norm(ref) < 1e-5
    graph = d._step.get_concrete_function(tf.constant(image[None])).graph
    backprop = {op.name.split("/")[1] for op in graph.get_operations() if op.type == "Conv2DBackpropInput"}
    assert backprop == {"k5", "k6"}  # only the strided and the dilated convolutions use TensorFlow's gradient
