from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, demographic_parity_ratio, equalized_odds_ratio, selection_rate

from xai.errors import DataError
from xai.fairness import create_probe, group_table
from xai.report.html import render_audit_page


def test_probe_adds_intervals_ratios_intersection_and_warnings(adult_mlp, adult_test):
    probe = create_probe("group-metrics", adult_mlp, n_boot=300, min_group_size=100)
    result = probe.probe(adult_test, sensitive=["sex", "race"], seed=1)
    y_pred = adult_mlp.predict(adult_test.x).argmax(1).numpy()
    y_true = adult_test.y.numpy()
    sex = result.tables[0]
    groups = adult_test.groups["sex"].to_numpy()
    assert sex.ratios["demographic_parity_ratio"] == pytest.approx(
        demographic_parity_ratio(y_true, y_pred, sensitive_features=groups), abs=1e-12)
    assert sex.ratios["equalized_odds_ratio"] == pytest.approx(
        equalized_odds_ratio(y_true, y_pred, sensitive_features=groups), abs=1e-12)
    assert sex.four_fifths.passed == (sex.ratios["demographic_parity_ratio"] >= 0.8)
    assert sex.n_boot == 300
    for metric in ("accuracy", "selection_rate"):
        for group in sex.groups:
            lo, hi = sex.intervals[metric][group]
            assert lo <= sex.by_group[metric][group] <= hi
    lo, hi = sex.disparity_intervals["demographic_parity_difference"]
    assert lo <= hi
    # the intersection: every sex x race combination, equal to MetricFrame over both columns
    inter = result.intersection
    assert inter.feature == "sex x race" and len(inter.groups) == 2 * 5
    frame = MetricFrame(metrics=selection_rate, y_true=y_true, y_pred=y_pred,
                        sensitive_features=adult_test.groups[["sex", "race"]])
    for (s, r), value in frame.by_group.items():
        assert inter.by_group["selection_rate"][f"{s} x {r}"] == pytest.approx(value, abs=1e-12)
    small = [g for g in inter.groups if inter.by_group["count"][g] < 100]
    assert small and all(any(f"'{g}'" in w for w in inter.warnings) for g in small)
    assert [t.feature for t in result.tables] == ["sex", "race"]  # the per-feature tables are unchanged


def test_single_feature_has_no_intersection_and_bad_option_is_named(adult_mlp, adult_test):
    result = create_probe("group-metrics", adult_mlp, n_boot=0).probe(adult_test, sensitive=["sex"])
    assert result.intersection is None and result.tables[0].intervals == {}
    with pytest.raises(DataError, match="group-metrics: unknown option 'nboot'; it takes sensitive, n_boot"):
        create_probe("group-metrics", adult_mlp, nboot=5).probe(adult_test, sensitive=["sex"])


def test_group_table_with_an_empty_intersection():
    y = np.array([1, 0, 1, 0, 1, 1])
    p = np.array([1, 1, 0, 0, 1, 0])
    groups = pd.DataFrame({"a": list("xxyyxx"), "b": list("uvuuuv")})
    table = group_table(y, p, groups, binary=True, n_boot=100, min_group_size=2)
    assert table.groups == ("x x u", "x x v", "y x u", "y x v")
    assert table.by_group["count"]["y x v"] == 0
    assert table.disparities["demographic_parity_difference"] == pytest.approx(1.0)
    assert any("'y x v' is empty" in w for w in table.warnings)


def test_html_shows_each_interval_that_is_in_the_json(adult_mlp, adult_test):
    from xai.audit import AuditSpec, DataSpec, ModelSpec, ProbeSpec, run_audit

    spec = AuditSpec(title="t", model=ModelSpec(name="adult-mlp"), data=DataSpec(sensitive=["sex", "race"]),
                     explain=[], probe=[ProbeSpec(name="group-metrics", options={"n_boot": 100})])
    audit = run_audit(spec, slug="t")
    page = render_audit_page(audit)
    table = audit.fairness[0].tables[0]
    lo, hi = table.intervals["accuracy"]["Female"]
    assert f"[{lo:.3f}, {hi:.3f}]" in page
    lo, hi = table.disparity_intervals["demographic_parity_difference"]
    assert f"[{lo:.3f}, {hi:.3f}]" in page
    assert "by sex x race" in page and "four-fifths rule" in page
    shown = table.intervals["accuracy"]["Female"]
    assert audit.to_dict()["fairness"][0]["tables"][0]["intervals"]["accuracy"]["Female"] == pytest.approx(list(shown))
