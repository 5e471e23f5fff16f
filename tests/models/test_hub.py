"""keras-hub ViT backbones map onto the native ViT (needs the ``hub`` extra; a random backbone,
nothing is downloaded)."""

import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")
keras = pytest.importorskip("keras")

from keras_cv_apps import models  # noqa: E402
from keras_cv_apps.models.hub import arrays_from_backbone  # noqa: E402


def test_a_keras_hub_vit_backbone_loads_into_vit_and_computes_the_same_tokens():
    backbone = keras_hub.models.ViTBackbone(image_shape=(16, 16, 3), patch_size=4, num_layers=2, num_heads=2,
                                            hidden_dim=16, mlp_dim=32)
    for weight in backbone.weights:  # non-trivial biases and norms
        weight.assign(weight.numpy() + np.random.default_rng(0).normal(0, 0.1, weight.shape))
    model = models.create("test_vit")
    report = models.load_checkpoint(model, arrays_from_backbone(backbone))
    assert report.skipped == [] and report.resized == [] and len(report.loaded) == 38  # all but the head
    x = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    ours = keras.Model(model.inputs, model.get_layer("encoder_norm").output)(x).numpy()
    theirs = keras.ops.convert_to_numpy(backbone(x))
    # keras-hub computes the exact GELU, the ViT its tanh form: close, not equal
    np.testing.assert_allclose(ours, theirs, atol=2e-3)
