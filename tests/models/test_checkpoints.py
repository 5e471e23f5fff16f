"""Official ViT/BiT checkpoints: a file written in the released layout from random arrays loads
into the tiny variants and gives the logits of a forward pass written here in NumPy from the
papers' arithmetic (not from the package's code); every key is accounted for; heads, pre-logits,
position-embedding grids and foreign files are handled as the official fine-tuning code does."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_cv_apps import models  # noqa: E402
from keras_cv_apps.models import checkpoints  # noqa: E402

# ------------------------------------------------------------------ NumPy reference: ViT

VIT = dict(image=16, patch=4, dim=16, depth=2, heads=2, mlp=32, rep=8, classes=3)


def vit_arrays(seed=0, c=VIT, classes=None, rep=True, depth=None):
    """A random checkpoint in the released ViT layout, keys and shapes written out by hand."""
    rng = np.random.default_rng(seed)
    d, h, hd, tokens = c["dim"], c["heads"], c["dim"] // c["heads"], (c["image"] // c["patch"]) ** 2 + 1

    def r(*shape, s=0.3):
        return (s * rng.standard_normal(shape)).astype("float32")

    a = {"embedding/kernel": r(c["patch"], c["patch"], 3, d), "embedding/bias": r(d), "cls": r(1, 1, d),
         "Transformer/posembed_input/pos_embedding": r(1, tokens, d)}
    for i in range(depth or c["depth"]):
        p = f"Transformer/encoderblock_{i}/"
        for ln in ("LayerNorm_0", "LayerNorm_2"):
            a[p + ln + "/scale"], a[p + ln + "/bias"] = 1 + r(d, s=0.1), r(d, s=0.1)
        for part in ("query", "key", "value"):
            a[p + f"MultiHeadDotProductAttention_1/{part}/kernel"] = r(d, h, hd)
            a[p + f"MultiHeadDotProductAttention_1/{part}/bias"] = r(h, hd)
        a[p + "MultiHeadDotProductAttention_1/out/kernel"] = r(h, hd, d)
        a[p + "MultiHeadDotProductAttention_1/out/bias"] = r(d)
        a[p + "MlpBlock_3/Dense_0/kernel"], a[p + "MlpBlock_3/Dense_0/bias"] = r(d, c["mlp"]), r(c["mlp"])
        a[p + "MlpBlock_3/Dense_1/kernel"], a[p + "MlpBlock_3/Dense_1/bias"] = r(c["mlp"], d), r(d)
    a["Transformer/encoder_norm/scale"], a["Transformer/encoder_norm/bias"] = 1 + r(d, s=0.1), r(d, s=0.1)
    width = d
    if rep:
        a["pre_logits/kernel"], a["pre_logits/bias"] = r(d, c["rep"]), r(c["rep"])
        width = c["rep"]
    a["head/kernel"], a["head/bias"] = r(width, classes or c["classes"]), r(classes or c["classes"])
    return a


def _layer_norm(x, scale, bias, eps):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + eps) * scale + bias


def vit_logits(a, x, c=VIT):
    """ViT forward pass (google-research/vision_transformer models_vit.py arithmetic) in float64."""
    a = {k: v.astype("float64") for k, v in a.items()}
    n, p = len(x), c["patch"]
    g = c["image"] // p
    patches = x.reshape(n, g, p, g, p, 3).transpose(0, 1, 3, 2, 4, 5).reshape(n, g * g, p * p * 3)
    t = patches @ a["embedding/kernel"].reshape(p * p * 3, -1) + a["embedding/bias"]
    t = np.concatenate([np.repeat(a["cls"], n, 0), t], 1) + a["Transformer/posembed_input/pos_embedding"]
    i = 0
    while f"Transformer/encoderblock_{i}/LayerNorm_0/scale" in a:
        pre = f"Transformer/encoderblock_{i}/"
        y = _layer_norm(t, a[pre + "LayerNorm_0/scale"], a[pre + "LayerNorm_0/bias"], 1e-6)
        att = pre + "MultiHeadDotProductAttention_1/"
        q, k, v = (np.einsum("bnd,dhk->bnhk", y, a[att + f"{s}/kernel"]) + a[att + f"{s}/bias"]
                   for s in ("query", "key", "value"))
        s = np.einsum("bqhk,bphk->bhqp", q / np.sqrt(q.shape[-1]), k)
        w = np.exp(s - s.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        o = np.einsum("bhqp,bphk->bqhk", w, v)
        t = t + np.einsum("bqhk,hkd->bqd", o, a[att + "out/kernel"]) + a[att + "out/bias"]
        y = _layer_norm(t, a[pre + "LayerNorm_2/scale"], a[pre + "LayerNorm_2/bias"], 1e-6)
        y = y @ a[pre + "MlpBlock_3/Dense_0/kernel"] + a[pre + "MlpBlock_3/Dense_0/bias"]
        y = 0.5 * y * (1 + np.tanh(np.sqrt(2 / np.pi) * (y + 0.044715 * y ** 3)))  # flax nn.gelu
        t = t + y @ a[pre + "MlpBlock_3/Dense_1/kernel"] + a[pre + "MlpBlock_3/Dense_1/bias"]
        i += 1
    z = _layer_norm(t, a["Transformer/encoder_norm/scale"], a["Transformer/encoder_norm/bias"], 1e-6)[:, 0]
    if "pre_logits/kernel" in a:
        z = np.tanh(z @ a["pre_logits/kernel"] + a["pre_logits/bias"])
    return z @ a["head/kernel"] + a["head/bias"]


# ------------------------------------------------------------------ NumPy reference: BiT

BIT = dict(image=32, root=4, groups=4, classes=3)


def bit_arrays(seed=0, c=BIT, classes=None):
    """A random BiT checkpoint (one unit per block) in the released layout."""
    rng = np.random.default_rng(seed)

    def r(*shape, s=1.0):
        return (s * rng.standard_normal(shape)).astype("float32")

    a = {"resnet/root_block/standardized_conv2d/kernel": r(7, 7, 3, c["root"])}
    cin = c["root"]
    for b in range(1, 5):
        mid = c["root"] * 2 ** (b - 1)
        p = f"resnet/block{b}/unit01/"
        for part, (k, i, o) in zip("abc", [(1, cin, mid), (3, mid, mid), (1, mid, 4 * mid)]):
            a[p + f"{part}/group_norm/gamma"], a[p + f"{part}/group_norm/beta"] = 1 + r(i, s=0.2), r(i, s=0.2)
            a[p + f"{part}/standardized_conv2d/kernel"] = r(k, k, i, o)
        a[p + "a/proj/standardized_conv2d/kernel"] = r(1, 1, cin, 4 * mid)
        cin = 4 * mid
    a["resnet/group_norm/gamma"], a["resnet/group_norm/beta"] = 1 + r(cin, s=0.2), r(cin, s=0.2)
    a["resnet/head/conv2d/kernel"] = r(1, 1, cin, classes or c["classes"], s=0.1)
    a["resnet/head/conv2d/bias"] = r(classes or c["classes"], s=0.1)
    return a


def _std_conv(x, w, stride, pad):
    """Weight-standardised VALID convolution after explicit zero padding (NHWC, HWIO)."""
    w = (w - w.mean((0, 1, 2), keepdims=True)) / np.sqrt(w.var((0, 1, 2), keepdims=True) + 1e-10)
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    k = w.shape[0]
    oh, ow = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    out = np.zeros((len(x), oh, ow, w.shape[3]))
    for i in range(k):
        for j in range(k):
            out += x[:, i:i + stride * oh:stride, j:j + stride * ow:stride] @ w[i, j]
    return out


def _group_norm(x, gamma, beta, groups):
    n, h, w, ch = x.shape
    g = x.reshape(n, h, w, groups, ch // groups)
    mean, var = g.mean((1, 2, 4), keepdims=True), g.var((1, 2, 4), keepdims=True)
    return ((g - mean) / np.sqrt(var + 1e-5)).reshape(x.shape) * gamma + beta


def bit_features(a, x, c=BIT):
    """BiT ResNet-v2 forward pass up to the pooled features (big_transfer bit_pytorch arithmetic), float64."""
    a = {k: v.astype("float64") for k, v in a.items()}
    relu = lambda t: np.maximum(t, 0)  # noqa: E731
    x = _std_conv(x, a["resnet/root_block/standardized_conv2d/kernel"], 2, 3)
    x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    oh, ow = (x.shape[1] - 3) // 2 + 1, (x.shape[2] - 3) // 2 + 1
    x = np.max([x[:, i:i + 2 * oh:2, j:j + 2 * ow:2] for i in range(3) for j in range(3)], axis=0)
    for b in range(1, 5):
        p, stride = f"resnet/block{b}/unit01/", 1 if b == 1 else 2

        def pre(t, part):
            return relu(_group_norm(t, a[p + f"{part}/group_norm/gamma"], a[p + f"{part}/group_norm/beta"],
                                    c["groups"]))

        out = pre(x, "a")
        shortcut = _std_conv(out, a[p + "a/proj/standardized_conv2d/kernel"], stride, 0)
        y = _std_conv(out, a[p + "a/standardized_conv2d/kernel"], 1, 0)
        y = _std_conv(pre(y, "b"), a[p + "b/standardized_conv2d/kernel"], stride, 1)
        y = _std_conv(pre(y, "c"), a[p + "c/standardized_conv2d/kernel"], 1, 0)
        x = shortcut + y
    return relu(_group_norm(x, a["resnet/group_norm/gamma"], a["resnet/group_norm/beta"], c["groups"])).mean((1, 2))


def bit_logits(a, x, c=BIT):
    """... then the 1x1 conv head on the pooled 1x1 map."""
    return bit_features(a, x, c) @ a["resnet/head/conv2d/kernel"][0, 0] + a["resnet/head/conv2d/bias"]


# ----------------------------------------------------------------------------- helpers


def _save(arrays, path):
    np.savez(path, **arrays)
    return path


def _logits(model, x):
    head = keras.Model(model.inputs, model.get_layer("head").output)
    return keras.ops.convert_to_numpy(head(x, training=False))


def _images(size, n=3, seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype("float32")


def _accounted(report, arrays):
    parts = report.loaded + report.skipped + report.resized
    assert sorted(parts) == sorted(arrays) and len(parts) == len(set(parts))


# --------------------------------------------------------------------------------- tests


def test_vit_checkpoint_matches_the_numpy_forward_pass(tmp_path):
    arrays = vit_arrays()
    model = models.create("test_vit", representation_size=8, weights=str(_save(arrays, tmp_path / "vit.npz")))
    x = _images(16)
    np.testing.assert_allclose(_logits(model, x), vit_logits(arrays, x), atol=1e-5, rtol=0)
    report = models.load_checkpoint(model, tmp_path / "vit.npz")
    assert report.loaded == sorted(arrays) and not report.skipped and not report.resized
    _accounted(report, arrays)


def _big_vision(arrays, scanned=False):
    """``arrays`` as big_vision writes a ViT: ``params/`` names, its module numbering, the position
    embedding without the class token's row, optionally the blocks stacked (a scanned encoder)."""
    rename = {"MultiHeadDotProductAttention_1": "MultiHeadDotProductAttention_0", "MlpBlock_3": "MlpBlock_0",
              "LayerNorm_2": "LayerNorm_1"}
    out, stacks = {}, {}
    for key, value in arrays.items():
        parts = key.split("/")
        if key == "Transformer/posembed_input/pos_embedding":
            out["params/pos_embedding"] = value[:, 1:]
            continue
        if len(parts) > 2 and parts[1].startswith("encoderblock_"):
            parts[2] = rename.get(parts[2], parts[2])
            if scanned:
                stacks.setdefault("/".join(["Transformer", "encoderblock", *parts[2:]]), []).append(value)
                continue
        out["params/" + "/".join(parts)] = value
    out.update({"params/" + key: np.stack(blocks) for key, blocks in stacks.items()})
    return out


