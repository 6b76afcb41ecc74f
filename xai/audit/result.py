"""What one audit found: an :class:`AuditResult` holds a tuple of method results.

Torch-free: the gates, the renderers and ``xai check``'s re-rendering read results, they
never run a model. Each result finds its page section, JSON key and gate namespace
through :data:`xai._results.RESULT_SECTIONS`, by its type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xai._provenance import Provenance
from xai._results import RESULT_SECTIONS, section_of, to_jsonable
from xai.audit.metrics import audit_intervals, audit_metrics

if TYPE_CHECKING:
    from xai._method import Result
    from xai.explain import AttributionResult
    from xai.explain.dream import DreamResult
    from xai.explain.inversion import InversionResult
    from xai.explain.sanity import SanityResult
    from xai.fairness import FairnessResult

__all__ = ["AuditResult", "DataSummary", "ModelSummary"]


@dataclass(frozen=True)
class ModelSummary:
    """What was audited."""

    name: str
    source: str
    sha256: str
    task: str
    modality: str
    params: int
    card: dict[str, Any] | None


@dataclass(frozen=True)
class DataSummary:
    """On which data."""

    name: str
    split: str
    rows: int
    sha256: str
    sensitive: tuple[str, ...]


@dataclass(frozen=True)
class AuditResult:
    """Everything one audit found; the JSON of a report page is this, serialised.

    ``results`` holds every method's result in run order; :meth:`section` (and the
    ``explanations`` / ``fairness`` / ... shortcuts) select them by type.
    """

    slug: str
    title: str
    spec_path: str
    model: ModelSummary
    data: DataSummary
    performance: dict[str, float]
    results: tuple[Result, ...]
    provenance: Provenance
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for result in self.results:
            section_of(result)  # a result with no section would vanish from the page and the gates

    def section(self, key: str) -> tuple[Any, ...]:
        """The results that go into section ``key`` (``"explanations"``, ``"fairness"``, ...), in run order."""
        return tuple(r for r in self.results if section_of(r).key == key)

    @property
    def explanations(self) -> tuple[AttributionResult, ...]:
        """Attribution results."""
        return self.section("explanations")

    @property
    def fairness(self) -> tuple[FairnessResult, ...]:
        """Probe results."""
        return self.section("fairness")

    @property
    def sanity(self) -> tuple[SanityResult, ...]:
        """Sanity-check results."""
        return self.section("sanity")

    @property
    def dreams(self) -> tuple[DreamResult, ...]:
        """Activation-maximisation results."""
        return self.section("dreams")

    @property
    def inversions(self) -> tuple[InversionResult, ...]:
        """Feature-inversion results."""
        return self.section("inversions")

    def untrusted(self) -> dict[str, str]:
        """Methods whose sanity check failed on this model, with the reason."""
        return {s.method: str(s.verdict) for s in self.sanity if not s.verdict.trustworthy}

    def headline(self) -> dict[str, Any]:
        """The numbers the terminal and the index show for this audit."""
        worst: dict[str, float] = {}
        too_small: dict[str, int] = {}  # groups under min_group_size: shown, never a "worst" (not in disparities)
        for result in self.fairness:
            for table in result.tables:
                if table.kind == "strategy":  # a what-if table (mitigation), not a gap of this model
                    continue
                if getattr(table, "small_groups", ()):
                    too_small[table.feature] = max(too_small.get(table.feature, 0), len(table.small_groups))
                for name, value in table.disparities.items():
                    if math.isfinite(value):  # undefined (a feature with one group) is not a gap
                        worst[name] = max(worst.get(name, float("-inf")), value)
        return {
            "slug": self.slug,
            "title": self.title,
            "model": self.model.name,
            "data": f"{self.data.name}:{self.data.split}" if self.data.split else self.data.name,
            "rows": self.data.rows,
            "accuracy": self.performance.get("accuracy"),
            "explainers": [e.method for e in self.explanations],
            "untrusted": self.untrusted(),
            "probes": sorted({f.probe for f in self.fairness}),
            "worst_disparity": worst,
            "too_small_to_rank": too_small,
            "wall_seconds": self.provenance.wall_seconds,
        }

    def metrics(self) -> dict[str, float]:
        """Every named scalar of this audit, flat (what gates and baselines address).

        See :mod:`xai.audit.metrics` for the names.
        """
        return audit_metrics(self)

    def metric_intervals(self) -> dict[str, tuple[float, float]]:
        """Bootstrap intervals ``(low, high)`` of the metrics that have one, by the same names."""
        return audit_intervals(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the whole audit: one list per section, each result's own ``to_dict()``."""
        out: dict[str, Any] = {
            "slug": self.slug, "title": self.title, "spec_path": self.spec_path,
            "model": to_jsonable(self.model), "data": to_jsonable(self.data),
            "performance": to_jsonable(self.performance),
        }
        for section in RESULT_SECTIONS:
            out[section.key] = [r.to_dict() for r in self.section(section.key)]
        out["provenance"] = to_jsonable(self.provenance)
        out["notes"] = list(self.notes)
        out["headline"] = to_jsonable(self.headline())
        metrics = self.metrics()
        out["metrics"] = to_jsonable(metrics)
        out["metric_intervals"] = to_jsonable(audit_intervals(self, metrics))
        return out
