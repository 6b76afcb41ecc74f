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
from xai.report import images
from xai.report.json import audit_json

_ENV = Environment(
    loader=PackageLoader("xai.report", "templates"),
    autoescape=True,  # every user string (titles, columns, classes) is escaped
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


#: Okabe-Ito: categorical colours that stay distinct under the common colour-vision deficiencies.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI (the page never loads anything from outside)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass(frozen=True)
class _Tile:
    uri: str
    alt: str
    caption: str
    wrong: bool


@dataclass(frozen=True)
class _TableView:
    feature: str
    groups: tuple[str, ...]
    metrics: list[str]
    by_group: dict[str, dict[str, float]]
    overall: dict[str, float]
    disparities: dict[str, float]

    @staticmethod
    def fmt(metric: str, value: float) -> str:
        return f"{int(value):,}" if metric == "count" else f"{value:.4f}"


def _image_view(result: AttributionResult) -> dict[str, Any]:
    # Tiles show at 128 px; small inputs (8x8 sequences) are upscaled more.
    drawn = images.attribution_tiles(result, scale=max(4, 128 // result.inputs.shape[-1]))
    tiles = []
    for i, png in enumerate(drawn.tiles):
        pred = result.class_names[result.predictions[i]]
        label = result.class_names[result.labels[i]]
        target = result.class_names[result.targets[i]]
        tiles.append(_Tile(
            uri=data_uri(png),
            alt=f"{result.method} map for sample {i} (target {target}) over the input, "
                f"predicted {pred}, label {label}",
            caption=f"pred {pred} · label {label}",
            wrong=pred != label,
        ))
    return {"tiles": tiles, "colorbar": data_uri(drawn.colorbar), "cmap": drawn.cmap,
            "vmin": drawn.vmin, "vmax": drawn.vmax}


def _tabular_view(result: AttributionResult, sensitive: tuple[str, ...],
                  rows: int = 3, top: int = 8) -> dict[str, Any]:
    scores = result.column_importance()
    total = sum(scores.values()) or 1.0
    peak = max(scores.values(), default=0.0) or 1.0
    importance = [{"name": k, "value": v, "share": v / total, "width": 100 * v / peak,
                   "sensitive": k in sensitive} for k, v in scores.items()]
    assert result.column_attributions is not None
    row_views = []
    for r in range(min(rows, len(result.column_attributions))):
        values = result.column_attributions[r]
        order = np.argsort(-np.abs(values), kind="stable")[:top]
        limit = float(np.abs(values[order]).max()) or 1.0
        row_views.append({
            "index": r,
            "pred": result.class_names[result.predictions[r]],
            "label": result.class_names[result.labels[r]],
            "target": result.class_names[result.targets[r]],
            "bars": [{"name": result.column_names[i], "value": float(values[i]),
                      "width": 50 * abs(float(values[i])) / limit,
                      "sensitive": result.column_names[i] in sensitive} for i in order],
        })
    return {"importance": importance, "rows": row_views}


def _explanation_view(result: AttributionResult, sensitive: tuple[str, ...]) -> dict[str, Any]:
    delta = (float(np.abs(result.convergence_delta).mean())
             if result.convergence_delta is not None else None)
    view: dict[str, Any] = {
        "method": result.method,
        "target": result.options.get("target"),
        "options": {k: v for k, v in result.options.items() if k != "target"},
        "samples": len(result.attributions),
        "seconds": result.provenance.wall_seconds,
        "delta": delta,
        "image": None,
        "tabular": None,
    }
    # A (T, F) sequence of pixel rows is drawn as a one-channel T x F image.
    if result.modality == "image" or (result.modality == "sequence" and result.inputs.ndim == 3):
        view["image"] = _image_view(result)
    elif result.column_attributions is not None:
        view["tabular"] = _tabular_view(result, sensitive)
    return view


def _table_view(table: GroupTable) -> _TableView:
    return _TableView(
        feature=table.feature,
        groups=table.groups,
        metrics=list(table.by_group),
        by_group=table.by_group,
        overall=table.overall,
        disparities=table.disparities,
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
        palette=OKABE_ITO,
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
