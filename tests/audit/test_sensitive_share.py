from __future__ import annotations

import numpy as np
import pytest

from xai._provenance import Provenance
from xai.audit.metrics import sensitive_share
from xai.explain import AttributionResult


def _result(column_attributions):
    attr = np.asarray(column_attributions, dtype=np.float32)
    return AttributionResult(
        method="m", model="toy", modality="tabular", inputs=np.zeros_like(attr), attributions=attr,
        targets=np.zeros(len(attr), int), predictions=np.zeros(len(attr), int), labels=np.zeros(len(attr), int),
        class_names=("a", "b"), options={}, provenance=Provenance("0", "0", 0, 0.0, "cpu"),
        feature_names=("age", "sex", "race"), column_names=("age", "sex", "race"), column_attributions=attr,
    )


def test_share_of_mean_absolute_attribution_on_sensitive_columns():
    # mean |attribution|: age (1 + 3) / 2 = 2, sex (1 + 1) / 2 = 1, race (0 + 2) / 2 = 1 -> total 4
    result = _result([[1.0, -1.0, 0.0], [3.0, 1.0, 2.0]])
    assert sensitive_share(result, ["sex", "race"]) == pytest.approx(2 / 4)
    assert sensitive_share(result, ["sex"]) == pytest.approx(1 / 4)
    assert sensitive_share(result, ["ink"]) is None  # not among the columns
    assert sensitive_share(object(), ["sex"]) is None  # no per-column attributions
