"""The drift metrics in the audit namespace (xai/audit/metrics.py) and gates on them, without a model."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tests.audit._factory import PROV, audit
from xai.audit.gates import evaluate_gates
from xai.audit.spec import GateSpec
from xai.explain.drift import DriftResult


def _drift(method: str, mass_moved: float) -> DriftResult:
    return DriftResult(
        method=method, model="m", baseline="b", samples=4, top_k=1, region="columns: sex",
        statistics={"spearman": 0.9, "topk_overlap": 0.8, "mass_moved": mass_moved, "mass_share": math.nan},
        intervals={"spearman": (0.85, 0.95), "topk_overlap": (0.7, 0.9), "mass_moved": (mass_moved - 0.01,
                                                                                         mass_moved + 0.01),
                   "mass_share": (math.nan, math.nan)},
        per_sample={}, mean_magnitude=np.ones(2), baseline_mean_magnitude=np.ones(2), options={}, provenance=PROV,
        feature_names=("age", "sex"))


def test_drift_statistics_are_named_drift_method_statistic_with_their_intervals():
    result = dataclasses.replace(audit(), results=(_drift("saliency", 0.2), _drift("saliency", 0.0)))
    metrics = result.metrics()
    assert metrics["drift.saliency.mass_moved"] == 0.2
    assert metrics["drift.saliency-2.mass_moved"] == 0.0  # the same explainer twice: numbered as elsewhere
    assert "drift.saliency.mass_share" not in metrics  # undefined statistics are left out
    assert result.metric_intervals()["drift.saliency.mass_moved"] == (0.2 - 0.01, 0.2 + 0.01)
    assert result.to_dict()["drift"][0]["baseline"] == "b"
    assert result.section("drift") == result.results


def test_the_audit_page_draws_the_drift_section():
    from xai.report.html import render_audit_page

    page = render_audit_page(dataclasses.replace(audit(), results=(_drift("saliency", 0.2),)))
    assert "Explanation drift" in page and "drift.saliency.mass_moved" in page


def test_a_drift_gate_fails_a_model_whose_mass_moved():
    moved = dataclasses.replace(audit(), results=(_drift("integrated-gradients", 0.15),))
    kept = dataclasses.replace(audit(), results=(_drift("integrated-gradients", 0.01),))
    gates = [GateSpec(metric="drift.integrated-gradients.mass_moved", op="<=", value=0.05),
             GateSpec(metric="spearman", op=">=", value=0.88)]  # a short name reaches drift too
    assert [g.passed for g in evaluate_gates(moved, gates)] == [False, True]
    assert [g.passed for g in evaluate_gates(kept, gates)] == [True, True]
