"""Compound scaling (Tan and Le, 2019) and the width/depth rounding rules of mobile CNNs.

A network's cost grows about linearly with depth ``d``, with the square of width ``w`` and with
the square of the resolution ``r``. EfficientNet scales all three together with one exponent φ:
``d = α^φ, w = β^φ, r = γ^φ`` under the constraint ``α·β²·γ² ≈ 2``, so each step of φ
roughly doubles the multiply-accumulates (``(α·β²·γ²)^φ``). The paper's grid search on B0 gave
``α = 1.2, β = 1.1, γ = 1.15`` (α·β²·γ² = 1.92).
"""

from __future__ import annotations

import math

from keras_cv_apps._validate import check_number

# how far alpha * beta**2 * gamma**2 may be from 2 (the paper's own values give 1.92)
CONSTRAINT_TOLERANCE = 0.1


def compound_scaling(phi, alpha=1.2, beta=1.1, gamma=1.15) -> dict:
    """Depth, width and resolution multipliers for compound coefficient ``phi``.

    Returns ``{"phi", "depth", "width", "resolution", "macs"}``: ``alpha**phi``, ``beta**phi``,
    ``gamma**phi`` and the MAC multiplier they predict, ``(alpha * beta**2 * gamma**2)**phi``.
    Raises ``ValueError`` naming ``phi`` when it is negative, and naming ``alpha``, ``beta`` and
    ``gamma`` when one is below 1 or ``alpha * beta**2 * gamma**2`` is not within 10% of 2.
    """
    phi = check_number(phi, "compound_scaling phi", minimum=0)
    for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        check_number(value, f"compound_scaling {name}", minimum=1)
    per_step = alpha * beta ** 2 * gamma ** 2
    if abs(per_step - 2.0) > 2.0 * CONSTRAINT_TOLERANCE:
        raise ValueError(f"compound_scaling needs alpha * beta**2 * gamma**2 ≈ 2 (so each step of phi doubles the "
                         f"cost); alpha={alpha}, beta={beta}, gamma={gamma} give {per_step:.3f}.")
    return {"phi": phi, "depth": alpha ** phi, "width": beta ** phi, "resolution": gamma ** phi,
            "macs": per_step ** phi}


def make_divisible(channels: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``channels`` to the nearest multiple of ``divisor`` without going below 90% of it
    (the rule of the MobileNet and EfficientNet reference code)."""
    min_value = min_value or divisor
    rounded = max(min_value, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return int(rounded)


def scale_depth(repeats: int, multiplier: float) -> int:
    """Blocks of a stage after depth scaling (rounded up, as EfficientNet does)."""
    return int(math.ceil(repeats * multiplier))


def scale_resolution(size: int, multiplier: float, divisor: int = 1) -> int:
    """An image size after resolution scaling, rounded to a multiple of ``divisor``."""
    return int(max(divisor, round(size * multiplier / divisor) * divisor))
