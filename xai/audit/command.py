"""One command's results as an :class:`AuditResult`, so its page is an audit page like any other.

``xai dream``, ``xai invert`` and ``xai sanity`` run their method themselves (progress notes,
style transfer, a gallery of layers) and then wrap what they found here: the page goes
through the audit's report writer, so it leads with the verdict, carries the model card and
provenance, and is listed in the folder's index. Torch-free: the handle is only read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from xai.audit.result import AuditResult, DataSummary, ModelSummary
from xai.audit.spec import safe_slug

if TYPE_CHECKING:
    from xai._method import Result
    from xai.datasets import Dataset
    from xai.zoo import ModelHandle

__all__ = ["command_audit", "data_summary"]


def data_summary(data: Dataset, *, name: str | None = None) -> DataSummary:
    """What a command ran on: a dataset's name, split, row count and sha256 (no sensitive columns)."""
    return DataSummary(name=name or data.name, split=data.split, rows=len(data), sha256=data.sha256,
                       sensitive=())


def _params(module: Any) -> int:
    parameters = getattr(module, "parameters", None)  # an ONNX handle's forward callable has none
    return sum(p.numel() for p in parameters()) if callable(parameters) else 0


def command_audit(handle: ModelHandle, results: Sequence[Result], *, slug: str, title: str, data: DataSummary,
                  performance: Mapping[str, float] | None = None, notes: Sequence[str] = ()) -> AuditResult:
    """An audit of one command's ``results`` on ``handle`` (provenance: the first result's, wall time summed).

    Examples
    --------
    ``xai sanity lenet -m saliency -o reports`` ends with
    ``write_report([command_audit(handle, [result], slug=..., title=..., data=data_summary(rows))], out)``.
    """
    if not results:
        raise ValueError("a command audit needs at least one result")
    first = results[0].provenance
    provenance = dataclasses.replace(first, wall_seconds=round(sum(r.provenance.wall_seconds for r in results), 3))
    return AuditResult(
        slug=safe_slug(slug),
        title=title,
        spec_path="cli",
        model=ModelSummary(name=handle.name, source=handle.source, sha256=handle.sha256, task=handle.task,
                           modality=handle.modality, params=_params(handle.module), card=handle.card),
        data=data,
        performance=dict(performance or {}),
        results=tuple(results),
        provenance=provenance,
        notes=tuple(notes),
    )
