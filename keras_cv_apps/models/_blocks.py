"""Choices and checks shared by the classifier families."""

from __future__ import annotations

from keras_cv_apps._validate import check_int

ACTIVATIONS = ("tanh", "relu", "sigmoid", "elu", "gelu", "swish")
POOLINGS = ("avg", "max")


def check_num_classes(num_classes, *, model: str) -> int:
    return check_int(num_classes, f"{model} num_classes", minimum=2)
