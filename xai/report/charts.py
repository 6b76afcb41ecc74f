"""Inline SVG charts with axes, tick labels and axis titles (no figure machinery, no script).

Every chart names what each axis shows and its unit, so a printed page stands on its own.
All text is escaped (:func:`markupsafe.escape`); the SVG goes straight into the page.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup, escape

__all__ = ["Point", "line_chart", "lines_chart", "nice_ticks", "scatter_chart"]

_FONT = 'font-family="system-ui, sans-serif" font-size="11"'
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")


@dataclass(frozen=True)
class Point:
    """One labelled point of a scatter chart; ``series`` picks its colour and legend entry."""

    label: str
    x: float
    y: float
    series: str = ""
    #: A short mark drawn beside the point (a number the caption explains); the label is its tooltip.
    tag: str = ""


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering ``[low, high]`` (1, 2, 5 times a power of ten)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high - low < 1e-12:
        low, high = low - 0.5 * (abs(low) or 1.0), high + 0.5 * (abs(high) or 1.0)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks: list[float] = []
    value = first
    while value <= high + step * 0.5 and len(ticks) < 50:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _fmt(value: float) -> str:
    return f"{value + 0.0:.3g}"  # + 0.0 turns -0.0 (a tick at zero) into 0


class _Frame:
    """A plot area with data ranges mapped to pixels, and its axes drawn as SVG."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float], width: int, height: int,
                 x_ticks: list[float] | None = None, y_ticks: list[float] | None = None, legend_rows: int = 0) -> None:
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = 56, 24, 12, 40 + 16 * legend_rows
        finite_x = [v for v in xs if math.isfinite(v)] or [0.0, 1.0]
        finite_y = [v for v in ys if math.isfinite(v)] or [0.0, 1.0]
        self.x_ticks = x_ticks or nice_ticks(min(finite_x), max(finite_x))
        self.y_ticks = y_ticks or nice_ticks(min(finite_y), max(finite_y))
        self.x0, self.x1 = min(self.x_ticks[0], min(finite_x)), max(self.x_ticks[-1], max(finite_x))
        self.y0, self.y1 = min(self.y_ticks[0], min(finite_y)), max(self.y_ticks[-1], max(finite_y))

    def px(self, x: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (x - self.x0) / span * (self.width - self.left - self.right)

    def py(self, y: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - self.bottom - (y - self.y0) / span * (self.height - self.top - self.bottom)

    def axes(self, x_label: str, y_label: str) -> list[str]:
        bottom, left = self.height - self.bottom, self.left
        parts = [f'<line x1="{left}" y1="{self.top}" x2="{left}" y2="{bottom}" stroke="#1b1b1f"/>',
                 f'<line x1="{left}" y1="{bottom}" x2="{self.width - self.right}" y2="{bottom}" stroke="#1b1b1f"/>']
        for t in self.x_ticks:
            x = self.px(t)
            parts.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#1b1b1f"/>'
                         f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle" {_FONT}>{_fmt(t)}</text>')
        for t in self.y_ticks:
            y = self.py(t)
            parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="#1b1b1f"/>'
                         f'<line x1="{left}" y1="{y:.1f}" x2="{self.width - self.right}" y2="{y:.1f}" '
                         f'stroke="#d9dbe0" stroke-width="0.5"/>'
                         f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {_FONT}>{_fmt(t)}</text>')
        parts.append(f'<text class="axis-x" x="{(left + self.width - self.right) / 2:.1f}" y="{bottom + 32}" '
                     f'text-anchor="middle" {_FONT}>{escape(x_label)}</text>')
        middle = (self.top + bottom) / 2
        parts.append(f'<text class="axis-y" x="12" y="{middle:.1f}" text-anchor="middle" '
                     f'transform="rotate(-90 12 {middle:.1f})" {_FONT}>{escape(y_label)}</text>')
        return parts

    def svg(self, label: str, body: list[str]) -> Markup:
        return Markup(  # noqa: S704  (every string above is escaped or a number)
            f'<svg class="chart" role="img" aria-label="{escape(label)}" width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}" style="max-width: 100%; height: auto">'
            + "".join(body) + "</svg>")


def line_chart(values: Sequence[float] | np.ndarray, *, x_label: str, y_label: str, label: str,
               width: int = 480, height: int = 200) -> Markup:
    """A line over steps ``0..n-1`` with both axes ticked and titled."""
    ys = [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]
    xs = list(range(len(ys)))
    frame = _Frame(xs or [0, 1], ys, width, height)
    points = " ".join(f"{frame.px(x):.1f},{frame.py(y):.1f}" for x, y in zip(xs, ys, strict=True)
                      if math.isfinite(y))
    body = [*frame.axes(x_label, y_label),
            f'<polyline fill="none" stroke="#0072B2" stroke-width="1.5" points="{points}"/>']
    return frame.svg(label, body)


def lines_chart(series: dict[str, Sequence[float] | np.ndarray], *, x: Sequence[float] | np.ndarray, x_label: str,
                y_label: str, label: str,
                width: int = 520, height: int = 240, y_range: tuple[float, float] | None = None,
                marks: Sequence[float] = (), dashed: Collection[str] = ()) -> Markup:
    """Several named lines over the same ``x`` (one colour each, legend under the axis title).

    ``y_range`` fixes the y axis (e.g. ``(0, 1)`` for probabilities); ``marks`` are x values
    shaded as thin red bands (e.g. flagged epochs); ``dashed`` names lines drawn grey and
    dashed (a reference, such as a random order's curve).
    """
    xs = [float(v) for v in x]
    names = list(series)
    rows = len(names) if len(names) > 1 else 0
    ys = [float(v) for values in series.values() for v in values]
    y_ticks = nice_ticks(*y_range) if y_range is not None else None
    frame = _Frame(xs or [0.0, 1.0], ys + (list(y_range) if y_range else []), width, height + 16 * rows,
                   y_ticks=y_ticks, legend_rows=rows)
    body = frame.axes(x_label, y_label)
    step = (frame.px(xs[1]) - frame.px(xs[0])) if len(xs) > 1 else 4.0
    for m in marks:
        body.append(f'<rect x="{frame.px(m) - step / 2:.1f}" y="{frame.top}" width="{max(step, 1.0):.1f}" '
                    f'height="{frame.height - frame.bottom - frame.top}" fill="#D55E00" fill-opacity="0.25"/>')
    def style(i: int, name: str) -> tuple[str, str]:
        return ("#5c5f66", ' stroke-dasharray="5 4"') if name in dashed else (_PALETTE[i % len(_PALETTE)], "")

    for i, name in enumerate(names):
        colour, dash = style(i, name)
        points = " ".join(f"{frame.px(a):.1f},{frame.py(float(b)):.1f}" for a, b in zip(xs, series[name], strict=True)
                          if math.isfinite(float(b)))
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"{dash} points="{points}">'
                    f"<title>{escape(name)}</title></polyline>")
    if rows:
        for i, name in enumerate(names):
            colour, dash = style(i, name)
            y = frame.height - 16 * (rows - i) + 4
            body.append(f'<line x1="{frame.left - 4}" y1="{y}" x2="{frame.left + 12}" y2="{y}" '
                        f'stroke="{colour}" stroke-width="3"{dash}/>'
                        f'<text x="{frame.left + 16}" y="{y + 4}" {_FONT}>{escape(name)}</text>')
    return frame.svg(label, body)


def scatter_chart(points: Sequence[Point], *, x_label: str, y_label: str, label: str,
                  width: int = 520, height: int = 320, x_min: float | None = None) -> Markup:
    """Labelled points (one colour per series, with a legend under the axis title) on ticked, titled axes."""
    series = list(dict.fromkeys(p.series for p in points))
    rows = len(series) if len(series) > 1 else 0
    xs = [p.x for p in points] + ([x_min] if x_min is not None else [])  # e.g. a disparity axis from 0
    frame = _Frame(xs, [p.y for p in points], width, height + 16 * rows, legend_rows=rows)
    body = frame.axes(x_label, y_label)
    for p in points:
        if not (math.isfinite(p.x) and math.isfinite(p.y)):
            continue
        colour = _PALETTE[series.index(p.series) % len(_PALETTE)]
        x, y = frame.px(p.x), frame.py(p.y)
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"><title>{escape(p.label)}: '
                    f'{escape(x_label)} {_fmt(p.x)}, {escape(y_label)} {_fmt(p.y)}</title></circle>')
        if p.tag:
            body.append(f'<text x="{x + 6:.1f}" y="{y - 5:.1f}" {_FONT}>{escape(p.tag)}</text>')
    if rows:
        for i, name in enumerate(series):
            y = frame.height - 16 * (rows - i) + 4
            x = frame.left
            body.append(f'<circle cx="{x}" cy="{y}" r="4" fill="{_PALETTE[i % len(_PALETTE)]}"/>'
                        f'<text x="{x + 8}" y="{y + 4}" {_FONT}>{escape(name)}</text>')
    return frame.svg(label, body)
