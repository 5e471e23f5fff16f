"""Explanations of what a Keras image model learned, and measures of how faithful they are.

    from keras_cv_apps import explain
    maps = explain.grad_cam(model, images)              # (N, H, W) in [0, 1]
    attr = explain.integrated_gradients(model, images)  # shaped like images

Every method takes float images ``(N, H, W, C)`` exactly as the model takes them, explains the
class score before a final softmax (`class_score`), works on Sequential, Functional and nested
models, and runs batched. `evaluate` scores explanations (pointing game, relevance mass,
deletion/insertion, ROAD, randomisation sanity checks); `overlay` writes heatmaps on images;
`dream` holds DeepDream, filter visualisation and activation grids.
"""

from keras_cv_apps.explain.attribution import IG_RULES, class_score, integrated_gradients, occlusion, saliency
from keras_cv_apps.explain.dream import deep_dream, objective
from keras_cv_apps.explain.gradcam import default_layer, feature_layer, grad_cam, grad_cam_plus_plus
from keras_cv_apps.explain.overlay import heatmap_overlay, save_overlay, save_png, tile_images
from keras_cv_apps.explain.visualize import activation_grid, visualize_filters

__all__ = [
    "IG_RULES",
    "activation_grid",
    "class_score",
    "deep_dream",
    "default_layer",
    "feature_layer",
    "grad_cam",
    "grad_cam_plus_plus",
    "heatmap_overlay",
    "integrated_gradients",
    "objective",
    "occlusion",
    "saliency",
    "save_overlay",
    "save_png",
    "tile_images",
    "visualize_filters",
]
