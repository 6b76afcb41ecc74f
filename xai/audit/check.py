"""Run one audit spec and judge its gates: the core of ``xai check`` and the pytest plugin."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xai.audit.gates import GateResult, evaluate_gates, load_baseline, write_baseline

if TYPE_CHECKING:  # annotations only: the renderers of checked audits import no torch
    import torch
    from rich.console import Console

    from xai.audit.result import AuditResult
    from xai.audit.spec import AuditSpec

__all__ = ["CheckedAudit", "FailedAudit", "check_spec", "judge", "run_specs_ray", "verdict_line"]


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
    return judge(result, spec, slug=slug, baselines_dir=baselines_dir, update_baseline=update_baseline)


def judge(result: AuditResult, spec: AuditSpec, *, slug: str, baselines_dir: str | Path = "reports/baselines",
          update_baseline: bool = False) -> CheckedAudit:
    """Evaluate ``spec``'s gates on an audit already run (writing its baseline first when asked)."""
    written = str(write_baseline(result, baselines_dir)) if update_baseline else None
    baseline = load_baseline(baselines_dir, slug) if any(g.regression for g in spec.gate) else None
    gates = evaluate_gates(result, spec.gate, baseline)
    return CheckedAudit(result=result, gates=tuple(gates), baseline_written=written)


@dataclass(frozen=True)
class FailedAudit:
    """An audit that raised instead of returning: its one-line error and the exit code it means.

    ``exit_code`` is the CLI edge's: 2 for bad input or environment (an :class:`XaiError`, an
    ``OSError``, a validation error), 3 for anything else (a bug).
    """

    slug: str
    spec_path: str
    message: str
    exit_code: int


def _failure(slug: str, spec_path: str, exc: BaseException) -> FailedAudit:
    from pydantic import ValidationError

    from xai.errors import XaiError

    if isinstance(exc, XaiError | OSError | ValidationError):
        return FailedAudit(slug, spec_path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 2)
    return FailedAudit(slug, spec_path, f"internal error: {type(exc).__name__}: {exc}", 3)


def _run_one(spec: AuditSpec, slug: str, spec_path: str, device: Any, zoo_dir: str | None,
             trust_pickle: bool) -> AuditResult | FailedAudit:
    """One audit in a Ray worker: its result, or its failure as data (an exception never crosses back)."""
    from xai.audit.runner import run_audit

    try:
        return run_audit(spec, slug=slug, spec_path=spec_path, device=device, zoo_dir=zoo_dir, console=None,
                         trust_pickle=trust_pickle)
    except Exception as exc:  # every way an audit fails is reported for this spec alone
        return _failure(slug, spec_path, exc)


def run_specs_ray(plan: Sequence[tuple[str, AuditSpec, str]], *, device: torch.device | None = None,
                  zoo_dir: str | Path | None = None, trust_pickle: bool = False,
                  on_done: Callable[[str, AuditResult | FailedAudit], None] | None = None
                  ) -> list[AuditResult | FailedAudit]:
    """Run each ``(slug, spec, spec_path)`` as a Ray task; results in plan order, failures as :class:`FailedAudit`.

    Uses the running Ray instance (``ray.init`` by the caller, or ``RAY_ADDRESS``) or starts a
    local one, quietly, and shuts down only one it started. Workers import the same ``xai``
    package as this process. A task that dies (a worker killed, out of memory) is a failure
    of that spec alone. Gates are judged by the caller, on this machine, with its baselines.
    """
    try:
        import ray
    except ImportError:
        from xai.errors import DataError

        raise DataError("--engine ray needs Ray: pip install 'xai-audit[ray]'") from None
    import logging

    started = not ray.is_initialized()
    if started:
        ray.init(logging_level=logging.ERROR, log_to_driver=False, include_dashboard=False,
                 configure_logging=True)
    try:
        package_root = str(Path(__file__).resolve().parents[2])  # the folder holding this xai package
        python_path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
        task = ray.remote(num_cpus=1, max_retries=0)(_run_one).options(
            runtime_env={"env_vars": {"PYTHONPATH": python_path}})
        refs = [task.remote(spec, slug, source, device, None if zoo_dir is None else str(zoo_dir), trust_pickle)
                for slug, spec, source in plan]
        index = {ref: i for i, ref in enumerate(refs)}
        out: list[AuditResult | FailedAudit | None] = [None] * len(refs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            i = index[done[0]]
            slug, _, source = plan[i]
            try:
                out[i] = ray.get(done[0])
            except Exception as exc:  # the worker itself died: this spec failed, the others go on
                out[i] = _failure(slug, source, exc)
            if on_done is not None:
                on_done(slug, out[i])  # type: ignore[arg-type]
        return out  # type: ignore[return-value]
    finally:
        if started:
            ray.shutdown()


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
