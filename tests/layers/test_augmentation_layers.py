"""The package's augmentation layers: keyed randomness, dtype/range/shape kept on 1- and 3-channel
batches, identity at magnitude 0, the geometry and areas they promise, clear errors."""

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from keras_cv_apps import layers as L  # noqa: E402
from keras_cv_apps.layers import colour  # noqa: E402

LAYERS = {
    "RandomAffine": lambda: L.RandomAffine(rotation=20, translation=0.1, zoom=0.1, shear=10),
    "RandomMirror": lambda: L.RandomMirror("both", probability=0.7),
    "RandomResizedCrop": lambda: L.RandomResizedCrop(scale=(0.3, 1.0)),
    "RandomElastic": lambda: L.RandomElastic(displacement=0.05),
    "RandomBlur": lambda: L.RandomBlur(sigma=(0.5, 1.5)),
    "RandomJPEG": lambda: L.RandomJPEG(quality=(10, 50)),
    "Erasing": lambda: L.Erasing(probability=1.0),
    "Cutout": lambda: L.Cutout(probability=1.0),
    "GridMask": lambda: L.GridMask(probability=1.0, fill_value=None),
    "RandomGamma": lambda: L.RandomGamma(),
    "RandomContrast": lambda: L.RandomContrast(contrast=(0.5, 1.5)),
    "RandAugment": lambda: L.RandAugment(num_ops=3, magnitude=0.7),
    "ClippedGaussianNoise": lambda: L.ClippedGaussianNoise(stddev=20.0, maxval=255.0),
    "SaltAndPepperNoise": lambda: L.SaltAndPepperNoise(rate=0.1, high=255.0),
    "SpeckleNoise": lambda: L.SpeckleNoise(stddev=0.3, maxval=255.0),
}


