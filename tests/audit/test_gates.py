from __future__ import annotations

import json

import numpy as np
import pytest

from xai.audit import GateSpec, evaluate_gates, load_baseline, parse_spec, resolve_metric, write_baseline
from xai.audit.gates import Baseline
from xai.errors import DataError, SpecError, UnknownNameError

from ._factory import audit, table


def gate(**kw) -> GateSpec:
    return GateSpec(**kw)


def test_metric_namespace_is_flat_and_named():
    result = audit(table("sex", eo=0.12), table("race", eo=0.30), delta=np.array([0.1, -0.3, 0.2]))
    metrics = result.metrics()
    assert metrics["accuracy"] == 0.9
    assert metrics["fairness.group-metrics.sex.equalized_odds_difference"] == 0.12
    assert metrics["fairness.group-metrics.race.equalized_odds_difference"] == 0.30
    assert metrics["fairness.group-metrics.sex.overall.accuracy"] == 0.85
    assert metrics["fairness.group-metrics.sex.accuracy.b"] == 0.8
    assert metrics["explain.integrated-gradients.mean_abs_convergence_delta"] == pytest.approx(0.2)
    assert metrics["explain.integrated-gradients.max_abs_convergence_delta"] == pytest.approx(0.3)
    # the JSON carries the same dict
    assert result.to_dict()["metrics"] == pytest.approx(metrics)


def test_short_name_resolves_to_every_feature_and_gates_on_the_worst():
    result = audit(table("sex", eo=0.12), table("race", eo=0.30))
    assert resolve_metric("equalized_odds_difference", result.metrics()) == [
        "fairness.group-metrics.race.equalized_odds_difference",
        "fairness.group-metrics.sex.equalized_odds_difference",
    ]
    # <= checks the largest: 0.30 fails 0.2 although sex (0.12) alone would pass
    low, alone, high = evaluate_gates(result, [
        gate(metric="equalized_odds_difference", op="<=", value=0.2),
        gate(metric="sex.equalized_odds_difference", op="<=", value=0.2),
        gate(metric="equalized_odds_difference", op=">=", value=0.1),
    ])
    assert (low.passed, low.value, low.key) == (False, 0.30, "fairness.group-metrics.race.equalized_odds_difference")
    assert (alone.passed, alone.value) == (True, 0.12)
    # >= checks the smallest
    assert (high.passed, high.value) == (True, 0.12)


@pytest.mark.parametrize(("op", "value", "passed"), [
    ("<=", 0.9, True), ("<", 0.9, False), (">=", 0.9, True), (">", 0.9, False),
    ("<=", 0.89, False), (">", 0.89, True),
])
def test_absolute_operators(op, value, passed):
    [result] = evaluate_gates(audit(), [gate(metric="accuracy", op=op, value=value)])
    assert result.passed is passed
    assert result.threshold == value and result.value == 0.9


def test_unknown_metric_lists_the_available_ones():
    with pytest.raises(UnknownNameError) as info:
        evaluate_gates(audit(table("sex", eo=0.1)), [gate(metric="weat_effect_size", op="<=", value=0.5)])
    message = str(info.value)
    assert "weat_effect_size" in message
    assert "fairness.group-metrics.sex.equalized_odds_difference" in message and "accuracy" in message


def _baseline(metrics, intervals=None):
    return Baseline(slug="toy", metrics=metrics, intervals=intervals or {}, provenance={})


def test_regression_beyond_the_interval_fails_within_it_passes():
    # baseline EO 0.10; tolerance 0.01; the current run's bootstrap interval is +-0.03
    regress = gate(metric="equalized_odds_difference", op="<=", regression=True, tolerance=0.01)
    base = _baseline({"fairness.group-metrics.sex.equalized_odds_difference": 0.10})
    noisy = {"equalized_odds_difference": (0.10, 0.16)}  # half-width 0.03
    within = audit(table("sex", eo=0.13, disparity_intervals=noisy))
    beyond = audit(table("sex", eo=0.15, disparity_intervals=noisy))
    [ok] = evaluate_gates(within, [regress], base)
    [bad] = evaluate_gates(beyond, [regress], base)
    assert ok.passed and ok.noise == pytest.approx(0.03)
    assert ok.threshold == pytest.approx(0.10 + 0.01 + 0.03)
    assert ok.delta == pytest.approx(0.03)
    assert not bad.passed and "regressed beyond" in bad.message
    # the same 0.13 without an interval is a regression: the interval is what absorbs the noise
    [no_interval] = evaluate_gates(audit(table("sex", eo=0.13)), [regress], base)
    assert not no_interval.passed and no_interval.noise == 0


