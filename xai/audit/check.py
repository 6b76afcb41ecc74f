"""Run one audit spec and judge its gates: the core of ``xai check`` and the pytest plugin."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xai.audit.gates import GateResult, evaluate_gates, load_baseline, write_baseline

if TYPE_CHECKING:  # annotations only: the renderers of checked audits import no torch
    import torch
    from rich.console import Console

    from xai.audit.result import AuditResult
    from xai.audit.spec import AuditSpec

__all__ = ["CheckedAudit", "check_spec", "verdict_line"]


@dataclass(frozen=True)
class CheckedAudit:
    """An audit result with its gate verdicts (and the baseline written, if asked)."""

    result: AuditResult
    gates: tuple[GateResult, ...]
    baseline_written: str | None = None

    @property
    def passed(self) -> bool:
        """Whether every gate passed (an audit without gates passes)."""
        return all(g.passed for g in self.gates)

    @property
    def failed(self) -> list[GateResult]:
        """The gates that failed."""
        return [g for g in self.gates if not g.passed]


def check_spec(
    spec: AuditSpec,
    *,
    slug: str,
    spec_path: str = "",
    baselines_dir: str | Path = "reports/baselines",
    update_baseline: bool = False,
    device: torch.device | None = None,
    zoo_dir: str | Path | None = None,
    console: Console | None = None,
    trust_pickle: bool = False,
) -> CheckedAudit:
    """Run ``spec`` and evaluate its gates against ``<baselines_dir>/<slug>.json``.

    With ``update_baseline`` the audit's metrics are written as the new baseline first
    (on purpose only: nothing else ever writes a baseline), so regression gates compare
    with it.
    """
    from xai.audit.runner import run_audit  # the runner imports torch and every method

    result = run_audit(spec, slug=slug, spec_path=spec_path, device=device, zoo_dir=zoo_dir,
                       console=console, trust_pickle=trust_pickle)
    written = str(write_baseline(result, baselines_dir)) if update_baseline else None
    baseline = load_baseline(baselines_dir, slug) if any(g.regression for g in spec.gate) else None
    gates = evaluate_gates(result, spec.gate, baseline)
    return CheckedAudit(result=result, gates=tuple(gates), baseline_written=written)


def verdict_line(checked: list[CheckedAudit]) -> str:
    """The one-line verdict: PASS/FAIL, gate counts, and the failed gates."""
    gates = [g for c in checked for g in c.gates]
    failed = [g for g in gates if not g.passed]
    audits = f"{len(checked)} audit{'s' if len(checked) != 1 else ''}"
    if not failed:
        return f"PASS: {len(gates)} gate{'s' if len(gates) != 1 else ''} passed across {audits}"
    names = "; ".join(f"{g.audit}: {g.name}" for g in failed[:3])
    more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
    return f"FAIL: {len(failed)} of {len(gates)} gates failed across {audits} ({names}{more})"
