"""The gate table says what each bound is made of, and the numbers agree (issue 14, item 3)."""

from __future__ import annotations

import re

import pytest

from tests.audit._factory import audit, table
from xai.audit import GateSpec, evaluate_gates
from xai.audit.gates import Baseline
from xai.report.html import render_audit_page


def _bounds(page: str) -> list[tuple[str, float, str]]:
    """(op, bound, parts) of each gate row's Bound cell."""
    cells = re.findall(r'<td class="num">(&lt;=|&gt;=) ([0-9.]+)(?:<br><span class="muted">= ([^<]*)</span>)?</td>',
                       page)
    return [(op, float(bound), parts) for op, bound, parts in cells]


def test_regression_bound_is_baseline_plus_tolerance_and_the_half_width_only_where_there_is_one():
    base = Baseline(slug="toy", provenance={}, intervals={}, metrics={
        "fairness.group-metrics.sex.equalized_odds_difference": 0.10, "accuracy": 0.90})
    noisy = audit(table("sex", eo=0.12, disparity_intervals={"equalized_odds_difference": (0.10, 0.16)}))  # +-0.03
    plain = audit(table("sex", eo=0.12))  # no interval: the bound is baseline + tolerance, nothing more
    gates = [GateSpec(metric="equalized_odds_difference", op="<=", regression=True, tolerance=0.01),
             GateSpec(metric="accuracy", op=">=", regression=True, tolerance=0.02),
             GateSpec(metric="accuracy", op=">=", value=0.5)]
    for result, noise in ((noisy, 0.03), (plain, 0.0)):
        verdicts = evaluate_gates(result, gates, base)
        page = render_audit_page(result, verdicts)
        eo, acc, absolute = _bounds(page)
        assert eo[1] == pytest.approx(0.10 + 0.01 + noise) == pytest.approx(verdicts[0].threshold)
        if noise:
            assert eo[2] == "0.1 + 0.01 tolerance + 0.03 half-width"
        else:
            assert eo[2] == "0.1 + 0.01 tolerance (no interval)"
        assert acc[1] == pytest.approx(0.88) and acc[2] == "0.9 − 0.02 tolerance (no interval)"
        assert absolute == ("&gt;=", 0.5, "")  # an absolute gate's bound is the spec's value
        caption = re.search(r'<table class="gates">\s*<caption class="muted">(.*?)</caption>', page, re.S).group(1)
        caption = re.sub(r"<[^>]+>", "", caption)  # glossary links around terms
        assert "only where the metric has one" in caption
