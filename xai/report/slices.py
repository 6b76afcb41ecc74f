"""Slice discovery in the report: an HTML section (inline CSS, every user string escaped) and a terminal table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

from xai._text import safe_text

if TYPE_CHECKING:
    from rich.console import Console

    from xai.fairness.slices import SliceResult

__all__ = ["print_slices", "render_html"]

#: Findings a section or a terminal table shows (the JSON has every listed finding).
MAX_ROWS = 25

_TABLE = "border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 0.5em 0"
_CELL = "border-bottom: 1px solid #ddd; padding: 0.2em 0.6em; text-align: left"
_NUM = "border-bottom: 1px solid #ddd; padding: 0.2em 0.6em; text-align: right"
_MUTED = "color: #555; font-size: 0.9em"
_UP, _DOWN = "#d55e00", "#0072b2"  # Okabe-Ito vermillion (higher in the slice) and blue (lower)


def _rate(value: float) -> str:
    return f"{value:.3f}"


def _p(value: float) -> str:
    return "&lt; 1e-300" if value == 0 else f"{value:.2g}"


def render_html(result: SliceResult) -> str:
    """One ``<section>`` with the slices whose metric departs from the rest, strongest first.

    Every string that comes from the data (column names, levels, descriptions) is escaped.
    """
    metrics = ", ".join(m.replace("_", " ") for m in result.metric_names)
    caption = (f"{result.count_significant:,} of {result.n_tested:,} slices (up to {result.max_order} columns, "
               f"at least {result.min_size:,} rows) depart from the rest by more than {result.min_gap:g} in "
               f"{metrics} at a false-discovery rate of {result.alpha:g} (Benjamini–Hochberg); "
               f"numbers binned in {result.n_bins} quantile bins. Test: {result.test}.")
    parts = [f'<section class="slices"><h3>{escape(result.probe)}: slices of {escape(result.model)} '
             f'in {escape(result.dataset)}</h3>',
             f'<p style="{_MUTED}">{escape(caption)}</p>']
    overall = " · ".join(f"{escape(k.replace('_', ' '))} {_rate(v)}" for k, v in result.overall.items())
    parts.append(f"<p>Overall: {overall} ({result.rows:,} rows; columns: "
                 f"{escape(', '.join(result.columns))})</p>")
    if result.findings:
        head = "".join(f'<th scope="col" style="{_CELL}">{h}</th>' for h in (
            "slice", "metric", "rows", "share", "in slice", "rest", "difference", "p", "q"))
        rows = []
        for f in result.findings[:MAX_ROWS]:
            colour = _UP if f.difference > 0 else _DOWN
            rows.append(
                "<tr>"
                f'<td style="{_CELL}">{escape(f.description)}</td>'
                f'<td style="{_CELL}">{escape(f.metric.replace("_", " "))}</td>'
                f'<td style="{_NUM}">{f.size:,}</td>'
                f'<td style="{_NUM}">{100 * f.support:.2f}%</td>'
                f'<td style="{_NUM}">{_rate(f.value)}</td>'
                f'<td style="{_NUM}">{_rate(f.rest_value)}</td>'
                f'<td style="{_NUM}; color: {colour}"><b>{f.difference:+.3f}</b></td>'
                f'<td style="{_NUM}">{_p(f.p_value)}</td>'
                f'<td style="{_NUM}">{_p(f.q_value)}</td>'
                "</tr>")
        parts.append(f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
        hidden = result.count_significant - min(len(result.findings), MAX_ROWS)
        if hidden > 0:
            parts.append(f'<p style="{_MUTED}">... and {hidden:,} more significant slices (the JSON lists '
                         f"{len(result.findings):,}).</p>")
    else:
        parts.append("<p>No slice departs from the rest at this false-discovery rate.</p>")
    parts.extend(f'<p style="color: #b35c00">{escape(note)}</p>' for note in result.notes)
    parts.append("</section>")
    return str(Markup("\n".join(parts)))


def print_slices(console: Console, result: SliceResult) -> None:
    """The findings as a terminal table (strings made safe for rich), then the count."""
    from rich.table import Table

    view = Table(title=safe_text(f"slices of {result.model} ({', '.join(result.metric_names)}, "
                                 f"FDR {result.alpha:g}, gap > {result.min_gap:g})"))
    for name, justify in (("slice", "left"), ("metric", "left"), ("rows", "right"), ("in slice", "right"),
                          ("rest", "right"), ("difference", "right"), ("q", "right")):
        view.add_column(name, justify=justify)  # type: ignore[arg-type]
    for f in result.findings[:MAX_ROWS]:
        view.add_row(safe_text(f.description), safe_text(f.metric), f"{f.size:,}", _rate(f.value),
                     _rate(f.rest_value), f"{f.difference:+.3f}", f"{f.q_value:.2g}")
    if result.findings:
        console.print(view)
    console.print(f"{result.count_significant:,} of {result.n_tested:,} slices depart from the rest "
                  f"(Benjamini–Hochberg q <= {result.alpha:g})")
    for note in result.notes:
        console.print(f"[dim]{safe_text(note)}[/]")


def render_section(results: Sequence[SliceResult], page: object) -> Markup:
    """The audit page's section: each search's ranked findings (:func:`render_html`, escaped there)."""
    return Markup("\n".join(render_html(r) for r in results))  # noqa: S704
