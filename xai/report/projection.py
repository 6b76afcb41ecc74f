"""The representation-map section of an audit page (``[[project]]``, ``xai project -o DIR``): a scatter per colouring.

Computation and rendering apart: this module reads a :class:`ProjectionResult` only.
Points use the Okabe-Ito colour-blind-safe palette (cycled with a second marker shape
past seven groups) and every group's name is also written at its median point, so the
map reads without telling colours apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from markupsafe import Markup

from xai.report.html import _ENV, OKABE_ITO, options_items

if TYPE_CHECKING:  # annotations only: renderers never import torch
    from xai.explain.projection import ProjectionResult
    from xai.report._renderers import PageContext

__all__ = ["projection_slug", "render_section"]


def projection_slug(result: ProjectionResult) -> str:
    """File stem of the page and JSON: ``project-<model>-<layer>-<method>``."""
    return f"project-{result.model}-{result.layer.replace('.', '-')}-{result.method}"


def _panel(coords: np.ndarray, labels: np.ndarray, size: int = 360, pad: int = 14) -> dict[str, Any]:
    """SVG points, legend and group-name anchors of one colouring."""
    low, high = coords.min(axis=0), coords.max(axis=0)
    span = np.where(high - low > 0, high - low, 1.0)
    xy = pad + (coords - low) / span * (size - 2 * pad)  # (N, 2) in the square
    xy[:, 1] = size - xy[:, 1]  # SVG's y grows downwards
    groups = sorted(set(labels.tolist()), key=str)
    legend: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    anchors: list[dict[str, Any]] = []
    for k, group in enumerate(groups):
        colour = OKABE_ITO[k % len(OKABE_ITO)]
        square = (k // len(OKABE_ITO)) % 2 == 1
        legend.append({"name": str(group), "colour": colour, "square": square,
                       "count": int((labels == group).sum())})
        mine = xy[labels == group]
        points.extend({"x": float(x), "y": float(y), "colour": colour, "square": square} for x, y in mine)
        cx, cy = np.median(mine, axis=0)
        anchors.append({"x": float(cx), "y": float(cy), "name": str(group)})
    return {"size": size, "points": points, "legend": legend, "anchors": anchors}


def _panels(result: ProjectionResult) -> list[dict[str, Any]]:
    return [{"column": column, "separation": result.separation[column], **_panel(result.coords, labels)}
            for column, labels in result.colours.items()]


def render_section(results: Sequence[ProjectionResult], page: PageContext) -> Markup:
    """The audit page's section: each map with its trustworthiness and separation scores."""
    views = [{"r": r, "panels": _panels(r), "options": options_items(r.options)} for r in results]
    return Markup(_ENV.get_template("sections/projections.html.j2").render(results=views))  # noqa: S704
