from __future__ import annotations

import numpy as np
import pytest
import torch
from fairlearn.metrics import MetricFrame, demographic_parity_difference, equalized_odds_difference
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from xai.datasets import load_dataset
from xai.errors import DataError, NotApplicableError, UnknownNameError
from xai.fairness import create_probe


class _Fitted(LogisticRegression):
    """A 'fitted' scikit-learn classifier whose probabilities are the zoo model's softmax."""

    def __init__(self, handle=None):
        super().__init__()
        self.handle = handle
        self.classes_ = np.array([0, 1])
        self.coef_ = np.zeros((1, 1))

    def predict_proba(self, x):
        return torch.softmax(self.handle.predict(torch.as_tensor(x, dtype=torch.float32)), 1).double().numpy()


@pytest.fixture(scope="module")
def result(adult_mlp):
    data = load_dataset("adult", "test").head(3000)
    probe = create_probe("mitigation", adult_mlp, fit_rows=1500, max_iter=8)
    return probe.probe(data, sensitive=["sex"], seed=0), data


def test_rows_equal_fairlearn_called_directly(result, adult_mlp):
    res, data = result
    table = res.tables[0]
    y, a = data.y.numpy(), data.groups["sex"].astype(str).to_numpy()
    original = adult_mlp.predict(data.x).argmax(1).numpy()
    assert table.by_group["accuracy"]["original"] == pytest.approx(accuracy_score(y, original), abs=1e-12)
    assert table.by_group["demographic_parity_difference"]["original"] == pytest.approx(
        demographic_parity_difference(y, original, sensitive_features=a), abs=1e-12)
    assert table.by_group["equalized_odds_difference"]["original"] == pytest.approx(
        equalized_odds_difference(y, original, sensitive_features=a), abs=1e-12)
    # ThresholdOptimizer fitted here on the same train split gives the same decisions
    train = load_dataset("adult", "train")
    mitigator = ThresholdOptimizer(estimator=_Fitted(adult_mlp), constraints="demographic_parity",
                                   prefit=True, predict_method="predict_proba")
    mitigator.fit(train.x.numpy(), train.y.numpy(), sensitive_features=train.groups["sex"].astype(str).to_numpy())
    decisions = mitigator.predict(data.x.numpy(), sensitive_features=a, random_state=0)
    frame = MetricFrame(metrics=accuracy_score, y_true=y, y_pred=decisions, sensitive_features=a)
    row = "threshold-optimizer:demographic_parity"
    assert table.by_group["accuracy"][row] == pytest.approx(frame.overall, abs=1e-12)
    assert table.by_group["demographic_parity_difference"][row] == pytest.approx(
        demographic_parity_difference(y, decisions, sensitive_features=a), abs=1e-12)


def test_each_mitigator_closes_the_gap_it_targets(result):
    table = result[0].tables[0]
    dp, eo = table.by_group["demographic_parity_difference"], table.by_group["equalized_odds_difference"]
    assert dp["original"] > 0.1  # the Adult MLP has a real gap by sex
    assert dp["threshold-optimizer:demographic_parity"] < dp["original"] / 3
    assert eo["threshold-optimizer:equalized_odds"] < eo["original"]
    assert dp["exponentiated-gradient:demographic_parity"] < dp["logistic-regression"] / 2
    assert table.groups[0] == "original" and table.kind == "strategy"
    # summary disparities point at the rows they summarise
    assert table.disparities["best_demographic_parity_difference"] == min(
        v for k, v in dp.items() if k != "original")
    assert table.disparities["original_demographic_parity_difference"] == dp["original"]


def test_bad_options_and_models_are_clear_errors(adult_mlp, lenet):
    data = load_dataset("adult", "test").head(200)
    with pytest.raises(DataError, match="mitigation: option strategies.0: Input should be 'threshold-optimizer' or "
                                       "'exponentiated-gradient' \\(got 'reweighing'\\)"):
        create_probe("mitigation", adult_mlp, strategies=["reweighing"]).probe(data, sensitive=["sex"])
    with pytest.raises(DataError, match="mitigation: unknown option 'n_boot'; it takes sensitive, strategies"):
        create_probe("mitigation", adult_mlp, n_boot=3).probe(data, sensitive=["sex"])
    with pytest.raises(UnknownNameError, match="sensitive column"):
        create_probe("mitigation", adult_mlp).probe(data, sensitive=["gender"])
    with pytest.raises(NotApplicableError, match="not classification"):
        create_probe("mitigation", lenet)


def test_what_if_rows_stay_out_of_the_audit_headline_but_remain_gateable():
    from xai.audit import parse_spec, run_audit

    spec = parse_spec('title = "m"\n[model]\nname = "adult-mlp"\n[data]\nsamples = 600\nsensitive = ["sex"]\n'
                      '[[explain]]\nmethod = "saliency"\nsamples = 2\n'
                      '[[probe]]\nname = "mitigation"\noptions = { fit_rows = 500, max_iter = 3 }\n')
    result = run_audit(spec, slug="m")
    assert result.headline()["worst_disparity"] == {}  # no gap of this model is measured by a what-if
    assert "fairness.mitigation.sex.best_demographic_parity_difference" in result.metrics()
