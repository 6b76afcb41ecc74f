"""Audit specs, the runner, the metric namespace, gates and baselines."""

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
from xai.audit.runner import AuditResult, DataSummary, ModelSummary, run_audit, sample_rows
from xai.audit.spec import (
    AuditSpec,
    DataSpec,
    ExplainSpec,
    GateSpec,
    ModelSpec,
    ProbeSpec,
    collect_spec_paths,
    default_specs,
    load_spec,
    parse_spec,
    safe_slug,
    spec_slugs,
)

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
