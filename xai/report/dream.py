"""The activation-maximisation section of an audit page (``[[dream]]`` panels and ``xai dream -o DIR``).

Computation and rendering apart: this module reads :class:`DreamResult` objects only. Per
panel: the start and the image after each octave, the objective per step (an inline SVG
chart with axes), and the value reached beside the test images that excite the unit most.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from xai.report.charts import line_chart
from xai.report.html import _ENV, options_items
from xai.report.images import image_uri as _png

if TYPE_CHECKING:
    from xai.explain.dream import DreamResult
    from xai.report._renderers import PageContext

__all__ = ["dream_slug", "dream_view", "render_section"]


def dream_slug(result: DreamResult) -> str:
    """Report name of one ``xai dream`` run: ``dream-<model>-<unit>``."""
    unit = result.unit.replace("@", "-at-").replace(",", "-")
    return f"dream-{result.model}-{unit}"


#: The y axis of the objective curve: what is maximised, in the layer's own (unitless) activation scale.
_OBJECTIVE_AXIS = {
    "channel": "mean activation of the channel",
    "neuron": "activation of the neuron",
    "layer": "L2 norm of the layer's activation",
    "class": "class logit",
}


def dream_view(result: DreamResult, size: int = 96) -> dict[str, Any]:
    """Template values of one panel: images, the curve, the reached-vs-data bars, metrics and options."""
    what = result.unit
    dreamed = [{"uri": _png(result.start_image[0], size), "alt": f"starting image for {what}",
                "caption": f"start · {result.start_value:.4g}", "final": False}]
    for i, octave in enumerate(result.octave_images):
        shape = "x".join(map(str, octave.shape[-2:]))
        last = i == len(result.octave_images) - 1
        dreamed.append({"uri": _png(result.image[0] if last else octave[0], size),
                        "alt": (f"image optimised to excite {what}" if last
                                else f"image after octave {i + 1} ({shape}) maximising {what}"),
                        "caption": (f"dreamed · {result.end_value:.4g}" if last else f"octave {i + 1} · {shape}"),
                        "final": last})
    peak = max([result.end_value, *map(float, result.top_values)], default=0.0)
    bars: list[dict[str, Any]] = [{"label": "dreamed", "value": float(result.end_value),
                                   "uri": _png(result.image[0], 48), "alt": f"dreamed image for {what}",
                                   "dreamed": True}]
    for idx, value, label, image in zip(result.top_indices, result.top_values, result.top_labels,
                                        result.top_images, strict=True):
        name = result.class_names[int(label)] if result.class_names else str(int(label))
        bars.append({"label": f"#{int(idx)} ({name})", "value": float(value), "uri": _png(image, 48),
                     "alt": f"test image {int(idx)}, label {name}", "dreamed": False})
    for bar in bars:
        bar["width"] = 100 * max(bar["value"], 0.0) / peak if peak > 0 else 0.0
    return {
        "r": result,
        "unit": what,
        "dreamed": dreamed,
        "chart": line_chart(result.trace, x_label="optimisation step",
                            y_label=_OBJECTIVE_AXIS.get(result.objective, "objective"),
                            label=f"objective of {what} per optimisation step"),
        "bars": bars,
        "metrics": result.metrics(),
        "options": options_items(result.options),
    }


def render_section(results: Sequence[DreamResult], page: PageContext) -> Markup:
    """The audit page's section: each dreamed unit, its curve, and the test images that excite it most."""
    return Markup(_ENV.get_template("sections/dreams.html.j2").render(  # noqa: S704
        results=[dream_view(r) for r in results]))
