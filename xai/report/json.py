"""JSON renderer: the machine-readable truth behind every page."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from xai._results import null_non_finite

if TYPE_CHECKING:  # annotations only: the JSON renderer imports no torch
    from xai.audit.gates import GateResult
    from xai.audit.result import AuditResult


def dumps(document: Any, *, indent: int | None = None) -> str:
    """Serialise a JSON-ready document as strict JSON: NaN and +-inf (undefined numbers) become null."""
    return json.dumps(null_non_finite(document), indent=indent, allow_nan=False, ensure_ascii=False)



def audit_json(audit: AuditResult, gates: Sequence[GateResult] | None = None) -> str:
    """The whole audit as JSON text (with its gate verdicts under ``gates`` when given)."""
    from xai.audit.verdict import audit_verdict

    document = audit.to_dict()
    document["verdict"] = audit_verdict(audit, gates).to_dict()
    if gates is not None:
        document["gates"] = [g.to_dict() for g in gates]
    return dumps(document) + "\n"
