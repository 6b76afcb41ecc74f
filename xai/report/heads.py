"""HTML section of a :class:`~xai.explain.heads.HeadsResult`: head importance and per-head attention maps.

Computation and rendering apart: this module reads the result's arrays only. Every string
from the result (model, layer and token names) is escaped with ``markupsafe.escape``;
images are PNG data URIs; styles are inline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from markupsafe import Markup, escape
from matplotlib import colormaps

from xai.report.images import data_uri, png_bytes

if TYPE_CHECKING:  # annotations only: renderers never import torch or a method
    from xai.explain.heads import HeadsResult
    from xai.report._renderers import PageContext

__all__ = ["patch_map_uri", "render_html", "render_section"]


def patch_map_uri(row: np.ndarray, image: np.ndarray | None = None, size: int = 64) -> str | None:
    """Scores of the patch tokens (CLS excluded) on their square grid as a magma PNG (over the image, if given).

    ``None`` when the tokens do not tile a square.
    """
    n = row.size
    side = math.isqrt(n)
    if side * side != n or n == 0:
        return None
    grid = row.reshape(side, side).astype(np.float64)
    unit = grid / (grid.max() or 1.0)
    scale = max(1, size // side)
    colour = colormaps["magma"](unit)[..., :3].repeat(scale, axis=0).repeat(scale, axis=1)  # (S, S, 3)
    if image is not None:
        plane = image.mean(0)  # (H, W)
        low, high = float(plane.min()), float(plane.max())
        grey = (plane - low) / max(high - low, 1e-12)
        rows = np.arange(colour.shape[0]) * plane.shape[0] // colour.shape[0]  # nearest resampling
        cols = np.arange(colour.shape[1]) * plane.shape[1] // colour.shape[1]
        colour = 0.7 * colour + 0.3 * grey[rows][:, cols][..., None]
    return data_uri(png_bytes(colour))


def _importance_table(result: HeadsResult) -> str:
    e = escape
    drop = result.drop
    finite = drop[np.isfinite(drop)]
    top = float(np.abs(finite).max()) if finite.size else 0.0
    head = "".join(f'<th scope="col">head {h}</th>' for h in range(drop.shape[1]))
    rows = []
    for layer in range(drop.shape[0]):
        cells = []
        for h in range(drop.shape[1]):
            value = drop[layer, h]
            if not np.isfinite(value):
                cells.append('<td class="num">-</td>')
                continue
            alpha = 0.0 if top == 0 else min(1.0, abs(value) / top)
            colour = "213, 94, 0" if value > 0 else "0, 114, 178"  # Okabe-Ito vermillion (worse) / blue (better)
            loss = result.loss_increase[layer, h] if result.loss_increase.size else float("nan")
            title = f"loss {loss:+.4f}" if np.isfinite(loss) else ""
            cells.append(f'<td class="num" style="background: rgba({colour}, {alpha:.2f})" title="{e(title)}">'
                         f"{value:+.3f}</td>")
        rows.append(f'<tr><th scope="row">layer {layer}</th>{"".join(cells)}</tr>')
    return (f"<table><caption>Drop of {e(result.metric)} (from {result.baseline:.4f}) when one head is masked, on "
            f"{result.importance_rows} rows; positive: the model gets worse without the head</caption><thead><tr>"
            f'<th scope="col"></th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _token_rows(result: HeadsResult, s: int) -> str:
    e = escape
    tokens = result.tokens[s] if s < len(result.tokens) else ()
    real = result.mask[s]
    n = int(real.sum())
    rows = []
    for layer in range(result.pooled.shape[1]):
        for h in range(result.pooled.shape[2]):
            weights = result.pooled[s, layer, h, :n]
            top = float(weights.max()) or 1.0
            cells = "".join(
                f'<span class="tok" title="{w:.3f}" style="background: rgba(230, 159, 0, {w / top:.2f}); '
                f'padding: 0 3px; margin: 0 1px; border-radius: 3px; display: inline-block">'
                f"{e(tokens[j] if j < len(tokens) else str(j))}</span>"
                for j, w in enumerate(weights))
            rows.append(f'<tr><th scope="row">L{layer} H{h}</th><td>{cells}</td></tr>')
    return f'<table><thead><tr><th scope="col">head</th><th scope="col">attention of the {e(result.pool)} row' \
           f'</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _patch_grid(result: HeadsResult, s: int) -> str | None:
    image = result.inputs[s] if result.inputs.ndim == 4 and s < len(result.inputs) else None
    rows = []
    for layer in range(result.pooled.shape[1]):
        cells = []
        for h in range(result.pooled.shape[2]):
            uri = patch_map_uri(result.pooled[s, layer, h, 1:], image)  # the CLS row over the patches
            if uri is None:
                return None
            cells.append(f'<td><img src="{uri}" alt="layer {layer} head {h}: CLS attention over the patches"></td>')
        rows.append(f'<tr><th scope="row">layer {layer}</th>{"".join(cells)}</tr>')
    head = "".join(f'<th scope="col">head {h}</th>' for h in range(result.pooled.shape[2]))
    return f'<table><thead><tr><th scope="col"></th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def render_html(result: HeadsResult) -> str:
    """The section: the head-importance table, then each sample's per-layer, per-head maps."""
    e = escape
    parts = [f'<section class="heads"><h3>Attention heads · <code>{e(result.model)}</code> · '
             f"{len(result.layers)} layers x {result.heads} heads</h3>"]
    if result.drop.size:
        parts.append(_importance_table(result))
    parts.append(f"<p>Per-head attention of the {e(result.pool)} row (what the prediction reads), each map scaled "
                 f"to its own maximum.</p>")
    for s in range(result.pooled.shape[0]):
        parts.append(f"<h4>Sample {s}</h4>")
        grid = None if result.tokens else _patch_grid(result, s)
        parts.append(grid if grid is not None else _token_rows(result, s))
    parts.extend(f'<p class="warn">{e(note)}</p>' for note in result.notes)
    parts.append("</section>")
    return str(Markup("".join(parts)))


def render_section(results: Sequence[HeadsResult], page: PageContext | None = None) -> Markup:
    """The audit page's section: each result's :func:`render_html` (the renderer ``HTML_RENDERERS`` names)."""
    return Markup("".join(render_html(r) for r in results))
