from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import normalized_mutual_info_score
from torch import nn

from xai.datasets import Dataset
from xai.errors import NotApplicableError, UnknownNameError
from xai.fairness import create_probe
from xai.zoo import ModelHandle


def _data(n: int = 600, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    sex = rng.integers(0, 2, n)
    copy = sex.astype(np.float32) + rng.normal(0, 0.05, n)  # a near-perfect proxy
    noise = rng.normal(0, 1, n)  # independent of sex
    x = np.stack([copy, noise, sex == 0, sex == 1], axis=1).astype(np.float32)
    return Dataset(
        name="toy", split="test", modality="tabular", x=torch.from_numpy(x),
        y=torch.from_numpy(rng.integers(0, 2, n)), class_names=("no", "yes"),
        groups=pd.DataFrame({"sex": np.where(sex == 1, "M", "F")}),
        feature_names=("copy", "noise", "sex=F", "sex=M"), feature_columns=("copy", "noise", "sex", "sex"),
    )


def _handle() -> ModelHandle:
    return ModelHandle(name="m", module=nn.Linear(4, 2), task="binary-classification", modality="tabular",
                       input_shape=(4,), class_names=("no", "yes"), source="test", sha256="0")


def test_a_copied_attribute_is_a_perfect_proxy_and_ranks_first():
    data = _data()
    result = create_probe("proxy", _handle()).probe(data, sensitive=["sex"])
    table = result.tables[0]
    assert table.overall["balanced_accuracy"] > 0.98
    assert table.disparities["proxy_strength"] > 0.96
    assert list(result.rankings["sex"]) == ["copy", "noise"]
    # the ranking is scikit-learn's normalised mutual information on the binned column
    binned = pd.qcut(data.x[:, 0].numpy(), 10, labels=False, duplicates="drop")
    assert result.rankings["sex"]["copy"] == pytest.approx(
        normalized_mutual_info_score(data.groups["sex"].to_numpy(), binned))


def test_without_the_copy_there_is_no_proxy():
    data = _data(n=2000, seed=1)
    blind = Dataset(**{**data.__dict__, "x": data.x[:, 1:], "feature_names": data.feature_names[1:],
                       "feature_columns": data.feature_columns[1:]})
    table = create_probe("proxy", _handle()).probe(blind, sensitive=["sex"]).tables[0]
    assert table.overall["balanced_accuracy"] == pytest.approx(0.5, abs=0.06)
    assert table.disparities["proxy_strength"] < 0.12
    assert table.overall["roc_auc"] == pytest.approx(0.5, abs=0.08)


def test_real_model_inputs(adult_mlp, adult_test):
    result = create_probe("proxy", adult_mlp, max_rows=1500).probe(adult_test, sensitive=["sex"])
    # relationship (husband / wife) is the textbook proxy for sex in Adult
    assert next(iter(result.rankings["sex"])) == "relationship"
    assert result.tables[0].disparities["proxy_strength"] > 0.3


def test_errors(lenet, adult_mlp, adult_test):
    with pytest.raises(NotApplicableError, match="tabular"):
        create_probe("proxy", lenet)
    with pytest.raises(UnknownNameError, match="race"):
        create_probe("proxy", adult_mlp).probe(adult_test, sensitive=["gender"])


@pytest.mark.parametrize("classes", [2, 4])
def test_probe_auc_equals_scikit_learn(classes):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from xai.fairness.proxy import _auc

    rng = np.random.default_rng(classes)
    y = rng.integers(0, classes, 400).astype(str)
    x = rng.normal(0, 1, (400, 3)) + (y.astype(int)[:, None] * 0.5)
    x[:20] = x[0]  # ties in the scores
    model = LogisticRegression(max_iter=1000).fit(x, y)
    scores = model.predict_proba(x)
    expected = (roc_auc_score(y == model.classes_[1], scores[:, 1]) if classes == 2
                else roc_auc_score(y, scores, multi_class="ovr", average="macro", labels=model.classes_))
    assert _auc(model, x, y) == pytest.approx(expected, abs=1e-12)
