from __future__ import annotations

import warnings

import fairlearn.metrics as fl
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
)

from xai.errors import DataError, UnknownNameError
from xai.fairness import metrics as M
from xai.fairness._engine import bootstrap_cells, count_cells, encode_groups

BINARY = {
    "count": fl.count,
    "accuracy": accuracy_score,
    "selection_rate": fl.selection_rate,
    "true_positive_rate": fl.true_positive_rate,
    "false_positive_rate": fl.false_positive_rate,
    "false_negative_rate": fl.false_negative_rate,
    "true_negative_rate": fl.true_negative_rate,
    "precision": precision_score,
    "balanced_accuracy": balanced_accuracy_score,
}
NAMED = ["demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
         "equalized_odds_ratio", "equal_opportunity_difference", "equal_opportunity_ratio"]


def _frame(metrics, y, p, sf):
    with warnings.catch_warnings():  # undefined rates: fairlearn and sklearn warn, then return 0
        warnings.simplefilter("ignore")
        return fl.MetricFrame(metrics=metrics, y_true=y, y_pred=p, sensitive_features=sf)


def _close(ours, theirs):
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs)), (ours, theirs)
    np.testing.assert_allclose(ours[~np.isnan(ours)], theirs[~np.isnan(theirs)], rtol=0, atol=1e-9)


@st.composite
def binary_data(draw):
    n = draw(st.integers(1, 60))
    ints = st.lists(st.integers(0, 1), min_size=n, max_size=n)
    y, p = np.array(draw(ints)), np.array(draw(ints))
    features = {"a": np.array(draw(st.lists(st.sampled_from("xyz"), min_size=n, max_size=n)))}
    if draw(st.booleans()):  # a second feature: intersections, some of them empty
        features["b"] = np.array(draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)))
    return y, p, pd.DataFrame(features)


@pytest.mark.slow  # ~15 MetricFrames per example
@settings(max_examples=30, deadline=None)
@given(binary_data())
def test_binary_metrics_equal_metricframe(data):
    y, p, sf = data
    ours = M.group_frame(y_true=y, y_pred=p, sensitive_features=sf, metrics=list(BINARY))
    theirs = _frame(BINARY, y, p, sf)
    for metric in BINARY:
        expected = theirs.by_group[metric].to_numpy(dtype=float)
        if metric == "count":  # fairlearn's count of an empty intersection is NaN, ours 0
            expected = np.nan_to_num(expected)
        _close(ours.values(metric), expected)
        _close(ours.overall[metric], theirs.overall[metric])
    for method in ("between_groups", "to_overall"):
        for metric in ("accuracy", "selection_rate", "precision", "balanced_accuracy"):
            _close(ours.difference(metric, method), theirs.difference(method=method)[metric])
            _close(ours.ratio(metric, method), theirs.ratio(method=method)[metric])
        for name in NAMED:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = getattr(fl, name)(y, p, sensitive_features=sf, method=method)
                if name == "equalized_odds_ratio":
                    expected = _nan_aware_eo_ratio(y, p, sf, method, expected)
            _close(getattr(M, name)(y_true=y, y_pred=p, sensitive_features=sf, method=method), expected)
    assert ours.groups == tuple(" x ".join(map(str, k if isinstance(k, tuple) else (k,)))
                                for k in theirs.by_group.index)


def _nan_aware_eo_ratio(y, p, sf, method, fairlearn_value):
    """fairlearn's equalized_odds_ratio, but with the undefined part skipped.

    fairlearn takes Python's ``min`` over [TPR ratio, FPR ratio], which returns NaN when
    the TPR ratio is NaN (every group's TPR is 0) whatever the FPR ratio; we skip an
    undefined part as pandas does everywhere else. Where fairlearn's value is defined
    the two agree (asserted here).
    """
    parts = _frame({"tpr": fl.true_positive_rate, "fpr": fl.false_positive_rate}, y, p, sf).ratio(method=method)
    expected = parts.min()  # pandas: NaN-skipping
    if not np.isnan(fairlearn_value):
        assert expected == pytest.approx(fairlearn_value, abs=1e-12)
    return expected


