"""The model registry: names, configs, errors."""

import pytest

from keras_cv_apps import models
from keras_cv_apps.models import _registry


def test_list_models_filters_by_pattern():
    names = models.list_models()
    assert names == sorted(names)
    assert {"lenet5", "alexnet", "test_lenet5", "test_alexnet"} <= set(names)
    assert models.list_models("lenet*") == ["lenet5"]
    assert not any(n.startswith("test_") for n in models.list_models(include_test=False))


def test_unknown_name_names_close_matches():
    with pytest.raises(ValueError, match=r"Unknown model 'lenet'.*'lenet5'"):
        models.create("lenet")
    with pytest.raises(ValueError, match="Unknown model"):
        models.get_cfg("resnet9000")


def test_registering_a_name_twice_raises():
    with pytest.raises(ValueError, match="already registered"):
        models.register_model("lenet5")(lambda **kw: None)
    assert _registry._REGISTRY["lenet5"][1].name == "lenet5"


def test_none_kwargs_are_dropped_so_model_defaults_win():
    model = models.create("lenet5", num_classes=None, activation=None, image_shape=(32, 32, 1))
    assert model.output_shape == (None, 10)
    assert model.get_layer("c1_act").get_config()["activation"] == "tanh"


def test_cfg_is_frozen_and_validated():
    cfg = models.get_cfg("lenet5")
    with pytest.raises(Exception):
        cfg.num_classes = 3
    with pytest.raises(ValueError, match="task"):
        models.ModelCfg(name="x", task="regression")
    assert cfg.to_dict()["defaults"]["image_shape"] == (32, 32, 1) and cfg.image_shape == (32, 32, 1)
    assert cfg.to_dict()["min_image_size"] == "min_image_size"


def test_bad_constructor_arguments_are_clear():
    with pytest.raises(ValueError, match="too small"):
        models.create("lenet5", image_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="activation"):
        models.create("lenet5", activation="softsign-ish")
    with pytest.raises(ValueError, match="num_classes"):
        models.create("alexnet", num_classes=1, image_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="norm"):
        models.create("alexnet", norm="group", image_shape=(32, 32, 3))


def test_cfg_is_the_single_source_of_defaults_and_min_size():
    cfg = models.get_cfg("lenet5")
    model = models.create("lenet5")
    assert model.input_shape == (None, *cfg.image_shape) and model.output_shape == (None, cfg.num_classes)
    assert models.cfg_of(model) is cfg
    # the minimum size comes from the builder's own rule: "same" padding takes 12 px images
    assert cfg.min_size() == 16 and cfg.min_size(padding="same") == 10
    assert models.create("lenet5", image_shape=(12, 12, 1), padding="same").input_shape == (None, 12, 12, 1)
    tiny = models.create("test_lenet5")
    assert tiny.get_layer("c1_conv").filters == 2 and tiny.name == "test_lenet5"


def test_feature_extractor_cuts_at_the_cfg_layer():
    import numpy as np

    model = models.create("lenet5")
    features = models.feature_extractor(model)
    assert features.output_shape == (None, 84)  # f6, below the classifier
    x = np.random.default_rng(0).random((2, 32, 32, 1)).astype("float32")
    probs = model.get_layer("predictions")(features(x))  # the classifier head on the features
    np.testing.assert_allclose(probs, model(x), atol=1e-6)
    # nested models: the autoencoder's feature map lives inside its encoder
    ae = models.create("test_autoencoder_conv")
    assert models.feature_extractor(ae).output_shape == (None, 4, 4, 8)
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        models.feature_extractor(model, layer="nope")
    with pytest.raises(ValueError, match="names no feature layer"):
        models.feature_extractor(models.create("test_autoencoder_sparse"))


def test_create_loads_keras_weights_and_refuses_other_architectures(tmp_path):
    import numpy as np

    source = models.create("test_lenet5")
    source.save(tmp_path / "m.keras")
    source.save_weights(tmp_path / "m.weights.h5")
    for path in ("m.keras", "m.weights.h5"):
        loaded = models.create("test_lenet5", weights=tmp_path / path)
        for a, b in zip(loaded.get_weights(), source.get_weights()):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="another architecture"):
        models.create("test_alexnet", weights=tmp_path / "m.keras")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        models.create("lenet5", weights=tmp_path / "missing.keras")
    (tmp_path / "w.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="reads no other checkpoint format"):
        models.create("lenet5", weights=tmp_path / "w.npz")


def test_every_public_model_describes_itself():
    described = models.catalog()
    assert set(described) == set(models.list_models(include_test=False))
    assert all(len(text) > 10 for text in described.values())
    assert set(models.catalog(task="classifier")) == {
        "alexnet", "lenet5", "cct_small", "bit_tiny", "bit_s_r50x1", "bit_m_r50x1", "bit_m_r101x1", "vit_ti16",
        "vit_s16", "vit_b16", "mobilenetv2", "ghostnet", "effnet_b0", "effnet_b1", "effnet_b2", "effnet_b3"}


def test_unknown_names_list_only_public_models():
    with pytest.raises(ValueError) as info:
        models.create("lenet6")
    assert "test_" not in str(info.value) and "'lenet5'" in str(info.value)


def test_cfg_refuses_unknown_or_non_boolean_tflite_options():
    from keras_cv_apps.models._cfg import ModelCfg

    for options in ({"per_chanel": False}, {"per_channel": "no"}):
        with pytest.raises(ValueError, match="tflite_options"):
            ModelCfg(name="x", defaults={"image_shape": (8, 8, 1)}, tflite_options=options)
    cfg = ModelCfg(name="x", defaults={"image_shape": (8, 8, 1)}, tflite_options={"per_channel": False})
    assert cfg.to_dict()["tflite_options"] == {"per_channel": False}
