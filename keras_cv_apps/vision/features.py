"""Classical (hand-crafted) image features with OpenCV and scikit-image.

Before CNNs, these were how images were compared, and they are still the fastest useful
description of an image when no trained model is at hand:

- `hog`: histograms of gradient orientations over a grid of cells (Dalal & Triggs): shape.
- `lbp_histogram`: local binary patterns (each pixel compared with its neighbours): texture.
- `orb`: ORB keypoints and 256-bit binary descriptors: matching parts of images.
- `hsv_histogram`: joint hue/saturation/value histogram: colour.
- `hu_moments`: seven moment invariants of the intensity distribution, unchanged by
  translation, scale and rotation.
- `canny`, `sobel`: edge maps.
- `detect_faces`, `detect_eyes`: Viola-Jones Haar cascades that OpenCV ships.

`classical_embedding` concatenates colour, shape and texture into one fixed-length vector;
the dataset audit uses it for outliers and the PCA plot, so no TensorFlow is needed.
All functions take uint8 RGB ``HxWx3`` or gray ``HxW`` arrays.
"""

from __future__ import annotations

import functools

import numpy as np

HSV_BINS = (8, 4, 4)
EMBEDDING_SIZE = 32  # side of the gray image HOG sees inside `classical_embedding`


def _gray(image):
    import cv2

    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _rgb(image):
    import cv2

    return image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)


def hog(image, *, size=64, cell=8, block=2, bins=9) -> np.ndarray:
    """HOG descriptor of the image resized to ``size x size`` gray.

    Blocks of ``block x block`` cells (stride one cell) are L2-Hys normalised, so the length is
    ``(size/cell - block + 1)**2 * block**2 * bins`` (1,764 for the defaults).
    """
    import cv2

    if size % cell:
        raise ValueError(f"HOG size {size} must be a multiple of the cell size {cell}.")
    gray = cv2.resize(_gray(image), (size, size), interpolation=cv2.INTER_AREA)
    win = (size, size)
    descriptor = cv2.HOGDescriptor(win, (block * cell,) * 2, (cell, cell), (cell, cell), bins)
    return descriptor.compute(gray).ravel()


def lbp_histogram(image, *, points=8, radius=1) -> np.ndarray:
    """Normalised histogram of rotation-invariant uniform LBP codes (``points + 2`` bins)."""
    from skimage.feature import local_binary_pattern

    codes = local_binary_pattern(_gray(image), points, radius, method="uniform")
    hist = np.bincount(codes.astype(np.int64).ravel(), minlength=points + 2).astype(np.float32)
    return hist / max(hist.sum(), 1.0)


def orb(image, *, n_features=500):
    """ORB keypoints and descriptors.

    Returns:
        ``(points, descriptors)``: float32 ``[N, 2]`` keypoint (x, y) positions and uint8
        ``[N, 32]`` binary descriptors (compare with Hamming distance); N may be 0.
    """
    import cv2

    detector = cv2.ORB_create(nfeatures=n_features)
    keypoints, descriptors = detector.detectAndCompute(_gray(image), None)
    points = np.array([kp.pt for kp in keypoints], dtype=np.float32).reshape(-1, 2)
    if descriptors is None:
        descriptors = np.zeros((0, 32), dtype=np.uint8)
    return points, descriptors


def hsv_histogram(image, *, bins=HSV_BINS) -> np.ndarray:
    """Joint HSV histogram, flattened and summing to 1 (``prod(bins)`` values, 128 by default)."""
    import cv2

    hsv = cv2.cvtColor(_rgb(image), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(bins), [0, 180, 0, 256, 0, 256]).ravel()
    return hist / max(float(hist.sum()), 1.0)


def hu_moments(image) -> np.ndarray:
    """The seven Hu moment invariants of the gray image, log-scaled: ``-sign(h) log10 |h|``."""
    import cv2

    hu = cv2.HuMoments(cv2.moments(_gray(image).astype(np.float32))).ravel()
    return -np.sign(hu) * np.log10(np.abs(hu) + 1e-30)


def canny(image, low=None, high=None) -> np.ndarray:
    """Canny edge map (uint8, 0 or 255). Without thresholds: 0.66x and 1.33x the median grey."""
    import cv2

    gray = _gray(image)
    if low is None or high is None:
        median = float(np.median(gray))
        low, high = max(0.0, 0.66 * median), min(255.0, 1.33 * median)
    return cv2.Canny(gray, low, high)


def sobel(image) -> np.ndarray:
    """Sobel gradient magnitude of the gray image, float32 in grey levels per pixel."""
    import cv2

    gray = _gray(image).astype(np.float32)
    return cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))


def classical_embedding(image) -> np.ndarray:
    """Colour + shape + texture vector: HSV histogram, HOG of a 32x32 gray, LBP histogram.

    The image is first shrunk to about 128x128 pixels (aspect kept) for speed. Each part is
    L2-normalised so none dominates; length 128 + 324 + 10 = 462, float32.
    """
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, 128.0 / np.sqrt(h * w))
    small = cv2.resize(image, (max(8, round(w * scale)), max(8, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    parts = [hsv_histogram(small), hog(small, size=EMBEDDING_SIZE), lbp_histogram(small)]
    return np.concatenate([p / (np.linalg.norm(p) + 1e-8) for p in parts]).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _cascade(name):
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():
        raise FileNotFoundError(f"OpenCV's Haar cascade {name} could not be loaded.")
    return cascade


def detect_faces(image, *, scale_factor=1.1, min_neighbors=5, min_size=(30, 30)) -> np.ndarray:
    """Frontal faces found by OpenCV's ``haarcascade_frontalface_default.xml``.

    Returns an int ``[N, 4]`` array of ``(x, y, w, h)`` boxes, largest first.
    """
    import cv2

    gray = cv2.equalizeHist(_gray(image))
    boxes = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
        gray, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=tuple(min_size))
    boxes = np.array(boxes, dtype=np.int64).reshape(-1, 4)
    return boxes[np.argsort(-boxes[:, 2] * boxes[:, 3], kind="stable")]


def detect_eyes(image, faces=None, *, min_neighbors=5) -> np.ndarray:
    """Eyes (``haarcascade_eye.xml``) searched in the upper half of each face box.

    ``faces`` defaults to `detect_faces(image)`. Returns ``(x, y, w, h)`` boxes in image
    coordinates, int ``[N, 4]``.
    """
    import cv2

    gray = cv2.equalizeHist(_gray(image))
    faces = detect_faces(image) if faces is None else np.asarray(faces).reshape(-1, 4)
    found = []
    for x, y, w, h in faces:
        roi = gray[y : y + h // 2 + h // 8, x : x + w]
        for ex, ey, ew, eh in _cascade("haarcascade_eye.xml").detectMultiScale(
                roi, scaleFactor=1.1, minNeighbors=min_neighbors, minSize=(w // 10, h // 10)):
            found.append((x + ex, y + ey, ew, eh))
    return np.array(found, dtype=np.int64).reshape(-1, 4)
