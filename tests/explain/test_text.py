from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import LayerGradientXActivation, LayerIntegratedGradients
from torch import nn

from xai.datasets import load_dataset, sentiment_tokenizer
from xai.errors import DataError, NotApplicableError, UnknownNameError
from xai.explain import create_explainer
from xai.explain.text import token_baseline
from xai.zoo import ModelHandle, load_model

from ..conftest import ZOO


@pytest.fixture(scope="module")
def bert():
    return load_model("bert-mini", zoo_dir=ZOO)


@pytest.fixture(scope="module")
def sentences():
    return load_dataset("sentiment-text", "test").head(4)


def _target_logit(model):
    def forward(ids, target):
        return model(ids).gather(1, target.view(-1, 1)).squeeze(1)
    return forward


def test_lig_equals_captum_called_directly(bert, sentences):
    result = create_explainer("layer-integrated-gradients", bert, steps=32).explain(sentences)
    ids, target = sentences.x, torch.as_tensor(result.targets)
    words = (ids != 0) & (torch.arange(ids.shape[1]) > 0)  # everything but [CLS] and padding
    baseline = torch.where(words, torch.zeros_like(ids), ids)
    captum = LayerIntegratedGradients(_target_logit(bert.module), bert.module.token_embed)
    expected = captum.attribute(ids, baselines=baseline, additional_forward_args=(target,), n_steps=32)
    np.testing.assert_allclose(result.attributions, expected.sum(-1).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert (result.attributions[(ids == 0).numpy()] == 0).all()  # padding gets nothing


def test_lig_is_complete_sum_equals_f_x_minus_f_baseline(bert, sentences):
    result = create_explainer("layer-integrated-gradients", bert, steps=64).explain(sentences)
    ids, target = sentences.x, torch.as_tensor(result.targets)
    keep = ((ids == 0) | (torch.arange(ids.shape[1]) == 0)).unsqueeze(-1)  # (B, T, 1)
    forward = _target_logit(bert.module)
    # F(baseline): the same ids (so the same padding mask) with the word embeddings set to
    # the [PAD] embedding, which is the zero vector (padding_idx=0).
    assert torch.equal(bert.module.token_embed.weight[0], torch.zeros_like(bert.module.token_embed.weight[0]))
    hook = bert.module.token_embed.register_forward_hook(lambda _m, _i, out: out * keep)
    try:
        with torch.no_grad():
            f_base = forward(ids, target)
    finally:
        hook.remove()
    with torch.no_grad():
        f_x = forward(ids, target)
    gap = result.attributions.sum(1) - (f_x - f_base).numpy()
    scale = max(1.0, float(np.abs((f_x - f_base).numpy()).max()))
    assert np.abs(gap).max() < 1e-2 * scale
    np.testing.assert_allclose(result.convergence_delta, gap, atol=1e-4)


class _BagOfEmbeddings(nn.Module):
    """``F(ids) = sum_t w . E[ids_t]`` per class: linear in the embeddings."""

    def __init__(self) -> None:
        super().__init__()
        self.tokenizer = sentiment_tokenizer()
        torch.manual_seed(0)
        self.embed = nn.Embedding(len(self.tokenizer), 3, padding_idx=0)
        self.head = nn.Linear(3, 2, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(ids).sum(1))


def _handle(module: nn.Module, name: str = "bag") -> ModelHandle:
    return ModelHandle(name=name, module=module.eval(), task="classification", modality="text",
                       input_shape=(16,), class_names=("negative", "positive"), source="test",
                       sha256="0", layers=("embed",))


def test_lig_on_a_linear_model_is_weight_times_embedding_difference(sentences):
    model = _BagOfEmbeddings()
    handle = _handle(model)
    for baseline, fill in (("pad", 0), ("mask", model.tokenizer.mask_id)):
        result = create_explainer("layer-integrated-gradients", handle, baseline=baseline, steps=8).explain(
            sentences, target=1)
        w = model.head.weight[1].detach()  # (3,)
        e = model.embed.weight.detach()
        ids = sentences.x
        base = ids.clone()
        words = (ids != 0) & (torch.arange(ids.shape[1]) > 0)
        base[words] = fill
        expected = ((e[ids] - e[base]) @ w).numpy()  # (B, T): exact for a linear model
        np.testing.assert_allclose(result.attributions, expected, rtol=1e-4, atol=1e-6)
        # gradient x activation of a linear model: w . E[x_t]
        gxa = create_explainer("layer-gradient-x-activation", handle).explain(sentences, target=1)
        np.testing.assert_allclose(gxa.attributions, (e[ids] @ w).numpy(), rtol=1e-4, atol=1e-6)


def test_gradient_x_activation_equals_captum_and_results_carry_tokens(sentences):
    handle = load_model("lstm-text", zoo_dir=ZOO)
    result = create_explainer("layer-gradient-x-activation", handle).explain(sentences)
    captum = LayerGradientXActivation(_target_logit(handle.module), handle.module.embed)
    expected = captum.attribute(sentences.x, additional_forward_args=(torch.as_tensor(result.targets),))
    np.testing.assert_allclose(result.attributions, expected.sum(-1).detach().numpy(), rtol=1e-4, atol=1e-6)
    tokenizer = handle.module.tokenizer
    assert result.tokens[0] == tuple(tokenizer.tokens(sentences.x[0]))
    assert result.tokens[0][0] == "[CLS]" and " ".join(result.tokens[0][1:]) == sentences.groups["text"][0]
    assert handle.preprocess is not None and torch.equal(
        handle.preprocess([sentences.groups["text"][0]])[0], sentences.x[0][:len(result.tokens[0])])


def test_token_baseline_keeps_cls_and_padding():
    ids = torch.tensor([[1, 7, 9, 0], [1, 5, 0, 0]])
    assert token_baseline(ids, "pad").tolist() == [[1, 0, 0, 0], [1, 0, 0, 0]]
    assert token_baseline(ids, "mask", sentiment_tokenizer()).tolist() == [[1, 2, 2, 0], [1, 2, 0, 0]]
    with pytest.raises(DataError, match="mask_id"):
        token_baseline(ids, "mask", object())


def test_text_methods_reject_bad_options_and_other_modalities(bert, lenet):
    with pytest.raises(DataError, match="baseline"):
        create_explainer("layer-integrated-gradients", bert, baseline="zeros")
    with pytest.raises(UnknownNameError, match="unknown layer 'nope'"):
        create_explainer("layer-integrated-gradients", bert, layer="nope")
    with pytest.raises(NotApplicableError, match="text"):
        create_explainer("layer-integrated-gradients", lenet)
    with pytest.raises(NotApplicableError, match="not text"):
        create_explainer("saliency", bert)
