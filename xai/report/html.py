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
from xai.report import charts, images
from xai.report._publish import StagedAudit, publish
from xai.report._renderers import PageContext, render_sections
from xai.report.glossary import glossary_html, link_terms
from xai.report.images import data_uri  # noqa: F401  (re-exported: the pages import it from here)
from xai.report.json import audit_json

if TYPE_CHECKING:  # the renderers read results, they never run a model: no torch here
    from xai.explain import AttributionResult
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
    #: The plain input (in colour where it has three channels), drawn beside the overlay.
    input_uri: str = ""
    input_alt: str = ""


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


def _probability(result: AttributionResult, i: int) -> str:
    """`` (p = 0.93)`` for sample ``i``'s predicted class when the result carries probabilities."""
    probabilities = result.probabilities
    if probabilities is None or i >= len(probabilities) or not np.isfinite(probabilities[i]):
        return ""
    return f" (p = {float(probabilities[i]):.2f})"


def _image_view(result: AttributionResult, embedding: bool = False) -> dict[str, Any]:
    # Tiles show at 128 px; small inputs (8x8 sequences) are upscaled more.
    drawn = images.attribution_tiles(result, scale=max(4, 128 // result.inputs.shape[-1]))
    tiles = []
    for i, png in enumerate(drawn.tiles):
        pred, label, target = (result.name_of(kind, i) for kind in ("prediction", "label", "target"))
        if embedding:  # an encoder has no prediction or label to show, only the explained output
            alt = f"{result.method} map for sample {i} over the input"
            caption = f"sample {i}"
        else:
            alt = (f"{result.method} map for sample {i} (target {target}) over the input, "
                   f"predicted {pred}, label {label}")
            caption = f"pred {pred}{_probability(result, i)} · label {label}"
        tiles.append(_Tile(
            uri=data_uri(png),
            alt=alt,
            caption=caption,
            # labels and targets name the same classes
            wrong=not embedding and not result.label_names and pred != label,
            input_uri=data_uri(drawn.inputs[i]) if i < len(drawn.inputs) else "",
            input_alt=f"sample {i} as given{' (colour)' if drawn.colour else ''}",
        ))
    return {"tiles": tiles, "colorbar": data_uri(drawn.colorbar), "cmap": drawn.cmap,
            "vmin": drawn.vmin, "vmax": drawn.vmax, "colour": drawn.colour}


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
            "pred": result.class_names[result.predictions[r]] + _probability(result, r),
            "label": result.class_names[result.labels[r]],
            "target": result.class_names[result.targets[r]],
            "bars": [{"name": result.column_names[i], "value": float(values[i]),
                      "width": 50 * abs(float(values[i])) / limit,
                      "sensitive": result.column_names[i] in sensitive} for i in order],
        })
    return {"importance": importance, "rows": row_views}


#: What an explainer's map shows when it is not signed (captum's Saliency and NoiseTunnel take |gradient| by
#: default; Grad-CAM applies a ReLU; rollout's shares of attention flow are non-negative).
_UNSIGNED_WHY = {
    "grad-cam": "positive evidence only (Grad-CAM keeps the ReLU of the weighted activations)",
    "attention-rollout": "share of attention flowing to each input (non-negative; no direction)",
}


def sign_convention(result: AttributionResult) -> dict[str, Any]:
    """Whether ``result``'s map carries a sign, and a caption phrase that says what it shows.

    A map is signed when any attribution is negative; an explainer run with ``abs=True``
    (saliency and smoothgrad by default) shows magnitudes only, whatever the caption of a
    signed method would say.
    """
    signed = bool((np.asarray(result.attributions) < 0).any())
    if signed:
        what = "signed attributions: positive values push towards the explained output, negative ones away"
    elif result.options.get("abs"):
        what = (f"absolute values |attribution| ({result.method} with abs=True): magnitude only, "
                "the direction is not shown")
    else:
        what = _UNSIGNED_WHY.get(result.method, "non-negative attributions: magnitude only")
    return {"signed": signed, "what": what}


