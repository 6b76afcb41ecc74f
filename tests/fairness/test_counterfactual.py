from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from xai.datasets import Dataset
from xai.errors import NotApplicableError
from xai.fairness import create_probe
from xai.zoo import ModelHandle

# inputs: age (standardised), sex=F, sex=M
ROWS = torch.tensor([
    [1.0, 1.0, 0.0],
    [-1.0, 1.0, 0.0],
    [2.0, 0.0, 1.0],
    [-0.5, 0.0, 1.0],
    [0.5, 0.0, 1.0],
])


class Rule(nn.Module):
    """Class 1 iff the rule holds; logits are (-1, +1) or (+1, -1)."""

    def __init__(self, rule):
        super().__init__()
        self.rule = rule
        self.dummy = nn.Linear(1, 1)  # a parameter, so the handle has a device

    def forward(self, x):
        on = self.rule(x).float() * 2 - 1  # (B,)
        return torch.stack([-on, on], dim=1)


def _setup(rule, **options):
    data = Dataset(
        name="toy", split="test", modality="tabular", x=ROWS.clone(), y=torch.tensor([1, 0, 1, 0, 1]),
        class_names=("no", "yes"), groups=pd.DataFrame({"sex": ["F", "F", "M", "M", "M"]}),
        feature_names=("age", "sex=F", "sex=M"), feature_columns=("age", "sex", "sex"),
    )
    handle = ModelHandle(name="rule", module=Rule(rule), task="binary-classification", modality="tabular",
                         input_shape=(3,), class_names=("no", "yes"), source="test", sha256="0")
    # groups of 2 and 3 rows: ranked only when asked (the default minimum is 30)
    return create_probe("counterfactual-flip", handle, **{"min_group_size": 1, **options}).probe(
        data, sensitive=["sex"])


def test_a_model_that_only_reads_sex_flips_every_decision():
    table = _setup(lambda x: x[:, 1] > 0.5).tables[0]
    assert table.overall["flip_rate"] == 1.0
    assert table.by_group["flip_rate"] == {"F": 1.0, "M": 1.0}
    assert table.by_group["count"] == {"F": 2.0, "M": 3.0}


def test_a_model_that_ignores_sex_never_flips():
    table = _setup(lambda x: x[:, 0] > 0).tables[0]
    assert table.overall["flip_rate"] == 0.0
    assert table.disparities["flip_rate_difference"] == 0.0


def test_an_interaction_flips_exactly_the_rows_it_should():
    # yes iff female and age > 0: rows 0 (F, age 1) flips to no; rows 2, 4 (M, age > 0) flip to yes;
    # row 1 (F, age -1) and row 3 (M, age -0.5) stay no.
    table = _setup(lambda x: (x[:, 1] > 0.5) & (x[:, 0] > 0)).tables[0]
    assert table.by_group["flip_rate"] == {"F": 0.5, "M": pytest.approx(2 / 3)}
    assert table.overall["flip_rate"] == pytest.approx(3 / 5)
    assert table.disparities["flip_rate_difference"] == pytest.approx(2 / 3 - 0.5)


def test_a_group_under_min_group_size_never_sets_the_flip_rate_difference():
    # F has 2 rows (flip rate 0.5), M 3 rows (2/3): with min_group_size 3 only M is ranked
    table = _setup(lambda x: (x[:, 1] > 0.5) & (x[:, 0] > 0), min_group_size=3).tables[0]
    assert table.by_group["flip_rate"]["F"] == 0.5 and table.small_groups == ("F",)  # still shown
    assert math.isnan(table.disparities["flip_rate_difference"])  # one group left: no gap to report
    assert table.disparities["counterfactual_flip_rate"] == pytest.approx(3 / 5)  # the overall rate is unchanged
    assert any("1 group too small to rank (< 3 rows: 'F' (2))" in w for w in table.warnings)
    ranked = _setup(lambda x: (x[:, 1] > 0.5) & (x[:, 0] > 0), min_group_size=2).tables[0]
    assert ranked.disparity_groups["flip_rate_difference"] == ("M", "F") and ranked.small_groups == ()


def test_attribute_that_is_not_an_input_is_reported_not_dropped():
    from xai.datasets import load_dataset
    from xai.zoo import load_model

    data = load_dataset("german", "test")
    result = create_probe("counterfactual-flip", load_model("german-mlp")).probe(data, sensitive=["sex", "age_group"])
    assert [t.feature for t in result.tables] == ["sex"]
    assert any("age_group" in note for note in result.notes)


def test_only_tabular_models(lenet):
    with pytest.raises(NotApplicableError, match="tabular"):
        create_probe("counterfactual-flip", lenet)
