"""Grad-CAM (Selvaraju et al., 2017) and Grad-CAM++ (Chattopadhyay et al., 2018).

Both weight the channels of a convolutional feature map ``A`` by how much the class score ``S``
grows with them, sum the weighted channels, keep the positive part and upsample to the input:

- Grad-CAM: ``w_k = mean_ij dS/dA_ijk``.
- Grad-CAM++: ``w_k = sum_ij a_ijk relu(dS/dA_ijk)`` with
  ``a = g^2 / (2 g^2 + sum_ab A_abk g^3)``, the closed form the paper derives for an
  exponential of the score (its ``exp(S)`` factors cancel), so only first gradients are needed.

``S`` is the score before a final softmax. The feature map is the cfg's ``feature_layer`` when
that is a 4-D map, else the last layer (nested models included) with a 4-D output larger than
1x1. Maps are in [0, 1] per image; a map with no positive evidence is all zeros.
"""

from __future__ import annotations

from typing import Optional

import keras
import numpy as np

from keras_cv_apps.explain import _core
from keras_cv_apps.explain._graph import feature_maps


def default_layer(model) -> str:
    """The layer Grad-CAM weights when none is named (see the module docstring)."""
    from keras_cv_apps.models import cfg_of

    maps = feature_maps(model)
    if not maps:
        raise ValueError(f"{model.name} has no layer with a 4-D output (N, H, W, C) larger than 1x1, so Grad-CAM "
                         "has no feature map to weight; use saliency, integrated_gradients or occlusion instead.")
    cfg = cfg_of(model)
    names = [name for name, _ in maps]
    if cfg is not None and cfg.feature_layer in names:
        return cfg.feature_layer
    return names[-1]


def feature_layer(model, layer: Optional[str] = None) -> str:
    """``layer`` checked to be a 4-D feature map of ``model``, or the default one when None."""
    if layer is None:
        return default_layer(model)
    names = [name for name, _ in feature_maps(model)]
    if layer not in names:
        from keras_cv_apps.explain._graph import find

        find(model, layer)  # an unknown name raises here, naming the layers
        raise ValueError(f"Layer {layer!r} of {model.name} has no 4-D output (N, H, W, C) larger than 1x1; Grad-CAM "
                         f"needs a feature map such as {', '.join(map(repr, names[-5:])) or 'none (it has none)'}.")
    return layer


def _weights(a, g, plus_plus: bool):
    ops = keras.ops
    if not plus_plus:
        return ops.mean(g, axis=(1, 2))
    g2 = ops.square(g)
    denom = 2.0 * g2 + ops.sum(a, axis=(1, 2), keepdims=True) * g2 * g
    alpha = ops.where(ops.abs(denom) > 1e-12, g2 / ops.where(denom == 0, 1.0, denom), 0.0)
    return ops.sum(alpha * ops.relu(g), axis=(1, 2))


def _cam(model, images, class_index, layer, batch_size, plus_plus):
    x = _core.check_images(images, model)
    layer = feature_layer(model, layer)
    idx = _core.check_class_index(class_index, len(x), model)
    fn = _core.score_gradients(model, (layer,))
    out = np.empty(x.shape[:3], np.float32)
    for s in _core.batches(len(x), batch_size):
        _, _, _, captured = fn(x[s], idx[s])
        a, g = captured[layer]
        cam = keras.ops.relu(keras.ops.sum(a * _weights(a, g, plus_plus)[:, None, None, :], axis=-1))
        cam = _core.normalise_max(keras.ops.relu(_core.resize_maps(cam, x.shape[1:3])))
        out[s] = keras.ops.convert_to_numpy(cam)
    return out


def grad_cam(model, images, *, class_index=None, layer: Optional[str] = None, batch_size: int = 32) -> np.ndarray:
    """Grad-CAM maps ``(N, H, W)`` in [0, 1] at the input resolution.

    Args:
        model: a Functional or Sequential classifier (nested models, registry models and
            ``keras.applications`` models included).
        images: float ``(N, H, W, C)`` exactly as the model takes them.
        class_index: None (each image's predicted class), one int for every image, or one per image.
        layer: the 4-D layer to weight (searched inside nested models); None picks it as the module
            docstring says.
        batch_size: images per gradient call.
    """
    return _cam(model, images, class_index, layer, batch_size, plus_plus=False)


def grad_cam_plus_plus(model, images, *, class_index=None, layer: Optional[str] = None,
                       batch_size: int = 32) -> np.ndarray:
    """Grad-CAM++ maps ``(N, H, W)`` in [0, 1]; arguments as `grad_cam`."""
    return _cam(model, images, class_index, layer, batch_size, plus_plus=True)
