"""Terminal renderer: rich tables on stdout, the same numbers as the report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from xai._text import safe_text
from xai.audit.check import CheckedAudit

if TYPE_CHECKING:  # annotations only: the terminal renderer imports no torch
    from xai.audit.result import AuditResult
    from xai.audit.verdict import Verdict

_SHORT = {
    "accuracy_difference": "accuracy gap",
    "demographic_parity_difference": "DP difference",
    "equalized_odds_difference": "EO difference",
    "counterfactual_flip_rate": "counterfactual flips",
    "flip_rate_difference": "flip-rate gap",
    "calibration_error_difference": "ECE gap",
}


_STATUS = {"pass": "[green]✓ pass[/]", "fail": "[bold red]✗ FAIL[/]", "warn": "[yellow]⚠ review[/]"}


def audit_summary_table(audits: list[AuditResult], verdicts: Sequence[Verdict] | None = None) -> Table:
    """One row per audit: verdict, accuracy, explainer count, worst disparities, seconds."""
    table = Table(title="xai audit", title_justify="left")
    if verdicts is not None:
        table.add_column("verdict", no_wrap=True)
    # names and numbers never wrap; the disparities column wraps when the terminal is narrow
    table.add_column("audit", style="bold", no_wrap=True, min_width=max((len(a.slug) for a in audits), default=5))
    table.add_column("data", no_wrap=True)
    table.add_column("accuracy", justify="right", no_wrap=True, min_width=8)
    table.add_column("expl", justify="right", no_wrap=True, min_width=4)
    table.add_column("worst disparities")
    table.add_column("s", justify="right", no_wrap=True, min_width=5)
    for i, audit in enumerate(audits):
        head = audit.headline()
        worst = "\n".join(f"{safe_text(_SHORT.get(k, k.replace('_', ' ')))} {v:.3f}"
                          for k, v in head["worst_disparity"].items()) or "-"
        small = sum(head.get("too_small_to_rank", {}).values())
        if small:  # left out of the worst values above; say so rather than hide them
            worst += f"\n({small} small group{'s' if small != 1 else ''} not ranked)"
        table.add_row(
            *([_STATUS[verdicts[i].status]] if verdicts is not None else []),
            safe_text(audit.slug),
            safe_text(head["data"]),
            f"{head['accuracy']:.4f}" if head['accuracy'] is not None else "–",
            str(len(head["explainers"])),
            worst,
            f"{head['wall_seconds']:.1f}",
        )
    return table


def print_audit_summary(audits: list[AuditResult], index: str, console: Console,
                        verdicts: Sequence[Verdict] | None = None) -> None:
    """The summary table, each audit's verdict with its worst findings, and a line naming the report."""
    console.print(audit_summary_table(audits, verdicts))
    for i, audit in enumerate(audits):
        if verdicts is not None:
            verdict = verdicts[i]
            console.print(f"{_STATUS[verdict.status]} [bold]{safe_text(audit.slug)}[/]: {safe_text(verdict.summary)}")
            for finding in verdict.top(3):
                style = "red" if finding.severity == "fail" else ("yellow" if finding.severity == "warn" else "dim")
                console.print(f"  [{style}]- {safe_text(finding.text)}[/]")
        for note in audit.notes:
            console.print(f"[yellow]{safe_text(audit.slug)}: {safe_text(note)}[/]")
    console.print(f"Report: [bold]{safe_text(index)}[/] ({len(audits)} audit{'s' if len(audits) != 1 else ''})")


