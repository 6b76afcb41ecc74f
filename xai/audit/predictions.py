"""Wrap a prediction-only fairness result as an :class:`AuditResult`, so it renders like any audit."""

from __future__ import annotations

from xai.audit.result import AuditResult, DataSummary, ModelSummary
from xai.fairness import FairnessResult
from xai.fairness.predictions import Predictions
from xai.fairness.stream import CountTable

__all__ = ["prediction_audit"]


def prediction_audit(data: Predictions | CountTable, result: FairnessResult, *, slug: str, title: str | None = None,
                     spec_path: str = "cli") -> AuditResult:
    """An audit page's worth of data for predictions read from a file or counted (no model, no explanations).

    ``title`` and ``spec_path`` name the spec of a ``[predictions]`` audit (``xai check``).
    """
    return AuditResult(
        slug=slug,
        title=title or f"group metrics of {result.model} in {data.name}",
        spec_path=spec_path,
        model=ModelSummary(name=result.model, source=str(getattr(data, "path", data.name)), sha256="",
                           task="binary-classification", modality="tabular", params=0, card=None),
        data=DataSummary(name=data.name, split="all", rows=data.rows, sha256=data.sha256,
                         sensitive=data.features),
        performance={"accuracy": data.accuracy},
        results=(result,),
        provenance=result.provenance,
        notes=("predictions audited without a model: no explanations",),
    )
