"""HTML renderer: one self-contained page per audit plus an index (jinja2, autoescaped)."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined

from xai import __version__
from xai._io import atomic_write_text
from xai.audit.runner import AuditResult
from xai.explain import AttributionResult
from xai.fairness import GroupTable
from xai.report import plots
from xai.report.json import audit_json

_ENV = Environment(
    loader=PackageLoader("xai.report", "templates"),
    autoescape=True,  # every user string (titles, columns, classes) is escaped
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI (the page never loads anything from outside)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass(frozen=True)
class _Figure:
    uri: str
    alt: str
    caption: str


@dataclass(frozen=True)
class _TableView:
    feature: str
    groups: tuple[str, ...]
    metrics: list[str]
    metrics_no_count: list[str]
    by_group: dict[str, dict[str, float]]
    overall: dict[str, float]
    disparities: dict[str, float]
    figure: str

    @staticmethod
    def fmt(metric: str, value: float) -> str:
        return f"{int(value):,}" if metric == "count" else f"{value:.4f}"


def _explanation_view(result: AttributionResult, sensitive: tuple[str, ...]) -> dict[str, Any]:
    figures: list[_Figure] = []
    importance: list[dict[str, Any]] = []
    n = len(result.attributions)
    if result.modality == "image":
        figures.append(_Figure(
            data_uri(plots.image_attribution_grid(result)),
            f"{result.method} attribution maps over {min(n, 8)} input images",
            f"{result.method}: attribution overlaid on each input (colour bar on the right); "
            "titles in orange mark wrong predictions.",
        ))
    elif result.column_attributions is not None:
        scores = result.column_importance()
        total = sum(scores.values()) or 1.0
        importance = [{"name": k, "value": v, "share": v / total, "sensitive": k in sensitive}
                      for k, v in scores.items()]
        figures.append(_Figure(
            data_uri(plots.column_importance_bars(result, highlight=sensitive)),
            f"Bar chart of mean absolute {result.method} attribution per column",
            "Mean |attribution| over the explained rows; sensitive columns in orange.",
        ))
        figures.append(_Figure(
            data_uri(plots.row_attribution_bars(result)),
            f"Signed {result.method} attributions of the largest columns for three rows",
            "Per-row attributions: blue pushes towards the explained class, vermilion away.",
        ))
    delta = (float(np.abs(result.convergence_delta).mean())
             if result.convergence_delta is not None else None)
    return {
        "method": result.method,
        "target": result.options.get("target"),
        "options": {k: v for k, v in result.options.items() if k != "target"},
        "samples": n,
        "seconds": result.provenance.wall_seconds,
        "delta": delta,
        "figures": figures,
        "importance": importance,
        "sensitive": bool(sensitive),
    }


def _table_view(table: GroupTable) -> _TableView:
    metrics = list(table.by_group)
    return _TableView(
        feature=table.feature,
        groups=table.groups,
        metrics=metrics,
        metrics_no_count=[m.replace("_", " ") for m in metrics if m != "count"],
        by_group=table.by_group,
        overall=table.overall,
        disparities=table.disparities,
        figure=data_uri(plots.group_metric_bars(table)),
    )


def _stamp() -> dict[str, str]:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return {"version": __version__, "generated": now}


def render_audit_page(audit: AuditResult) -> str:
    """The HTML page of one audit."""
    explanations = [_explanation_view(e, audit.data.sensitive) for e in audit.explanations]
    fairness = [
        {"probe": f.probe, "positive_class": f.positive_class,
         "tables": [_table_view(t) for t in f.tables]}
        for f in audit.fairness
    ]
    return _ENV.get_template("audit.html.j2").render(
        audit=audit,
        headline=audit.headline(),
        card=audit.model.card,
        explanations=explanations,
        fairness=fairness,
        json_name=f"{audit.slug}.json",
        **_stamp(),
    )


def render_index(audits: list[AuditResult]) -> str:
    """The index page linking every audit page."""
    rows = [{**a.headline(), "page": f"{a.slug}.html"} for a in audits]
    return _ENV.get_template("index.html.j2").render(audits=rows, **_stamp())


def write_report(audits: list[AuditResult], out_dir: str | Path) -> Path:
    """Render everything first, then write each file atomically; return the index path."""
    out = Path(out_dir)
    files: list[tuple[Path, str]] = []
    for audit in audits:
        files.append((out / f"{audit.slug}.json", audit_json(audit)))
        files.append((out / f"{audit.slug}.html", render_audit_page(audit)))
    files.append((out / "index.html", render_index(audits)))
    for path, text in files:
        atomic_write_text(path, text)
    return out / "index.html"
