"""Figures without pyplot's global state: made with `new_figure`, written with `save_figure`.

Library code never switches the user's matplotlib backend or keeps figures alive; every PNG is
written to a temporary sibling and renamed, so an interrupted run never leaves half an image.
"""

from __future__ import annotations

import base64
import io
import os
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(figsize: tuple, **kwargs) -> Figure:
    """A ``matplotlib.figure.Figure`` with its own Agg canvas (``layout="constrained"`` by default)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kwargs.setdefault("layout", "constrained")
    fig = Figure(figsize=figsize, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: Union[str, os.PathLike], *, dpi: int = 100) -> str:
    """Write ``fig`` as a PNG at ``path`` atomically; returns the path as a string."""
    from keras_cv_apps.artifacts import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return os.fspath(path)


def figure_data_uri(fig: Figure, *, dpi: int = 80) -> str:
    """``fig`` as a base64 PNG ``data:`` URI, for self-contained HTML reports."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
