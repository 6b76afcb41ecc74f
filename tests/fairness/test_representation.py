from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from torch import nn

from xai.datasets import Dataset
from xai.errors import UnknownNameError
from xai.fairness import create_probe
from xai.zoo import ModelHandle


class TwoPaths(nn.Module):
    """``leak`` copies input 0 (the attribute); ``blind`` sees only input 1 (noise)."""

    def __init__(self):
        super().__init__()
        self.leak = nn.Linear(2, 1)
        self.blind = nn.Linear(2, 1)
        with torch.no_grad():
            self.leak.weight.copy_(torch.tensor([[1.0, 0.0]]))
            self.blind.weight.copy_(torch.tensor([[0.0, 1.0]]))
            self.leak.bias.zero_()
            self.blind.bias.zero_()

    def forward(self, x):
        return torch.cat([self.leak(x), self.blind(x)], dim=1)


def _setup(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    attribute = rng.integers(0, 2, n)
    x = np.stack([attribute + rng.normal(0, 0.1, n), rng.normal(0, 1, n)], axis=1).astype(np.float32)
    data = Dataset(name="toy", split="test", modality="tabular", x=torch.from_numpy(x),
                   y=torch.from_numpy(rng.integers(0, 2, n)), class_names=("a", "b"),
                   groups=pd.DataFrame({"g": np.where(attribute == 1, "one", "zero")}),
                   feature_names=("f0", "f1"), feature_columns=("f0", "f1"))
    handle = ModelHandle(name="two", module=TwoPaths(), task="binary-classification", modality="tabular",
                         input_shape=(2,), class_names=("a", "b"), source="test", sha256="0",
                         layers=("leak", "blind"))
    return data, handle


def test_a_layer_that_carries_the_attribute_decodes_it_and_one_that_does_not_cannot():
    data, handle = _setup()
    leak = create_probe("representation", handle, layer="leak").probe(data, sensitive=["g"]).tables[0]
    blind = create_probe("representation", handle, layer="blind").probe(data, sensitive=["g"]).tables[0]
    assert leak.disparities["representation_strength"] > 0.95
    assert blind.disparities["representation_strength"] < 0.12
    assert blind.overall["balanced_accuracy"] == pytest.approx(0.5, abs=0.06)


def test_matches_a_probe_fitted_by_hand_on_hooked_activations(lenet, digits_test):
    captured = []
    hook = lenet.get_layer("fc1").register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    try:
        with torch.no_grad():
            lenet.module(digits_test.x)
    finally:
        hook.remove()
    features = captured[0].numpy().astype(np.float64)
    features = (features - features.mean(0)) / (features.std(0) + 1e-8)
    labels = digits_test.groups["ink"].to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(features, labels, test_size=0.3, random_state=0,
                                                        stratify=labels)
    model = LogisticRegression(max_iter=2000, class_weight="balanced").fit(x_train, y_train)
    expected = balanced_accuracy_score(y_test, model.predict(x_test))
    result = create_probe("representation", lenet, layer="fc1").probe(digits_test, sensitive=["ink"])
    assert result.tables[0].overall["balanced_accuracy"] == pytest.approx(expected)
    assert not lenet.get_layer("fc1")._forward_hooks  # the probe's hook is gone


def test_unknown_layer_lists_the_valid_ones(lenet):
    with pytest.raises(UnknownNameError, match="conv2"):
        create_probe("representation", lenet, layer="conv9")