@pytest.mark.parametrize("writer", ["opt/target", "big_vision", "big_vision scanned"])
def test_vit_files_of_other_writers_give_the_same_logits(writer, tmp_path):
    arrays = vit_arrays()
    arrays["Transformer/posembed_input/pos_embedding"][:, 0] = 0  # big_vision's class token has no position
    if writer == "opt/target":
        written = {f"opt/target/{key}": value for key, value in arrays.items()}
        written["opt/state/step"] = np.array(1000)  # optimizer state: left out, said so
    else:
        written = _big_vision(arrays, scanned=writer.endswith("scanned"))
    path = str(_save(written, tmp_path / "other.npz"))
    model = models.create("test_vit", representation_size=8, weights=path)
    x = _images(16)
    np.testing.assert_allclose(_logits(model, x), vit_logits(arrays, x), atol=1e-5, rtol=0)
    report = models.load_checkpoint(model, path)
    _accounted(report, written)
    assert report.skipped == (["opt/state/step"] if writer == "opt/target" else [])


def test_bit_checkpoint_matches_the_numpy_forward_pass(tmp_path):
    arrays = bit_arrays()
    model = models.create("test_bit", weights=str(_save(arrays, tmp_path / "bit.npz")))
    x = _images(32)
    np.testing.assert_allclose(_logits(model, x), bit_logits(arrays, x), atol=1e-5, rtol=0)
    _accounted(models.load_checkpoint(model, tmp_path / "bit.npz"), arrays)


