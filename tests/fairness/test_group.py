from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

from xai.errors import DataError, UnknownNameError
from xai.fairness import create_probe, group_table


def test_hand_worked_binary_example():
    # group a: 4 rows, y=[1,1,0,0], pred=[1,0,1,0]  -> acc .5, sel .5, TPR .5, FPR .5
    # group b: 4 rows, y=[1,0,0,0], pred=[1,1,1,0]  -> acc .5, sel .75, TPR 1, FPR 2/3
    y_true = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    y_pred = np.array([1, 0, 1, 0, 1, 1, 1, 0])
    groups = np.array(["a"] * 4 + ["b"] * 4)
    table = group_table(y_true, y_pred, groups, "g", binary=True, min_group_size=4)  # rank groups of 4 rows
    assert table.by_group["accuracy"] == {"a": 0.5, "b": 0.5}
    assert table.by_group["selection_rate"] == {"a": 0.5, "b": 0.75}
    assert table.by_group["true_positive_rate"] == {"a": 0.5, "b": 1.0}
    assert table.by_group["false_positive_rate"]["b"] == pytest.approx(2 / 3)
    assert table.by_group["count"] == {"a": 4, "b": 4}
    assert table.overall["selection_rate"] == pytest.approx(5 / 8)
    assert table.disparities["demographic_parity_difference"] == pytest.approx(0.25)
    # equalized odds: max(|TPR gap| = .5, |FPR gap| = 1/6)
    assert table.disparities["equalized_odds_difference"] == pytest.approx(0.5)
    assert table.disparities["accuracy_difference"] == pytest.approx(0.0)


def test_probe_equals_metricframe_on_the_models_predictions(adult_mlp, adult_test):
    result = create_probe("group-metrics", adult_mlp).probe(adult_test, sensitive=["sex", "race"])
    y_pred = adult_mlp.predict(adult_test.x).argmax(1).numpy()
    y_true = adult_test.y.numpy()
    for table in result.tables:
        groups = adult_test.groups[table.feature].to_numpy()
        frame = MetricFrame(
            metrics={"accuracy": accuracy_score, "selection_rate": selection_rate,
                     "true_positive_rate": true_positive_rate,
                     "false_positive_rate": false_positive_rate},
            y_true=y_true, y_pred=y_pred, sensitive_features=groups)
        for metric in ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate"):
            for group, value in frame.by_group[metric].items():
                assert table.by_group[metric][group] == pytest.approx(value, abs=1e-12)
        assert table.disparities["demographic_parity_difference"] == pytest.approx(
            demographic_parity_difference(y_true, y_pred, sensitive_features=groups), abs=1e-12)
        assert table.disparities["equalized_odds_difference"] == pytest.approx(
            equalized_odds_difference(y_true, y_pred, sensitive_features=groups), abs=1e-12)
    assert [t.feature for t in result.tables] == ["sex", "race"]
    assert result.positive_class == ">50K"
    assert sum(result.tables[1].by_group["count"].values()) == len(adult_test)


def test_multiclass_model_gets_accuracy_by_group(lenet, digits_test):
    result = create_probe("group-metrics", lenet).probe(digits_test, sensitive=["ink"])
    table = result.tables[0]
    assert set(table.by_group) == {"accuracy", "count"}
    pred = lenet.predict(digits_test.x).argmax(1).numpy()
    for group in table.groups:
        mask = digits_test.groups["ink"].to_numpy() == group
        assert table.by_group["accuracy"][group] == pytest.approx(
            (pred[mask] == digits_test.y.numpy()[mask]).mean())
    values = list(table.by_group["accuracy"].values())
    assert table.disparities["accuracy_difference"] == pytest.approx(max(values) - min(values))


def test_unknown_or_missing_sensitive_column(adult_mlp, adult_test):
    probe = create_probe("group-metrics", adult_mlp)
    with pytest.raises(UnknownNameError, match="sex"):
        probe.probe(adult_test, sensitive=["gender"])
    with pytest.raises(DataError, match="at least one"):
        probe.probe(adult_test, sensitive=[])
