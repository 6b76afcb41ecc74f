"""JSON renderer: the machine-readable truth behind every page."""

from __future__ import annotations

import json
from typing import Any

from xai.audit.runner import AuditResult


def dumps(document: Any, *, indent: int | None = None) -> str:
    """Serialise a JSON-ready document (NaN is refused: the converters map it to null)."""
    return json.dumps(document, indent=indent, allow_nan=False, ensure_ascii=False)


def audit_json(audit: AuditResult) -> str:
    """The whole audit as JSON text."""
    return dumps(audit.to_dict()) + "\n"
