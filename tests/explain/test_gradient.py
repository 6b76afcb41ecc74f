from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, Saliency

from xai.errors import DataError, NotApplicableError
from xai.explain import create_explainer, list_explainers
from xai.zoo import ModelHandle


def test_saliency_equals_captum_called_directly(lenet, digits_test):
    data = digits_test.head(6)
    ours = create_explainer("saliency", lenet).explain(data, target="label")
    theirs = Saliency(lenet.module).attribute(data.x.clone().requires_grad_(), target=data.y)
    np.testing.assert_allclose(ours.attributions, theirs.detach().numpy(), rtol=1e-6, atol=1e-7)
    assert ours.attributions.shape == tuple(data.x.shape)
    np.testing.assert_array_equal(ours.targets, data.y.numpy())


def test_integrated_gradients_equals_captum_and_is_complete(lenet, digits_test):
    data = digits_test.head(5)
    result = create_explainer("integrated-gradients", lenet, steps=40).explain(
        data, target="predicted", batch_size=2)
    targets = torch.from_numpy(result.targets)
    theirs = IntegratedGradients(lenet.module).attribute(
        data.x, baselines=torch.zeros_like(data.x), target=targets, n_steps=40)
    np.testing.assert_allclose(result.attributions, theirs.numpy(), rtol=1e-4, atol=1e-6)
    # Completeness: attributions add up to f(x) - f(baseline) for the explained logit.
    with torch.no_grad():
        fx = lenet.module(data.x).gather(1, targets.view(-1, 1)).squeeze(1)
        f0 = lenet.module(torch.zeros_like(data.x)).gather(1, targets.view(-1, 1)).squeeze(1)
    sums = result.attributions.reshape(5, -1).sum(1)
    np.testing.assert_allclose(sums, (fx - f0).numpy(), rtol=0.02, atol=0.02)
    np.testing.assert_allclose(result.convergence_delta, sums - (fx - f0).numpy(), atol=1e-3)


def test_predicted_targets_are_the_argmax(lenet, digits_test):
    data = digits_test.head(8)
    result = create_explainer("saliency", lenet).explain(data)
    np.testing.assert_array_equal(result.targets, lenet.predict(data.x).argmax(1).numpy())
    fixed = create_explainer("saliency", lenet).explain(data, target=3)
    assert set(fixed.targets.tolist()) == {3}


def test_tabular_columns_add_up_and_mean_baseline_is_used(adult_mlp, adult_test):
    data = adult_test.head(50)
    result = create_explainer("integrated-gradients", adult_mlp, steps=32).explain(data)
    assert result.column_attributions.shape == (50, len(result.column_names))
    np.testing.assert_allclose(result.column_attributions.sum(1), result.attributions.sum(1),
                               rtol=1e-5, atol=1e-5)
    baseline = data.x.mean(0, keepdim=True).expand_as(data.x)
    targets = torch.from_numpy(result.targets)
    theirs = IntegratedGradients(adult_mlp.module).attribute(
        data.x, baselines=baseline, target=targets, n_steps=32)
    np.testing.assert_allclose(result.attributions, theirs.numpy(), rtol=1e-4, atol=1e-6)
    assert set(result.column_importance()) == set(result.column_names)
    assert {"sex", "race", "age"} <= set(result.column_names)


def test_saliency_scores_a_one_hot_column_at_the_row_level(adult_mlp, adult_test):
    data = adult_test.head(10)
    result = create_explainer("saliency", adult_mlp).explain(data)
    sex_inputs = [i for i, c in enumerate(data.feature_columns) if c == "sex"]
    column = result.column_names.index("sex")
    active = data.x[:, sex_inputs].numpy()  # one 1 per row
    expected = (result.attributions[:, sex_inputs] * active).sum(1)
    np.testing.assert_allclose(result.column_attributions[:, column], expected, rtol=1e-6)


def test_explaining_keeps_mode_and_weights(lenet, digits_test):
    module = lenet.module
    before = {k: v.clone() for k, v in module.state_dict().items()}
    module.train()
    try:
        create_explainer("integrated-gradients", lenet, steps=8).explain(digits_test.head(3))
        assert module.training
        assert all(m.training for m in module.modules())
        assert all(p.grad is None for p in module.parameters())
    finally:
        module.eval()
    for name, tensor in module.state_dict().items():
        assert torch.equal(before[name], tensor)


def test_bad_options_and_targets(lenet, digits_test):
    with pytest.raises(DataError, match="steps"):
        create_explainer("integrated-gradients", lenet, steps=1)
    with pytest.raises(DataError, match="nonsense"):
        create_explainer("saliency", lenet, nonsense=1)
    with pytest.raises(DataError, match="class index"):
        create_explainer("saliency", lenet).explain(digits_test.head(2), target=42)


def test_method_that_does_not_apply_says_why(lenet):
    encoder = ModelHandle(name="enc", module=lenet.module, task="embedding", modality="image",
                          input_shape=(1, 32, 32), class_names=("a", "b"), source="test", sha256="0")
    assert list_explainers(handle=encoder) == []
    with pytest.raises(NotApplicableError, match="not embedding"):
        create_explainer("saliency", encoder)


def test_result_serialises_to_json(lenet, digits_test):
    import json

    result = create_explainer("integrated-gradients", lenet, steps=8).explain(digits_test.head(2))
    document = json.loads(json.dumps(result.to_dict()))
    assert np.array(document["attributions"]).shape == (2, 1, 32, 32)
    assert document["provenance"]["model_sha256"] == lenet.sha256
    assert document["provenance"]["seed"] == 0
    assert "torch" in document["provenance"]["versions"]


class _SharedReLU(torch.nn.Module):
    """A residual-style block that calls one ReLU module twice (as torchvision's BasicBlock does)."""

    def __init__(self, shared: bool) -> None:
        super().__init__()
        self.fc1, self.fc2, self.out = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4), torch.nn.Linear(4, 3)
        self.relu = torch.nn.ReLU()
        self.relu2 = self.relu if shared else torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.relu2(self.fc2(self.relu(self.fc1(x)))))


def test_deeplift_refuses_a_reused_nonlinearity_up_front():
    from captum.attr import DeepLift as CaptumDeepLift

    from xai.explain import EXPLAINERS

    torch.manual_seed(0)
    shared = ModelHandle.from_module(_SharedReLU(shared=True), classes=3, input_shape=(4,))
    reason = EXPLAINERS.get("deeplift").why_not(shared)
    assert reason is not None and "1 runs more than once per forward (relu)" in reason
    with pytest.raises(NotApplicableError, match="deeplift does not apply"):
        EXPLAINERS.get("deeplift").check_applies(shared)
    with pytest.raises(RuntimeError, match="used more than once"):  # what captum does without the check
        CaptumDeepLift(shared.module).attribute(torch.rand(2, 4), baselines=torch.zeros(2, 4), target=0)
    assert not list(shared.module.relu._forward_hooks)  # the counting hooks are removed
    assert EXPLAINERS.get("saliency").why_not(shared) is None  # other explainers are not affected
    own = ModelHandle.from_module(_SharedReLU(shared=False), classes=3, input_shape=(4,))
    assert EXPLAINERS.get("deeplift").why_not(own) is None