def test_save_checkpoint_writes_the_released_layout_and_round_trips(tmp_path):
    for name, reference, kwargs in (("test_vit", vit_arrays(), {"representation_size": 8}),
                                    ("test_bit", bit_arrays(), {})):
        model = models.create(name, **kwargs)
        path = models.save_checkpoint(model, tmp_path / f"{name}.npz")
        saved = dict(np.load(path))
        assert {k: v.shape for k, v in saved.items()} == {k: v.shape for k, v in reference.items()}
        clone = models.create(name, weights=str(path), **kwargs)
        for a, b in zip(model.get_weights(), clone.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_a_head_for_other_classes_is_skipped_and_stays_zero(tmp_path):
    arrays = bit_arrays(classes=7)
    path = str(_save(arrays, tmp_path / "bit7.npz"))
    model = models.create("test_bit", num_classes=4, weights=path)
    assert not np.any(model.get_layer("head").kernel.numpy()) and not np.any(model.get_layer("head").bias.numpy())
    report = models.load_checkpoint(model, path)
    assert sorted(report.skipped) == ["resnet/head/conv2d/bias", "resnet/head/conv2d/kernel"]
    _accounted(report, arrays)
    # the backbone is the checkpoint's: the same features as the NumPy pass
    features = keras.Model(model.inputs, model.get_layer("avg_pool").output)(_images(32)).numpy()
    np.testing.assert_allclose(features, bit_features(arrays, _images(32)), atol=1e-4, rtol=0)


def test_vit_pre_logits_are_dropped_without_error_when_the_model_has_none(tmp_path):
    arrays = vit_arrays(classes=5)
    path = str(_save(arrays, tmp_path / "vit.npz"))
    model = models.create("test_vit", weights=path)  # 3 classes and no pre-logits layer
    report = models.load_checkpoint(model, path)
    assert sorted(report.skipped) == ["head/bias", "head/kernel", "pre_logits/bias", "pre_logits/kernel"]
    _accounted(report, arrays)
    with pytest.raises(ValueError, match="pre_logits/kernel"):  # a pre-logits layer of another size is refused
        models.create("test_vit", representation_size=4, weights=path)


def test_position_embedding_is_resized_on_its_grid_and_only_it(tmp_path):
    arrays = vit_arrays()
    path = str(_save(arrays, tmp_path / "vit.npz"))
    model = models.create("test_vit", image_shape=(32, 32, 3), representation_size=8, weights=path)
    report = models.load_checkpoint(model, path)
    assert report.resized == ["Transformer/posembed_input/pos_embedding"]
    _accounted(report, arrays)
    pos = model.get_layer("posembed_input").pos_embedding.numpy()
    old = arrays["Transformer/posembed_input/pos_embedding"]
    np.testing.assert_array_equal(pos[:, 0], old[:, 0])  # class token kept
    grid, new = old[0, 1:].reshape(4, 4, -1), pos[0, 1:].reshape(8, 8, -1)
    np.testing.assert_allclose(new[0, 0], grid[0, 0], atol=1e-6)  # corners map onto corners (order=1 zoom)
    np.testing.assert_allclose(new[-1, -1], grid[-1, -1], atol=1e-6)
    # linear along a row: 8 samples over 4 points -> position 1 is 3/7 of the way from grid[0,0] to grid[0,1]
    np.testing.assert_allclose(new[0, 1], grid[0, 0] + 3 / 7 * (grid[0, 1] - grid[0, 0]), atol=1e-5)


def test_interpolation_is_the_identity_at_equal_size():
    posemb = np.random.default_rng(0).standard_normal((1, 1 + 14 * 14, 8)).astype("float32")
    np.testing.assert_allclose(checkpoints.resize_position_embedding(posemb, 1 + 14 * 14), posemb, atol=1e-6)


def test_strict_refuses_another_architecture_naming_keys_and_shapes(tmp_path):
    bit_file = str(_save(bit_arrays(), tmp_path / "bit.npz"))
    with pytest.raises(ValueError, match=r"resnet/block1/unit01/a/group_norm/beta.*\(4,\)"):
        models.create("test_vit", weights=bit_file)
    deeper = str(_save(vit_arrays(depth=3), tmp_path / "deep.npz"))
    with pytest.raises(ValueError, match="Transformer/encoderblock_2/LayerNorm_0/bias"):
        models.create("test_vit", representation_size=8, weights=deeper)
    shallow = str(_save(vit_arrays(depth=1), tmp_path / "shallow.npz"))
    with pytest.raises(ValueError, match="model weight 'Transformer/encoderblock_1/"):
        models.create("test_vit", representation_size=8, weights=shallow)
    model = models.create("test_vit", representation_size=8)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError):
        models.load_checkpoint(model, deeper)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # nothing assigned