def _batch(channels, dtype, n=6, size=24, seed=0):
    """Smooth random images (blobs) in [0, 255] so that blurs and warps change them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = np.stack([np.stack([128 + 120 * np.sin(6 * (xx * rng.uniform(0.5, 2) + yy * rng.uniform(0.5, 2))
                                                     + rng.uniform(0, 6))
                                 for _ in range(channels)], -1) for _ in range(n)])
    return np.clip(np.rint(images), 0, 255).astype(dtype)


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("channels, dtype", [(1, np.float32), (3, np.uint8)])
def test_keyed_output_keeps_shape_dtype_range_and_depends_on_the_key_only(name, channels, dtype):
    layer = LAYERS[name]()
    x = _batch(channels, dtype)
    a = np.asarray(layer(x, training=True, key=[3, 4]))
    b = np.asarray(LAYERS[name]()(x, training=True, key=[3, 4]))  # another instance, same key
    c = np.asarray(layer(x, training=True, key=[5, 6]))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= 0 and a.max() <= 255
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, x)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    single = np.asarray(layer(x[0], training=True, key=[3, 4]))  # one image [H, W, C]
    assert single.shape == x[0].shape


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_photos_of_odd_sizes_in_any_dtype_one_image_per_batch(name):
    """Inputs the layers were not tuned on: scikit-image photos of odd sizes, a batch of one, in
    uint8, float32, float64, float16 and int32, and in a tf.data map whose image size is unknown."""
    data = pytest.importorskip("skimage.data")
    photo, gray = data.chelsea()[::4, ::3], data.camera()[:97:2, :131:2, None]  # 75 x 151 x 3, 49 x 66 x 1
    layer = LAYERS[name]()
    for image in (photo, gray):
        reference = np.asarray(layer(image[None].astype(np.float32), training=True, key=[7, 8]))
        for dtype in (np.uint8, np.float64, np.float16, np.int32):
            out = np.asarray(layer(image[None].astype(dtype), training=True, key=[7, 8]))
            assert out.shape == (1,) + image.shape and out.dtype == dtype
            assert out.min() >= 0 and out.max() <= 255
            if dtype != np.uint8:  # the same draws; only rounding differs (uint8 goes through OpenCV's uint8 code)
                np.testing.assert_allclose(out.astype(np.float64), reference, atol=1.0)
    sizes = tf.data.Dataset.from_generator(lambda: iter([photo, data.coffee()[:33, :47]]),
                                           output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
    shapes = [tuple(b.shape) for b in sizes.batch(1).map(lambda b: layer(b, training=True, key=[1, 2]))]
    assert shapes == [(1,) + photo.shape, (1, 33, 47, 3)]


@pytest.mark.parametrize("layer", [
    L.RandomAffine(rotation=0, translation=0, zoom=0, shear=0), L.RandomElastic(displacement=0.0),
    L.RandAugment(num_ops=4, magnitude=0.0), L.RandomResizedCrop(scale=(1.0, 1.0), ratio=(1.0, 1.0)),
    L.RandomGamma(gamma=(1.0, 1.0)), L.Erasing(area=(0.0, 0.0)), L.ClippedGaussianNoise(stddev=0.0),
    L.RandomContrast(contrast=(1.0, 1.0))],
    ids=lambda layer: type(layer).__name__)
def test_magnitude_zero_is_the_identity(layer):
    x = _batch(3, np.float32) + 0.25  # not integers: any resampling would show
    np.testing.assert_array_equal(np.asarray(layer(x, training=True, key=[1, 2])), x)


def test_randaugment_ops_are_neutral_at_magnitude_zero_even_when_run():
    x = _batch(3, np.float32)[0]
    for name, (op, factor) in colour.PHOTOMETRIC.items():
        np.testing.assert_allclose(op(x, factor(0.0, 1.0)), x, atol=1e-3, err_msg=name)
        assert not np.allclose(op(x, factor(1.0, -1.0)), x, atol=1.0), name


def _affine(image, **kwargs):
    import cv2

    h, w = image.shape
    values = {k: kwargs.get(k, 0.0) for k in ("angle", "shear", "shift_x", "shift_y")}
    matrix = L.RandomAffine.matrices(values["angle"], values["shear"], values["shift_x"], values["shift_y"],
                                     kwargs.get("scale", 1.0), h, w)
    return cv2.warpAffine(image.astype(np.float32), matrix, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)


def test_random_affine_matrices_move_pixels_as_computed_by_hand():
    image = np.zeros((5, 7))
    image[1, 4], image[0, 0] = 1, 2
    shifted = _affine(image, shift_x=1.0, shift_y=2.0)  # right 1, down 2
    assert shifted[3, 5] == 1 and shifted[2, 1] == 2 and shifted.sum() == 3
    square = np.zeros((5, 5))
    square[0, 1], square[1, 3] = 1, 2
    np.testing.assert_array_equal(_affine(square, angle=np.pi / 2), np.rot90(square))  # counter-clockwise
    dot = np.zeros((5, 5))
    dot[2, 3] = 1  # one pixel right of the centre -> two pixels right when scaled by 2
    assert _affine(dot, scale=2.0)[2, 4] == 1
    sheared = np.zeros((5, 5))
    sheared[4, 2] = 1  # two rows below the centre: x-shear by 45 degrees moves it two columns right
    assert _affine(sheared, shear=np.pi / 4)[4, 4] == 1


def test_random_affine_turns_even_sized_images_about_the_pixel_centre_grid():
    """Centre (w - 1) / 2: a quarter turn of an even-sized image is np.rot90 exactly (a centre at
    w / 2 would move every pixel by one), and a zoom of 1 or a shift of 0 changes nothing."""
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_array_equal(_affine(image, angle=np.pi / 2), np.rot90(image))
    np.testing.assert_array_equal(_affine(image, angle=-np.pi / 2), np.rot90(image, -1))
    np.testing.assert_array_equal(_affine(image, scale=1.0), image)


def _fitted_affines(out):
    """Per image of a warped coordinate batch (channels: x + 1, y + 1, 1): rotation in degrees
    (counter-clockwise on screen), scale, and the shift of the image centre in pixels, from a
    least-squares fit over the pixels sampled wholly inside the input."""
    n, h, w, _ = out.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    fitted = []
    for ox, oy, inside in np.moveaxis(out.astype(np.float64), -1, 1):
        m = inside > 0.9999
        design = np.stack([xx[m], yy[m], np.ones(m.sum())], 1)
        px, py = (np.linalg.lstsq(design, v[m] - 1, rcond=None)[0] for v in (ox, oy))
        back = np.array([px[:2], py[:2]])  # output -> input
        forward = np.linalg.inv(back)  # scale x rotation
        source = back @ centre + np.array([px[2], py[2]])  # the input point drawn at the centre
        fitted.append((np.degrees(np.arctan2(-forward[1, 0], forward[0, 0])),
                       np.sqrt(np.linalg.det(forward)), *(forward @ (centre - source))))
    return np.array(fitted)


@pytest.mark.parametrize("preset", ["light", "digits"])
def test_random_affine_draws_per_image_within_the_presets_documented_ranges(preset):
    """The preset's numbers mean degrees, fractions of the size and 1 +- zoom, drawn per image:
    fitted on 400 warped coordinate images the angles fill [-rotation, rotation] degrees (not
    radians or turns), scales [1 - zoom, 1 + zoom], centre shifts +- translation x size."""
    from keras_cv_apps.data import augment

    layer = augment.PRESETS[preset][0](0)
    assert isinstance(layer, L.RandomAffine)
    size = 24
    grid = np.ones((400, size, size, 3), np.float32)
    grid[..., 0] += np.arange(size)[None, None, :]
    grid[..., 1] = 1 + np.arange(size)[None, :, None]
    angle, scale, dx, dy = _fitted_affines(np.asarray(layer(grid, training=True, key=[4, 2]))).T
    for values, bound, centre in ((angle, layer.rotation, 0.0), (scale - 1, layer.zoom, 0.0),
                                  (dx, layer.translation * size, 0.0), (dy, layer.translation * size, 0.0)):
        assert np.abs(values).max() <= bound * 1.02 + 0.02  # inside the range (OpenCV's 1/32-pixel grid)
        assert np.abs(values).max() >= bound * 0.95  # and filling it
        assert abs(values.mean() - centre) < bound * 0.1  # symmetric: uniform about 0
    assert abs(np.corrcoef(angle, dx)[0, 1]) < 0.2 and abs(np.corrcoef(scale, dy)[0, 1]) < 0.2  # independent


def test_random_affine_warps_like_the_keras_resampler_it_replaced():
    """The same matrices through ``keras.ops.image.affine_transform`` (bilinear, black borders: the
    pipeline's earlier warp) and through the layer's OpenCV call agree to a fraction of a grey level
    on average (OpenCV interpolates on a 1/32-pixel grid)."""
    import cv2

    rng = np.random.default_rng(1)
    images = _batch(1, np.float32, n=32, size=20, seed=3)
    angle, sx, sy = rng.uniform(-1, 1, 32) * np.radians(15), rng.uniform(-2, 2, 32), rng.uniform(-2, 2, 32)
    scale = rng.uniform(0.85, 1.15, 32)
    mats = L.RandomAffine.matrices(angle, 0.0, sx, sy, scale, 20, 20)
    ours = np.stack([cv2.warpAffine(img[..., 0], m, (20, 20), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0.0) for img, m in zip(images, mats)])
    flat = np.concatenate([mats.reshape(32, 6), np.zeros((32, 2))], 1).astype(np.float32)
    keras_out = np.asarray(keras.ops.image.affine_transform(images, flat, interpolation="bilinear",
                                                            fill_mode="constant", fill_value=0.0))[..., 0]
    diff = np.abs(ours - keras_out)
    assert diff.mean() < 0.5 and np.percentile(diff, 99) < 4.0


def test_mirror_flips_whole_images_or_leaves_them():
    x = _batch(3, np.uint8)
    out = np.asarray(L.RandomMirror(probability=0.5)(x, training=True, key=[0, 7]))
    flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)]
    assert all(f or np.array_equal(o, i) for f, o, i in zip(flipped, out, x)) and 0 < sum(flipped) < len(x)
    every = np.asarray(L.RandomMirror(probability=1.0)(x, training=True, key=[0, 7]))
    np.testing.assert_array_equal(every, x[:, :, ::-1])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_three_channel_mirror_equals_opencv_flip_in_strips_and_stacks(dtype, monkeypatch):
    import cv2

    from keras_cv_apps.layers import augmentation

    monkeypatch.setattr(augmentation, "_SCRATCH", __import__("threading").local())
    monkeypatch.setattr(augmentation, "_SCRATCH_BYTES", 4096)  # strips of a few rows; one row of 700 px is larger
    rng = np.random.default_rng(3)
    for shape in ((1, 1, 3), (5, 7, 3), (97, 61, 3), (9, 700, 3)):
        image = (rng.random(shape) * 255).astype(dtype)
        for code in (1, 0, -1):
            out = np.empty_like(image)
            augmentation._mirror_rgb(image, code, out)
            np.testing.assert_array_equal(out, cv2.flip(image, code), err_msg=f"{shape} code {code}")
    stack = (rng.random((4, 30, 20, 3)) * 255).astype(dtype)
    out = np.empty_like(stack)
    augmentation._mirror_rgb(stack.reshape(-1, 20, 3), 1, out.reshape(-1, 20, 3))
    np.testing.assert_array_equal(out, stack[:, :, ::-1])
    both = np.asarray(L.RandomMirror("both", probability=1.0)(stack, training=True, key=[0, 3]))
    for o, i in zip(both, stack):
        assert any(np.array_equal(o, m) for m in (i[:, ::-1], i[::-1], i[::-1, ::-1]))


def test_contrast_is_cores_formula_with_one_factor_per_image():
    rng = np.random.default_rng(5)
    x = rng.uniform(60, 190, (6, 9, 7, 3)).astype(np.float32)  # contrast 0.5-1.5 stays inside [0, 255]
    out = np.asarray(L.RandomContrast(contrast=(0.5, 1.5))(x, training=True, key=[0, 4]))
    mean = x.mean(axis=(1, 2), keepdims=True)
    factor = (out - mean).std(axis=(1, 2, 3)) / (x - mean).std(axis=(1, 2, 3))
    assert (factor > 0.5 - 1e-4).all() and (factor < 1.5 + 1e-4).all() and np.ptp(factor) > 0.2
    core = keras.layers.RandomContrast(0.5)
    expected = np.asarray(core.transform_images(x, {"contrast_factor": factor[:, None, None, None]}))
    np.testing.assert_allclose(out, expected, atol=2e-3)
    gray = np.asarray(L.RandomContrast(contrast=(3.0, 3.0))(x[..., :1].astype(np.uint8), training=True, key=[0, 1]))
    ref = np.clip(np.rint((x[..., :1].astype(np.uint8) - x[..., :1].astype(np.uint8).mean(axis=(1, 2), keepdims=True))
                          * 3.0 + x[..., :1].astype(np.uint8).mean(axis=(1, 2), keepdims=True)), 0, 255)
    assert gray.dtype == np.uint8 and np.abs(gray.astype(int) - ref).max() <= 1 and (gray == 255).any()


def test_resized_crop_boxes_respect_scale_and_ratio():
    layer = L.RandomResizedCrop(scale=(0.2, 0.6), ratio=(0.5, 2.0))
    top, left, h, w = layer.boxes(np.random.default_rng(0), 500, 64, 64).T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 64).all() and (left + w <= 64).all()
    area = h * w / 64 ** 2
    assert area.min() > 0.2 - 0.02 and area.max() < 0.6 + 0.02 and np.ptp(area) > 0.3
    assert (w / h).min() > 0.5 * 0.9 and (w / h).max() < 2.0 * 1.1


def _occluded_fraction(layer, size=40, n=64, key=(1, 2)):
    x = np.full((n, size, size, 1), 255, np.uint8)  # fill 0 marks exactly the occluded pixels
    out = np.asarray(layer(x, training=True, key=list(key)))
    return (out[..., 0] == 0).mean(axis=(1, 2))


def test_erased_area_is_within_the_configured_range():
    fraction = _occluded_fraction(L.Erasing(area=(0.05, 0.2), aspect=(0.3, 3.3), probability=1.0))
    assert fraction.min() >= 0.05 and fraction.max() <= 0.2 and np.ptp(fraction) > 0.05
    half = _occluded_fraction(L.Erasing(area=(0.05, 0.2), probability=0.5), n=200)
    assert 0.3 < (half == 0).mean() < 0.7 and (half[half > 0] >= 0.05).all()
    holes = _occluded_fraction(L.Cutout(holes=(1, 3), size=(0.1, 0.25), probability=1.0))
    assert holes.min() >= 0.1 ** 2 * 0.8 and holes.max() <= 3 * 0.25 ** 2 * 1.1
    grid = _occluded_fraction(L.GridMask(period=(0.2, 0.4), ratio=0.5, probability=1.0))
    assert abs(grid.mean() - 0.25) < 0.06


def test_noise_layers_have_the_promised_statistics():
    grey = np.full((8, 32, 32, 3), 128.0, np.float32)
    gauss = np.asarray(L.ClippedGaussianNoise(stddev=10.0, maxval=255.0)(grey, training=True, key=[0, 1]))
    assert abs(gauss.std() - 10.0) < 0.5 and abs(gauss.mean() - 128.0) < 0.5
    salt = np.asarray(L.SaltAndPepperNoise(rate=0.2, high=255.0)(grey, training=True, key=[0, 1]))
    assert abs((salt[..., 0] == 0).mean() - 0.1) < 0.02 and abs((salt[..., 0] == 255).mean() - 0.1) < 0.02
    assert (salt[..., 0] == salt[..., 2]).all()  # a dead or hot pixel, all channels alike
    ramp = np.broadcast_to(np.linspace(0, 200, 32, dtype=np.float32)[None, None, :, None], (8, 32, 32, 1))
    speckle = np.asarray(L.SpeckleNoise(stddev=0.2, maxval=255.0)(ramp, training=True, key=[0, 1]))
    assert (speckle[:, :, 0] == 0).all() and np.std(speckle[:, :, -1] - 200) == pytest.approx(40, rel=0.2)


def test_blur_jpeg_and_gamma_degrade_as_configured():
    noise = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 3)).astype(np.uint8)
    blurred = np.asarray(L.RandomBlur(sigma=(2.0, 2.0))(noise, training=True, key=[0, 1])).astype(float)
    assert blurred.std() < 0.25 * noise.std() and abs(blurred.mean() - noise.mean()) < 1.0
    x = _batch(3, np.uint8, n=4, size=48)
    error = [np.abs(np.asarray(L.RandomJPEG(quality=(q, q))(x, training=True, key=[0, 1])).astype(float) - x).mean()
             for q in (95, 10)]
    assert error[0] < error[1]
    for dtype in (np.uint8, np.float32):
        out = np.asarray(L.RandomGamma(gamma=(2.0, 2.0))(x.astype(dtype), training=True, key=[0, 1]))
        np.testing.assert_allclose(out, 255 * (x / 255.0) ** 2, atol=0.51)


def test_recycled_output_buffers_never_overwrite_a_batch_still_in_use():
    from keras_cv_apps.layers import augment_base

    x = _batch(3, np.uint8, n=8, size=32)
    layer = L.RandomMirror("horizontal", probability=1.0)
    ds = tf.data.Dataset.from_tensors(x).repeat(12).map(lambda b: layer(b, training=True), num_parallel_calls=2)
    batches = list(ds)  # every tensor kept alive: no two may share memory
    for b in batches:
        np.testing.assert_array_equal(np.asarray(b), x[:, :, ::-1])
    kept = np.asarray(L.Erasing(probability=1.0)(x, training=True, key=[0, 1]))
    snapshot = kept.copy()
    for k in range(2, 20):
        L.Erasing(probability=1.0)(x, training=True, key=[0, k])
    np.testing.assert_array_equal(kept, snapshot)
    del batches, kept
    first = augment_base.empty_aligned((4, 5, 6), np.float32)
    address = first.ctypes.data
    view = first[1:]
    del first
    assert augment_base.empty_aligned((4, 5, 6), np.float32).ctypes.data != address  # a view still uses it
    del view
    again = augment_base.empty_aligned((4, 5, 6), np.float32)
    assert again.ctypes.data == address and again.ctypes.data % 64 == 0  # recycled once nothing refers to it


def test_a_full_pool_forgets_an_idle_buffer_of_another_size_while_others_are_busy(monkeypatch):
    from keras_cv_apps.layers import augment_base

    monkeypatch.setattr(augment_base, "_POOL", [])
    monkeypatch.setattr(augment_base, "_POOL_SIZE", 3)
    busy = [augment_base.empty_aligned((n, 7), np.uint8) for n in (3, 5)]  # in use: they must stay pooled
    augment_base.empty_aligned((9, 7), np.uint8)  # idle as soon as it is dropped; the pool is full
    fresh = augment_base.empty_aligned((11, 7), np.uint8)  # a fourth size: the idle one makes room
    assert [b.nbytes for b in augment_base._POOL] == [3 * 7 + 64, 5 * 7 + 64, 11 * 7 + 64]
    assert fresh.shape == (11, 7) and fresh.ctypes.data % 64 == 0
    assert [b.shape for b in busy] == [(3, 7), (5, 7)]


def test_blur_is_the_gaussian_blur_of_the_drawn_sigma_correctly_rounded():
    import cv2

    x = np.random.default_rng(1).integers(0, 256, (3, 40, 40, 3)).astype(np.uint8)
    for dtype, tolerance in ((np.uint8, 0.5), (np.float32, 1e-4)):
        out = np.asarray(L.RandomBlur(sigma=(1.3, 1.3))(x.astype(dtype), training=True, key=[0, 4]))
        assert out.dtype == dtype
        for o, image in zip(out, x):  # kernel: 2 * floor(3.5 sigma) + 1 = 9 taps, mirrored borders
            exact = cv2.GaussianBlur(image.astype(np.float32), (9, 9), 1.3, borderType=cv2.BORDER_REFLECT_101)
            np.testing.assert_allclose(o, exact, atol=tolerance)


def test_blur_kernel_spans_floor_of_truncate_sigma_pixels():
    delta = np.zeros((1, 21, 21, 1), np.float32)
    delta[0, 10, 10, 0] = 1.0
    # sigma 0.5: radius floor(3.5 * 0.5) = 1, taps exp(-2), 1, exp(-2) normalised: 0.10650698, 0.78698604, 0.10650698
    taps = np.array([0.10650698, 0.78698604, 0.10650698])
    out = np.asarray(L.RandomBlur(sigma=(0.5, 0.5))(delta, training=True, key=[0, 1]))[0, :, :, 0]
    np.testing.assert_allclose(out[9:12, 9:12], np.outer(taps, taps), atol=1e-6)
    assert out.sum() == pytest.approx(1.0) and (out[:, :9] == 0).all() and (out[:, 12:] == 0).all()
    # sigma 2: radius 7 (15 taps; the old ceil(3 sigma) rule gave 6); truncate 3 gives floor(6) = 6
    for truncate, radius in ((3.5, 7), (3.0, 6)):
        layer = L.RandomBlur(sigma=(2.0, 2.0), truncate=truncate)
        out = np.asarray(layer(delta, training=True, key=[0, 1]))[0, 10, :, 0]
        assert (out[10 - radius:11 + radius] > 0).all() and (out[:10 - radius] == 0).all()
        assert (out[11 + radius:] == 0).all()
    # sigma below 1 / truncate: a one-tap kernel, the image unchanged
    np.testing.assert_array_equal(L.RandomBlur(sigma=(0.2, 0.28))(delta, training=True, key=[0, 1]), delta)
    with pytest.raises(ValueError, match="truncate"):
        L.RandomBlur(truncate=0.5)


def test_label_mix_rows_sum_to_one_and_mixup_blends_images_by_the_label_weight():
    x = _batch(1, np.float32, n=8)
    y = tf.one_hot(np.arange(8), 8)
    out = L.LabelMix(mixup_alpha=0.4, cutmix_alpha=0.0, probability=1.0)({"images": x, "labels": y}, training=True,
                                                                         key=[2, 3])
    images, labels = np.asarray(out["images"]), np.asarray(out["labels"])
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-6)
    for i in range(8):
        partner = [k for k in np.flatnonzero(labels[i] > 1e-6) if k != i]
        expected = x[i] if not partner else labels[i, i] * x[i] + labels[i, partner[0]] * x[partner[0]]
        np.testing.assert_allclose(images[i], expected, atol=1e-3)
    cut = L.LabelMix(mixup_alpha=0.0, cutmix_alpha=1.0, probability=1.0)({"images": x, "labels": y}, training=True,
                                                                          key=[2, 3])
    cut_images, cut_labels = np.asarray(cut["images"]), np.asarray(cut["labels"])
    np.testing.assert_allclose(cut_labels.sum(axis=1), 1.0, atol=1e-6)
    for i in range(8):  # the label weight of the image's own class ~ the share of its own pixels
        own = np.isclose(cut_images[i], x[i]).mean()
        assert abs(own - cut_labels[i, i]) < 0.15 or cut_labels[i, i] == 1.0
    with pytest.raises(ValueError, match="one-hot or soft labels"):
        L.LabelMix()({"images": x, "labels": np.arange(8)}, training=True)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_a_restored_layer_augments_exactly_like_the_original(name):
    layer = LAYERS[name]()
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    x = _batch(3, np.uint8)
    np.testing.assert_array_equal(np.asarray(clone(x, training=True, key=[9, 9])),
                                  np.asarray(layer(x, training=True, key=[9, 9])))


@pytest.mark.parametrize("build, match", [
    (lambda: L.RandAugment(magnitude=1.5), r"magnitude must be a number within \[0.0, 1.0\]"),
    (lambda: L.RandAugment(ops=["rotate", "warp"]), "Unknown RandAugment op.*'warp'.*choose among"),
    (lambda: L.Erasing(area=(0.5, 0.2)), "Erasing area must be"),
    (lambda: L.RandomAffine(zoom=1.5), "0 <= zoom < 1"),
    (lambda: L.RandomElastic(displacement=-0.1), "displacement must be"),
    (lambda: L.RandomMirror("diagonal"), "Unknown mirror mode 'diagonal'"),
    (lambda: L.Cutout(probability=2), r"probability must be a number within \[0.0, 1.0\]"),
    (lambda: L.LabelMix(cutmix_alpha=3.0), "cutmix_alpha must be"),
])
def test_out_of_range_arguments_raise_one_clear_error(build, match):
    with pytest.raises(ValueError, match=match):
        build()
