from __future__ import annotations

import math

import numpy as np
import pytest

from xai.datasets import load_dataset
from xai.errors import DataError, NotApplicableError, UnknownNameError
from xai.fairness import create_probe, list_probes
from xai.fairness.template import axis_words
from xai.zoo import ModelHandle

from ._text_models import NameBiased

CUSTOM = {"one-name": {"jamel": ["jamel"], "adam": ["adam"]}}


def _handle(bias: float) -> ModelHandle:
    module = NameBiased(bias=bias).eval()
    return ModelHandle(name=f"biased-{bias:g}", module=module, task="classification", modality="text",
                       input_shape=(16,), class_names=("negative", "positive"), source="test", sha256="0",
                       preprocess=module.tokenizer.encode)


@pytest.fixture(scope="module")
def data():
    return load_dataset("sentiment-text", "test").head(10)


def _table(result, axis):
    return next(t for t in result.tables if t.feature == axis)


def test_a_name_bias_in_the_logit_is_measured_exactly_and_flagged(data):
    probe = create_probe("template-bias", _handle(1.0), score="log-odds", words=CUSTOM)
    result = probe.probe(data, sensitive=["one-name", "name_group", "gender"])
    # log-odds of a [0, s] model are s: +1 in every frame for jamel vs adam ...
    one = _table(result, "one-name")
    assert one.overall["mean_difference"] == pytest.approx(1.0, abs=1e-6)
    assert one.disparities["max_template_gap"] == pytest.approx(1.0, abs=1e-6)
    assert one.overall["wilcoxon_p"] < 1e-10 and one.overall["flagged"] == 1.0
    # ... diluted over the groups: 1 of 20 African-American names, 1 of 30 male persons
    assert len(axis_words("name_group")["african-american"]) == 20
    assert _table(result, "name_group").overall["mean_difference"] == pytest.approx(1 / 20, abs=1e-6)
    assert _table(result, "gender").overall["mean_difference"] == pytest.approx(-1 / 30, abs=1e-6)
    assert len(result.rankings["one-name"]) == 5
    assert all(g == pytest.approx(1.0, abs=1e-6) for g in result.rankings["one-name"].values())


def test_probability_gap_matches_the_sigmoid_by_hand(data):
    result = create_probe("template-bias", _handle(1.0), words=CUSTOM).probe(data, sensitive=["one-name"])
    table = result.tables[0]

    def sigmoid(v):
        return 1 / (1 + math.exp(-v))

    # every frame holds one emotion word (s = +2 or -2), half of each polarity
    expected = (sigmoid(3) - sigmoid(2) + sigmoid(-1) - sigmoid(-2)) / 2
    assert table.overall["mean_difference"] == pytest.approx(expected, abs=1e-6)
    assert table.overall["flagged"] == 1.0 and result.positive_class == "positive"
    assert table.by_group["count"] == {"jamel": 192.0, "adam": 192.0}  # 8 templates x 24 words


def test_an_unbiased_model_is_not_flagged(data):
    result = create_probe("template-bias", _handle(0.0), words=CUSTOM).probe(
        data, sensitive=["one-name", "gender", "name_group"])
    for table in result.tables:
        assert table.overall["mean_difference"] == 0.0
        assert table.overall["wilcoxon_p"] == 1.0 and table.overall["ttest_p"] == 1.0
        assert table.overall["flagged"] == 0.0


def test_bad_axes_options_and_models(data, lenet):
    handle = _handle(1.0)
    with pytest.raises(UnknownNameError, match="religion"):
        create_probe("template-bias", handle).probe(data, sensitive=["religion"])
    with pytest.raises(DataError, match="template-bias: option score: Input should be 'probability' or 'log-odds' "
                                       "\\(got 'logit'\\)"):
        create_probe("template-bias", handle, score="logit")
    with pytest.raises(DataError, match="template-bias: option templates: template 'no slots here' needs "):
        create_probe("template-bias", handle, templates=["no slots here"])
    with pytest.raises(NotApplicableError, match="it takes text inputs, not image"):
        create_probe("template-bias", lenet)
    assert "template-bias" in list_probes(handle=handle) and "template-bias" not in list_probes(handle=lenet)


def test_zoo_text_models_run_the_probe(data):
    from xai.zoo import load_model

    from ..conftest import ZOO

    handle = load_model("lstm-text", zoo_dir=ZOO)
    result = create_probe("template-bias", handle, templates=["{s} feels {e}"]).probe(data, sensitive=["gender"])
    table = result.tables[0]
    assert table.groups == ("female", "male")
    assert 0.0 <= table.by_group["mean_score"]["female"] <= 1.0
    assert np.isfinite(table.overall["wilcoxon_p"])
    assert table.warnings == ()  # 24 frames
