"""JSON renderer: the machine-readable truth behind every page."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from xai.audit.runner import AuditResult

if TYPE_CHECKING:
    from xai.audit.gates import GateResult


def dumps(document: Any, *, indent: int | None = None) -> str:
    """Serialise a JSON-ready document as strict JSON: NaN and +-inf (undefined numbers) become null."""
    return json.dumps(_null_non_finite(document), indent=indent, allow_nan=False, ensure_ascii=False)


def _null_non_finite(value: Any) -> Any:
    # JSON has no NaN or Infinity; a number without a value is a missing one (null)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _null_non_finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_null_non_finite(v) for v in value]
    return value


def audit_json(audit: AuditResult, gates: Sequence[GateResult] | None = None) -> str:
    """The whole audit as JSON text (with its gate verdicts under ``gates`` when given)."""
    document = audit.to_dict()
    if gates is not None:
        document["gates"] = [g.to_dict() for g in gates]
    return dumps(document) + "\n"
