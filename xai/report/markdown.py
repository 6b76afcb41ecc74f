"""Markdown renderer: the gate summary for a CI job page (``$GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from xai._io import atomic_write_text
from xai._text import one_line
from xai.audit.check import CheckedAudit, verdict_line
from xai.audit.gates import GateResult

__all__ = ["append_step_summary", "markdown_summary", "write_summary"]


def _cell(text: str) -> str:
    """Markdown table cell: control sequences removed, pipes escaped, newlines flattened, HTML tags neutralised."""
    return (one_line(text).replace("\\", "\\\\").replace("|", "\\|")
            .replace("<", "&lt;").replace(">", "&gt;"))


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


_OPS = {"<=": "≤", ">=": "≥", "<": "<", ">": ">"}


def short_name(gate: GateResult) -> str:
    """The gate's name for a narrow table: the spec's ``name``, else the metric without its long prefix.

    A gate without a name is labelled ``metric op value``; the op and value have their own
    column, and a dotted metric (``fairness.group-metrics.race.accuracy_difference``) keeps its
    last two parts (``race accuracy_difference``). The full key goes in the details list.
    """
    if not gate.name.startswith(f"{gate.metric} {gate.op} "):  # a name the spec gave
        return gate.name
    parts = gate.metric.split(".")
    name = " ".join(parts[-2:]) if len(parts) > 2 else gate.metric
    return f"{name} (regression)" if gate.kind == "regression" else name


def _row(gate: GateResult) -> str:
    mark = "✅ pass" if gate.passed else "❌ FAIL"
    baseline = _num(gate.baseline)
    if gate.delta is not None:
        baseline += f" ({gate.delta:+.3g})"
    return (f"| {mark} | {_cell(short_name(gate))} | {_num(gate.value)} "
            f"| {_OPS.get(gate.op, _cell(gate.op))} {_num(gate.threshold)} | {baseline} |")


def _failed_first(gates: tuple[GateResult, ...] | list[GateResult]) -> list[GateResult]:
    return sorted(gates, key=lambda g: g.passed)  # stable: spec order within each verdict


def markdown_summary(checked: list[CheckedAudit], report: str | None = None) -> str:
    """The verdict, then one table per audit (failed audits and failed gates first).

    The table has one name column and short number columns so it fits a GitHub job page
    (about 1000 px); each gate's full metric key and message are in a details list below it.
    """
    verdict = verdict_line(checked)
    lines = [f"## xai check: {'✅' if verdict.startswith('PASS') else '❌'} {_cell(verdict)}", ""]
    for audit in sorted(checked, key=lambda c: c.passed):
        result = audit.result
        status = "passed" if audit.passed else f"{len(audit.failed)} of {len(audit.gates)} failed"
        lines += [f"### {'✅' if audit.passed else '❌'} {_cell(result.title)} (`{_cell(result.slug)}`): {status}", ""]
        if not audit.gates:
            lines += ["_No gates in this spec._", ""]
            continue
        gates = _failed_first(audit.gates)
        lines += ["| result | gate | value | bound | baseline (Δ) |",
                  "|---|---|---:|---:|---:|"]
        lines += [_row(g) for g in gates]
        lines.append("")
        lines += [f"- ❌ **{_cell(short_name(g))}**: {_cell(g.message)}" for g in audit.failed]
        if audit.failed:
            lines.append("")
        lines += ["<details><summary>Metric keys and messages</summary>", ""]
        lines += [f"- {'✅' if g.passed else '❌'} {_cell(short_name(g))}: `{_cell(g.key or g.metric)}`"
                  + (f" · {_cell(g.message)}" if g.passed else "") for g in gates]  # failures' messages are above
        lines += ["", "</details>", ""]
    if report:
        lines += [f"Report: `{_cell(report)}`", ""]
    return "\n".join(lines)


def write_summary(checked: list[CheckedAudit], path: str | Path, report: str | None = None) -> Path:
    """Write the Markdown summary atomically."""
    return atomic_write_text(path, markdown_summary(checked, report))


def append_step_summary(text: str) -> Path | None:
    """Append ``text`` to ``$GITHUB_STEP_SUMMARY`` when it is set (GitHub Actions)."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(text.rstrip("\n") + "\n\n")
    return Path(target)


def zoo_markdown(rows: list[dict[str, Any]]) -> str:
    """The README's zoo table, one row per entry (from ``xai.cli.zoo.zoo_rows``), numbers from the cards."""
    lines = ["| zoo entry | family | architecture and data | params | held-out metric | train s |",
             "|---|---|---|---:|---|---:|"]
    for r in rows:
        metric = (f"{r['metric']} {r['value']:.4f} (floor {r['floor']})" if r["value"] is not None
                  else f"not trained (floor {r['metric']} {r['floor']})")
        seconds = f"{r['train_seconds']:.1f}" if r["train_seconds"] is not None else "-"
        about = r["description"].replace("|", "\\|")
        lines.append(f"| `{r['name']}` | {r['family']} | {about} (`{r['dataset']}`) | {r['params']:,} "
                     f"| {metric} | {seconds} |")
    return "\n".join(lines) + "\n"
