"""Views of a full zoo model card (:func:`xai.zoo._considerations.model_card`): Markdown, HTML and MCT JSON.

The card is a plain dict: ``card.json`` (what training wrote) plus ``considerations``
(intended use, users, out-of-scope uses, limitations, ethical considerations, trade-offs,
training and evaluation data; Mitchell et al. 2019) and ``group_results`` (per-group
numbers from the entry's audits). These functions read the dict only (no torch, no model).

:func:`card_mct` maps it onto Model Card Toolkit's JSON schema v0.0.2
(``model_details``, ``model_parameters``, ``quantitative_analysis``, ``considerations``);
that schema has no field for out-of-scope uses, so they are listed among the
limitations, each prefixed ``Out of scope:``.
"""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup, escape

__all__ = ["MCT_SCHEMA_VERSION", "card_markdown", "card_mct", "considerations_html", "render_html"]

MCT_SCHEMA_VERSION = "0.0.2"
#: Group metrics shown per group (in this order) when present.
_GROUP_METRICS = ("count", "accuracy", "selection_rate", "true_positive_rate", "false_positive_rate",
                  "calibration_error")


def _md(text: Any) -> str:
    """One line of user text made safe for a Markdown table or list (no pipes, no line breaks, no HTML)."""
    return (str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", " ").replace("\n", " "))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "undefined" if not math.isfinite(value) else (f"{value:.0f}" if value.is_integer() else f"{value:.4f}")
    return str(value)


def _risks(card: dict[str, Any]) -> list[dict[str, str]]:
    return [{"risk": str(r.get("risk", "")), "mitigation": str(r.get("mitigation", ""))}
            for r in card.get("considerations", {}).get("ethical_considerations", []) if isinstance(r, dict)]


def _group_columns(row: dict[str, Any]) -> list[str]:
    present = {m for values in row["groups"].values() for m in values}
    return [m for m in _GROUP_METRICS if m in present] + sorted(present - set(_GROUP_METRICS))


def card_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown: details, intended use, considerations, data, metrics, per-group results."""
    c = card.get("considerations", {})
    head = card.get("headline", {})
    lines = [f"# Model card: {_md(card.get('name', ''))}", "",
             _md(card.get("description", "")), "",
             "## Model details", "",
             f"- Architecture: {_md(card.get('architecture', ''))} ({card.get('params', 0):,} parameters), "
             f"family {_md(card.get('family', ''))}, task {_md(card.get('task', ''))}",
             f"- Trained: seed {card.get('seed', '')}, {card.get('train_seconds', '')} s on "
             f"{_md(card.get('train_device', ''))}; weights sha256 `{_md(card.get('weights_sha256', ''))}`",
             f"- Paper or source: {_md(card.get('paper', ''))}", "",
             "## Intended use", "", _md(c.get("intended_use", "")), ""]
    for title, key in (("Intended users", "users"), ("Out-of-scope uses", "out_of_scope"),
                       ("Limitations", "limitations"), ("Trade-offs", "tradeoffs")):
        lines += [f"## {title}", ""] + [f"- {_md(item)}" for item in c.get(key, [])] + [""]
    lines += ["## Ethical considerations", ""]
    lines += [f"- **Risk:** {_md(r['risk'])} **Mitigation:** {_md(r['mitigation'])}" for r in _risks(card)] + [""]
    lines += ["## Training data", "", _md(c.get("training_data", "")), "",
              "## Evaluation data", "", _md(c.get("evaluation_data", "")), "",
              "## Metrics (held-out)", "", "| metric | value |", "|---|---:|"]
    lines += [f"| {_md(k)} | {_fmt(v)} |" for k, v in card.get("metrics", {}).items()]
    if head:
        lines += ["", f"Headline: {_md(head.get('metric'))} = {_fmt(head.get('value'))} (floor {head.get('floor')})."]
    lines += ["", "## Per-group results", ""]
    rows = card.get("group_results", [])
    if not rows:
        lines += ["No audit of this entry with a committed baseline: no per-group results.", ""]
    for row in rows:
        columns = _group_columns(row)
        lines += [f"### {_md(row['feature'])} (audit `{_md(row['audit'])}`)", "",
                  "| group | " + " | ".join(_md(m) for m in columns) + " |",
                  "|---|" + "---:|" * len(columns)]
        for group, values in row["groups"].items():
            lines.append(f"| {_md(group)} | " + " | ".join(_fmt(values.get(m, "")) for m in columns) + " |")
        for name, value in row.get("disparities", {}).items():
            interval = row.get("intervals", {}).get(name)
            shown = f" [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else ""
            lines.append(f"\n- {_md(name)}: {_fmt(value)}{shown}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def card_mct(card: dict[str, Any]) -> dict[str, Any]:
    """The card in Model Card Toolkit's JSON schema v0.0.2 (only the schema's field names)."""
    c = card.get("considerations", {})
    paper = str(card.get("paper", ""))
    performance = [{"type": str(k), "value": float(v), "slice": "overall"}
                   for k, v in card.get("metrics", {}).items()
                   if isinstance(v, int | float) and math.isfinite(v)]
    for row in card.get("group_results", []):
        for group, values in row["groups"].items():
            for metric, value in values.items():
                if isinstance(value, int | float) and math.isfinite(value):
                    performance.append({"type": str(metric), "value": float(value),
                                        "slice": f"{row['feature']}={group}"})
        for name, value in row.get("disparities", {}).items():
            if isinstance(value, int | float) and math.isfinite(value):
                performance.append({"type": str(name), "value": float(value), "slice": str(row["feature"])})
    sensitive = sorted({str(row["feature"]) for row in card.get("group_results", [])})
    dataset: dict[str, Any] = {"name": str(card.get("dataset", ""))}
    training = {**dataset, "description": f"Training data: {c.get('training_data', '')}"}
    evaluation = {**dataset, "description": f"Evaluation data: {c.get('evaluation_data', '')}"}
    if sensitive:
        evaluation["sensitive"] = {"sensitive_data": sensitive}
    details: dict[str, Any] = {
        "name": str(card.get("name", "")),
        "overview": str(card.get("description", "")),
        "documentation": str(c.get("intended_use", "")),
        "version": {"name": f"seed {card.get('seed', '')}, weights sha256 {card.get('weights_sha256', '')}"},
    }
    if paper.startswith(("http://", "https://")):
        details["references"] = [{"reference": paper}]
    return {
        "schema_version": MCT_SCHEMA_VERSION,
        "model_details": details,
        "model_parameters": {
            "model_architecture": f"{card.get('architecture', '')} ({card.get('params', 0)} parameters)",
            "data": [training, evaluation],
            "input_format": str(card.get("task", "")),
            "output_format": ", ".join(map(str, card.get("classes", []))) or str(card.get("task", "")),
        },
        "quantitative_analysis": {"performance_metrics": performance},
        "considerations": {
            "users": [{"description": str(u)} for u in c.get("users", [])],
            "use_cases": [{"description": str(c.get("intended_use", ""))}] if c.get("intended_use") else [],
            "limitations": ([{"description": str(item)} for item in c.get("limitations", [])]
                            + [{"description": f"Out of scope: {item}"} for item in c.get("out_of_scope", [])]),
            "tradeoffs": [{"description": str(t)} for t in c.get("tradeoffs", [])],
            "ethical_considerations": [{"name": r["risk"], "mitigation_strategy": r["mitigation"]}
                                       for r in _risks(card)],
        },
    }


def considerations_html(c: dict[str, Any]) -> str:
    """Intended use, users, out-of-scope uses, limitations, trade-offs, risks and data as HTML (escaped)."""
    parts = [f"<h3>Intended use</h3><p>{escape(c.get('intended_use', ''))}</p>"]
    for title, key in (("Intended users", "users"), ("Out-of-scope uses", "out_of_scope"),
                       ("Limitations", "limitations"), ("Trade-offs", "tradeoffs")):
        items = "".join(f"<li>{escape(item)}</li>" for item in c.get(key, []))
        parts.append(f"<h3>{title}</h3><ul>{items}</ul>")
    risks = "".join(f"<li><strong>Risk:</strong> {escape(r['risk'])} <strong>Mitigation:</strong> "
                    f"{escape(r['mitigation'])}</li>" for r in _risks({"considerations": c}))
    parts.append(f"<h3>Ethical considerations</h3><ul>{risks}</ul>")
    parts.append(f"<h3>Training data</h3><p>{escape(c.get('training_data', ''))}</p>"
                 f"<h3>Evaluation data</h3><p>{escape(c.get('evaluation_data', ''))}</p>")
    return str(Markup("".join(parts)))


def render_html(card: dict[str, Any]) -> str:
    """The card's considerations and per-group results as an HTML ``<section>`` (every string escaped)."""
    parts = ['<section class="model-card">', f"<h2>Model card: {escape(card.get('name', ''))}</h2>",
             considerations_html(card.get("considerations", {}))]
    for row in card.get("group_results", []):
        columns = _group_columns(row)
        head = "".join(f"<th>{escape(m)}</th>" for m in columns)
        body = "".join(f"<tr><td>{escape(group)}</td>" + "".join(
            f'<td style="text-align:right">{escape(_fmt(values.get(m, "")))}</td>' for m in columns) + "</tr>"
            for group, values in row["groups"].items())
        parts.append(f"<h3>Per-group results: {escape(row['feature'])} (audit {escape(row['audit'])})</h3>"
                     f'<div style="overflow-x:auto"><table><thead><tr><th>group</th>{head}</tr></thead>'
                     f"<tbody>{body}</tbody></table></div>")
    parts.append("</section>")
    return str(Markup("".join(parts)))
