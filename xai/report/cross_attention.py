"""HTML section of a :class:`~xai.explain.cross_attention.CrossAttentionResult`: labelled target x source heat maps.

Computation and rendering apart: this module reads the result's arrays only. Each map is
a table (generated tokens down, source tokens across) whose cells are tinted by their
value and carry it as text, so it reads without colour, prints, and scales to a phone.
Cells of the source field that the row's token copies (when the data says) are framed.
Every string from the result (model, token and field names) is escaped with
``markupsafe.escape``; styles are inline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from markupsafe import Markup, escape

if TYPE_CHECKING:  # annotations only: renderers never import torch or a method
    from xai.explain.cross_attention import CrossAttentionResult
    from xai.report._renderers import PageContext

__all__ = ["heat_table", "render_html", "render_section"]

_WARM, _COOL = "213, 94, 0", "0, 114, 178"  # Okabe-Ito vermillion (positive) and blue (negative)
_FRAME = "box-shadow: inset 0 0 0 2px #009E73"  # Okabe-Ito green: the field the token copies


def heat_table(values: np.ndarray, rows: Sequence[str], columns: Sequence[str], *, caption: str, kind: str,
               expected: np.ndarray | None = None, signed: bool = False) -> str:
    """One map ``(len(rows), len(columns))`` as a tinted table with the values as cell text.

    ``signed`` maps use two colours scaled to the largest magnitude and show the value
    (``+1.2``); probability maps are tinted by the value itself and show it in percent.
    """
    e = escape
    top = float(np.abs(values).max()) if values.size else 0.0
    head = "".join(f'<th scope="col">{e(c)}</th>' for c in columns)
    body = []
    for i, token in enumerate(rows):
        cells = []
        for j in range(len(columns)):
            v = float(values[i, j])
            if signed:
                alpha = 0.0 if top == 0 else min(1.0, abs(v) / top)
                colour, text = (_WARM if v >= 0 else _COOL), f"{v:+.1f}"
            else:
                alpha, colour, text = min(1.0, max(0.0, v)), _WARM, f"{100 * v:.0f}"
            frame = f"; {_FRAME}" if expected is not None and bool(expected[i, j]) else ""
            cells.append(f'<td class="num" title="{v:.4f}" style="background: rgba({colour}, {alpha:.2f}){frame}">'
                         f"{text}</td>")
        body.append(f'<tr><th scope="row">{e(token)}</th>{"".join(cells)}</tr>')
    return (f'<div class="s2s-map" style="overflow-x: auto; max-width: 100%; min-width: 0; margin-bottom: 1em">'
            f'<table class="{e(kind)}"><caption>{e(caption)}</caption>'
            f'<thead><tr><th scope="col">generated \\ source</th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _summary(result: CrossAttentionResult) -> str:
    e = escape
    rows = [(f"cross-attention, decoder layer {i} (head mean)", float(v), result.rows)
            for i, v in enumerate(result.alignment)]
    rows += [("rollout through the decoder", result.rollout_alignment, result.rows),
             (f"ablation (source token -> {result.baseline})", result.ablation_alignment, result.rows)]
    if result.shapley.size:
        rows.append((f"Shapley values (absent token = {result.baseline})", result.shapley_alignment,
                     result.attribution_rows))
    if result.integrated_gradients.size:
        rows.append((f"layer integrated gradients on the source embedding (from {result.baseline})",
                     result.ig_alignment, result.attribution_rows))
    cells = "".join(f'<tr><th scope="row">{e(name)}</th><td class="num">'
                    f'{"-" if not np.isfinite(v) else f"{v:.3f}"}</td><td class="num">{n}</td></tr>'
                    for name, v, n in rows)
    exact = "" if not np.isfinite(result.exact_match) else f"; exact match {result.exact_match:.3f}"
    gap = ("" if not np.isfinite(result.ig_max_delta) else
           f"; largest completeness gap of the integrated gradients {result.ig_max_delta:.2g}")
    return (f'<table class="s2s-alignment"><caption>Alignment: share of each reading (absolute values for the '
            f"signed ones) on the source field the generated token copies, mean over the copying tokens of the "
            f"first rows{exact}{gap}</caption>"
            f'<thead><tr><th scope="col">reading</th><th scope="col">alignment</th><th scope="col">rows</th></tr>'
            f"</thead><tbody>{cells}</tbody></table>")


def _sample(result: CrossAttentionResult, s: int) -> str:
    e = escape
    source = list(result.source_tokens[s])
    generated = list(result.generated_tokens[s])
    n_src, n_gen = len(source), len(generated)
    fields = result.source_fields[s] if s < len(result.source_fields) else ()
    targets = result.target_fields[s] if s < len(result.target_fields) else ()
    expected = None
    if len(fields) >= n_src and len(targets) >= n_gen:
        expected = np.array([[targets[i] == fields[j] and targets[i] in ("year", "month", "day")
                              for j in range(n_src)] for i in range(n_gen)])
    reference = result.reference_tokens[s] if s < len(result.reference_tokens) else ()
    verdict = ""
    if reference:
        right = tuple(reference) == tuple(generated)
        verdict = " · correct" if right else f" · wrong (reference {' '.join(reference)})"
    parts = [f"<h4>Sample {s}: <code>{e(' '.join(source))}</code> &#8594; <code>{e(' '.join(generated))}</code>"
             f'{e(verdict)}</h4><div style="display: flex; flex-wrap: wrap; gap: 0 1em; align-items: flex-start">']
    for layer, name in enumerate(result.layers):
        parts.append(heat_table(result.maps[s, layer, :n_gen, :n_src], generated, source, kind="s2s-cross",
                                caption=f"cross-attention, layer {layer} ({name}), head mean, %", expected=expected))
    parts.append(heat_table(result.rollout[s, :n_gen, :n_src], generated, source, kind="s2s-rollout",
                            caption="rollout through the decoder, %", expected=expected))
    if result.ablation.size:
        parts.append(heat_table(result.ablation[s, :n_gen, :n_src], generated, source, kind="s2s-ablation",
                                caption=f"log-probability drop when the source token is {result.baseline}",
                                expected=expected, signed=True))
    if s < len(result.shapley):
        parts.append(heat_table(result.shapley[s, :n_gen, :n_src], generated, source, kind="s2s-shapley",
                                caption=f"Shapley value for the log-probability (absent token = {result.baseline})",
                                expected=expected, signed=True))
    if s < len(result.integrated_gradients):
        parts.append(heat_table(result.integrated_gradients[s, :n_gen, :n_src], generated, source, kind="s2s-ig",
                                caption="layer integrated gradients on the source embedding", expected=expected,
                                signed=True))
    parts.append("</div>")
    return "".join(parts)


def render_html(result: CrossAttentionResult) -> str:
    """The section: the alignment table, then per sample one map per decoder layer, the rollout and the attributions."""
    e = escape
    parts = [f'<section class="seq2seq"><h3>Cross-attention · <code>{e(result.model)}</code> · '
             f"{len(result.layers)} decoder layers x {result.heads} heads</h3>", _summary(result),
             "<p>Rows: the generated tokens; columns: the source tokens. Framed cells: the source field the "
             "generated token copies.</p>"]
    parts.extend(_sample(result, s) for s in range(len(result.source_tokens)))
    parts.extend(f'<p class="warn">{e(note)}</p>' for note in result.notes)
    parts.append("</section>")
    return str(Markup("".join(parts)))


def render_section(results: Sequence[CrossAttentionResult], page: PageContext | None = None) -> Markup:
    """The audit page's section: each result's :func:`render_html` (the renderer ``HTML_RENDERERS`` names)."""
    return Markup("".join(render_html(r) for r in results))
