"""Validation at the edge of the fairness and embedding-bias inputs (issue 17).

Bad input is a one-line :class:`DataError`; a legitimately degenerate result (one
group, a threshold with every row on one side, zero-spread WEAT associations) is
flagged as undefined (NaN in Python, null in JSON) with a warning, never a silent 0.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from xai._provenance import Provenance
from xai.audit.gates import evaluate_gate
from xai.audit.metrics import audit_metrics, undefined_metrics
from xai.audit.spec import GateSpec
from xai.datasets import WordVectors
from xai.errors import DataError
from xai.fairness import FairnessResult, _engine
from xai.fairness import metrics as M
from xai.fairness.direct_bias import read_word_pairs
from xai.fairness.embedding import (
    MAX_PERMUTATIONS,
    MAX_WORD_FILE_BYTES,
    MAX_WORDS_PER_SET,
    WeatTest,
    WordSet,
    read_word_set,
    weat,
    weat_score,
)
from xai.fairness.group import MAX_GROUPS, group_table, tabulate
from xai.fairness.predictions import audit_predictions, load_predictions
from xai.report.json import dumps


def _strict_json(text: str):
    """json.loads that refuses NaN / Infinity (Python's json accepts them by default)."""
    def refuse(token: str):
        raise AssertionError(f"non-strict JSON token {token}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def scores_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "label": rng.integers(0, 2, n),
                          "score": rng.uniform(0.1, 0.9, n)})
    path = tmp_path / "scores.csv"
    frame.to_csv(path, index=False)
    return path, frame


# ----------------------------------------------------------------------------- thresholds


@pytest.mark.parametrize("threshold", [math.nan, math.inf, -math.inf])
def test_threshold_must_be_finite(scores_csv, threshold):
    with pytest.raises(DataError, match="--threshold must be a finite number"):
        load_predictions(scores_csv[0], y_true="label", score="score", sensitive=["sex"], threshold=threshold)


@pytest.mark.parametrize("threshold", [-1.0, 2.0, 1.0000001])
def test_threshold_outside_0_1_is_refused_for_probabilities(scores_csv, threshold):
    with pytest.raises(DataError, match=r"outside \[0, 1\].*probabilities"):
        load_predictions(scores_csv[0], y_true="label", score="score", sensitive=["sex"], threshold=threshold)


def test_threshold_outside_0_1_is_fine_for_scores_that_are_not_probabilities(tmp_path):
    path = tmp_path / "logits.csv"
    path.write_text("label,logit,sex\n1,2.5,F\n0,-1.0,M\n1,0.7,M\n0,-3.0,F\n")
    data = load_predictions(path, y_true="label", score="logit", sensitive=["sex"], threshold=-2.0)
    assert data.y_pred.tolist() == [1, 1, 1, 0] and data.scores is None and data.notes == ()


@pytest.mark.parametrize(("threshold", "side", "rate"), [(0.95, "negative", 0), (0.0, "positive", 1)])
def test_threshold_with_every_row_on_one_side_is_a_warning_in_every_table(scores_csv, threshold, side, rate):
    path, frame = scores_csv
    data = load_predictions(path, y_true="label", score="score", sensitive=["sex"], threshold=threshold)
    assert len(data.notes) == 1 and f"predicts every row {side}" in data.notes[0]
    result = audit_predictions(data, n_boot=0)
    table = result.tables[0]
    assert table.warnings[0] == data.notes[0] and result.notes == data.notes
    assert set(table.by_group["selection_rate"].values()) == {float(rate)}
    # the rest of the numbers are still the plain counts
    expected = ((frame["score"] >= threshold).astype(int) == frame["label"]).groupby(frame["sex"]).mean()
    for group, value in expected.items():
        assert table.by_group["accuracy"][group] == pytest.approx(value, abs=1e-12)
    if rate == 0:  # no group selected: the four-fifths rule compares nothing
        assert table.four_fifths is None and any("four-fifths" in w for w in table.warnings)


def test_ordinary_threshold_gives_no_warning(scores_csv):
    data = load_predictions(scores_csv[0], y_true="label", score="score", sensitive=["sex"], threshold=0.5)
    assert data.notes == ()
    assert not any("threshold" in w for w in audit_predictions(data, n_boot=0).tables[0].warnings)


# ----------------------------------------------------------------------------- non-finite values