def test_non_strict_loads_what_matches_and_reports_the_rest(tmp_path):
    arrays = vit_arrays(depth=3)
    model = models.create("test_vit", representation_size=8)
    report = models.load_checkpoint(model, str(_save(arrays, tmp_path / "deep.npz")), strict=False)
    _accounted(report, arrays)
    assert all(k.startswith("Transformer/encoderblock_2/") for k in report.skipped) and len(report.skipped) == 16
    np.testing.assert_array_equal(model.get_layer("cls").cls.numpy(), arrays["cls"])
    report = models.load_checkpoint(models.create("test_vit"), bit_arrays(), strict=False)
    assert not report.loaded and len(report.skipped) == len(bit_arrays())


def test_missing_release_file_offline_says_what_to_download_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(FileNotFoundError, match=r"BiT-M-R50x1\.npz is not in .*keras_cv_apps.*download it from "
                                                r"https://storage\.googleapis\.com/bit_models/BiT-M-R50x1\.npz"):
        checkpoints.resolve("bit_m_r50x1", "imagenet21k")
    with pytest.raises(FileNotFoundError, match="release names for vit_b16: imagenet21k"):
        checkpoints.resolve("vit_b16", "no-such-file.npz")
    # a release file put where the message says is used
    (tmp_path / "keras_cv_apps").mkdir()
    _save(bit_arrays(), tmp_path / "keras_cv_apps" / "BiT-M-R50x1.npz")
    assert checkpoints.resolve("bit_m_r50x1", "imagenet21k").name == "BiT-M-R50x1.npz"