def options_items(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """An options dict as (key, value) pairs a reader can scan: ``None`` is "default", bools are yes/no."""
    def show(value: Any) -> str:
        if value is None:
            return "default"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, list | tuple):
            return ", ".join(show(v) for v in value) or "none"
        return str(value)

    return [(str(k).replace("_", " "), show(v)) for k, v in options.items()]


_ENV.filters["kv"] = options_items


def _explanation_view(result: AttributionResult, sensitive: tuple[str, ...], task: str = "") -> dict[str, Any]:
    delta = (float(np.abs(result.convergence_delta).mean())
             if result.convergence_delta is not None else None)
    embedding = task == "embedding"
    view: dict[str, Any] = {
        "method": result.method,
        "target": "the pooled embedding" if embedding else result.options.get("target"),
        "options": options_items({k: v for k, v in result.options.items() if k != "target"}),
        "samples": len(result.attributions),
        "seconds": result.provenance.wall_seconds,
        "delta": delta,
        "embedding": embedding,
        "sign": sign_convention(result),
        "image": None,
        "tabular": None,
        "text": None,
    }
    # A (T, F) sequence of pixel rows is drawn as a one-channel T x F image.
    if result.modality == "image" or (result.modality == "sequence" and result.inputs.ndim == 3):
        view["image"] = _image_view(result, embedding)
    elif result.column_attributions is not None:
        view["tabular"] = _tabular_view(result, sensitive)
    elif result.modality == "text" and result.tokens:
        view["text"] = _text_view(result, embedding=embedding)
    elif result.image_channels and result.token_attributions is not None:  # packed image + question
        c = result.image_channels
        view["image"] = _image_view(dataclasses.replace(result, inputs=result.inputs[:, :c],
                                                        attributions=result.attributions[:, :c]), embedding)
        view["text"] = _text_view(result, embedding=embedding)
    return view


#: Token heat map colours (Okabe-Ito): towards the explained class, away from it.
_TOWARDS, _AWAY = (0, 114, 178), (213, 94, 0)


#: Tokenizer markers: drawn in grey outside the shading scale ([CLS] often holds most of the mass and
#: would whiten every word); padding is not drawn at all.
SPECIAL_TOKENS = frozenset({"[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "<s>", "</s>", "<pad>", "<unk>",
                            "<mask>", "<cls>", "<sep>", "<bos>", "<eos>"})
PADDING_TOKENS = frozenset({"[PAD]", "<pad>"})


def _text_view(result: AttributionResult, rows: int = 8, embedding: bool = False) -> list[dict[str, Any]]:
    """Token heat maps: each word shaded by its score, scaled to the row's largest |word score|.

    Special tokens ([CLS], [SEP], <s> ...) are shown in grey and left out of the scale;
    padding is dropped. Embedding models have no prediction or label: their rows say so.
    """
    out = []
    for i in range(min(rows, len(result.tokens))):
        tokens = result.tokens[i]
        per_token = result.attributions if result.token_attributions is None else result.token_attributions
        scores = np.asarray(per_token[i], dtype=np.float64).reshape(-1)[:len(tokens)]
        kept = [(t, float(v)) for t, v in zip(tokens, scores, strict=True) if t not in PADDING_TOKENS]
        words = [abs(v) for t, v in kept if t not in SPECIAL_TOKENS]
        limit = (max(words) if words else 0.0) or 1.0
        cells = []
        for token, value in kept:
            if token in SPECIAL_TOKENS:
                cells.append({"token": token, "value": value, "special": True,
                              "style": "background: #fff; color: #5c5f66; border: 1px dashed #d9dbe0"})
                continue
            red, green, blue = _TOWARDS if value >= 0 else _AWAY
            alpha = min(abs(value) / limit, 1.0)
            cells.append({"token": token, "value": value, "special": False,
                          "style": f"background: rgba({red}, {green}, {blue}, {alpha:.2f}); "
                                   f"color: {'#fff' if alpha > 0.6 else '#000'}"})
        row: dict[str, Any] = {
            "index": i, "embedding": embedding, "sum": float(sum(v for _, v in kept)), "cells": cells,
            "question_share": (float(result.question_share[i]) if result.question_share is not None else None)}
        if embedding:
            row.update(pred="", label="", target="", wrong=False)
        else:
            row.update(pred=result.class_names[result.predictions[i]] + _probability(result, i),
                       label=result.class_names[result.labels[i]],
                       target=result.class_names[result.targets[i]],
                       wrong=bool(result.predictions[i] != result.labels[i]))
        out.append(row)
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


