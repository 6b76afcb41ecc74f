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


def _row(gate: GateResult) -> str:
    mark = "✅ pass" if gate.passed else "❌ FAIL"
    delta = "–" if gate.delta is None else f"{gate.delta:+.4g}"
    return (f"| {mark} | {_cell(gate.name)} | `{_cell(gate.key or gate.metric)}` | {_num(gate.value)} "
            f"| {_cell(gate.op)} {_num(gate.threshold)} | {_num(gate.baseline)} | {delta} |")


def markdown_summary(checked: list[CheckedAudit], report: str | None = None) -> str:
    """One table per audit (gate, metric, value, bound, baseline, delta) and the verdict."""
    verdict = verdict_line(checked)
    lines = [f"## xai check: {'✅' if verdict.startswith('PASS') else '❌'} {_cell(verdict)}", ""]
    for audit in checked:
        result = audit.result
        status = "passed" if audit.passed else f"{len(audit.failed)} failed"
        lines += [f"### {_cell(result.title)} (`{_cell(result.slug)}`): {status}", ""]
        if not audit.gates:
            lines += ["_No gates in this spec._", ""]
            continue
        lines += ["| result | gate | metric | value | bound | baseline | delta |",
                  "|---|---|---|---:|---|---:|---:|"]
        lines += [_row(g) for g in audit.gates]
        lines.append("")
        lines += [f"- **{_cell(g.name)}**: {_cell(g.message)}" for g in audit.failed]
        if audit.failed:
            lines.append("")
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