def gate_table(checked: list[CheckedAudit]) -> Table:
    """One row per gate: audit, result, gate, value, bound, baseline delta."""
    table = Table(title="xai check", title_justify="left")
    table.add_column("audit", style="bold", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("gate")
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("bound", justify="right", no_wrap=True)
    table.add_column("delta", justify="right", no_wrap=True)
    for audit in checked:
        if not audit.gates:
            table.add_row(safe_text(audit.result.slug), "[dim]no gates[/]", "", "", "", "")
        for gate in audit.gates:
            table.add_row(
                safe_text(audit.result.slug),
                "[green]pass[/]" if gate.passed else "[bold red]FAIL[/]",
                safe_text(gate.name),
                "-" if gate.value is None else f"{gate.value:.4g}",
                "-" if gate.threshold is None else f"{gate.op} {gate.threshold:.4g}",
                "-" if gate.delta is None else f"{gate.delta:+.4g}",
            )
    return table


def print_check_summary(checked: list[CheckedAudit], console: Console) -> None:
    """The gate table, the failed gates' messages, and the notes of each audit."""
    console.print(gate_table(checked))
    for audit in checked:
        for gate in audit.failed:
            console.print(f"[red]{safe_text(gate.audit)}: {safe_text(gate.name)}: {safe_text(gate.message)}[/]")
        for note in audit.result.notes:
            console.print(f"[yellow]{safe_text(audit.result.slug)}: {safe_text(note)}[/]")
        if audit.baseline_written:
            console.print(f"[dim]baseline written: {safe_text(audit.baseline_written)}[/]")


def _capabilities_text(caps: dict[str, Any]) -> str:
    """Tasks, modalities and needs in one line ("any task" when a method takes every one)."""
    from xai._method import ALL_MODALITIES, ALL_TASKS

    tasks = "any task" if set(caps["tasks"]) >= ALL_TASKS else ", ".join(caps["tasks"])
    modalities = "any input" if set(caps["modalities"]) >= ALL_MODALITIES else ", ".join(caps["modalities"])
    needs = [key.removeprefix("needs_") for key, value in caps.items() if key.startswith("needs_") and value]
    return "; ".join([tasks, modalities, *(["needs " + ", ".join(needs)] if needs else [])])


def _option_line(option: dict[str, Any]) -> str:
    """``name: type = default (allowed)``."""
    allowed = f" ({option['allowed']})" if option["allowed"] else ""
    return f"{option['name']}: {option['type']} = {option['default']!r}{allowed}"


def methods_table(methods: list[dict[str, Any]], title: str = "xai methods") -> Table:
    """One row per method (from :func:`xai.methods.list_methods`), readable at 80 columns.

    The first column holds the name and kind; the second the summary, what the method applies
    to, and one line per option.
    """
    table = Table(title=safe_text(title), title_justify="left", show_lines=True)
    table.add_column("method", no_wrap=True)
    table.add_column("summary, applies to, options (type = default (allowed))")
    for row in methods:
        star = " *" if row.get("default") else ""
        name = f"[bold]{safe_text(row['name'])}[/]{star}\n[dim]{row['kind']}[/]"
        applies = safe_text(_capabilities_text(row["capabilities"]))
        lines = [safe_text(row["summary"]), f"[cyan]applies to:[/] {applies}"]
        lines += [f"  {safe_text(_option_line(o))}" for o in row["options"]] or ["  [dim]no options[/]"]
        table.add_row(name, "\n".join(lines))
    return table


def print_methods(methods: list[dict[str, Any]], console: Console, model: str | None = None) -> None:
    """The methods table; with ``model``, the applicable ones, then the others with their reason."""
    if model is None:
        console.print(methods_table(methods))
        console.print("[dim]* run by an audit that names no method of its kind[/]")
        return
    applies = [m for m in methods if m.get("applies")]
    console.print(methods_table(applies, title=f"xai methods for {model}"))
    others = [m for m in methods if not m.get("applies")]
    if others:
        table = Table(title=safe_text(f"not applicable to {model}"), title_justify="left")
        table.add_column("kind", no_wrap=True)
        table.add_column("method", style="bold", no_wrap=True)
        table.add_column("why not")
        for row in others:
            table.add_row(row["kind"], safe_text(row["name"]), safe_text(row.get("why_not") or ""))
        console.print(table)
    console.print(f"[dim]{len(applies)} of {len(methods)} methods apply to {safe_text(model)}; "
                  "* run by an audit that names no method of its kind[/]")
