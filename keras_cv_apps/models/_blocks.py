"""Small helpers shared by model families (input checks, classifier heads)."""

from __future__ import annotations

ACTIVATIONS = ("tanh", "relu", "sigmoid", "elu", "gelu", "swish")
POOLINGS = ("avg", "max")


def check_choice(value, choices, what: str):
    if value not in choices:
        raise ValueError(f"Unknown {what} {value!r}; choose one of {', '.join(map(repr, choices))}.")
    return value


def check_image_shape(image_shape, *, model: str, min_size: int) -> tuple:
    """Validate an HWC ``image_shape`` and the smallest spatial size the model can take."""
    shape = tuple(int(d) for d in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{model}: image_shape must be (height, width, channels), got {image_shape!r}.")
    if min(shape[:2]) < min_size:
        raise ValueError(
            f"{model}: image size {shape[0]}x{shape[1]} is too small; "
            f"this model needs at least {min_size}x{min_size} pixels."
        )
    return shape


def check_num_classes(num_classes, *, model: str) -> int:
    if num_classes is None or int(num_classes) < 2:
        raise ValueError(f"{model}: num_classes must be at least 2, got {num_classes!r}.")
    return int(num_classes)
