"""vision.dedup groups do not chain: a pair joins two groups only if their anchors match too."""

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

from keras_cv_apps.vision import dedup  # noqa: E402


def _write(path, rgb, *params):
    cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), list(params))


def _groups(result):
    return sorted(sorted(p.name for p in g.files) for g in result.groups)


def _iou(shift_a, shift_b, side):
    inter = (side - abs(shift_a - shift_b)) ** 2
    return inter / (2 * side * side - inter)


def test_overlapping_crops_do_not_chain(tmp_path):
    """Crops a, b, c of one photo step diagonally by 7%: a~b and b~c are near-duplicates (IoU 0.76),
    a and c are not (IoU 0.59), so c must not join a's group through b."""
    astro = skdata.astronaut()
    side = 384
    step = int(side * 0.07)
    assert _iou(0, step, side) > 0.75 and _iou(0, 2 * step, side) < 0.6
    for k, name in enumerate("abc"):
        _write(tmp_path / f"{name}.png", astro[k * step:k * step + side, k * step:k * step + side])
    result = dedup.find_duplicates(tmp_path, progress=False, workers=1)
    assert _groups(result) == [["a.png", "b.png"]]
    # the link b~c on its own passes, so single linkage would have put all three in one group
    (tmp_path / "a.png").unlink()
    assert _groups(dedup.find_duplicates(tmp_path, progress=False, workers=1)) == [["b.png", "c.png"]]


def test_edited_copies_still_form_one_group_keeping_the_original(tmp_path):
    astro = skdata.astronaut()
    _write(tmp_path / "zz_original.png", astro)
    _write(tmp_path / "a_q50.jpg", astro, cv2.IMWRITE_JPEG_QUALITY, 50)
    _write(tmp_path / "a_small.png", cv2.resize(astro, (300, 300), interpolation=cv2.INTER_AREA))
    _write(tmp_path / "a_flip_q90.jpg", astro[:, ::-1], cv2.IMWRITE_JPEG_QUALITY, 90)
    _write(tmp_path / "a_flip_small.jpg", cv2.resize(astro[:, ::-1], (400, 400), interpolation=cv2.INTER_AREA))
    _write(tmp_path / "coffee.png", skdata.coffee())
    result = dedup.find_duplicates(tmp_path, progress=False, workers=1)
    assert _groups(result) == [["a_flip_q90.jpg", "a_flip_small.jpg", "a_q50.jpg", "a_small.png",
                               "zz_original.png"]]
    assert result.groups[0].representative.name == "zz_original.png"
    assert min(result.groups[0].scores) > 0.6
