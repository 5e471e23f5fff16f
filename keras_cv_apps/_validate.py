"""Argument checks shared by the whole package: each raises ``ValueError`` with one sentence that
names the argument, the value it got and what it accepts."""

from __future__ import annotations

import math
from typing import Iterable, Optional


def check_choice(value, choices: Iterable, what: str):
    """Return ``value`` if it is one of ``choices``, else raise naming the valid ones."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"Unknown {what} {value!r}; choose one of {', '.join(map(repr, choices))}.")
    return value


def check_int(value, what: str, *, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
    """``value`` as an int within ``[minimum, maximum]`` (bools and fractions are refused)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()
    if ok:
        value = int(value)
        ok = (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        raise ValueError(f"{what} must be an integer{_bounds(minimum, maximum, True, True)}, got {value!r}.")
    return value


def check_number(value, what: str, *, minimum=None, maximum=None, min_inclusive: bool = True,
                 max_inclusive: bool = True) -> float:
    """``value`` as a finite float within the given bounds (NaN and infinities are refused)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    ok = math.isfinite(number)
    if ok and minimum is not None:
        ok = number >= minimum if min_inclusive else number > minimum
    if ok and maximum is not None:
        ok = number <= maximum if max_inclusive else number < maximum
    if not ok:
        bounds = _bounds(minimum, maximum, min_inclusive, max_inclusive)
        raise ValueError(f"{what} must be a finite number{bounds}, got {value!r}.")
    return number


def _bounds(minimum, maximum, min_inclusive, max_inclusive) -> str:
    if minimum is not None and maximum is not None:
        return (f" in {'[' if min_inclusive else '('}{minimum}, {maximum}"
                f"{']' if max_inclusive else ')'}")
    if minimum is not None:
        return f" {'>=' if min_inclusive else '>'} {minimum}"
    if maximum is not None:
        return f" {'<=' if max_inclusive else '<'} {maximum}"
    return ""


def check_image_shape(image_shape, what: str = "image_shape", *, min_size: int = 1) -> tuple:
    """An ``(height, width, channels)`` tuple of positive ints whose height and width are at least
    ``min_size``."""
    try:
        shape = tuple(int(d) for d in image_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{what} must be (height, width, channels) with positive sizes, got {image_shape!r}.")
    if min(shape[:2]) < min_size:
        raise ValueError(f"{what}: image size {shape[0]}x{shape[1]} is too small; this model needs at "
                         f"least {min_size}x{min_size} pixels.")
    return shape
