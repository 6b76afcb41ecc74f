"""Audit specs, the runner, and (later) gates and baselines."""

from xai.audit.runner import AuditResult, DataSummary, ModelSummary, run_audit, sample_rows
from xai.audit.spec import (
    AuditSpec,
    DataSpec,
    ExplainSpec,
    ModelSpec,
    ProbeSpec,
    collect_spec_paths,
    default_specs,
    load_spec,
    parse_spec,
)

__all__ = [
    "AuditResult",
    "AuditSpec",
    "DataSpec",
    "DataSummary",
    "ExplainSpec",
    "ModelSpec",
    "ModelSummary",
    "ProbeSpec",
    "collect_spec_paths",
    "default_specs",
    "load_spec",
    "parse_spec",
    "run_audit",
    "sample_rows",
]