def test_group_overall_and_disparity_intervals_take_their_metric_names():
    result = audit(table("sex", eo=0.1, intervals={"accuracy": {"a": (0.8, 1.0), "b": (float("nan"), 0.9)}},
                         overall_intervals={"accuracy": (0.8, 0.9)},
                         disparity_intervals={"demographic_parity_difference": (0.0, 0.4)}))
    assert result.metric_intervals() == {  # an undefined bound (NaN) is no interval
        "fairness.group-metrics.sex.accuracy.a": (0.8, 1.0),
        "fairness.group-metrics.sex.overall.accuracy": (0.8, 0.9),
        "fairness.group-metrics.sex.demographic_parity_difference": (0.0, 0.4),
    }


def test_regression_direction_for_higher_is_better():
    regress = gate(metric="accuracy", op=">=", regression=True, tolerance=0.02)
    base = _baseline({"accuracy": 0.90})
    assert evaluate_gates(audit(accuracy=0.885), [regress], base)[0].passed
    failed = evaluate_gates(audit(accuracy=0.87), [regress], base)[0]
    assert not failed.passed and failed.threshold == pytest.approx(0.88)


def test_missing_baseline_or_metric_fails_with_advice():
    regress = gate(metric="accuracy", op=">=", regression=True)
    [none] = evaluate_gates(audit(), [regress], None)
    assert not none.passed and "--update-baseline" in none.message
    [absent] = evaluate_gates(audit(), [regress], _baseline({"other": 1.0}))
    assert not absent.passed and "not in the baseline" in absent.message


def test_baseline_roundtrip(tmp_path):
    result = audit(table("sex", eo=0.1234, disparity_intervals={"equalized_odds_difference": (0.1, 0.15)}),
                   slug="toy")
    path = write_baseline(result, tmp_path)
    assert path == tmp_path / "toy.json"
    raw = json.loads(path.read_text())
    assert raw["provenance"]["model_sha256"] == "m" * 64
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file
    loaded = load_baseline(tmp_path, "toy")
    assert loaded.metrics == pytest.approx(result.metrics())
    assert loaded.intervals == {"fairness.group-metrics.sex.equalized_odds_difference": (0.1, 0.15)}
    assert load_baseline(tmp_path, "absent") is None
    (tmp_path / "broken.json").write_text("{}")
    with pytest.raises(DataError, match="broken.json"):
        load_baseline(tmp_path, "broken")


SPEC = 'title = "t"\n[model]\nname = "lenet"\n'


@pytest.mark.parametrize(("gate_text", "key", "line", "expect"), [
    ('metric = "accuracy"\nop = "=>"\nvalue = 1', "gate.0.op", 6, "'<=', '<', '>=' or '>'"),
    ('metric = "accuracy"\nop = "<="\nvalue = "high"', "gate.0.value", 7, "valid number"),
    ('metric = "accuracy"\nop = "<="', "gate.0", 4, "set `value`"),
    ('metric = "accuracy"\nop = "<="\nvalue = 1\nregression = true', "gate.0", 4, "drop `value`"),
    ('metric = "accuracy"\nop = "<="\nregression = true\ntolerance = -1', "gate.0.tolerance", 8, "greater than"),
    ('metrc = "accuracy"\nop = "<="\nvalue = 1', "gate.0.metric", 4, "Field required"),
])
def test_gate_spec_errors_point_at_the_key_and_line(gate_text, key, line, expect):
    with pytest.raises(SpecError) as info:
        parse_spec(SPEC + "[[gate]]\n" + gate_text + "\n", "audits/x.toml")
    message = str(info.value)
    assert message.startswith(f"audits/x.toml: {key}: ")
    assert expect in message and f"(line {line})" in message


def test_gate_labels():
    assert gate(metric="accuracy", op=">=", value=0.9).label == "accuracy >= 0.9"
    assert gate(metric="eo", op="<=", regression=True, tolerance=0.02).label == "eo <= baseline + 0.02 (regression)"
    assert gate(metric="eo", op="<=", value=0.1, name="EO under 10%").label == "EO under 10%"
