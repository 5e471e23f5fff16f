"""The shapes_target dataset: one target shape among distractors, with its mask."""

import numpy as np

from keras_cv_apps.data.sources import TARGET_CLASSES, load_source, shapes_with_masks


def test_masks_mark_the_target_and_the_spec_loads():
    data, masks = shapes_with_masks(size=(48, 48), per_class=6, seed=3, distractors=2)
    assert data.images.shape == (24, 48, 48, 3) and masks.shape == (24, 48, 48)
    assert data.class_names == list(TARGET_CLASSES) and np.bincount(data.labels).tolist() == [6] * 4
    for image, mask in zip(data.images.astype(float), masks):
        assert 0.02 < mask.mean() < 0.2  # one object, not the whole image
        border = ~mask & (np.roll(mask, 3, 0) | np.roll(mask, -3, 0))  # background just outside the target
        assert np.abs(image[mask].mean(0) - image[border].mean(0)).max() > 40  # the target stands out
    again, _ = shapes_with_masks(size=(48, 48), per_class=6, seed=3)
    np.testing.assert_array_equal(again.images, data.images)
    source = load_source("shapes_target:2:3", image_size=(32, 32), channels=1)
    assert source.images.shape == (6, 32, 32, 1) and source.class_names == ["circle", "square"]
