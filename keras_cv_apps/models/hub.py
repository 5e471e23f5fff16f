"""keras-hub ViT presets (the ``hub`` extra) as arrays in the official ViT ``.npz`` layout.

``models.create("vit_b16", weights="hub:vit_base_patch16_224_imagenet")`` downloads the preset
with keras-hub (Kaggle needs the network once), reads its `ViTBackbone` weights and hands them to
`checkpoints.load_checkpoint` under the released file's names, so the same checks, head skipping
and position-embedding resizing apply. keras-hub's presets were converted from Hugging Face and
compute the exact GELU, where these models (as the original JAX code) use its tanh form; outputs
agree to about 1e-3.
"""

from __future__ import annotations

import numpy as np


def _numpy(variable):
    return np.asarray(variable.numpy(), dtype=np.float32)


def _find(backbone, class_name):
    found = [layer for layer in backbone.layers if type(layer).__name__ == class_name]
    if not found:
        raise ValueError(f"{backbone.name} has no {class_name} layer: only keras-hub ViT backbones map onto vit_*.")
    return found[0]


def arrays_from_backbone(backbone) -> dict:
    """The weights of a keras-hub ``ViTBackbone`` by the released ViT ``.npz`` key names."""
    embed = _find(backbone, "ViTPatchingAndEmbedding")
    encoder = _find(backbone, "ViTEncoder")
    pos = _numpy(embed.position_embedding.embeddings)
    out = {"embedding/kernel": _numpy(embed.patch_embedding.kernel),
           "embedding/bias": _numpy(embed.patch_embedding.bias),
           "cls": _numpy(embed.class_token).reshape(1, 1, -1),
           "Transformer/posembed_input/pos_embedding": pos.reshape(1, *pos.shape)}
    for i, block in enumerate(encoder.encoder_layers):
        key = f"Transformer/encoderblock_{i}/"
        for norm, name in ((block.layer_norm_1, "LayerNorm_0"), (block.layer_norm_2, "LayerNorm_2")):
            out[key + f"{name}/scale"], out[key + f"{name}/bias"] = _numpy(norm.gamma), _numpy(norm.beta)
        mha = block.mha
        for part, dense in (("query", mha.query_dense), ("key", mha.key_dense), ("value", mha.value_dense),
                            ("out", mha.output_dense)):
            out[key + f"MultiHeadDotProductAttention_1/{part}/kernel"] = _numpy(dense.kernel)
            out[key + f"MultiHeadDotProductAttention_1/{part}/bias"] = _numpy(dense.bias)
        for j, dense in enumerate((block.mlp.dense_1, block.mlp.dense_2)):
            out[key + f"MlpBlock_3/Dense_{j}/kernel"] = _numpy(dense.kernel)
            out[key + f"MlpBlock_3/Dense_{j}/bias"] = _numpy(dense.bias)
    out["Transformer/encoder_norm/scale"] = _numpy(encoder.layer_norm.gamma)
    out["Transformer/encoder_norm/bias"] = _numpy(encoder.layer_norm.beta)
    return out


def hub_arrays(preset: str) -> dict:
    """Download (once) and read the keras-hub ViT preset ``preset``."""
    try:
        import keras_hub
    except ImportError:
        raise ImportError(f"weights='hub:{preset}' needs keras-hub: pip install 'keras-cv-apps[hub]' (or pass an "
                          ".npz file from https://storage.googleapis.com/vit_models).") from None
    try:
        backbone = keras_hub.models.Backbone.from_preset(preset)
    except ValueError:
        raise
    except Exception as err:  # network and Kaggle errors of every kind
        raise ConnectionError(f"Could not load keras-hub preset {preset!r} ({type(err).__name__}); it needs the "
                              "network once, or pass an official .npz file instead.") from None
    return arrays_from_backbone(backbone)
