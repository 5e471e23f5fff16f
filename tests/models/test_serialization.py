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
from keras_cv_apps import layers, losses, models  # noqa: E402
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


# registered name -> a small model that holds one instance of it (layers inside, losses compiled)
EXAMPLES = {
    "ArcFace": lambda: _arcface_model(),
    "ArcFaceLoss": lambda: _loss_model(losses.ArcFaceLoss(scale=8.0)),
    "ClassToken": lambda: _layer_model(vit_layers.ClassToken(), shape=(5, 8)),
    "ClippedGaussianNoise": lambda: _layer_model(layers.ClippedGaussianNoise(stddev=0.1)),
    "ContrastiveLoss": lambda: _loss_model(losses.ContrastiveLoss(margin=0.5), out=1),
    "EuclideanDistance": lambda: _two_input_model(layers.EuclideanDistance(squared=True)),
    "FocalLoss": lambda: _loss_model(losses.FocalLoss(gamma=1.5, from_logits=True)),
    "Gelu": lambda: _layer_model(vit_layers.Gelu(approximate=True)),
    "LocalResponseNormalization": lambda: _layer_model(layers.LocalResponseNormalization(depth=3)),
    "MultiHeadSelfAttention": lambda: _layer_model(vit_layers.MultiHeadSelfAttention(num_heads=2, locality=True),
                                                   shape=(5, 8)),
    "PositionEmbedding": lambda: _layer_model(vit_layers.PositionEmbedding(stddev=0.5), shape=(5, 8)),
    "RandomAffine": lambda: _layer_model(layers.RandomAffine(rotation=5, seed=1)),
    "SaltAndPepperNoise": lambda: _layer_model(layers.SaltAndPepperNoise(rate=0.1)),
    "Sampling": lambda: _two_input_model(layers.Sampling(seed=3)),
    "SparseCategoricalCrossentropyWithSmoothing":
        lambda: _loss_model(losses.SparseCategoricalCrossentropyWithSmoothing(label_smoothing=0.1)),
    "SeqPool": lambda: _layer_model(cct_layers.SeqPool(), shape=(5, 8)),
    "SparsityPenalty": lambda: _sparsity_model(),
    "StandardizedConv2D": lambda: _layer_model(bit_layers.StandardizedConv2D(4, 3, strides=2, use_bias=False)),
    "StochasticDepth": lambda: _layer_model(cct_layers.StochasticDepth(rate=0.2, seed=1), shape=(5, 8)),
    "SupConLoss": lambda: _loss_model(losses.SupConLoss(temperature=0.3)),
    "TripletLoss": lambda: _loss_model(losses.TripletLoss(margin=0.3, mining="semi_hard")),
    # subclassed models: their tiny registry variants
    "Autoencoder": lambda: models.create("test_autoencoder_conv"),
    "ContractiveAutoencoder": lambda: models.create("test_autoencoder_contractive"),
    "EmbeddingNetwork": lambda: models.create("test_siamese_triplet"),
    "SiameseNetwork": lambda: models.create("test_siamese_contrastive"),
    "VAE": lambda: models.create("test_vae"),
}


def _arcface_model():
    x = keras.Input((4,))
    return keras.Model(x, losses.ArcFace(num_classes=3, name="arcface")(x))


def _sparsity_model():
    from keras_cv_apps.models.autoencoder_layers import SparsityPenalty

    x = keras.Input((4,))
    return keras.Model(x, SparsityPenalty(kind="l1", weight=0.5)(keras.layers.Dense(4, activation="sigmoid")(x)))


def _registered():
    import keras_cv_apps.data  # noqa: F401  (everything that registers)

    return sorted(k[len(PACKAGE):] for k in keras.saving.get_custom_objects() if k.startswith(PACKAGE))


def test_every_registered_object_has_an_example():
    assert _registered() == sorted(EXAMPLES)


def _holder(model, name):
    """The instance of ``name`` inside an example model (a layer, the compiled loss or the model)."""
    if type(model).__name__ == name:
        return model
    if type(getattr(model, "loss", None)).__name__ == name:
        return model.loss
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
        if name in ("Sampling", "ClippedGaussianNoise", "SaltAndPepperNoise", "RandomAffine"):
            continue  # random layers: only their class is checked
        np.testing.assert_allclose(np.load(tmp_path / f"{name}_out.npy"), expected, atol=1e-5, err_msg=name)


def test_load_model_imports_what_it_needs():
    assert "load_model" in keras_cv_apps.__all__
