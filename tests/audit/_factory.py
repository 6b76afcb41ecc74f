"""Hand-built audit results with known numbers (no model runs)."""

from __future__ import annotations

import numpy as np

from xai._provenance import Provenance
from xai.audit import AuditResult, DataSummary, ModelSummary
from xai.explain import AttributionResult
from xai.fairness import FairnessResult, GroupTable

PROV = Provenance(model_sha256="m" * 64, data_sha256="d" * 64, seed=0, wall_seconds=1.0, device="cpu")


def table(feature: str, eo: float, dp: float = 0.1, intervals: dict[str, dict[str, tuple[float, float]]] | None = None,
          overall_intervals: dict[str, tuple[float, float]] | None = None,
          disparity_intervals: dict[str, tuple[float, float]] | None = None) -> GroupTable:
    """Two groups with known numbers; intervals shaped as the engine makes them (by group, overall, disparity)."""
    by_group = {"accuracy": {"a": 0.9, "b": 0.8}, "count": {"a": 10.0, "b": 20.0}}
    return GroupTable(feature=feature, groups=("a", "b"), by_group=by_group,
                      overall={"accuracy": 0.85, "count": 30.0},
                      disparities={"equalized_odds_difference": eo, "demographic_parity_difference": dp},
                      intervals=intervals or {}, overall_intervals=overall_intervals or {},
                      disparity_intervals=disparity_intervals or {})


def attribution(delta: np.ndarray | None) -> AttributionResult:
    n = 3 if delta is None else len(delta)
    return AttributionResult(
        method="integrated-gradients", model="m", modality="tabular",
        inputs=np.zeros((n, 2), np.float32), attributions=np.zeros((n, 2), np.float32),
        targets=np.zeros(n, np.int64), predictions=np.zeros(n, np.int64), labels=np.zeros(n, np.int64),
        class_names=("no", "yes"), options={"steps": 8}, provenance=PROV, convergence_delta=delta)


def audit(*tables: GroupTable, accuracy: float = 0.9, delta: np.ndarray | None = None,
          slug: str = "toy", title: str = "Toy audit") -> AuditResult:
    fairness = (FairnessResult(probe="group-metrics", model="m", dataset="toy:test",
                               metric_names=("accuracy", "count"), tables=tables, provenance=PROV),) if tables else ()
    return AuditResult(
        slug=slug, title=title, spec_path=f"audits/{slug}.toml",
        model=ModelSummary(name="m", source="test", sha256="m" * 64, task="binary-classification",
                           modality="tabular", params=1, card=None),
        data=DataSummary(name="toy", split="test", rows=30, sha256="d" * 64, sensitive=("sex",)),
        performance={"accuracy": accuracy},
        results=((attribution(delta),) if delta is not None else ()) + fairness,
        provenance=PROV,
    )
