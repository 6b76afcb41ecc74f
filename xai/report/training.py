"""HTML section of a :class:`~xai.explain.training.GanTrainingResult`: D(x) / D(G(z)) and gradient norms per epoch.

Computation and rendering apart: this module reads the result's series only (no model, no
torch). The charts are inline SVG with ticked, titled axes (:mod:`xai.report.charts`);
every string is escaped by jinja2's autoescape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from xai.report import charts

if TYPE_CHECKING:  # annotations only: renderers never import torch or a method
    from xai.explain.training import GanTrainingResult
    from xai.report._renderers import PageContext

__all__ = ["render_section", "training_view"]


def training_view(result: GanTrainingResult) -> dict[str, Any]:
    """What the template shows of one result: two charts, the flag and the numbers."""
    s = result.series
    epochs = list(range(1, result.epochs + 1))
    marks = list(result.saturated)
    probabilities = charts.lines_chart(
        {"D(x), real digits": s["d_real"], "D(G(z)), fakes before D's step": s["d_fake"],
         "D(G(z)), fakes as G's loss sees them": s["d_fake_g"]},
        x=epochs, x_label="epoch", y_label="mean D output (probability real)", y_range=(0.0, 1.0), marks=marks,
        label=f"mean discriminator output on real and generated digits per epoch of {result.model}'s training")
    norms = charts.lines_chart(
        {"discriminator": s["d_grad_norm"], "generator": s["g_grad_norm"]},
        x=epochs, x_label="epoch", y_label="gradient norm (L2, all parameters)", marks=marks,
        label=f"discriminator and generator gradient norms per epoch of {result.model}'s training")
    return {"result": result, "probabilities": probabilities, "norms": norms, "metrics": result.metrics()}


def render_section(results: Sequence[GanTrainingResult], page: PageContext) -> Markup:
    """The audit page's training section (the renderer ``HTML_RENDERERS`` names)."""
    from xai.report.html import _partial

    return _partial("training", [training_view(r) for r in results], page)
