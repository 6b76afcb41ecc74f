"""The predicted class's probability that explainers record for the report (issue 14, item 4).

Every classifier of the zoo: the predictions are the handle's own (one forward pass gives
both), and the probability is the softmax of the model's class scores at the prediction.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xai.datasets import load_dataset
from xai.explain._base import _predict
from xai.zoo import get_entry, list_models, load_model

from ..conftest import ZOO

CLASSIFIERS = [n for n in list_models() if get_entry(n).task in ("classification", "binary-classification")]


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_probability_of_the_predicted_class(name):
    handle = load_model(name, zoo_dir=ZOO)
    x = load_dataset(get_entry(name).dataset, "test").head(5).x
    predictions, probabilities = _predict(handle, x)
    assert torch.equal(predictions, handle.predict_targets(x))
    assert probabilities is not None and probabilities.shape == (5,)
    scores = handle.predict(x).double()  # (N, C)
    expected = torch.softmax(scores, 1)[torch.arange(5), predictions].numpy()
    np.testing.assert_allclose(probabilities, expected, rtol=1e-9)
    assert ((probabilities > 0) & (probabilities <= 1)).all()


def test_no_probability_for_an_encoder():
    handle = load_model("cbow", zoo_dir=ZOO)
    x = load_dataset(get_entry("cbow").dataset, "test").head(3).x
    predictions, probabilities = _predict(handle, x)
    assert probabilities is None and torch.equal(predictions, handle.predict_targets(x))