def test_hub_preset_offline_or_without_the_extra_is_one_sentence(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "keras_hub", None)  # the extra is not installed
    with pytest.raises(ImportError, match=r"needs keras-hub: pip install 'keras-cv-apps\[hub\]'"):
        models.create("test_vit", weights="hub:vit_base_patch16_224_imagenet")

    def offline(preset):  # what keras-hub raises when Kaggle cannot be reached
        raise OSError(f"could not reach kaggle for {preset}")

    fake = types.SimpleNamespace(models=types.SimpleNamespace(Backbone=types.SimpleNamespace(from_preset=offline)))
    monkeypatch.setitem(sys.modules, "keras_hub", fake)
    with pytest.raises(ConnectionError, match=r"Could not load keras-hub preset 'vit_x' \(OSError\); it needs the "
                                              r"network once, or pass an official \.npz file instead\."):
        models.create("test_vit", weights="hub:vit_x")


def test_a_file_that_is_not_a_checkpoint_is_one_sentence(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(ValueError, match="bad.npz is not an .npz checkpoint"):
        models.create("test_bit", weights=str(bad))
    np.save(tmp_path / "one.npy", np.zeros(3))  # a single array, not a dict of them
    with pytest.raises(ValueError, match="one.npy is not an .npz checkpoint"):
        models.create("test_bit", weights=str(tmp_path / "one.npy"))
    import zipfile

    with zipfile.ZipFile(tmp_path / "odd.npz", "w") as z:
        z.writestr("kernel.npy", b"not an array")
    with pytest.raises(ValueError, match="odd.npz is not a readable .npz checkpoint"):
        models.create("test_bit", weights=str(tmp_path / "odd.npz"))


def test_a_keras_file_of_another_head_loads_like_a_checkpoint(tmp_path):
    source = models.create("test_bit", num_classes=7)
    source.get_layer("head").bias.assign(np.ones(7, "float32"))
    source.save(tmp_path / "src.keras")
    model = models.create("test_bit", weights=str(tmp_path / "src.keras"))  # 3 classes
    report = models.load_weights(model, tmp_path / "src.keras")
    assert report.skipped == ["resnet/head/conv2d/bias", "resnet/head/conv2d/kernel"]
    np.testing.assert_array_equal(model.get_layer("root_conv").kernel.numpy(),
                                  source.get_layer("root_conv").kernel.numpy())
    assert not np.any(model.get_layer("head").bias.numpy())


def test_group_norm_arrays_stored_with_singleton_axes_load(tmp_path):
    arrays = bit_arrays()
    padded = {k: (v.reshape(1, 1, 1, -1) if "group_norm" in k else v) for k, v in arrays.items()}
    model = models.create("test_bit", weights=str(_save(padded, tmp_path / "bit4d.npz")))
    np.testing.assert_allclose(_logits(model, _images(32)), bit_logits(arrays, _images(32)), atol=1e-5, rtol=0)
