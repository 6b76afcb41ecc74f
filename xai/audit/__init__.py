"""Audit specs, the runner, the metric namespace, gates and baselines."""

from typing import TYPE_CHECKING

from xai._lazy import attach, make_callable

if TYPE_CHECKING:
    from xai.audit.check import CheckedAudit, check_spec, verdict_line
    from xai.audit.gates import (
        Baseline,
        GateResult,
        baseline_path,
        evaluate_gate,
        evaluate_gates,
        load_baseline,
        write_baseline,
    )
    from xai.audit.metrics import audit_intervals, audit_metrics, resolve_metric
    from xai.audit.result import AuditResult, DataSummary, ModelSummary
    from xai.audit.runner import run_audit, sample_rows
    from xai.audit.spec import (
        AuditSpec,
        DataSpec,
        ExplainSpec,
        GateSpec,
        ModelSpec,
        PredictionsSpec,
        ProbeSpec,
        collect_spec_paths,
        default_specs,
        load_spec,
        parse_spec,
        safe_slug,
        spec_slugs,
    )

# name -> the module that defines it, imported on first use (importing this package is free)
_EXPORTS: dict[str, str] = {
    "CheckedAudit": "xai.audit.check",
    "check_spec": "xai.audit.check",
    "verdict_line": "xai.audit.check",
    "Baseline": "xai.audit.gates",
    "GateResult": "xai.audit.gates",
    "baseline_path": "xai.audit.gates",
    "evaluate_gate": "xai.audit.gates",
    "evaluate_gates": "xai.audit.gates",
    "load_baseline": "xai.audit.gates",
    "write_baseline": "xai.audit.gates",
    "audit_intervals": "xai.audit.metrics",
    "audit_metrics": "xai.audit.metrics",
    "resolve_metric": "xai.audit.metrics",
    "AuditResult": "xai.audit.result",
    "DataSummary": "xai.audit.result",
    "ModelSummary": "xai.audit.result",
    "run_audit": "xai.audit.runner",
    "sample_rows": "xai.audit.runner",
    "AuditSpec": "xai.audit.spec",
    "DataSpec": "xai.audit.spec",
    "ExplainSpec": "xai.audit.spec",
    "GateSpec": "xai.audit.spec",
    "ModelSpec": "xai.audit.spec",
    "PredictionsSpec": "xai.audit.spec",
    "ProbeSpec": "xai.audit.spec",
    "collect_spec_paths": "xai.audit.spec",
    "default_specs": "xai.audit.spec",
    "load_spec": "xai.audit.spec",
    "parse_spec": "xai.audit.spec",
    "safe_slug": "xai.audit.spec",
    "spec_slugs": "xai.audit.spec",
}
__getattr__, __dir__ = attach(__name__, _EXPORTS)
make_callable(__name__, "xai.api:audit")  # xai.audit(...) is the front door (xai/api.py)

__all__ = [
    "AuditResult",
    "AuditSpec",
    "Baseline",
    "CheckedAudit",
    "DataSpec",
    "DataSummary",
    "ExplainSpec",
    "GateResult",
    "GateSpec",
    "ModelSpec",
    "ModelSummary",
    "PredictionsSpec",
    "ProbeSpec",
    "audit_intervals",
    "audit_metrics",
    "baseline_path",
    "check_spec",
    "collect_spec_paths",
    "default_specs",
    "evaluate_gate",
    "evaluate_gates",
    "load_baseline",
    "load_spec",
    "parse_spec",
    "resolve_metric",
    "run_audit",
    "safe_slug",
    "sample_rows",
    "spec_slugs",
    "verdict_line",
    "write_baseline",
]
