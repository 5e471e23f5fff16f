"""Heatmap overlays, grids and PNG files."""

import numpy as np
import pytest

from keras_cv_apps.explain import overlay


def test_overlay_blends_a_resized_heatmap_on_a_grey_image(tmp_path):
    cv2 = pytest.importorskip("cv2")
    image = np.full((20, 30), 100, np.uint8)
    heat = np.zeros((5, 5), "float32")
    heat[0, 0] = 1.0
    out = overlay.heatmap_overlay(image, heat, alpha=0.5)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert out[0, 0, 0] > out[-1, -1, 0]  # jet: the peak is red, zero is blue
    path = overlay.save_overlay(tmp_path / "o.png", image, heat, alpha=0.5)
    np.testing.assert_array_equal(cv2.imread(path)[..., ::-1], out)


def test_colorize_handles_flat_and_signed_maps():
    flat = overlay.colorize(np.zeros((3, 3)))
    assert (flat == flat[0, 0]).all()
    signed = overlay.colorize(np.array([[-1.0, 0.0, 1.0]]), signed=True)
    assert signed[0, 0, 2] > signed[0, 2, 2] and signed[0, 2, 0] > signed[0, 0, 0]
    with pytest.raises(ValueError, match="one \\(H, W\\) map"):
        overlay.colorize(np.zeros((2, 3, 3)))


def test_tile_images_layout():
    stack = np.arange(5 * 2 * 3, dtype=np.uint8).reshape(5, 2, 3)
    grid = overlay.tile_images(stack, columns=2, gap=1, background=0)
    assert grid.shape == (3 * 3 - 1, 2 * 4 - 1)
    np.testing.assert_array_equal(grid[3:5, 4:7], stack[3])