def test_equalized_odds_ratio_skips_an_undefined_tpr_ratio():
    # one row, y=0, pred=1: TPR 0 in every group -> TPR ratio 0/0; FPR ratio 1/1
    assert np.isnan(fl.equalized_odds_ratio([0], [1], sensitive_features=["x"]))
    assert M.equalized_odds_ratio(y_true=[0], y_pred=[1], sensitive_features=["x"]) == 1.0


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 80).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 4), min_size=n, max_size=n), st.lists(st.integers(0, 4), min_size=n, max_size=n),
    st.lists(st.sampled_from(["u", "v"]), min_size=n, max_size=n))))
def test_multiclass_accuracy_equals_metricframe(data):
    y, p, g = map(np.array, data)
    ours = M.group_frame(y_true=y, y_pred=p, sensitive_features=g, task="multiclass")
    theirs = _frame({"accuracy": accuracy_score, "count": fl.count}, y, p, g)
    _close(ours.values("accuracy"), theirs.by_group["accuracy"])
    _close(ours.values("count"), theirs.by_group["count"])
    _close(ours.difference("accuracy"), theirs.difference()["accuracy"])
    _close(ours.derived("accuracy_ratio"), theirs.ratio()["accuracy"])


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 50).flatmap(lambda n: st.tuples(
    st.lists(st.floats(-100, 100), min_size=n, max_size=n), st.lists(st.floats(-100, 100), min_size=n, max_size=n),
    st.lists(st.sampled_from(["u", "v", "w"]), min_size=n, max_size=n))))
def test_regression_errors_equal_metricframe(data):
    y, p, g = map(np.array, data)
    ours = M.group_frame(y_true=y, y_pred=p, sensitive_features=g, task="regression")
    theirs = _frame({"mean_absolute_error": mean_absolute_error, "mean_squared_error": mean_squared_error},
                    y, p, g)
    for metric in ("mean_absolute_error", "mean_squared_error"):
        np.testing.assert_allclose(ours.values(metric), theirs.by_group[metric], rtol=1e-9, atol=1e-9)
        assert ours.overall[metric] == pytest.approx(theirs.overall[metric], rel=1e-9, abs=1e-9)


def test_hand_worked_example_and_conventions():
    # group a: y=[1,1,0,0], pred=[1,0,1,0]; group b: y=[0,0,0], pred=[1,0,0] (no positives)
    y = np.array([1, 1, 0, 0, 0, 0, 0])
    p = np.array([1, 0, 1, 0, 1, 0, 0])
    g = np.array(["a"] * 4 + ["b"] * 3)
    frame = M.group_frame(y_true=y, y_pred=p, sensitive_features=g, metrics=list(BINARY), min_group_size=4)
    assert frame.by_group["selection_rate"] == {"a": 0.5, "b": pytest.approx(1 / 3)}
    assert frame.by_group["true_positive_rate"]["b"] == 0.0  # undefined: fairlearn reports 0
    assert frame.by_group["balanced_accuracy"]["b"] == pytest.approx(2 / 3)  # only the TNR is defined
    assert frame.by_group["precision"] == {"a": 0.5, "b": 0.0}
    assert frame.overall["accuracy"] == pytest.approx(4 / 7)
    assert any("'b' has 3 rows (< 4)" in w for w in frame.warnings)
    assert any("'b' has no positive labels" in w for w in frame.warnings)
    assert frame.derived("demographic_parity_difference") == pytest.approx(0.5 - 1 / 3)
    assert frame.derived("demographic_parity_ratio") == pytest.approx((1 / 3) / 0.5)
    rule = M.four_fifths(frame)
    assert (rule.passed, rule.lowest_group, rule.highest_group) == (False, "b", "a")
    assert rule.ratio == pytest.approx(2 / 3)


def test_four_fifths_rule_is_the_demographic_parity_ratio():
    rng = np.random.default_rng(1)
    y, g = rng.integers(0, 2, 500), rng.choice(["m", "f"], 500)
    p = (rng.random(500) < np.where(g == "m", 0.5, 0.42)).astype(int)
    rule = M.four_fifths_rule(y_true=y, y_pred=p, sensitive_features=g)
    ratio = fl.demographic_parity_ratio(y, p, sensitive_features=g)
    assert rule.ratio == pytest.approx(ratio, abs=1e-12)
    assert rule.passed == (ratio >= 0.8)


