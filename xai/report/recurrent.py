"""HTML section of a :class:`~xai.explain.recurrent.RecurrentResult`: gate heat maps over time and gradient decay.

Computation and rendering apart: this module reads the result's arrays only (no model,
no torch). Every string from the result is escaped (``markupsafe.escape``); images are
PNG data URIs; the gradient curve is inline SVG; styles are inline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from markupsafe import Markup, escape
from matplotlib import colormaps

from xai.report.images import data_uri, png_bytes, svg_curve

if TYPE_CHECKING:  # annotations only: renderers never import torch or a method
    from xai.explain.recurrent import RecurrentResult
    from xai.report._renderers import PageContext

__all__ = ["gate_heatmap_uri", "render_html", "render_section"]

#: Quantities bounded in [0, 1] (sigmoid gates) get magma on [0, 1]; the rest a signed map around 0.
_UNIT_RANGE = frozenset({"input", "forget", "output", "reset", "update"})
_CELL_W, _CELL_H = 14, 3  # px per time step (columns) and per hidden unit (rows)


def gate_heatmap_uri(values: np.ndarray, gate: str) -> str:
    """``(T, H)`` activations of one sample -> a units x time PNG data URI (time left to right)."""
    grid = np.asarray(values, dtype=np.float64).T  # (H, T): one row per unit
    if gate in _UNIT_RANGE:
        unit, cmap = np.clip(grid, 0.0, 1.0), colormaps["magma"]
    else:
        limit = float(np.abs(grid).max()) or 1.0
        unit, cmap = (grid / limit + 1) / 2, colormaps["RdBu_r"]
    rgb = cmap(unit)[..., :3].repeat(_CELL_H, axis=0).repeat(_CELL_W, axis=1)  # (H*h, T*w, 3)
    return data_uri(png_bytes(rgb))


def _range_note(gate: str, values: np.ndarray) -> str:
    if gate in _UNIT_RANGE:
        return "0 (black) to 1 (yellow)"
    limit = float(np.abs(values).max())
    return f"-{limit:.2g} (blue) to +{limit:.2g} (red)"


def _gradient_svg(result: RecurrentResult) -> str:
    curve = svg_curve(result.grad_log10)
    return (f'<svg role="img" aria-label="log10 gradient norm by distance from the last step" '
            f'width="{curve["width"]}" height="{curve["height"]}" style="border: 1px solid #ccc; background: #fff">'
            f'<polyline points="{curve["points"]}" fill="none" stroke="#0072B2" stroke-width="2"/></svg>'
            f'<p class="muted">log<sub>10</sub> of the gradient norm from {curve["hi"]:.2f} (top) to '
            f'{curve["lo"]:.2f} (bottom), distance 0 (the last step, left) to {len(result.grad_log10) - 1} '
            f"(right); geometric mean over {result.sequences} sequences of {len(result.grad_log10)} steps.</p>")


def render_html(result: RecurrentResult) -> str:
    """The section: unroll check, gate heat maps per sample, per-step means and the gradient by distance."""
    e = escape
    parts = [f'<section class="recurrent"><h3>Recurrent internals · <code>{e(result.model)}</code> · '
             f'<code>{e(result.layer)}</code> ({e(result.cell.upper())})</h3>']
    parts.append(f"<p>Gates recomputed by unrolling the cell with the module's own weights; largest difference "
                 f"from the module's hidden states: <b>{result.unroll_error:.2g}</b>. Each map: one row per "
                 f"hidden unit, one column per time step (first step left).</p>")
    steps = next(iter(result.gates.values())).shape[1] if result.gates else 0
    for s in range(len(result.rows)):
        label = result.labels[s] if s < len(result.labels) else "?"
        predicted = result.predicted[s] if s < len(result.predicted) else "?"
        parts.append(f"<h4>Sample {s}: label {e(label)} · predicted {e(predicted)}</h4><div>")
        for gate, values in result.gates.items():
            parts.append(f'<figure class="tile" style="display: inline-block; margin: 4px">'
                         f'<img src="{gate_heatmap_uri(values[s], gate)}" alt="{e(gate)} activations of sample '
                         f'{s}, units by time step"><figcaption>{e(gate)}<br><span class="muted">'
                         f"{e(_range_note(gate, values[s]))}</span></figcaption></figure>")
        parts.append("</div>")
    if result.step_means:
        head = "".join(f'<th scope="col">{t}</th>' for t in range(steps))
        rows = "".join(f'<tr><th scope="row">{e(gate)}</th>'
                       + "".join(f'<td class="num">{v:.3f}</td>' for v in means) + "</tr>"
                       for gate, means in result.step_means.items())
        parts.append(f'<table><caption>Mean over samples and units, per time step</caption><thead><tr>'
                     f'<th scope="col">step</th>{head}</tr></thead><tbody>{rows}</tbody></table>')
    if result.grad_norm.size:
        parts.append("<h4>Gradient by distance from the end (vanishing gradients)</h4>")
        parts.append(f"<p>Norm of d output / d x<sub>t</sub> (the predicted class's logit) at each distance from "
                     f"the last step, on sequences of {result.grad_norm.size // max(result.window, 1)} joined "
                     f"samples. Farthest {result.window} steps vs nearest {result.window}: "
                     f"<b>10^{result.far_near_log10:.2f}</b> (geometric mean), "
                     f"<b>{result.far_near_ratio:.3g}x</b> (mean norm).</p>")
        parts.append(_gradient_svg(result))
    parts.extend(f'<p class="warn">{e(note)}</p>' for note in result.notes)
    parts.append("</section>")
    return str(Markup("".join(parts)))


def render_section(results: Sequence[RecurrentResult], page: PageContext | None = None) -> Markup:
    """The audit page's section: each result's :func:`render_html` (the renderer ``HTML_RENDERERS`` names)."""
    return Markup("".join(render_html(r) for r in results))
