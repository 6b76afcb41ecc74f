"""Slice discovery: hand-worked numbers, a naive reference, BH against scipy, planted and null benchmarks."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control
from typer.testing import CliRunner

from xai.audit import AuditSpec, DataSpec, GateSpec, ModelSpec, ProbeSpec
from xai.audit.gates import evaluate_gates
from xai.cli import app
from xai.errors import DataError, XaiError
from xai.fairness._planted import planted_slices, score_findings
from xai.fairness.slices import (
    SliceDiscovery,
    benjamini_hochberg,
    discover_slices,
    encode_columns,
    plan_blocks,
    slice_p_values,
)
from xai.report.slices import render_html

ALL = 10**7  # max_findings that lists every finding


def _phi_upper(z: float) -> float:
    """P(Z >= z) for a standard normal, from the error function (independent of scipy)."""
    return 0.5 * math.erfc(z / math.sqrt(2))


# ----------------------------------------------------------------------------- hand-worked


def _binomial_upper(x: int, n: int, p: float) -> float:
    """P(X >= x) for X ~ Bin(n, p), summed term by term."""
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(x, n + 1))


def test_hand_worked_two_groups():
    # 40 rows of group a with 20 errors (0.5), 160 rows of group b with 16 errors (0.1)
    y = np.zeros(200, dtype=int)
    pred = np.zeros(200, dtype=int)
    pred[:20] = 1  # a's errors
    pred[40:56] = 1  # b's errors
    group = np.array(["a"] * 40 + ["b"] * 160)
    found = discover_slices(y, pred, {"group": group}, min_gap=0.0, min_size=10, max_order=1)
    assert found.n_tested == 2 and found.count_significant == 2
    a = next(f for f in found.findings if f.description == "group = a")
    b = next(f for f in found.findings if f.description == "group = b")
    assert (a.size, a.value, a.rest_value, a.difference, a.trials, a.rest_trials) == (40, 0.5, 0.1, 0.4, 40, 160)
    # a: z-test at the null rate 0.1: se^2 = 0.09 / 40 + 0.09 / 160 = 0.0028125, z = 0.4 / 0.053033 = 7.5425,
    # p = 2 Phi(-7.54) ~ 4.6e-14; exact: 2 P(Bin(40, 0.1) >= 20) ~ 3.7e-10 -> the larger, the exact one
    z_a = 0.4 / math.sqrt(0.09 / 40 + 0.09 / 160)
    assert z_a == pytest.approx(7.5425, abs=1e-4)
    exact_a = 2 * _binomial_upper(20, 40, 0.1)
    assert exact_a > 2 * _phi_upper(z_a)
    assert a.p_value == pytest.approx(exact_a, rel=1e-9)
    # b: rest rate 0.5; z = 0.4 / sqrt(0.25 / 160 + 0.25 / 40) = 4.5255, p = 2 Phi(-4.5255) ~ 6.0e-6 (the larger)
    z_b = 0.4 / math.sqrt(0.25 / 160 + 0.25 / 40)
    assert b.p_value == pytest.approx(2 * _phi_upper(z_b), rel=1e-9)
    assert b.p_value == pytest.approx(6.03e-6, rel=1e-2)
    # Benjamini-Hochberg with m = 2: q_(1) = min(2 p_(1), p_(2)), q_(2) = p_(2)
    assert a.q_value == pytest.approx(min(2 * a.p_value, b.p_value), rel=1e-12)
    assert b.q_value == pytest.approx(b.p_value, rel=1e-12)
    # the interval null |gap| <= 0.1 for b: null rate 0.5 - 0.1 = 0.4, z = (0.4 - 0.1) / se
    gap = next(f for f in discover_slices(y, pred, {"group": group}, min_gap=0.1, min_size=10,
                                          max_order=1).findings if f.description == "group = b")
    z_gap = 0.3 / math.sqrt(0.4 * 0.6 / 160 + 0.25 / 40)
    assert gap.p_value == pytest.approx(2 * _phi_upper(z_gap), rel=1e-9)
    assert found.metrics()["count_significant"] == 2.0
    assert found.metrics()["max_abs_difference"] == pytest.approx(0.4)


def test_quantile_bins_and_descriptions():
    coded = encode_columns({"age": np.arange(100.0), "sex": ["F", "M"] * 50, "flag": [0, 1] * 50}, n_bins=4)
    age, sex, flag = coded
    assert age.levels == ("< 24.75", "in [24.75, 49.5)", "in [49.5, 74.25)", ">= 74.25")
    assert np.bincount(age.codes).tolist() == [25, 25, 25, 25]
    assert age.describe(1) == "age in [24.75, 49.5)"
    assert sex.levels == ("F", "M") and sex.describe(0) == "sex = F"
    assert flag.kind == "category" and flag.levels == ("0", "1")  # few values: a category, not bins


def test_missing_values_and_rare_levels_are_levels():
    values = pd.Series(["a"] * 50 + ["b"] * 30 + [None] * 10 + ["c", "d", "e", "f", "g"] * 2)
    (coded,) = encode_columns({"x": values}, max_levels=4)
    assert coded.levels == ("a", "b", "(missing)", "(other)")
    assert np.bincount(coded.codes).tolist() == [50, 30, 10, 10]


def test_a_value_holding_most_rows_is_a_bin_of_its_own():
    values = np.r_[np.zeros(900), np.arange(1.0, 101.0)]  # 90% zeros, like a capital gain
    (coded,) = encode_columns({"gain": values}, n_bins=4)
    assert coded.levels[0] == "< 1"  # exactly the zeros
    assert np.bincount(coded.codes).tolist()[0] == 900 and len(coded.levels) == 4


def test_redundant_slices_and_constant_columns_are_left_out():
    y = np.zeros(200, dtype=int)
    pred = np.zeros(200, dtype=int)
    pred[:20] = 1
    group = np.array(["a"] * 40 + ["b"] * 160)
    inner = np.array(["u"] * 40 + ["u", "v"] * 80)  # every row of a is u: "group = a & inner = u" is group a
    found = discover_slices(y, pred, {"group": group, "inner": inner, "always": ["k"] * 200}, min_gap=0.0,
                            min_size=10, max_findings=ALL)
    descriptions = {f.description for f in found.findings}
    assert "group = a" in descriptions and "group = a & inner = u" not in descriptions
    assert found.n_redundant >= 1
    assert found.columns == ("group", "inner")
    assert "not sliced (a single value or bin): always" in found.notes
    assert found.count_significant == len(found.findings)


def test_children_no_different_from_their_parent_are_pruned():
    rng = np.random.default_rng(5)
    n = 40_000
    a = rng.choice(["x", "y"], n)
    b = rng.choice(list("pqrs"), n)  # unrelated to the errors
    c = rng.choice(["u", "v"], n)
    y = rng.integers(0, 2, n)
    # a = x errs more (0.3 vs 0.1); within it, c = u errs even more (0.45): a real, more specific slice
    rate = np.where(a == "x", np.where(c == "u", 0.45, 0.15), 0.1)
    pred = np.where(rng.random(n) < rate, 1 - y, y)
    columns = {"a": a, "b": b, "c": c}
    pruned = discover_slices(y, pred, columns, max_order=2, max_findings=ALL)
    full = discover_slices(y, pred, columns, max_order=2, max_findings=ALL, prune=False)
    kept = {f.description for f in pruned.findings}
    assert {"a = x", "a = x & c = u"} <= kept
    assert not any(d.startswith("a = x & b = ") for d in kept)  # the noisy children of a = x
    assert any(f.description.startswith("a = x & b = ") for f in full.findings)
    assert pruned.count_significant + pruned.n_redundant == full.count_significant


# ----------------------------------------------------------------------------- reference


def _naive(y, pred, frame, *, min_size, min_gap, max_order):
    """Every slice by pandas boolean masks, one at a time: (description set, p, q, value, rest)."""
    wrong = (y != pred).astype(int)
    coded = encode_columns({c: frame[c] for c in frame.columns})
    rows = []
    for r in range(1, max_order + 1):
        for combo in itertools.combinations(range(len(coded)), r):
            for levels in itertools.product(*(range(len(coded[c].levels)) for c in combo)):
                mask = np.ones(len(y), bool)
                for c, lv in zip(combo, levels, strict=True):
                    mask &= coded[c].codes == lv
                n = int(mask.sum())
                if n < min_size or n == len(y):
                    continue
                x, rx = int(wrong[mask].sum()), int(wrong[~mask].sum())
                p = float(slice_p_values(np.array([x]), np.array([n]), np.array([rx]), np.array([len(y) - n]),
                                         min_gap)[0])
                label = " & ".join(coded[c].describe(lv) for c, lv in zip(combo, levels, strict=True))
                rows.append((label, p, x / n, rx / (len(y) - n)))
    p_values = np.array([r[1] for r in rows])
    q = false_discovery_control(p_values, method="bh")
    return rows, p_values, q


@pytest.mark.parametrize("block_cells", [None, 64, 1 << 20])
def test_equals_a_naive_slice_by_slice_search(block_cells):
    rng = np.random.default_rng(3)
    n = 3000
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "race": rng.choice(["a", "b", "c"], n, p=[.5, .3, .2]),
                          "age": rng.integers(18, 90, n), "region": rng.choice(list("nsew"), n)})
    y = rng.integers(0, 2, n)
    error = np.where((frame["sex"] == "F") & (frame["race"] == "c"), 0.4, 0.15)
    pred = np.where(rng.random(n) < error, 1 - y, y)
    found = discover_slices(y, pred, {c: frame[c] for c in frame.columns}, min_size=20, min_gap=0.0,
                            max_findings=ALL, block_cells=block_cells, prune=False)
    rows, p_values, q = _naive(y, pred, frame, min_size=20, min_gap=0.0, max_order=3)
    assert found.n_tested == len(rows)
    expected = {rows[i][0]: (q[i], rows[i][2], rows[i][3]) for i in np.flatnonzero(q <= 0.05)}
    assert {f.description for f in found.findings} == set(expected)
    assert found.count_significant == len(expected) > 0
    for f in found.findings:
        assert f.q_value == pytest.approx(expected[f.description][0], rel=1e-9)
        assert f.value == pytest.approx(expected[f.description][1], abs=1e-12)
        assert f.rest_value == pytest.approx(expected[f.description][2], abs=1e-12)
    assert "sex = F & race = c" in {f.description for f in found.findings}


def test_benjamini_hochberg_equals_scipy():
    rng = np.random.default_rng(0)
    for p in (rng.random(1000), rng.random(500) ** 8, np.array([0.0, 0.0, 1e-300, 0.5, 0.5, 1.0]),
              np.round(rng.random(300), 2)):  # ties
        np.testing.assert_allclose(benjamini_hochberg(p), false_discovery_control(p, method="bh"), rtol=1e-12)
    assert benjamini_hochberg(np.array([])).size == 0


def test_block_cover_contains_every_combination():
    levels = [2, 7, 3, 5, 4, 6, 2, 9, 3]
    for order in (1, 2, 3):
        blocks = plan_blocks(levels, order, cells=4, budget=2000)
        covered = {c for b in blocks for c in itertools.combinations(b, order)}
        assert covered == set(itertools.combinations(range(len(levels)), order))
        for block in blocks:  # within the budget unless one combination alone exceeds it
            assert len(block) == order or math.prod(levels[i] for i in block) * 4 <= 2000


# ----------------------------------------------------------------------------- planted and null


def test_planted_benchmark_recall_and_fdr():
    """20 attributes, 20 planted slices of 0.5% to 3% of 1M rows with a 5-point error-rate gap."""
    planted = planted_slices(1_000_000, n_attributes=20, n_planted=20, gap=0.05, seed=7)
    assert min(planted.shares) >= 0.004  # realised shares of the planted 0.5%..3%
    found = discover_slices(planted.y_true, planted.y_pred, planted.columns, alpha=0.05, min_gap=0.01,
                            max_findings=ALL)
    score = score_findings(found, planted)
    assert score["recall"] >= 0.95
    assert score["fdp"] <= 0.05


def test_false_discoveries_stay_controlled_on_null_data():
    """No planted effect: any finding is false; over 40 seeds the mean FDP (= share of runs with one) <= ~alpha."""
    fdp = []
    for seed in range(40):
        null = planted_slices(20_000, n_attributes=8, n_planted=0, seed=seed)
        found = discover_slices(null.y_true, null.y_pred, null.columns, alpha=0.05, min_gap=0.0,
                                max_findings=ALL)
        fdp.append(score_findings(found, null)["fdp"])
        assert found.n_tested > 500
    # E[FDP] <= 0.05 under the complete null; 5 of 40 runs or more would be P < 0.05 for a true 0.05
    assert np.mean(fdp) <= 0.1


def test_false_discovery_proportion_with_planted_slices_over_seeds():
    fdp = []
    for seed in range(12):
        planted = planted_slices(100_000, n_attributes=10, n_planted=5, gap=0.08, seed=100 + seed)
        found = discover_slices(planted.y_true, planted.y_pred, planted.columns, alpha=0.05, min_gap=0.01,
                                max_findings=ALL)
        fdp.append(score_findings(found, planted)["fdp"])
    assert np.mean(fdp) <= 0.08


# ----------------------------------------------------------------------------- options, metrics, report


def test_other_metrics_use_their_own_denominators():
    # false positive rate: only y = 0 rows count; slice a has FPR 0.5 over its 20 negatives
    y = np.array([0] * 20 + [1] * 20 + [0] * 80 + [1] * 80)
    pred = y.copy()
    pred[:10] = 1  # 10 false positives in a
    group = np.array(["a"] * 40 + ["b"] * 160)
    found = discover_slices(y, pred, {"g": group}, metrics=("false_positive_rate", "selection_rate"),
                            min_gap=0.0, min_size=10, max_order=1, max_findings=ALL)
    fpr = next(f for f in found.findings if f.metric == "false_positive_rate" and f.description == "g = a")
    assert (fpr.value, fpr.rest_value, fpr.trials, fpr.rest_trials) == (0.5, 0.0, 20, 80)
    assert set(found.n_significant) == {"false_positive_rate", "selection_rate"}
    assert found.metrics()["false_positive_rate.count_significant"] == found.n_significant["false_positive_rate"]


def test_bad_options_are_one_line_errors():
    y = np.zeros(10, int)
    with pytest.raises(XaiError, match="unknown slice metric for binary tasks"):
        discover_slices(y, y, {"g": ["a"] * 10}, metrics=("recall",))
    with pytest.raises(DataError, match="max_order"):
        discover_slices(y, y, {"g": ["a"] * 10}, max_order=4)
    with pytest.raises(DataError, match="has 3 rows"):
        discover_slices(y, y, {"g": ["a"] * 3})
    with pytest.raises(DataError, match="unknown slice metric 'bogus'"):
        SliceDiscovery.parse_options({"metrics": ["bogus"]})


def test_report_section_escapes_user_strings():
    group = np.array(["<script>alert(1)</script>"] * 40 + ["b"] * 160)
    y = np.zeros(200, int)
    pred = np.zeros(200, int)
    pred[:20] = 1
    html = render_html(discover_slices(y, pred, {"<b>col</b>": group}, min_size=10, max_order=1))
    assert "<script>" not in html and "<b>col</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;col&lt;/b&gt;" in html
    assert "style=" in html and "<section" in html


def test_to_dict_is_json_with_the_gate_metrics():
    planted = planted_slices(20_000, n_attributes=4, n_planted=1, gap=0.2, min_share=0.05, max_share=0.2, seed=1)
    found = discover_slices(planted.y_true, planted.y_pred, planted.columns)
    document = json.loads(json.dumps(found.to_dict()))
    assert document["metrics"]["count_significant"] == found.count_significant >= 1
    assert document["findings"][0]["description"] == found.findings[0].description


# ----------------------------------------------------------------------------- CLI and audit


@pytest.fixture(scope="module")
def predictions_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 20_000
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "age": rng.integers(18, 80, n),
                          "region": rng.choice(list("nsew"), n), "y": rng.integers(0, 2, n)})
    error = np.where((frame["sex"] == "F") & (frame["age"] >= 65), 0.4, 0.15)
    frame["p"] = np.where(rng.random(n) < error, 1 - frame["y"], frame["y"])
    path = tmp_path_factory.mktemp("slices") / "preds.parquet"
    frame.to_parquet(path)
    return path


def test_cli_prediction_path_finds_the_planted_slice(predictions_file, tmp_path):
    result = CliRunner().invoke(app, ["fairness", "--data", str(predictions_file), "--y-true", "y", "--y-pred", "p",
                                      "--sensitive", "sex", "--slices", "--slice-columns", "age,region",
                                      "--n-boot", "0", "--json", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    slices = document["slices"]
    assert slices["columns"] == ["sex", "age", "region"]
    top = slices["findings"][0]
    frame = pd.read_parquet(predictions_file)
    (age,) = encode_columns({"age": frame["age"]})
    assert top["conditions"] == [["sex", "F"], ["age", age.levels[-1]]]  # the oldest quartile: 64 or 65 and up
    assert top["value"] == pytest.approx(0.4, abs=0.03)
    page = json.loads((tmp_path / "fairness-predictions.json").read_text())
    assert page["metrics"]["fairness.slices.count_significant"] == slices["metrics"]["count_significant"]


@pytest.mark.parametrize(("args", "message"), [
    (["--slices", "--slice-columns", "nope"], "unknown column in preds.parquet 'nope'"),
    (["--slice-columns", "age"], "--slice-columns applies with --slices"),
    (["--slices", "--option", "max_order=5"], "slices: option max_order"),
])
def test_cli_bad_slice_input_is_exit_2(predictions_file, args, message):
    result = CliRunner().invoke(app, ["fairness", "--data", str(predictions_file), "--y-true", "y", "--y-pred", "p",
                                      "--sensitive", "sex", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_probe_in_an_audit_spec_is_gateable():
    from xai.audit.runner import run_audit

    spec = AuditSpec(title="slices of adult-mlp", model=ModelSpec(name="adult-mlp"),
                     data=DataSpec(name="adult", split="test", sensitive=["sex", "race"]), explain=[],
                     probe=[ProbeSpec(name="slices", options={"columns": ["age", "education_num", "marital_status"],
                                                              "max_order": 2})],
                     gate=[GateSpec(metric="slices.count_significant", op="<=", value=0)])
    audit = run_audit(spec, slug="slices")
    (found,) = audit.section("slices")
    assert found.columns == ("sex", "race", "age", "education_num", "marital_status")
    assert found.count_significant > 0  # a census model errs more in some slices than in others
    assert audit.metrics()["fairness.slices.count_significant"] == found.count_significant
    (gate,) = evaluate_gates(audit, spec.gate, None)
    assert not gate.passed and gate.value == found.count_significant