def test_empty_intersections_do_not_crash():
    sf = {"sex": np.array(["F", "F", "M"]), "race": np.array(["x", "y", "x"])}
    frame = M.group_frame(y_true=[1, 0, 1], y_pred=[1, 1, 0], sensitive_features=sf)
    assert frame.feature == "sex x race"
    assert frame.groups == ("F x x", "F x y", "M x x", "M x y")
    assert frame.by_group["count"]["M x y"] == 0
    assert np.isnan(frame.by_group["accuracy"]["M x y"])
    assert frame.difference("selection_rate") == 1.0  # the empty group is left out
    assert any("'M x y' is empty" in w for w in frame.warnings)
    assert M.bootstrap_intervals(frame, n_boot=50).by_group["accuracy"]["M x y"] != (0.0, 0.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"y_true": [0, 1, 2], "y_pred": [0, 1, 1]}, DataError, "y_true must be binary"),
        ({"y_true": [0.0, 1.0, np.nan], "y_pred": [0, 1, 1]}, DataError, "missing values"),
        ({"y_true": [0, 1, 1], "y_pred": [0, 1]}, DataError, "same number of rows"),
        ({"y_true": [0, 1, 1], "y_pred": [0, 1, 1], "metrics": ["f1"]}, UnknownNameError, "unknown metric 'f1'"),
        ({"y_true": [0, 1, 1], "y_pred": [0, 1, 1], "metrics": ["mean_squared_error"]}, DataError,
         "does not apply to binary"),
        ({"y_true": [0, 1, 1], "y_pred": [0, 1, 1], "sensitive_features": ["a", None, "b"]}, DataError,
         "missing values"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, error, message):
    kwargs.setdefault("sensitive_features", ["a", "a", "b"])
    with pytest.raises(error, match=message):
        M.group_frame(**kwargs)


def _simulate(rng, n=1000):
    """Two groups; group A: TPR .8, FPR .1; group B: TPR .5, FPR .5; P(y=1) = .4."""
    g = rng.integers(0, 2, n)
    y = (rng.random(n) < 0.4).astype(int)
    rate = np.where(y == 1, np.where(g == 0, 0.8, 0.5), np.where(g == 0, 0.1, 0.5))
    return y, (rng.random(n) < rate).astype(int), np.where(g == 0, "A", "B")


def test_bootstrap_intervals_cover_the_truth_at_the_nominal_rate():
    truth = {  # population values of the simulation
        ("selection_rate", "A"): 0.4 * 0.8 + 0.6 * 0.1,
        ("true_positive_rate", "B"): 0.5,
        ("accuracy", "A"): 0.4 * 0.8 + 0.6 * 0.9,
    }
    dp_truth = 0.5 - (0.4 * 0.8 + 0.6 * 0.1)
    rng = np.random.default_rng(2024)
    trials = 200
    hits = {key: 0 for key in [*truth, "dp"]}
    for trial in range(trials):
        y, p, g = _simulate(rng)
        frame = M.group_frame(y_true=y, y_pred=p, sensitive_features=g)
        iv = M.bootstrap_intervals(frame, n_boot=500, seed=trial, derived=["demographic_parity_difference"])
        for (metric, group), value in truth.items():
            lo, hi = iv.by_group[metric][group]
            hits[(metric, group)] += lo <= value <= hi
        lo, hi = iv.derived["demographic_parity_difference"]
        hits["dp"] += lo <= dp_truth <= hi
    tolerance = 3 * np.sqrt(0.95 * 0.05 / trials)  # 3 binomial standard errors
    for key, hit in hits.items():
        assert abs(hit / trials - 0.95) <= tolerance, (key, hit / trials)


