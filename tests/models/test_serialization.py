"""Every serializable object the package registers (layers, losses, models) round-trips through
``get_config``/``from_config`` and through a ``.keras`` file loaded in a fresh process that
imports nothing but the package, coming back as the same class."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import keras_cv_apps  # noqa: E402
from keras_cv_apps import layers, losses, metrics, models  # noqa: E402
from keras_cv_apps.models import bit_layers, cct_layers, vit_layers  # noqa: E402

PACKAGE = "keras_cv_apps>"


def _layer_model(layer, shape=(8, 8, 1)):
    x = keras.Input(shape)
    return keras.Model(x, layer(x))


def _two_input_model(layer, dim=4):
    a, b = keras.Input((dim,)), keras.Input((dim,))
    return keras.Model([a, b], layer([a, b]))


def _loss_model(loss, out=4):
    x = keras.Input((6,))
    model = keras.Model(x, keras.layers.Dense(out)(x))
    model.compile(optimizer="adam", loss=loss)
    return model


def _metric_model(metric):
    x = keras.Input((4, 4, 1))
    model = keras.Model(x, keras.layers.Conv2D(1, 1, activation="sigmoid")(x))
    model.compile(optimizer="adam", loss="mse", metrics=[metric])
    return model


def _compiled_metrics(model):
    compiled = getattr(model, "_compile_metrics", None)
    return list(getattr(compiled, "_user_metrics", None) or [])


# registered name -> a small model that holds one instance of it (layers inside, losses and metrics compiled)
EXAMPLES = {
    "ArcFace": lambda: _arcface_model(),
    "ArcFaceLoss": lambda: _loss_model(losses.ArcFaceLoss(scale=8.0)),
    "BottleneckResidual": lambda: _layer_model(layers.BottleneckResidual(2, strides=2, zero_init=False)),
    "ClassToken": lambda: _layer_model(vit_layers.ClassToken(), shape=(5, 8)),
    "ClippedGaussianNoise": lambda: _layer_model(layers.ClippedGaussianNoise(stddev=0.1)),
    "Cutout": lambda: _layer_model(layers.Cutout(holes=(1, 2), size=(0.1, 0.2), seed=1)),
    "Erasing": lambda: _layer_model(layers.Erasing(area=(0.05, 0.2), fill_value=None)),
    "GridMask": lambda: _layer_model(layers.GridMask(ratio=0.4)),
    "LabelMix": lambda: _mix_model(),
    "RandAugment": lambda: _layer_model(layers.RandAugment(num_ops=3, magnitude=0.3, ops=["rotate", "contrast"])),
    "RandomBlur": lambda: _layer_model(layers.RandomBlur(sigma=(0.3, 1.0))),
    "RandomContrast": lambda: _layer_model(layers.RandomContrast(contrast=(0.7, 1.1))),
    "RandomElastic": lambda: _layer_model(layers.RandomElastic(displacement=0.02, smoothness=0.2)),
    "RandomGamma": lambda: _layer_model(layers.RandomGamma(gamma=(0.8, 1.2))),
    "RandomJPEG": lambda: _layer_model(layers.RandomJPEG(quality=(20, 80))),
    "RandomMirror": lambda: _layer_model(layers.RandomMirror("both")),
    "RandomResizedCrop": lambda: _layer_model(layers.RandomResizedCrop(scale=(0.5, 1.0))),
    "SpeckleNoise": lambda: _layer_model(layers.SpeckleNoise(stddev=0.1)),
    "ContrastiveLoss": lambda: _loss_model(losses.ContrastiveLoss(margin=0.5), out=1),
    "DiceLoss": lambda: _loss_model(losses.DiceLoss(smooth=0.5, from_logits=True)),
    "DiceScore": lambda: _metric_model(metrics.DiceScore(num_classes=1, threshold=0.4)),
    "DepthwiseSeparableConv2D": lambda: _layer_model(layers.DepthwiseSeparableConv2D(3, 3, strides=2)),
    "DropBlock": lambda: _layer_model(layers.DropBlock(0.2, 3, per_channel=False, seed=4)),
    "DynamicConv2D": lambda: _layer_model(layers.DynamicConv2D(3, 3, num_experts=2, routing="softmax")),
    "EuclideanDistance": lambda: _two_input_model(layers.EuclideanDistance(squared=True)),
    "FeaturePyramid": lambda: _pyramid_model(),
    "FocalLoss": lambda: _loss_model(losses.FocalLoss(gamma=1.5, from_logits=True)),
    "GIoULoss": lambda: _loss_model(losses.GIoULoss(box_format="yxyx")),
    "GhostModule": lambda: _layer_model(layers.GhostModule(5, ratio=3)),
    "HardSwish": lambda: _layer_model(layers.HardSwish()),
    "InvertedResidual": lambda: _layer_model(layers.InvertedResidual(4, expansion=3, se_ratio=1.0,
                                                                     activation="hard_swish")),
    "JaccardLoss": lambda: _loss_model(losses.JaccardLoss(smooth=2.0)),
    "LocalResponseNormalization": lambda: _layer_model(layers.LocalResponseNormalization(depth=3)),
    "MaskMeanIoU": lambda: _metric_model(metrics.MaskMeanIoU(num_classes=1, threshold="argmax")),
    "MultiHeadSelfAttention2D": lambda: _layer_model(layers.MultiHeadSelfAttention2D(num_heads=1,
                                                                                     position_embedding=True)),
    "PSNR": lambda: _metric_model(metrics.PSNR(max_val=2.0)),
    "Gelu": lambda: _layer_model(vit_layers.Gelu(approximate=True)),
    "MultiHeadSelfAttention": lambda: _layer_model(vit_layers.MultiHeadSelfAttention(num_heads=2, locality=True),
                                                   shape=(5, 8)),
    "PositionEmbedding": lambda: _layer_model(vit_layers.PositionEmbedding(stddev=0.5), shape=(5, 8)),
    "RandomAffine": lambda: _layer_model(layers.RandomAffine(rotation=5, seed=1)),
    "SSIM": lambda: _metric_model(metrics.SSIM(filter_size=3, sigma=0.8)),
    "SSIMLoss": lambda: _loss_model(losses.SSIMLoss(max_val=255.0, filter_size=7)),
    "SaltAndPepperNoise": lambda: _layer_model(layers.SaltAndPepperNoise(rate=0.1)),
    "Sampling": lambda: _two_input_model(layers.Sampling(seed=3)),
    "SpatiallySeparableConv2D": lambda: _layer_model(layers.SpatiallySeparableConv2D(2, (3, 5), strides=(2, 1))),
    "SqueezeExcitation": lambda: _layer_model(layers.SqueezeExcitation(squeeze_channels=2), shape=(4, 4, 3)),
    "StochasticDepth": lambda: _layer_model(layers.StochasticDepth(0.2, seed=5)),
    "SparseCategoricalCrossentropyWithSmoothing":
        lambda: _loss_model(losses.SparseCategoricalCrossentropyWithSmoothing(label_smoothing=0.1)),
    "SeqPool": lambda: _layer_model(cct_layers.SeqPool(), shape=(5, 8)),
    "SparsityPenalty": lambda: _sparsity_model(),
    "StandardizedConv2D": lambda: _layer_model(bit_layers.StandardizedConv2D(4, 3, strides=2, use_bias=False)),
    "SupConLoss": lambda: _loss_model(losses.SupConLoss(temperature=0.3)),
    "TripletLoss": lambda: _loss_model(losses.TripletLoss(margin=0.3, mining="semi_hard")),
    "TverskyLoss": lambda: _loss_model(losses.TverskyLoss(alpha=0.2, beta=0.8)),
    # subclassed models: their tiny registry variants
    "Autoencoder": lambda: models.create("test_autoencoder_conv"),
    "ContractiveAutoencoder": lambda: models.create("test_autoencoder_contractive"),
    "EmbeddingNetwork": lambda: models.create("test_siamese_triplet"),
    "SiameseNetwork": lambda: models.create("test_siamese_contrastive"),
    "VAE": lambda: models.create("test_vae"),
}


def _mix_model():
    images, labels = keras.Input((8, 8, 1)), keras.Input((3,))
    mixed = layers.LabelMix(mixup_alpha=0.3, probability=0.7)({"images": images, "labels": labels})
    return keras.Model([images, labels], keras.layers.Concatenate()([keras.layers.Flatten()(mixed["images"]),
                                                                     mixed["labels"]]))


def _arcface_model():
    x = keras.Input((4,))
    return keras.Model(x, losses.ArcFace(num_classes=3, name="arcface")(x))


def _pyramid_model():
    inputs = [keras.Input((8, 8, 2)), keras.Input((4, 4, 3))]
    return keras.Model(inputs, layers.FeaturePyramid(2, extra_levels=1)(inputs)[0])


def _sparsity_model():
    from keras_cv_apps.models.autoencoder_layers import SparsityPenalty

    x = keras.Input((4,))
    return keras.Model(x, SparsityPenalty(kind="l1", weight=0.5)(keras.layers.Dense(4, activation="sigmoid")(x)))


def _registered():
    import keras_cv_apps.data  # noqa: F401  (everything that registers)

    return sorted(k[len(PACKAGE):] for k in keras.saving.get_custom_objects() if k.startswith(PACKAGE))


def test_every_registered_object_has_an_example():
    assert _registered() == sorted(EXAMPLES)


def test_no_two_classes_share_a_registered_name():
    """Keras keys its registry by name: a second class registered under a name replaces the first, and
    files saved with the first would load as the second."""
    import importlib
    import inspect
    import pkgutil

    _registered()
    registry = keras.saving.get_custom_objects()
    clashes = []
    for info in pkgutil.walk_packages(keras_cv_apps.__path__, "keras_cv_apps."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            key = keras.saving.get_registered_name(obj)
            if obj.__module__ == module.__name__ and key.startswith(PACKAGE) and registry.get(key) is not obj:
                clashes.append(f"{module.__name__}.{obj.__name__}")
    assert clashes == []


def _holder(model, name):
    """The instance of ``name`` inside an example model (a layer, the compiled loss or metric, or the model)."""
    if type(model).__name__ == name:
        return model
    if type(getattr(model, "loss", None)).__name__ == name:
        return model.loss
    for metric in _compiled_metrics(model):
        if type(metric).__name__ == name:
            return metric
    return next(layer for layer in model.layers if type(layer).__name__ == name)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_get_config_from_config_round_trip(name):
    obj = _holder(EXAMPLES[name](), name)
    config = obj.get_config()
    clone = type(obj).from_config(json.loads(json.dumps(config)))
    assert type(clone) is type(obj)
    assert clone.get_config() == json.loads(json.dumps(config))


# every tiny registry variant too (functional ones hold only core layers and the package's)
VARIANTS = {f"variant_{n}": (lambda n=n: models.create(n)) for n in models.list_models("test_*")}


def test_keras_files_load_in_a_fresh_process(tmp_path):
    inputs = {}
    for name, build in {**EXAMPLES, **VARIANTS}.items():
        model = build()
        model.save(tmp_path / f"{name}.keras")
        shape = [tuple(t.shape[1:]) for t in model.inputs]
        x = [np.random.default_rng(0).random((2, *s)).astype("float32") for s in shape]
        np.savez(tmp_path / f"{name}.npz", *x)
        inputs[name] = keras.ops.convert_to_numpy(model(x if len(x) > 1 else x[0], training=False))
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import keras_cv_apps
        root, names, found = {str(tmp_path)!r}, {sorted(inputs)!r}, {{}}
        for name in names:
            model = keras_cv_apps.load_model(f"{{root}}/{{name}}.keras")
            kinds = [type(model).__name__, type(getattr(model, "loss", None)).__name__]
            kinds += [type(layer).__name__ for layer in model.layers]
            compiled = getattr(model, "_compile_metrics", None)
            kinds += [type(m).__name__ for m in (getattr(compiled, "_user_metrics", None) or [])]
            x = list(np.load(f"{{root}}/{{name}}.npz").values())
            y = model(x if len(x) > 1 else x[0], training=False)
            np.save(f"{{root}}/{{name}}_out.npy", np.asarray(y))
            found[name] = name.startswith("variant_") or name in kinds
        print(json.dumps(found))
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {name: True for name in inputs}
    for name, expected in inputs.items():
        if name in ("Sampling",):
            continue  # a random layer: only its class is checked
        np.testing.assert_allclose(np.load(tmp_path / f"{name}_out.npy"), expected, atol=1e-5, err_msg=name)


def test_load_model_imports_what_it_needs():
    assert "load_model" in keras_cv_apps.__all__
