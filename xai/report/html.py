"""HTML renderer: one self-contained page per audit plus an index (jinja2, autoescaped)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from matplotlib import colormaps

from xai import __version__
from xai._results import to_jsonable
from xai._text import http_url, local_href
from xai.audit.gates import GateResult
from xai.audit.result import AuditResult
from xai.audit.spec import safe_slug
from xai.audit.verdict import audit_verdict
from xai.report import images
from xai.report._publish import StagedAudit, publish
from xai.report._renderers import PageContext, render_sections
from xai.report.images import data_uri  # noqa: F401  (re-exported: the pages import it from here)
from xai.report.json import audit_json

if TYPE_CHECKING:  # the renderers read results, they never run a model: no torch here
    from xai.explain import AttributionResult
    from xai.explain.dream import DreamResult
    from xai.explain.inversion import InversionResult
    from xai.explain.sanity import SanityResult
    from xai.fairness import FairnessResult, GroupTable

_ENV = Environment(
    loader=PackageLoader("xai.report", "templates"),
    autoescape=True,  # every user string (titles, columns, classes) is escaped
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Links from data: only absolute http(s) URLs become links (a card's ``paper`` may say
# ``javascript:``); file names are percent-quoted so ``javascript:x.html`` stays a file.
_ENV.filters["local_href"] = local_href
_ENV.tests["http_url"] = lambda value: http_url(value) is not None


#: Okabe-Ito: categorical colours that stay distinct under the common colour-vision deficiencies.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")


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
    table: GroupTable

    @staticmethod
    def fmt(metric: str, value: float | None) -> str:
        if value is None or not np.isfinite(value):  # missing, or NaN for an empty group
            return "–"
        if metric.endswith("_p"):  # p-values: significant digits, not a fixed point
            return f"{value:.3g}"
        return f"{int(value):,}" if metric == "count" else f"{value:.4f}"

    def overall_extra(self) -> dict[str, float]:
        """Overall numbers that have no per-group column (e.g. a proxy probe's AUC)."""
        return {k: v for k, v in self.overall.items() if k not in self.by_group}

    def interval(self, metric: str, group: str | None = None) -> tuple[float, float] | None:
        """The bootstrap interval of a group's (or, without ``group``, the overall) value."""
        if group is None:
            pair = self.table.overall_intervals.get(metric)
        else:
            pair = self.table.intervals.get(metric, {}).get(group)
        return pair if pair is not None and all(np.isfinite(pair)) else None

    def fmt_interval(self, pair: tuple[float, float] | None) -> str:
        if pair is None or not all(np.isfinite(pair)):
            return ""
        return f"[{pair[0]:.3f}, {pair[1]:.3f}]"

    @staticmethod
    def tick(pair: tuple[float, float] | None) -> str:
        """Inline style of the error bar drawn over a 0-1 meter."""
        if pair is None:
            return ""
        low, high = (min(max(v, 0.0), 1.0) for v in pair)
        return f"left: {100 * low:.1f}%; width: {100 * (high - low):.1f}%"


def _image_view(result: AttributionResult) -> dict[str, Any]:
    # Tiles show at 128 px; small inputs (8x8 sequences) are upscaled more.
    drawn = images.attribution_tiles(result, scale=max(4, 128 // result.inputs.shape[-1]))
    tiles = []
    for i, png in enumerate(drawn.tiles):
        pred, label, target = (result.name_of(kind, i) for kind in ("prediction", "label", "target"))
        tiles.append(_Tile(
            uri=data_uri(png),
            alt=f"{result.method} map for sample {i} (target {target}) over the input, "
                f"predicted {pred}, label {label}",
            caption=f"pred {pred} · label {label}",
            wrong=not result.label_names and pred != label,  # labels and targets name the same classes
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
        "text": None,
    }
    # A (T, F) sequence of pixel rows is drawn as a one-channel T x F image.
    if result.modality == "image" or (result.modality == "sequence" and result.inputs.ndim == 3):
        view["image"] = _image_view(result)
    elif result.column_attributions is not None:
        view["tabular"] = _tabular_view(result, sensitive)
    elif result.modality == "text" and result.tokens:
        view["text"] = _text_view(result)
    elif result.image_channels and result.token_attributions is not None:  # packed image + question
        c = result.image_channels
        view["image"] = _image_view(dataclasses.replace(result, inputs=result.inputs[:, :c],
                                                        attributions=result.attributions[:, :c]))
        view["text"] = _text_view(result)
    return view


#: Token heat map colours (Okabe-Ito): towards the explained class, away from it.
_TOWARDS, _AWAY = (0, 114, 178), (213, 94, 0)


def _text_view(result: AttributionResult, rows: int = 8) -> list[dict[str, Any]]:
    """Token heat maps: each token shaded by its signed score, scaled to the row's largest |score|."""
    out = []
    for i in range(min(rows, len(result.tokens))):
        tokens = result.tokens[i]
        per_token = result.attributions if result.token_attributions is None else result.token_attributions
        scores = np.asarray(per_token[i], dtype=np.float64).reshape(-1)[:len(tokens)]
        limit = float(np.abs(scores).max()) if len(scores) else 0.0
        limit = limit or 1.0
        cells = []
        for token, value in zip(tokens, scores, strict=True):
            red, green, blue = _TOWARDS if value >= 0 else _AWAY
            alpha = min(abs(float(value)) / limit, 1.0)
            cells.append({"token": token, "value": float(value),
                          "style": f"background: rgba({red}, {green}, {blue}, {alpha:.2f}); "
                                   f"color: {'#fff' if alpha > 0.6 else '#000'}"})
        out.append({"index": i, "pred": result.class_names[result.predictions[i]],
                    "label": result.class_names[result.labels[i]],
                    "target": result.class_names[result.targets[i]],
                    "wrong": bool(result.predictions[i] != result.labels[i]),
                    "sum": float(scores.sum()), "cells": cells,
                    "question_share": (float(result.question_share[i])
                                       if result.question_share is not None else None)})
    return out


def _table_view(table: GroupTable) -> _TableView:
    return _TableView(
        feature=table.feature,
        groups=table.groups,
        metrics=list(table.by_group),
        by_group=table.by_group,
        overall=table.overall,
        disparities=table.disparities,
        table=table,
    )


def _heatmap_view(result: FairnessResult) -> dict[str, Any] | None:
    """Intersection of two sensitive features as a grid coloured by the headline metric."""
    inter = result.intersection
    if inter is None or len(result.tables) != 2:
        return None
    metric = next((m for m in ("selection_rate", "accuracy") if m in inter.by_group), None)
    if metric is None:
        return None
    rows, cols = result.tables[0].groups, result.tables[1].groups
    cmap = colormaps["viridis"]
    grid = []
    for a in rows:
        cells = []
        for b in cols:
            key = f"{a} x {b}"  # the engine's name for an intersection cell
            value = inter.by_group[metric].get(key, float("nan"))
            count = inter.by_group.get("count", {}).get(key, 0.0)
            if np.isfinite(value):
                red, green, blue, _ = cmap(float(np.clip(value, 0.0, 1.0)))
                luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
                style = (f"background: rgb({int(255 * red)}, {int(255 * green)}, {int(255 * blue)}); "
                         f"color: {'#000' if luminance > 0.5 else '#fff'}")
                text = f"{value:.3f}"
            else:
                style, text = "", "–"
            cells.append({"text": text, "style": style, "count": int(count)})
        grid.append({"label": a, "cells": cells})
    return {"metric": metric, "row_feature": result.tables[0].feature, "col_feature": result.tables[1].feature,
            "cols": cols, "rows": grid}


def _stamp() -> dict[str, str]:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return {"version": __version__, "generated": now}


GateMap = Mapping[str, Sequence[GateResult]]


def _dream_view(result: DreamResult) -> dict[str, Any]:
    from xai.report.images import image_uri as _png

    top = []
    for idx, value, label, image in zip(result.top_indices, result.top_values, result.top_labels,
                                        result.top_images, strict=True):
        name = result.class_names[int(label)] if result.class_names else str(int(label))
        top.append({"uri": _png(image, 96), "alt": f"test image {int(idx)} (label {name}) exciting {result.unit}",
                    "caption": f"#{int(idx)} {name} · {float(value):.3g}"})
    return {"unit": result.unit, "start": _png(result.start_image[0], 96), "end": _png(result.image[0], 96),
            "start_value": result.start_value, "end_value": result.end_value, "gain": result.gain,
            "top": top, "notes": result.notes}


def _inversion_view(result: InversionResult) -> dict[str, Any]:
    from xai.report.images import image_uri as _png

    layer = "+".join(result.layers)
    return {"layer": layer, "target": _png(result.target[0], 96), "reconstruction": _png(result.reconstruction[0], 96),
            "target_name": result.target_name, "error": result.relative_error, "steps": len(result.error_trace),
            "notes": result.notes}


def _partial(key: str, results: Sequence[Any], page: PageContext) -> Markup:
    template = _ENV.get_template(f"sections/{key}.html.j2")
    return Markup(template.render(results=results, untrusted=page.untrusted, palette=page.palette))  # noqa: S704


def render_explanations(results: Sequence[AttributionResult], page: PageContext) -> Markup:
    """Maps, column bars or token heat maps of each attribution result."""
    return _partial("explanations", [_explanation_view(e, page.audit.data.sensitive) for e in results], page)


def render_sanity(results: Sequence[SanityResult], page: PageContext) -> Markup:
    """One table row per sanity-checked explainer, with its verdict."""
    return _partial("sanity", list(results), page)


def render_dreams(results: Sequence[DreamResult], page: PageContext) -> Markup:
    """Each dreamed unit beside the test images that excite it most."""
    return _partial("dreams", [_dream_view(d) for d in results], page)


def render_inversions(results: Sequence[InversionResult], page: PageContext) -> Markup:
    """Each test image beside its reconstruction from a layer's features."""
    return _partial("inversions", [_inversion_view(i) for i in results], page)


def render_fairness(results: Sequence[FairnessResult], page: PageContext) -> Markup:
    """Per-group tables, disparities, rankings and the intersection heat map of each probe."""
    views = [
        {"probe": f.probe, "positive_class": f.positive_class, "rankings": f.rankings, "heatmap": _heatmap_view(f),
         "values": getattr(f, "values", {}),  # probes without group tables (embedding bias)
         "tables": [_table_view(t) for t in (*f.tables, *((f.intersection,) if f.intersection else ()))]}
        for f in results
    ]
    return _partial("fairness", views, page)


def render_audit_page(audit: AuditResult, gates: Sequence[GateResult] | None = None) -> str:
    """The HTML page of one audit; ``gates`` (from ``xai check``) adds the gate table.

    Each non-empty section is drawn by the renderer of its result type (:mod:`xai.report._renderers`).
    """
    page = PageContext(audit=audit, untrusted=audit.untrusted(), palette=OKABE_ITO)
    return _ENV.get_template("audit.html.j2").render(
        audit=audit,
        verdict=audit_verdict(audit, gates),
        headline=audit.headline(),
        card=audit.model.card,
        card_considerations=_card_considerations(audit.model.card),
        sections=render_sections(page),
        json_name=f"{audit.slug}.json",
        gates=None if gates is None else list(gates),
        **_stamp(),
    )


def _card_considerations(card: dict[str, Any] | None) -> Markup | None:
    """A zoo entry's intended use, limitations, risks and data (xai/zoo/considerations.toml); ``None`` otherwise."""
    from xai.errors import UnknownNameError
    from xai.report.model_card import considerations_html
    from xai.zoo._considerations import considerations

    name = card.get("name") if isinstance(card, dict) else None
    if not isinstance(name, str):
        return None
    try:
        return Markup(considerations_html(considerations(name)))
    except UnknownNameError:  # a folder's card that names no registered entry
        return None


def _gate_status(gates: Sequence[GateResult] | None) -> dict[str, Any] | None:
    if gates is None:
        return None
    failed = sum(not g.passed for g in gates)
    return {"passed": failed == 0, "failed": failed, "total": len(gates)}


def index_row(audit: AuditResult, gates: Sequence[GateResult] | None = None) -> dict[str, Any]:
    """The index's row of one audit, JSON-ready (it is kept in the audit's manifest)."""
    verdict = audit_verdict(audit, gates)
    return to_jsonable({**audit.headline(), "page": f"{audit.slug}.html", "gates": _gate_status(gates),
                        "verdict": {"status": verdict.status, "summary": verdict.summary,
                                    "top": [f.text for f in verdict.top(1)]}})


#: Keys every index row has (a manifest from elsewhere without them is not listed).
_ROW_KEYS = frozenset({"slug", "title", "model", "data", "rows", "accuracy", "explainers", "worst_disparity",
                       "wall_seconds", "page", "gates"})


def render_index_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    """The index page of the given rows (:func:`index_row`); a gate column when any row has gates."""
    listed: list[dict[str, Any]] = [dict(r) for r in rows if _ROW_KEYS <= r.keys() and isinstance(r["slug"], str)
            and r["page"] == f"{safe_slug(r['slug'])}.html"  # a relative link to a page of this folder, only
            and isinstance(r["explainers"], list) and isinstance(r["worst_disparity"], dict)
            and (r["gates"] is None or isinstance(r["gates"], dict))]
    for row in listed:  # a manifest from before verdicts: judged by its gates alone
        if not _valid_verdict(row.get("verdict")):
            failed = row["gates"] is not None and row["gates"].get("failed")
            row["verdict"] = {"status": "fail" if failed else "pass", "summary": "", "top": []}
    # Verdict first: failed audits lead, then those to review, then the rest, each in slug order.
    listed.sort(key=lambda r: (_STATUS_ORDER[r["verdict"]["status"]], r["slug"]))
    counts = {s: sum(r["verdict"]["status"] == s for r in listed) for s in _STATUS_ORDER}
    return _ENV.get_template("index.html.j2").render(
        audits=listed, counts=counts, show_gates=any(r["gates"] is not None for r in listed), **_stamp())


_STATUS_ORDER = {"fail": 0, "warn": 1, "pass": 2}


def _valid_verdict(verdict: Any) -> bool:
    return (isinstance(verdict, dict) and verdict.get("status") in _STATUS_ORDER
            and isinstance(verdict.get("summary"), str) and isinstance(verdict.get("top"), list)
            and all(isinstance(t, str) for t in verdict["top"]))


def render_index(audits: list[AuditResult], gates: GateMap | None = None) -> str:
    """The index page linking every audit page (with a gate column after ``xai check``)."""
    return render_index_rows([index_row(a, None if gates is None else gates.get(a.slug, ())) for a in audits])


def write_report(audits: list[AuditResult], out_dir: str | Path, gates: GateMap | None = None) -> Path:
    """Render everything first, then write the audits into ``out_dir`` as one unit; return the index path.

    ``gates`` maps an audit slug to its gate verdicts (``xai check``); they go into the
    page's summary, the index and the audit's JSON. The index lists every audit in the
    folder, earlier runs' too. A kill or a full disk leaves the previous report whole
    (:mod:`xai.report._publish`); a write error raises :class:`~xai.errors.OutputError`.
    """
    staged = []
    for audit in audits:
        verdicts = None if gates is None else gates.get(audit.slug)  # None: this audit's spec has no gates
        page = render_audit_page(audit) if verdicts is None else render_audit_page(audit, verdicts)
        staged.append(StagedAudit(
            slug=audit.slug,
            files={f"{audit.slug}.json": audit_json(audit, verdicts).encode("utf-8"),
                   f"{audit.slug}.html": page.encode("utf-8")},
            row=index_row(audit, verdicts),
        ))
    return publish(Path(out_dir), staged, render_index_rows)
