"""The TF-free floor: robust image reading (`io`) and the pixel operations (`ops`) that training,
export, inference and the vision tools share, so a phone and the training pipeline cannot disagree.

Neither module imports TensorFlow; OpenCV and Pillow load inside the functions that need them.
"""

from keras_cv_apps.image import io, ops

__all__ = ["io", "ops"]