def _partial(key: str, results: Sequence[Any], page: PageContext) -> Markup:
    template = _ENV.get_template(f"sections/{key}.html.j2")
    return Markup(template.render(results=results, untrusted=page.untrusted, palette=page.palette))  # noqa: S704


def render_explanations(results: Sequence[AttributionResult], page: PageContext) -> Markup:
    """Maps, column bars or token heat maps of each attribution result."""
    task = page.audit.model.task
    return _partial("explanations", [_explanation_view(e, page.audit.data.sensitive, task) for e in results], page)


def tradeoff_chart(table: GroupTable) -> dict[str, Any] | None:
    """Accuracy against disparity for each strategy of a mitigation table (inline SVG, numbered points)."""
    if table.kind != "strategy" or "accuracy" not in table.by_group:
        return None
    metrics = [m for m in ("demographic_parity_difference", "equalized_odds_difference") if m in table.by_group]
    if not metrics:
        return None
    points = [charts.Point(label=f"{strategy}, {metric.replace('_', ' ')}", x=table.by_group[metric][strategy],
                           y=table.by_group["accuracy"][strategy], series=metric.replace("_", " "), tag=str(i))
              for metric in metrics for i, strategy in enumerate(table.groups, start=1)]
    svg = charts.scatter_chart(points, x_label=f"disparity between {table.feature} groups (difference, 0 = none)",
                               y_label="accuracy (share correct)",
                               label=f"accuracy against disparity of each mitigation strategy over {table.feature}",
                               x_min=0.0)
    return {"svg": svg, "legend": list(enumerate(table.groups, start=1))}


def render_fairness(results: Sequence[FairnessResult], page: PageContext) -> Markup:
    """Per-group tables, disparities, rankings and the intersection heat map of each probe."""
    views = [
        {"probe": f.probe, "positive_class": f.positive_class, "rankings": f.rankings, "heatmap": _heatmap_view(f),
         "values": getattr(f, "values", {}),  # probes without group tables (embedding bias)
         "coverage": weat.coverage if (weat := getattr(f, "weat", None)) is not None else (),
         "tables": [_table_view(t) for t in (*f.tables, *((f.intersection,) if f.intersection else ()))],
         "tradeoffs": {t.feature: chart for t in f.tables if (chart := tradeoff_chart(t)) is not None}}
        for f in results
    ]
    return _partial("fairness", views, page)


def render_audit_page(audit: AuditResult, gates: Sequence[GateResult] | None = None) -> str:
    """The HTML page of one audit; ``gates`` (from ``xai check``) adds the gate table.

    Each non-empty section is drawn by the renderer of its result type (:mod:`xai.report._renderers`).
    """
    page = PageContext(audit=audit, untrusted=audit.untrusted(), palette=OKABE_ITO)
    return link_terms(_ENV.get_template("audit.html.j2").render(
        audit=audit,
        verdict=audit_verdict(audit, gates),
        headline=audit.headline(),
        card=audit.model.card,
        card_considerations=_card_considerations(audit.model.card),
        sections=render_sections(page),
        json_name=f"{audit.slug}.json",
        gates=None if gates is None else list(gates),
        glossary=glossary_html(),
        **_stamp(),
    ))


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
    return link_terms(_ENV.get_template("index.html.j2").render(
        audits=listed, counts=counts, show_gates=any(r["gates"] is not None for r in listed),
        glossary=glossary_html(), **_stamp()))


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
