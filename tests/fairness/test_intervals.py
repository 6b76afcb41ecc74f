"""Statistically honest headlines (issue 14, item 2).

Groups under ``min_group_size`` never set a disparity or a headline "worst" value, and
every disparity interval contains its estimate (the observed extreme pair's symmetric
bootstrap interval, :mod:`xai.fairness._intervals`). A simulation over seeded datasets
with known true rates checks containment (always) and coverage (near nominal).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from tests.audit._factory import audit
from xai.fairness import _engine, _intervals
from xai.fairness.group import group_table
from xai.fairness.metrics import bootstrap_intervals, group_frame
from xai.report.html import index_row, render_audit_page, render_index_rows

# ----------------------------------------------------------------------------- hand-worked


def test_extreme_pair_interval_by_hand():
    # three groups; c has too few rows to rank, so the pair is (b, a): 0.5 - 0.2 = 0.3
    estimates = {"selection_rate": np.array([0.2, 0.5, 0.9])}
    mask = np.array([True, True, False])
    pair = _intervals.extreme("demographic_parity_difference", estimates, {"selection_rate": 0.4}, mask)
    assert pair is not None and pair.groups(("a", "b", "c")) == ("b", "a")
    assert pair.value == pytest.approx(0.3)
    # five resamples (R, G): the pair's gap is b - a in each, whatever c does
    resampled = {"selection_rate": np.array([[0.20, 0.50, 0.0],
                                             [0.10, 0.60, 1.0],
                                             [0.30, 0.40, 1.0],
                                             [0.20, 0.50, 0.0],
                                             [0.25, 0.45, 1.0]])}
    gaps = _intervals.extreme_samples(pair, resampled, {"selection_rate": np.full(5, 0.4)})
    np.testing.assert_allclose(gaps, [0.3, 0.5, 0.1, 0.3, 0.2])
    # |gap - 0.3| = 0, .2, .2, 0, .1; sorted 0, 0, .1, .2, .2; the 80% quantile (linear) sits at
    # position 4 * 0.8 = 3.2, between .2 and .2: h = 0.2, so the interval is [0.1, 0.5]
    assert _intervals.symmetric_interval(pair.value, gaps, 0.8, bounds=(0.0, np.inf)) == pytest.approx((0.1, 0.5))
    # a percentile interval of max - min over all groups would sit at [0.4, 0.9], above the estimate
    spread = resampled["selection_rate"].max(1) - resampled["selection_rate"].min(1)
    assert np.quantile(spread, 0.1) > 0.3
    # clipped to the statistic's range; the estimate always stays inside
    assert _intervals.symmetric_interval(0.05, np.array([0.0, 0.4]), 0.95, bounds=(0.0, 1.0))[0] == 0.0
    assert _intervals.symmetric_interval(0.3, np.array([np.nan]), 0.95) != _intervals.symmetric_interval(
        0.3, np.array([0.3]), 0.95)  # no finite resample: no interval (NaN), not a point


def test_equalized_odds_pair_is_the_worse_of_its_two_rates():
    by_group = {"true_positive_rate": np.array([0.9, 0.5]), "false_positive_rate": np.array([0.1, 0.3])}
    overall = {"true_positive_rate": 0.7, "false_positive_rate": 0.2}
    pair = _intervals.extreme("equalized_odds_difference", by_group, overall, np.array([True, True]))
    assert (pair.metric, pair.high, pair.low) == ("true_positive_rate", 0, 1) and pair.value == pytest.approx(0.4)
    ratio = _intervals.extreme("equalized_odds_ratio", by_group, overall, np.array([True, True]))
    assert (ratio.metric, ratio.value) == ("false_positive_rate", pytest.approx(1 / 3))


def test_group_table_interval_is_the_bootstrap_of_the_fixed_pair():
    rng = np.random.default_rng(3)
    g = np.repeat(["a", "b", "c"], [300, 200, 3])
    p = (rng.random(len(g)) < np.select([g == "a", g == "b"], [0.3, 0.6], 1.0)).astype(int)
    y = (rng.random(len(g)) < 0.5).astype(int)
    table = group_table(y, p, g, "g", binary=True, n_boot=200, seed=9)
    assert table.small_groups == ("c",) and table.disparity_groups["demographic_parity_difference"] == ("b", "a")
    rates = {k: p[g == k].mean() for k in "ab"}
    assert table.disparities["demographic_parity_difference"] == pytest.approx(rates["b"] - rates["a"])
    # recompute independently from the same multinomial draws
    frame = group_frame(y_true=y, y_pred=p, sensitive_features={"g": g})
    draws = _engine.bootstrap_cells(frame.cells, n_boot=200, seed=9)  # (R, G, 4)
    with np.errstate(invalid="ignore"):  # the 3-row group is empty in some resamples
        sel = (draws[..., 1] + draws[..., 3]) / draws.sum(-1)
    gaps = sel[:, 1] - sel[:, 0]
    half = np.quantile(np.abs(gaps - (rates["b"] - rates["a"])), 0.95)
    lo, hi = table.disparity_intervals["demographic_parity_difference"]
    assert (lo, hi) == pytest.approx((rates["b"] - rates["a"] - half, rates["b"] - rates["a"] + half))
    # the public bootstrap_intervals ranks every group with rows unless told which
    every = bootstrap_intervals(frame, n_boot=200, seed=9, derived=["demographic_parity_difference"])
    lo_all, hi_all = every.derived["demographic_parity_difference"]
    assert lo_all <= frame.derived("demographic_parity_difference") <= hi_all


# ----------------------------------------------------------------------------- small groups


def test_a_group_of_three_rows_never_sets_the_headline():
    # 3 rows of group "tiny", all selected; the large groups differ by 0.1 in selection rate
    g = np.repeat(["big", "other", "tiny"], [100, 100, 3])
    p = np.concatenate([np.r_[np.ones(30), np.zeros(70)], np.r_[np.ones(40), np.zeros(60)], np.ones(3)]).astype(int)
    y = np.tile([0, 1], len(g))[:len(g)]
    table = group_table(y, p, g, "race", binary=True, n_boot=100)
    assert table.by_group["selection_rate"]["tiny"] == 1.0  # still shown per group, with its interval
    assert "tiny" in table.intervals["selection_rate"] and table.small_groups == ("tiny",)
    assert table.disparities["demographic_parity_difference"] == pytest.approx(0.1)  # not 1.0 - 0.3
    assert "tiny" not in table.disparity_groups["demographic_parity_difference"]
    assert table.four_fifths is not None and "tiny" not in (table.four_fifths.lowest_group,
                                                          table.four_fifths.highest_group)
    assert any("1 group too small to rank (< 30 rows: 'tiny' (3))" in w for w in table.warnings)
    head = audit(table).headline()
    assert head["worst_disparity"]["demographic_parity_difference"] == pytest.approx(0.1)
    assert head["too_small_to_rank"] == {"race": 1}
    document = audit(table).to_dict()
    assert document["fairness"][0]["tables"][0]["small_groups"] == ["tiny"]
    # the index and the page say so instead of showing the small group's gap
    index = render_index_rows([index_row(audit(table))])
    index = re.sub(r'<a class="term"[^>]*>([^<]*)</a>', r"\1", index)  # glossary links around terms
    assert "demographic parity difference: <b>0.100</b>" in index and "1 small group not ranked" in index
    page = render_audit_page(audit(table))
    assert "Too small to rank</th><td>1 group of race" in page and "(other vs big)" in page
    # equal accuracies (0.5 each): the gap is 0 between two different groups, with a real interval
    assert table.disparities["accuracy_difference"] == 0.0
    assert table.disparity_groups["accuracy_difference"] == ("big", "other")
    assert table.disparity_intervals["accuracy_difference"][1] > 0
    # with min_group_size lowered to 3 the same group is ranked, and it is the extreme
    ranked = group_table(y, p, g, "race", binary=True, n_boot=0, min_group_size=3)
    assert ranked.disparities["demographic_parity_difference"] == pytest.approx(0.7) and ranked.small_groups == ()


# ----------------------------------------------------------------------------- simulation

#: Groups of different sizes with known true TPRs t; "tiny" and "small" fall under 30 rows. FPR = t / 2 and
#: P(y = 1) = 0.4, so selection rate = 0.4 t + 0.6 t / 2 = 0.7 t and accuracy = 0.4 t + 0.6 (1 - t / 2) = 0.6 + 0.1 t.
_SIZES = {"A": 40, "B": 80, "C": 200, "D": 600, "small": 12, "tiny": 3}
_RATES = {"A": 0.30, "B": 0.40, "C": 0.45, "D": 0.60, "small": 0.0, "tiny": 1.0}


def _simulate(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    g = np.concatenate([[k] * n for k, n in _SIZES.items()])
    rate = np.array([_RATES[k] for k in g])
    y = (rng.random(len(g)) < 0.4).astype(int)
    p = (rng.random(len(g)) < np.where(y == 1, rate, rate / 2)).astype(int)
    score = np.clip(0.3 + 0.4 * rate + rng.normal(0.0, 0.15, len(g)), 0.0, 1.0)
    return y, p, g, score


def _contains(interval: tuple[float, float], value: float) -> bool:
    return interval[0] <= value <= interval[1]


def test_intervals_contain_their_estimate_and_cover_the_true_disparity():
    """400 seeded datasets: every interval contains its estimate; 95% intervals cover the truth in [0.88, 0.99].

    The true disparities are over the eligible groups A-D, D vs A: selection rate
    0.7 x (0.6 - 0.3), its ratio 0.3 / 0.6, equalized odds the TPR gap 0.6 - 0.3 (the
    FPR gap is half of it), accuracy 0.1 x 0.3. With 400 trials one binomial standard
    error of a 0.95 coverage is 0.011, so [0.88, 0.99] is about -6 and +4 of them; the
    seeds are fixed, so the numbers do not vary by run (measured: 0.93, 0.92, 0.91, 0.95).
    Coverage falls below nominal where the observed extreme is a near-tie chosen from
    noise (the equalized odds ratio here: TPR and FPR ratios are both 0.5, measured 0.82),
    which :mod:`xai.fairness._intervals` states; it is not asserted.
    """
    truth = {"demographic_parity_difference": 0.7 * 0.3, "demographic_parity_ratio": 0.5,
             "equalized_odds_difference": 0.3, "accuracy_difference": 0.1 * 0.3}
    rng = np.random.default_rng(14)
    trials = 400
    hits = dict.fromkeys(truth, 0)
    checked = 0
    for trial in range(trials):
        y, p, g, score = _simulate(rng)
        table = group_table(y, p, g, "g", binary=True, n_boot=300, seed=trial, scores=score)
        assert table.small_groups == ("small", "tiny")
        for name, interval in table.disparity_intervals.items():
            value = {**table.disparities, **table.ratios}[name]
            assert _contains(interval, value), (trial, name, value, interval)
            assert "small" not in table.disparity_groups[name] and "tiny" not in table.disparity_groups[name]
            checked += 1
        for metric, groups in table.intervals.items():
            for group, interval in groups.items():
                value = table.by_group[metric][group]
                if math.isfinite(interval[0]):
                    assert _contains(interval, value), (trial, metric, group, value, interval)
                    checked += 1
        for metric, interval in table.overall_intervals.items():
            assert _contains(interval, table.overall[metric]), (trial, metric)
        for name, value in truth.items():
            hits[name] += _contains(table.disparity_intervals[name], value)
    assert checked > trials * 40
    coverage = {name: hit / trials for name, hit in hits.items()}
    assert all(0.88 <= c <= 0.99 for c in coverage.values()), coverage
