"""HTML section of one :class:`~xai.explain.drift.DriftResult`: statistics first, then where the mass went.

``render_html(result)`` returns a self-contained ``<section>`` (inline CSS, images as
data URIs, every user string escaped) for the audit page. Image models get the mean
attribution magnitude of the model and of the baseline side by side on one shared scale,
with the tracked region outlined; tabular models get each column's share of the mass on
both sides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from markupsafe import Markup, escape

from xai.report.images import data_uri, png_bytes

if TYPE_CHECKING:  # annotations only: renderers never import torch or a method
    from xai.explain.drift import DriftResult

__all__ = ["render_html", "render_section"]

#: What each statistic means, in one line (shown next to it).
_MEANING = {
    "spearman": "rank correlation of the two attribution maps per sample (1: same order)",
    "topk_overlap": "shared share of the top-k features or pixels (Jaccard; 1: the same set)",
    "mass_share": "share of the model's attribution mass on the tracked region",
    "baseline_mass_share": "the same share for the baseline",
    "mass_moved": "model's share minus the baseline's (positive: mass moved onto the region)",
}

_STYLE = (
    "<style>"
    ".drift table{border-collapse:collapse;margin:.5em 0;max-width:100%}"
    ".drift td,.drift th{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left;"
    "overflow-wrap:anywhere}"
    ".drift td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".drift figure{display:inline-block;margin:.5em 1em .5em 0}"
    ".drift img{image-rendering:pixelated;border:1px solid #999}"
    ".drift .bar{display:inline-block;height:.8em;background:#0072B2;vertical-align:middle}"
    ".drift .bar.base{background:#E69F00}"
    "@media print{.drift *{-webkit-print-color-adjust:exact;print-color-adjust:exact}}"
    "</style>"
)


def _number(value: float) -> str:
    return "undefined" if not math.isfinite(value) else f"{value:.4f}"


def _map_uri(magnitude: np.ndarray, vmax: float, region: tuple[int, int, int, int] | None, scale: int = 6) -> str:
    """``(H, W)`` magnitudes on a shared ``[0, vmax]`` magma scale; the region outlined in cyan."""
    from matplotlib import colormaps

    unit = np.clip(magnitude / vmax, 0, 1) if vmax > 0 else np.zeros_like(magnitude)
    rgb = colormaps["magma"](unit)[..., :3]  # (H, W, 3)
    rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
    if region is not None:
        top, bottom, left, right = (v * scale for v in region)
        cyan = np.array([0.0, 0.9, 0.9])
        bottom, right = min(bottom, rgb.shape[0]) - 1, min(right, rgb.shape[1]) - 1
        rgb[top, left:right + 1] = rgb[bottom, left:right + 1] = cyan
        rgb[top:bottom + 1, left] = rgb[top:bottom + 1, right] = cyan
    return data_uri(png_bytes(rgb))


def _region_box(text: str) -> tuple[int, int, int, int] | None:
    if not text.startswith("pixels ["):
        return None
    values = [int(v) for v in text.removeprefix("pixels [").rstrip("]").split(",")]
    return (values[0], values[1], values[2], values[3]) if len(values) == 4 else None


def render_html(result: DriftResult) -> str:
    """The drift section of an audit page (a ``<section>`` string, safe to insert as-is)."""
    parts = [_STYLE, '<section class="drift">',
             f"<h3>{escape(result.method)}: {escape(result.model)} vs {escape(result.baseline)}</h3>",
             f"<p>{result.samples} samples, both models explained with the same explainer and targets; "
             f"top-k with k = {result.top_k}; tracked: {escape(result.region or 'no region named')}. "
             "Intervals: percentile bootstrap over samples.</p>",
             "<table><thead><tr><th>statistic</th><th>mean</th><th>interval</th><th>meaning</th></tr></thead><tbody>"]
    for name, value in result.statistics.items():
        low, high = result.intervals.get(name, (math.nan, math.nan))
        parts.append(f"<tr><td><code>drift.{escape(result.method)}.{escape(name)}</code></td>"
                     f'<td class="num">{_number(value)}</td>'
                     f'<td class="num">[{_number(low)}, {_number(high)}]</td>'
                     f"<td>{escape(_MEANING.get(name, ''))}</td></tr>")
    parts.append("</tbody></table>")
    model, base = np.asarray(result.mean_magnitude), np.asarray(result.baseline_mean_magnitude)
    if model.ndim == 2:
        vmax = float(max(model.max(initial=0.0), base.max(initial=0.0)))
        box = _region_box(result.region)
        for label, magnitude in ((result.model, model), (result.baseline, base)):
            parts.append(f'<figure><img src="{_map_uri(magnitude, vmax, box)}" '
                         f'alt="mean attribution magnitude of {escape(label)}" '
                         f'width="{magnitude.shape[1] * 6}" height="{magnitude.shape[0] * 6}">'
                         f"<figcaption>{escape(label)}: mean |attribution|</figcaption></figure>")
        parts.append(f"<p>One shared magma scale, 0 (black) to {vmax:.3g} (light yellow); "
                     "the tracked region is outlined in cyan.</p>")
    elif result.feature_names:
        total_model, total_base = float(model.sum()) or 1.0, float(base.sum()) or 1.0
        parts.append("<table><thead><tr><th>column</th><th>model share</th><th>baseline share</th>"
                     "<th></th></tr></thead><tbody>")
        order = np.argsort(-(model / total_model), kind="stable")
        for i in order:
            ours, theirs = model[i] / total_model, base[i] / total_base
            parts.append(f"<tr><td>{escape(result.feature_names[i])}</td>"
                         f'<td class="num">{ours:.3f}</td><td class="num">{theirs:.3f}</td>'
                         f'<td><span class="bar" style="width:{ours * 200:.0f}px"></span><br>'
                         f'<span class="bar base" style="width:{theirs * 200:.0f}px"></span></td></tr>')
        parts.append("</tbody></table><p>Shares of the mean |attribution| per column: blue bars the model, "
                     "orange bars the baseline.</p>")
    for note in result.notes:
        parts.append(f"<p><em>{escape(note)}</em></p>")
    parts.append("</section>")
    return str(Markup("".join(parts)))


def render_section(results: Sequence[DriftResult], page: Any) -> Markup:
    """The audit page's drift section (:data:`xai.report._renderers.HTML_RENDERERS`): each result in run order."""
    return Markup("".join(render_html(r) for r in results))
