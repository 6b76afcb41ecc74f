"""Checks on explanations, each against an independent computation."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from captum.attr import Saliency
from captum.metrics import infidelity, sensitivity_max
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity
from torch import nn

from xai.audit.runner import sample_rows
from xai.errors import DataError
from xai.explain import create_explainer
from xai.explain.sanity import (
    MPRT_MAX_CORRELATION,
    Curve,
    RandomisationStep,
    infidelity_and_sensitivity,
    perturbation_curves,
    randomisation_test,
    sanity_check,
    ssim,
    verdict,
)
from xai.zoo import ModelHandle


@pytest.fixture(scope="module")
def digits16(digits_test):
    return sample_rows(digits_test, 16, 0)


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


# ---------------------------------------------------------------- SSIM


@pytest.mark.parametrize("shape", [(32, 32), (10, 17), (7, 7)])
def test_ssim_matches_scikit_image(shape):
    rng = np.random.default_rng(1)
    a = rng.random(shape)
    smooth = (a + np.roll(a, 1, axis=0) + np.roll(a, 1, axis=1)) / 3
    for b in (smooth, rng.random(shape), a * 0.5 + 0.2, a):
        expected = structural_similarity(a, b, data_range=1.0)
        assert ssim(a, b, data_range=1.0) == pytest.approx(expected, abs=1e-10)


def test_ssim_refuses_small_or_mismatched_maps():
    with pytest.raises(DataError, match="every side >= 7"):
        ssim(np.zeros((5, 9)), np.zeros((5, 9)), data_range=1.0)
    with pytest.raises(DataError, match="equal shapes"):
        ssim(np.zeros((8, 8)), np.zeros((9, 9)), data_range=1.0)


# ------------------------------------------------------ deletion / insertion


def _linear_handle() -> ModelHandle:
    module = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        module.weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]]))
    return ModelHandle(name="linear", module=module, task="classification", modality="tabular",
                       input_shape=(4,), class_names=("a", "b"), source="test", sha256="0")


def test_curves_on_a_hand_worked_linear_model():
    # logits (0, w.x) with w = 1, 2, 3, 4 and x = 1: p(b) = sigmoid(w.x of the kept features)
    handle = _linear_handle()
    x = torch.ones(1, 4)
    scores = torch.tensor([[1.0, 2.0, 3.0, 4.0]])  # the true ranking: features 3, 2, 1, 0
    deletion, insertion = perturbation_curves(handle, x, scores, torch.arange(4), torch.tensor([1]),
                                              torch.zeros(1, 4), steps=2)
    np.testing.assert_allclose(deletion.fractions, [0, 0.5, 1])
    # deletion removes features 3 and 2 first: 10 -> 1 + 2 = 3 -> 0
    np.testing.assert_allclose(deletion.scores, [_sigmoid(10), _sigmoid(3), 0.5], rtol=1e-6)
    np.testing.assert_allclose(insertion.scores, [0.5, _sigmoid(7), _sigmoid(10)], rtol=1e-6)
    assert deletion.auc == pytest.approx(0.25 * (_sigmoid(10) + 2 * _sigmoid(3) + 0.5), rel=1e-6)
    assert insertion.auc == pytest.approx(0.25 * (0.5 + 2 * _sigmoid(7) + _sigmoid(10)), rel=1e-6)
    # no ranking of 4 features removes more at the half-way point than the true one
    assert deletion.gain >= 0 and insertion.gain >= 0
    assert deletion.random_scores[0] == deletion.scores[0] and deletion.random_scores[-1] == 0.5


def test_saliency_deletion_on_lenet_beats_random(lenet, digits16):
    result = create_explainer("saliency", lenet).explain(digits16)
    attr = torch.from_numpy(result.attributions)
    h, w = attr.shape[-2:]
    deletion, insertion = perturbation_curves(
        lenet, digits16.x, attr.sum(1).reshape(16, -1), torch.arange(h * w).view(1, h, w),
        torch.from_numpy(result.targets), torch.zeros(1, 1, h, w), steps=10)
    with torch.no_grad():
        probs = lenet.module(digits16.x).softmax(1)
        p_input = probs.gather(1, torch.from_numpy(result.targets).view(-1, 1)).mean()
        p_blank = lenet.module(torch.zeros(1, 1, h, w)).softmax(1)[0, result.targets].mean()
    # both curves start and end where the model says they must
    assert deletion.scores[0] == pytest.approx(float(p_input), abs=1e-6)
    assert deletion.scores[-1] == pytest.approx(float(p_blank), abs=1e-6)
    assert insertion.scores[0] == pytest.approx(float(p_blank), abs=1e-6)
    assert deletion.random_scores[-1] == pytest.approx(float(p_blank), abs=1e-6)
    assert deletion.auc < deletion.random_auc and deletion.gain > 0.1
    assert insertion.auc > insertion.random_auc


# ------------------------------------------- model-parameter randomisation


def test_mprt_first_step_equals_a_hand_randomised_copy(lenet, digits_test):
    data = digits_test.head(6)
    reference = create_explainer("saliency", lenet).explain(data)
    targets = torch.from_numpy(reference.targets)
    steps, maps = randomisation_test(lenet, "saliency", data, targets, torch.from_numpy(reference.attributions),
                                     options={"abs": True}, max_steps=10, seed=3)
    assert [s.layer for s in steps] == ["fc3", "fc2", "fc1", "conv2", "conv1"]  # from the top down
    assert steps[-1].randomised == ("fc3", "fc2", "fc1", "conv2", "conv1")
    # By hand: re-initialise fc3 of a copy with the seed the cascade uses for its first layer.
    twin = copy.deepcopy(lenet.module)
    torch.manual_seed(3 + 1)
    twin.fc3.reset_parameters()
    grads = Saliency(twin).attribute(data.x.clone().requires_grad_(), target=targets).numpy()
    ref = np.abs(reference.attributions).reshape(6, -1)
    rho = np.mean([spearmanr(ref[i], np.abs(grads[i]).ravel()).statistic for i in range(6)])
    assert steps[0].spearman == pytest.approx(rho, abs=1e-6)
    # the gradients change as the weights go: correlation falls from 1 and ends low
    assert steps[0].spearman < 0.95
    assert steps[-1].spearman < steps[0].spearman
    assert steps[-1].spearman < 0.7
    assert all(s.ssim is not None and s.ssim < 0.9 for s in steps)
    assert maps.shape == (6, 4, 32, 32)  # reference + 5 steps, 4 examples


def test_mprt_never_touches_the_callers_module(lenet, digits_test):
    data = digits_test.head(4)
    module = lenet.module
    before = {k: v.clone() for k, v in module.state_dict().items()}
    module.train()
    try:
        reference = create_explainer("saliency", lenet).explain(data)
        randomisation_test(lenet, "saliency", data, torch.from_numpy(reference.targets),
                           torch.from_numpy(reference.attributions), max_steps=2)
        assert all(m.training for m in module.modules())
        assert all(p.grad is None for p in module.parameters())
    finally:
        module.eval()
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_mprt_with_few_steps_keeps_the_fully_random_end(adult_mlp, adult_test):
    data = adult_test.head(8)
    reference = create_explainer("saliency", adult_mlp).explain(data)
    steps, maps = randomisation_test(adult_mlp, "saliency", data, torch.from_numpy(reference.targets),
                                     torch.from_numpy(reference.attributions), max_steps=2)
    assert [s.layer for s in steps] == ["head", "body.0"]
    assert steps[-1].randomised == ("head", "body.2", "body.0")
    assert maps is None and all(s.ssim is None for s in steps)


# ------------------------------------------------- infidelity / sensitivity


def test_infidelity_and_sensitivity_equal_captum(lenet, digits_test):
    data = digits_test.head(6)
    explainer = create_explainer("saliency", lenet)
    result = explainer.explain(data)
    targets = torch.from_numpy(result.targets)
    attr = torch.from_numpy(result.attributions)
    ours = infidelity_and_sensitivity(explainer, data, targets, attr, n_perturb_samples=5,
                                      sensitivity_samples=6, seed=7)
    scale = float(data.x.max() - data.x.min())

    def perturb(inputs):
        noise = torch.randn_like(inputs) * 0.1 * scale
        return noise, inputs - noise

    def saliency(inputs, target):
        return Saliency(lenet.module).attribute(inputs, target=target, abs=True)

    torch.manual_seed(7)
    infid = infidelity(lenet.module, perturb, data.x, attr, target=targets, n_perturb_samples=5,
                       normalize=True)
    sens = sensitivity_max(saliency, data.x, perturb_radius=0.02 * scale, n_perturb_samples=5,
                           target=targets)
    assert ours[0] == pytest.approx(float(infid.mean()), rel=1e-5)
    assert ours[1] == pytest.approx(float(sens.mean()), rel=1e-5)


# ------------------------------------------------------------------ verdict


def _curve(kind, gain):
    f = np.linspace(0, 1, 3)
    return Curve(kind=kind, fractions=f, scores=f, random_scores=f, auc=0.5, random_auc=0.5, gain=gain)


def _step(rho):
    return RandomisationStep(layer="x", randomised=("x",), spearman=rho, ssim=None,
                             spearman_per_sample=np.array([rho]))


def test_verdict_applies_the_named_thresholds():
    good = verdict(_curve("deletion", 0.2), _curve("insertion", 0.1), [_step(0.9), _step(0.1)])
    assert good.trustworthy and good.reasons == ()
    insensitive = verdict(_curve("deletion", 0.2), _curve("insertion", 0.1), [_step(MPRT_MAX_CORRELATION + 0.01)])
    assert not insensitive.trustworthy
    assert insensitive.reasons[0].startswith("insensitive to the model's weights")
    assert str(insensitive).startswith("not trustworthy: insensitive") and str(insensitive).count("trustworthy") == 1
    random_like = verdict(_curve("deletion", 0.0), _curve("insertion", -0.1), [_step(0.1)])
    assert random_like.checks == {"randomisation": True, "deletion": False, "insertion": False}
    assert "deletion no better than random" in str(random_like)
    assert "insertion no better than random" in str(random_like)


def test_sanity_check_end_to_end_is_json_and_keeps_the_model(adult_mlp, adult_test):
    data = sample_rows(adult_test, 12, 0)
    before = {k: v.clone() for k, v in adult_mlp.module.state_dict().items()}
    result = sanity_check(adult_mlp, "saliency", data, steps=5, sensitivity_samples=4)
    assert all(torch.equal(before[k], v) for k, v in adult_mlp.module.state_dict().items())
    document = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert document["verdict"]["summary"] == str(result.verdict)
    assert len(document["deletion"]["scores"]) == 6
    assert document["provenance"]["model_sha256"] == adult_mlp.sha256
    assert document["options"] == {"target": "predicted", "abs": True}
    assert [s["layer"] for s in document["randomisation"]] == ["head", "body.2", "body.0"]
    assert result.deletion.random_auc == pytest.approx(
        np.trapezoid(result.deletion.random_scores, result.deletion.fractions))


# ----------------------------------------------------- token and non-classifier models


class _BagOfWords(nn.Module):
    """logits (0, sum of the ids' weights); id 0 (padding) weighs 0."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(8, 1, padding_idx=0)
        with torch.no_grad():
            self.embed.weight.copy_(torch.tensor([[0.0], [0.5], [1.0], [2.0], [3.0], [-1.0], [4.0], [0.25]]))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        total = self.embed(ids).sum((1, 2))
        return torch.stack([torch.zeros_like(total), total], 1)


def test_token_curves_count_each_sentences_own_words_and_never_touch_specials_or_padding():
    handle = ModelHandle(name="bow", module=_BagOfWords(), task="classification", modality="text",
                         input_shape=(6,), class_names=("a", "b"), source="test", sha256="0")
    ids = torch.tensor([[1, 4, 2, 3, 0, 0],    # [CLS]-like first token, three words, padding
                        [1, 6, 5, 2, 7, 3]])   # five words
    weights = handle.module.embed.weight[:, 0].detach()
    scores = weights[ids].clone()  # the true ranking: heaviest word first
    baseline = torch.where(torch.arange(6) == 0, ids, torch.zeros_like(ids)) * (ids != 0)  # words -> pad
    valid = baseline != ids
    deletion, insertion = perturbation_curves(handle, ids, scores, torch.arange(6), torch.tensor([1, 1]),
                                              baseline, valid=valid, steps=2)

    def p(total):
        return _sigmoid(total)

    # sentence 0 (0.5 kept + words 3, 1, 2): half of 3 words rounds to 2 -> removes 3.0 and 2.0
    # sentence 1 (0.5 kept + words 4, -1, 1, 0.25, 2): half of 5 rounds to 2 -> removes 4.0 and 2.0
    expected_deletion = [(p(6.5) + p(6.75)) / 2, (p(1.5) + p(0.75)) / 2, (p(0.5) + p(0.5)) / 2]
    expected_insertion = [(p(0.5) + p(0.5)) / 2, (p(5.5) + p(6.5)) / 2, (p(6.5) + p(6.75)) / 2]
    np.testing.assert_allclose(deletion.scores, expected_deletion, rtol=1e-6)
    np.testing.assert_allclose(insertion.scores, expected_insertion, rtol=1e-6)
    # random rankings also stay inside the words: fully deleted is the kept [CLS] alone
    assert deletion.random_scores[-1] == pytest.approx(p(0.5))


def test_token_model_sanity_check_runs_on_words_only():
    from xai.datasets import load_dataset
    from xai.zoo import load_model

    handle = load_model("bert-mini")
    rows = sample_rows(load_dataset(handle.dataset, "test"), 12, 0)
    before = {k: v.clone() for k, v in handle.module.state_dict().items()}
    result = sanity_check(handle, "layer-integrated-gradients", rows, steps=5, mprt_steps=3,
                          options={"steps": 16})
    assert result.infidelity is None and result.sensitivity_max is None
    assert "infidelity" not in result.metrics() and np.isfinite(list(result.metrics().values())).all()
    assert result.deletion.scores[0] == pytest.approx(result.deletion.random_scores[0])
    # the trained model's own token attributions remove the evidence faster than chance
    assert result.deletion.gain > 0 and result.insertion.gain > 0
    assert all(torch.equal(v, before[k]) for k, v in handle.module.state_dict().items())
    json.dumps(result.to_dict())


def test_non_classifier_curves_follow_the_targets_scalar_not_a_softmax():
    from xai.datasets import load_dataset
    from xai.zoo import load_model

    handle = load_model("unet")
    rows = load_dataset(handle.dataset, "test").head(4)
    targets = handle.predict_targets(rows.x)
    scores = torch.rand(4, 64 * 64, generator=torch.Generator().manual_seed(0))
    deletion, _ = perturbation_curves(handle, rows.x, scores, torch.arange(64 * 64).view(1, 64, 64).expand(3, 64, 64),
                                      targets, torch.zeros(1, 3, 64, 64), steps=2)
    with torch.no_grad():
        start = handle.forward_target(rows.x, targets).mean()
        end = handle.forward_target(torch.zeros(4, 3, 64, 64), targets).mean()
    assert deletion.scores[0] == pytest.approx(float(start), rel=1e-5)
    assert deletion.scores[-1] == pytest.approx(float(end), rel=1e-5, abs=1e-6)