def test_multinomial_bootstrap_matches_row_resampling():
    rng = np.random.default_rng(7)
    y, p, g = _simulate(rng, n=400)
    groups = encode_groups({"g": g})
    cells = count_cells(groups, y, p)
    reps = 2000
    fast = bootstrap_cells(cells, n_boot=reps, seed=1)  # (R, G, 4)
    naive = np.empty_like(fast)
    for r in range(reps):  # the textbook bootstrap: resample rows, recount
        rows = rng.integers(0, len(y), len(y))
        naive[r] = count_cells(encode_groups({"g": g[rows]}), y[rows], p[rows])
    for stat in (lambda c: (c[..., 1] + c[..., 3]) / c.sum(-1),  # selection rate per group
                 lambda c: c[..., 3] / (c[..., 2] + c[..., 3])):  # TPR per group
        a, b = stat(fast.astype(float)), stat(naive.astype(float))
        se = b.std(0) * np.sqrt(2 / reps)
        assert np.all(np.abs(a.mean(0) - b.mean(0)) < 4 * se)
        np.testing.assert_allclose(a.std(0), b.std(0), rtol=0.08)


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(0)
    y, p, g = _simulate(rng, n=300)
    frame = M.group_frame(y_true=y, y_pred=p, sensitive_features=g)
    one = M.bootstrap_intervals(frame, n_boot=200, seed=5, derived=["equalized_odds_difference"])
    two = M.bootstrap_intervals(frame, n_boot=200, seed=5, derived=["equalized_odds_difference"])
    other = M.bootstrap_intervals(frame, n_boot=200, seed=6, derived=["equalized_odds_difference"])
    assert one == two and one != other
    for metric in frame.metrics:
        for group in frame.groups:
            lo, hi = one.by_group[metric][group]
            assert lo <= hi
    with pytest.raises(DataError, match="n_boot"):
        M.bootstrap_intervals(frame, n_boot=0)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_calibration_error_equals_scikit_learn_calibration_curve(data):
    from sklearn.calibration import calibration_curve

    from xai.fairness.metrics import calibration_error

    n = data.draw(st.integers(2, 80))
    y = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    # scores on a coarse grid so some land exactly on bin edges (the lower bin takes them)
    score = np.array(data.draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))) / 20.0
    groups = np.array(data.draw(st.lists(st.sampled_from("ab"), min_size=n, max_size=n)))
    n_bins = data.draw(st.integers(1, 12))
    cal = calibration_error(y_true=y, y_score=score, sensitive_features=groups, n_bins=n_bins)

    def ece(yy, ss):
        if len(np.unique(yy)) < 2:  # calibration_curve needs both labels; compute by hand then
            edges = np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], ss)
            return sum(abs(ss[edges == b].sum() - yy[edges == b].sum()) for b in np.unique(edges)) / len(yy)
        prob_true, prob_pred = calibration_curve(yy, ss, n_bins=n_bins, strategy="uniform")
        counts = np.bincount(np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], ss), minlength=n_bins)
        counts = counts[counts > 0]
        return (counts * np.abs(prob_true - prob_pred)).sum() / counts.sum()

    assert cal.overall == pytest.approx(ece(y, score), abs=1e-12)
    for g in np.unique(groups):
        assert cal.by_group[g] == pytest.approx(ece(y[groups == g], score[groups == g]), abs=1e-12)
    present = [cal.by_group[g] for g in np.unique(groups)]
    assert cal.difference == pytest.approx(max(present) - min(present), abs=1e-12)


def test_calibration_bootstrap_matches_resampling_rows_and_errors_are_clear():
    from xai.errors import DataError
    from xai.fairness.metrics import calibration_error

    rng = np.random.default_rng(0)
    score = rng.uniform(size=3000)
    y = (rng.uniform(size=3000) < score ** 1.5).astype(int)  # over-confident scores: a real ECE
    groups = rng.choice(["a", "b"], size=3000)
    cal = calibration_error(y_true=y, y_score=score, sensitive_features=groups)
    by_group, overall, _ = cal.intervals(n_boot=400, seed=1)
    # the same symmetric interval (estimate -/+ the 95% quantile of |resample - estimate|) from
    # resampling rows, the slow way
    resampled = []
    for _ in range(400):
        idx = rng.integers(0, 3000, size=3000)
        resampled.append(calibration_error(y_true=y[idx], y_score=score[idx], sensitive_features=groups[idx]).overall)
    half = np.quantile(np.abs(np.array(resampled) - cal.overall), 0.95)
    assert overall == pytest.approx((cal.overall - half, cal.overall + half), abs=0.01)
    assert overall[0] < cal.overall < overall[1]
    assert all(lo < hi for lo, hi in by_group.values())
    with pytest.raises(DataError, match=r"probabilities in \[0, 1\]"):
        calibration_error(y_true=[0, 1], y_score=[0.2, 1.5], sensitive_features=["a", "b"])
