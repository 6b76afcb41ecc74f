"""HTML page of one activation-maximisation result (``xai dream -o DIR``).

Computation and rendering apart: this module reads a :class:`DreamResult` only. The page
is self-contained (images as data URIs, the objective curve as an inline SVG polyline)
and sits beside the result's JSON; both are written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xai._io import atomic_write_text
from xai.explain.dream import DreamResult
from xai.report.charts import line_chart
from xai.report.html import _ENV, _stamp
from xai.report.images import image_uri as _png
from xai.report.images import svg_curve as _curve
from xai.report.json import dumps

__all__ = ["dream_slug", "render_dream_page", "write_dream_report"]


@dataclass(frozen=True)
class _Picture:
    uri: str
    alt: str
    caption: str


def dream_slug(result: DreamResult) -> str:
    """File stem of the page and JSON: ``dream-<model>-<unit>``."""
    unit = result.unit.replace("@", "-at-").replace(",", "-")
    return f"dream-{result.model}-{unit}"


#: The y axis of the objective curve: what is maximised, in the layer's own (unitless) activation scale.
_OBJECTIVE_AXIS = {
    "channel": "mean activation of the channel",
    "neuron": "activation of the neuron",
    "layer": "L2 norm of the layer's activation",
    "class": "class logit",
}


def render_dream_page(result: DreamResult) -> str:
    """The page: dreamed image(s), objective curve, and the reached vs the data's top-k."""
    what = result.unit
    dreamed = [_Picture(_png(result.start_image[0]), f"starting image for {what}", "start")]
    for i, octave in enumerate(result.octave_images):
        size = "x".join(map(str, octave.shape[-2:]))
        dreamed.append(_Picture(_png(octave[0]), f"image after octave {i + 1} ({size}) maximising {what}",
                                f"octave {i + 1} · {size}"))
    peak = max([result.end_value, *map(float, result.top_values)], default=0.0)
    bars: list[dict[str, Any]] = [{"label": "dreamed", "value": result.end_value, "uri": _png(result.image[0], 64),
             "alt": f"dreamed image for {what}", "dreamed": True}]
    for idx, value, label, image in zip(result.top_indices, result.top_values, result.top_labels,
                                        result.top_images, strict=True):
        name = result.class_names[int(label)] if result.class_names else str(int(label))
        bars.append({"label": f"#{int(idx)} ({name})", "value": float(value), "uri": _png(image, 64),
                     "alt": f"test example {int(idx)}, label {name}", "dreamed": False})
    for bar in bars:
        bar["width"] = 100 * max(bar["value"], 0.0) / peak if peak > 0 else 0.0
    return _ENV.get_template("dream.html.j2").render(
        r=result,
        what=what,
        dreamed=dreamed,
        curve=_curve(result.trace),
        chart=line_chart(result.trace, x_label="optimisation step",
                         y_label=_OBJECTIVE_AXIS.get(result.objective, "objective"),
                         label=f"objective of {what} per optimisation step"),
        bars=bars,
        metrics=result.metrics(),
        json_name=f"{dream_slug(result)}.json",
        **_stamp(),
    )


def write_dream_report(result: DreamResult, out_dir: str | Path) -> Path:
    """Write ``<slug>.html`` and ``<slug>.json`` into ``out_dir`` (atomically); return the page."""
    out = Path(out_dir)
    slug = dream_slug(result)
    page = render_dream_page(result)  # render everything before writing anything
    document = dumps(result.to_dict()) + "\n"
    atomic_write_text(out / f"{slug}.json", document)
    return atomic_write_text(out / f"{slug}.html", page)