@pytest.mark.parametrize(("column", "task", "args"), [
    ("score", "binary", {"score": "score"}),
    ("y", "regression", {"y_pred": "p"}),
    ("p", "regression", {"y_pred": "p"}),
    ("y", "multiclass", {"y_pred": "p"}),
    ("y", "binary", {"y_pred": "p"}),
])
def test_infinite_values_name_the_column_and_the_count(tmp_path, column, task, args):
    frame = pd.DataFrame({"y": [1.0, 0.0, 1.0, 0.0, 1.0], "p": [1.0, 1.0, 0.0, 0.0, 1.0],
                          "score": [0.9, 0.2, 0.4, 0.1, 0.8], "g": list("abab") + ["a"]})
    frame.loc[[1, 3], column] = [np.inf, -np.inf]
    path = tmp_path / "f.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"column '{column}' has 2 infinite values \(first at data row 2\)"):
        load_predictions(path, y_true="y", sensitive=["g"], task=task, **args)


def test_nan_labels_are_missing_values(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("y,p,g\n1,1,a\nnan,0,b\n,1,a\n")
    with pytest.raises(DataError, match="column 'y' has 2 missing values"):
        load_predictions(path, y_true="y", y_pred="p", sensitive=["g"])


@pytest.mark.parametrize(("task", "y_true", "y_pred", "message"), [
    ("binary", [1.0, np.inf, 0.0], [1, 0, 1], "y_true has 1 infinite values"),
    ("multiclass", [1.0, 2.0, np.nan], [1, 2, 2], "y_true has 1 missing values"),
    ("multiclass", [1.0, 2.0, 0.0], [1, -np.inf, np.inf], "y_pred has 2 infinite values"),
    ("regression", [1.0, 2.0, 0.5], [1.0, np.inf, 0.0], "y_pred has 1 infinite values"),
    ("regression", [np.nan, 2.0, 0.5], [1.0, 1.0, 0.0], "y_true has 1 missing values"),
])
def test_the_engine_never_counts_non_finite_values(task, y_true, y_pred, message):
    with pytest.raises(DataError, match=message):
        M.group_frame(y_true=np.array(y_true), y_pred=np.array(y_pred), sensitive_features=["a", "b", "a"],
                      task=task)


# ----------------------------------------------------------------------------- duplicate headers


def test_duplicate_csv_header_names_the_column(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("y,sex,p,sex\n1,F,1,M\n0,M,0,F\n")
    with pytest.raises(DataError, match="dup.csv has two columns named 'sex'"):
        load_predictions(path, y_true="y", y_pred="p", sensitive=["sex"])


def test_a_column_genuinely_named_like_a_pandas_rename_is_fine(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("y,sex,p,sex.1\n1,F,1,M\n0,M,0,F\n")
    data = load_predictions(path, y_true="y", y_pred="p", sensitive=["sex.1"])
    assert data.groups["sex.1"].tolist() == ["M", "F"]


def test_duplicate_header_in_a_gzipped_csv(tmp_path):
    path = tmp_path / "dup.csv.gz"
    pd.DataFrame([[1, "F", 1, "M"]], columns=["y", "g", "p", "g"]).to_csv(path, index=False)
    with pytest.raises(DataError, match="two columns named 'g'"):
        load_predictions(path, y_true="y", y_pred="p", sensitive=["g"])


# ----------------------------------------------------------------------------- one group


def test_one_group_has_undefined_disparities_and_no_four_fifths_verdict():
    y = np.array([1, 0, 1, 0, 1, 1])
    p = np.array([1, 0, 0, 0, 1, 1])
    table = group_table(y, p, np.array(["x"] * 6), "site", binary=True, n_boot=50)
    assert table.four_fifths is None
    assert all(math.isnan(v) for v in (*table.disparities.values(), *table.ratios.values()))
    assert set(table.disparities) == {"accuracy_difference", "demographic_parity_difference",
                                      "equalized_odds_difference"}
    assert table.disparity_intervals == {}
    assert "'site' has one group with rows ('x')" in table.warnings[0]
    assert "four-fifths rule does not apply" in table.warnings[0]
    # the group's own numbers stay
    assert table.by_group["accuracy"]["x"] == pytest.approx(5 / 6)
    assert table.by_group["selection_rate"]["x"] == pytest.approx(0.5)
    document = _strict_json(dumps({"table": table.disparities, "ff": table.four_fifths}))
    assert document == {"table": dict.fromkeys(table.disparities), "ff": None}


def test_one_group_with_rows_among_empty_intersections_is_undefined_too():
    y = np.array([1, 0, 1, 0])
    p = np.array([1, 0, 0, 0])
    groups = pd.DataFrame({"a": ["u"] * 4, "b": ["v"] * 4})
    tables, inter = tabulate(y, p, groups, binary=True, n_boot=0)
    assert inter is not None and math.isnan(inter.disparities["demographic_parity_difference"])


def test_two_groups_are_unchanged():
    y = np.array([1, 0, 1, 0, 1, 0])
    p = np.array([1, 1, 0, 0, 1, 0])
    g = np.array(list("aabbab"))
    table = group_table(y, p, g, "g", binary=True, min_group_size=1)  # 3 rows each: ranked only when asked
    rates = {k: p[g == k].mean() for k in "ab"}
    assert table.disparities["demographic_parity_difference"] == pytest.approx(abs(rates["a"] - rates["b"]))
    assert table.four_fifths is not None
    assert table.four_fifths.ratio == pytest.approx(min(rates.values()) / max(rates.values()))
    # with the default min_group_size (30) neither group is large enough to rank
    small = group_table(y, p, g, "g", binary=True)
    assert math.isnan(small.disparities["demographic_parity_difference"]) and small.four_fifths is None
    assert small.small_groups == ("a", "b") and small.by_group["selection_rate"]["a"] == rates["a"]
    assert "'g' has 0 groups with at least 30 rows: disparities are undefined" in small.warnings[0]


def test_four_fifths_refuses_one_group_and_no_selection():
    one = M.group_frame(y_true=[1, 0], y_pred=[1, 0], sensitive_features=["a", "a"], min_group_size=0)
    with pytest.raises(DataError, match="compares groups; 'sensitive_feature_0' has 1 group with rows"):
        M.four_fifths(one)
    none = M.group_frame(y_true=[1, 0], y_pred=[0, 0], sensitive_features=["a", "b"], min_group_size=0)
    with pytest.raises(DataError, match="no group of 'sensitive_feature_0' has a positive prediction"):
        M.four_fifths(none)


def _fake_audit(result):
    return SimpleNamespace(performance={"accuracy": 0.9}, results=(result,),
                           data=SimpleNamespace(sensitive=["site"]))


def test_a_gate_on_an_undefined_disparity_is_an_error_not_a_silent_skip():
    y = np.array([1, 0, 1, 0, 1, 0])
    p = np.array([1, 0, 0, 0, 1, 1])
    one = group_table(y, p, np.array(["x"] * 6), "site", binary=True)
    two = group_table(y, p, np.array(list("ababab")), "sex", binary=True, min_group_size=1)
    audit = _fake_audit(FairnessResult(probe="group-metrics", model="m", dataset="d", metric_names=("accuracy",),
                                       tables=(one, two), provenance=Provenance("m", "d", 0, 0.0, "cpu")))
    metrics = audit_metrics(audit)
    undefined = undefined_metrics(audit)
    key = "fairness.group-metrics.site.demographic_parity_difference"
    assert key in undefined and key not in metrics
    assert "fairness.group-metrics.sex.demographic_parity_difference" in metrics
    for name in (key, "demographic_parity_difference"):  # the exact key, and a short name standing for both
        gate = GateSpec(metric=name, op="<=", value=0.1)
        with pytest.raises(DataError, match=f"{key}.* is undefined"):
            evaluate_gate(gate, "a", metrics, undefined=undefined)
    # a gate on a defined metric is judged as before
    fine = evaluate_gate(GateSpec(metric="fairness.group-metrics.sex.demographic_parity_difference", op="<=",
                                  value=1.0), "a", metrics, undefined=undefined)
    assert fine.passed and fine.value == pytest.approx(two.disparities["demographic_parity_difference"])


# ----------------------------------------------------------------------------- bounds


@pytest.mark.parametrize("n_boot", [-1, 100_001, 100_000_000])
def test_n_boot_is_bounded(n_boot):
    with pytest.raises(DataError, match="--n-boot must be between 0 .* and 100,000"):
        tabulate(np.array([1, 0]), np.array([1, 0]), pd.DataFrame({"g": ["a", "b"]}), binary=True, n_boot=n_boot)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("n_boot", "many", "n_boot must be a whole number"),
    ("n_boot", 2.5, "n_boot must be a whole number"),
    ("confidence", 1.0, "--confidence must be a number strictly between 0 and 1"),
    ("confidence", math.nan, "--confidence must be a number strictly between 0 and 1"),
    ("min_group_size", -1, "--min-group-size must be at least 0"),
    ("max_groups", 0, "--max-groups must be at least 1"),
])
def test_probe_options_are_checked(option, value, message):
    with pytest.raises(DataError, match=message):
        tabulate(np.array([1, 0]), np.array([1, 0]), pd.DataFrame({"g": ["a", "b"]}), binary=True,
                 **{option: value})


def test_too_many_groups_names_the_column_and_its_count():
    n = MAX_GROUPS + 1
    groups = pd.DataFrame({"id": np.arange(n).astype(str)})
    y = np.arange(n) % 2
    with pytest.raises(DataError, match=f"sensitive column 'id' has {n:,} groups .*--max-groups"):
        tabulate(y, y, groups, binary=True, n_boot=0)
    tables, _ = tabulate(y, y, groups, binary=True, n_boot=0, max_groups=n)
    assert len(tables[0].groups) == n


def test_the_intersection_is_bounded_too():
    groups = pd.DataFrame({"a": np.arange(40).astype(str), "b": np.arange(40).astype(str)})
    y = np.arange(40) % 2
    with pytest.raises(DataError, match="the intersection 'a x b' has 1,600 groups"):
        tabulate(y, y, groups, binary=True, n_boot=0)


def test_bootstrap_memory_is_checked_before_allocating():
    groups = pd.DataFrame({"g": np.arange(900).astype(str)})
    y = np.arange(900) % 2
    with pytest.raises(DataError, match=r"the bootstrap of 'g' \(900 groups x 100,000 resamples\) would need "
                                        r"about .* GB .* lower --n-boot to at most [\d,]+"):
        tabulate(y, y, groups, binary=True, n_boot=100_000)
    need = _engine.bootstrap_bytes(900, 100_000, "binary")
    fits = _engine.MAX_BOOTSTRAP_BYTES // _engine.bootstrap_bytes(900, 1, "binary")
    assert need > _engine.MAX_BOOTSTRAP_BYTES >= _engine.bootstrap_bytes(900, fits, "binary")
    # calibration histograms cost more per group, so the same table with scores hits the limit sooner
    assert _engine.bootstrap_bytes(900, 1000, "binary", 10) > 3 * _engine.bootstrap_bytes(900, 1000, "binary")
    with pytest.raises(DataError, match="lower n_boot"):
        _engine.bootstrap_cells(np.ones((10_000, 4), dtype=np.int64), n_boot=100_000, seed=0)


def test_many_group_warnings_are_one_line_each_kind():
    n = 200
    y = np.ones(n, dtype=int)
    frame = M.group_frame(y_true=y, y_pred=y, sensitive_features=np.arange(n).astype(str))
    small = [w for w in frame.warnings if "rows" in w]
    assert small == ["200 groups have fewer than 30 rows: their metrics are unreliable "
                     "('0', '1', '10', '100', '101' ... and 195 more)"]
    assert len(frame.warnings) == 2  # and one for "no negative labels"
    few = M.group_frame(y_true=[1, 0, 1], y_pred=[1, 0, 0], sensitive_features=["a", "b", "b"])
    assert few.warnings[0] == "group 'a' has 1 rows (< 30): its metrics are unreliable"


def test_terminal_rows_are_the_worst_groups():
    n = 120
    g = np.repeat(np.arange(n).astype(str), 10)
    y = np.tile([1, 0] * 5, n)
    p = y.copy()
    bad = {"7", "42", "99"}  # every prediction wrong in these groups
    for k in bad:
        p[g == k] = 1 - y[g == k]
    table = group_table(y, p, g, "g", binary=True, min_group_size=0)
    shown, hidden = table.worst_groups(5)
    assert hidden == n - 5 and len(shown) == 5 and bad <= set(shown)
    assert list(shown) == sorted(shown, key=table.groups.index)  # in table order
    assert table.worst_groups(n) == (table.groups, 0)


def test_percentile_interval_equals_nanquantile_bit_for_bit():
    rng = np.random.default_rng(3)
    for confidence in (0.95, 0.9, 0.5):
        samples = rng.random((257, 7))
        samples[rng.random(samples.shape) < 0.3] = np.nan
        samples[:, 2] = np.nan
        samples[:3, 4] = np.inf
        alpha = (1 - confidence) / 2
        lo, hi = _engine.percentile_interval(samples, confidence)
        for j in range(samples.shape[1]):
            column = samples[:, j][np.isfinite(samples[:, j])]
            expected = np.quantile(column, [alpha, 1 - alpha]) if column.size else [np.nan, np.nan]
            assert np.array_equal([lo[j], hi[j]], expected, equal_nan=True)


# ----------------------------------------------------------------------------- WEAT


def _vectors(words: dict[str, list[float]]) -> WordVectors:
    return WordVectors(name="toy", words=tuple(words), vectors=np.array(list(words.values()), dtype=np.float32),
                       sha256="0" * 64, vocab_size=len(words))


def _test(x, y, a, b) -> WeatTest:
    return WeatTest("toy", WordSet("X", tuple(x)), WordSet("Y", tuple(y)), WordSet("A", tuple(a)),
                    WordSet("B", tuple(b)))


def test_identical_target_vectors_give_an_undefined_effect_size_and_strict_json():
    wv = _vectors({"x1": [1, 1, 0], "x2": [1, 1, 0], "y1": [1, 1, 0], "y2": [1, 1, 0],
                   "a1": [1, 0, 0], "a2": [1, 0.1, 0], "b1": [0, 0, 1], "b2": [0, 0.2, 1]})
    result = weat(wv, [_test(["x1", "x2"], ["y1", "y2"], ["a1", "a2"], ["b1", "b2"])], permutations=100)
    score = result.scores[0]
    assert math.isnan(score.effect_size)
    assert "effect size undefined" in score.notes[0] and "'X' and 'Y'" in score.notes[0]
    assert score.statistic == pytest.approx(0.0, abs=1e-12) and score.p_value == 1.0
    document = _strict_json(dumps(result.to_dict()))
    assert document["scores"][0]["effect_size"] is None
    assert document["metrics"]["weat.toy.effect_size"] is None


def test_an_ordinary_weat_has_no_note():
    wv = _vectors({"x1": [1, 0.1, 0], "x2": [1, 0.3, 0], "y1": [0, 0.1, 1], "y2": [0.1, 0, 1],
                   "a1": [1, 0, 0], "a2": [1, 0.1, 0], "b1": [0, 0, 1], "b2": [0, 0.2, 1]})
    score = weat_score(wv, _test(["x1", "x2"], ["y1", "y2"], ["a1", "a2"], ["b1", "b2"]), permutations=100)
    assert score.notes == () and score.effect_size > 1


def test_dumps_writes_strict_json():
    text = dumps({"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": np.float64("nan"), "d": (1, "x")})
    assert _strict_json(text) == {"a": None, "b": [None, None, 1.5], "c": None, "d": [1, "x"]}


def test_words_missing_from_the_vectors_are_a_one_line_error_with_a_short_list():
    wv = _vectors({"x1": [1, 0], "x2": [0, 1], "y1": [1, 1], "y2": [1, 2], "a1": [2, 1], "a2": [3, 1],
                   "b1": [1, 3]})
    lost = [f"w{i}" for i in range(40)]
    with pytest.raises(DataError) as info:
        weat_score(wv, _test(["x1", "x2"], ["y1", "y2"], ["a1", "a2"], ["b1", *lost]), permutations=10)
    message = str(info.value)
    assert "\n" not in message and "set 'B' has 1 of its 41 words in the vocabulary" in message
    assert "w9 ... and 30 more" in message and "w10" not in message


@pytest.mark.parametrize("permutations", [0, MAX_PERMUTATIONS + 1, 10**12])
def test_permutations_are_bounded(permutations):
    with pytest.raises(DataError, match="--permutations must be a whole number from 1 to 1,000,000"):
        weat(_vectors({"a": [1, 0]}), [], permutations=permutations)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "has no words"),
    (b"# only a comment\n\n   \n", "has no words"),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00", "is a binary file"),
    (b"caf\xe9\n", r"is not UTF-8 text \(byte 3\)"),
    (b"a\n" * (MAX_WORD_FILE_BYTES // 2 + 1), r"bytes \(at most 1,048,576\)"),
    ("".join(f"w{i}\n" for i in range(MAX_WORDS_PER_SET + 1)).encode(), r"has 5,001 words \(at most 5,000\)"),
])
def test_untrusted_word_set_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "set.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_word_set(path)
    assert "\n" not in str(info.value)


def test_word_set_that_is_a_folder_or_missing(tmp_path):
    with pytest.raises(DataError, match="is not a file"):
        read_word_set(tmp_path)
    with pytest.raises(DataError, match="is not a file"):
        read_word_set(tmp_path / "nope.txt")


def test_word_pairs_are_read_the_same_bounded_way(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_bytes(b"she he\x00\n")
    with pytest.raises(DataError, match="word pairs .* is a binary file"):
        read_word_pairs(path)
    path.write_text("\ufeffshe he\n# c\nher, his\n", encoding="utf-8")
    assert read_word_pairs(path) == [("she", "he"), ("her", "his")]
