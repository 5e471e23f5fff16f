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
    assert cfg.to_dict()["image_shape"] == (32, 32, 1)


def test_bad_constructor_arguments_are_clear():
    with pytest.raises(ValueError, match="too small"):
        models.create("lenet5", image_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="activation"):
        models.create("lenet5", activation="softsign-ish")
    with pytest.raises(ValueError, match="num_classes"):
        models.create("alexnet", num_classes=1, image_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="norm"):
        models.create("alexnet", norm="group", image_shape=(32, 32, 3))
