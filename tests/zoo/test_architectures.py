from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, Saliency
from torch import nn

from xai.datasets import load_dataset
from xai.explain import create_explainer
from xai.zoo import create_model, get_entry, list_models, load_model, read_card
from xai.zoo._store import single_cpu_thread
from xai.zoo.cnn import BasicBlock, Inception
from xai.zoo.rnn import SequenceClassifier
from xai.zoo.transformer import MultiHeadSelfAttention

from ..conftest import ZOO

_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.Hardtanh, nn.Threshold)


@pytest.mark.parametrize("name", list_models())
def test_no_module_is_reused_and_no_activation_is_in_place(name):
    # captum's layer and DeepLift hooks need one module per call site and out-of-place ops.
    model = create_model(name)
    ids = [id(m) for _, m in model.named_modules(remove_duplicate=False)]
    assert len(ids) == len(set(ids))
    assert not [n for n, m in model.named_modules() if isinstance(m, _ACTIVATIONS) and m.inplace]


@pytest.mark.parametrize("name", list_models())
def test_entry_layers_and_attention_name_real_modules(name):
    entry = get_entry(name)
    modules = dict(create_model(name).named_modules())
    assert entry.layers and all(layer in modules for layer in entry.layers)
    assert all(a in modules for a in entry.attention)


def test_hand_written_attention_equals_torch_multihead_attention():
    torch.manual_seed(0)
    ours = MultiHeadSelfAttention(dim=16, heads=4)
    theirs = nn.MultiheadAttention(16, 4, batch_first=True)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(ours.qkv.weight)
        theirs.in_proj_bias.copy_(ours.qkv.bias)
        theirs.out_proj.weight.copy_(ours.proj.weight)
        theirs.out_proj.bias.copy_(ours.proj.bias)
    x = torch.randn(3, 7, 16)
    seen = []
    handle = ours.softmax.register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        out = ours(x)
    finally:
        handle.remove()
    expected, weights = theirs(x, x, x, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(seen[0], weights, rtol=1e-5, atol=1e-6)  # (B, H, T, T)


def test_vit_attention_modules_give_row_stochastic_maps_per_layer(digits_test):
    handle = load_model("vit", zoo_dir=ZOO)
    entry = get_entry("vit")
    assert handle.attention == entry.attention and len(entry.attention) == len(entry.layers)
    maps = []
    hooks = [handle.get_layer(n).register_forward_hook(lambda _m, _i, out: maps.append(out))
             for n in entry.attention]
    try:
        handle.predict(digits_test.x[:3])
    finally:
        for h in hooks:
            h.remove()
    tokens = (32 // entry.recipe["patch"]) ** 2 + 1  # patches + CLS
    assert len(maps) == len(entry.attention)
    for attn in maps:
        assert attn.shape == (3, entry.recipe["heads"], tokens, tokens)
        torch.testing.assert_close(attn.sum(-1), torch.ones(3, entry.recipe["heads"], tokens))
    assert handle.card is not None and handle.card["attention"] == list(entry.attention)


def test_basic_block_with_zeroed_residual_branch_is_relu_of_the_input():
    block = BasicBlock(8, 8).eval()
    nn.init.zeros_(block.bn2.weight)  # residual branch contributes bn2's bias, here zero
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(block(x), torch.relu(x))
    down = BasicBlock(8, 16, stride=2)
    assert down(x).shape == (2, 16, 3, 3)


def test_inception_concatenates_its_four_branches():
    module = Inception(8, 3, 4, 5, 2, 6, 7).eval()
    x = torch.randn(2, 8, 6, 6)
    out = module(x)
    assert out.shape == (2, 3 + 5 + 6 + 7, 6, 6) and module.out_channels == 21
    torch.testing.assert_close(out[:, :3], module.branch1(x))
    torch.testing.assert_close(out[:, -7:], module.branch4(x))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_sequence_classifier_reads_the_last_hidden_state(cell):
    torch.manual_seed(0)
    model = SequenceClassifier(cell, hidden=12).eval()
    x = torch.randn(4, 8, 8)
    state = model.rnn(x)[1]
    h_last = (state[0] if cell == "lstm" else state)[-1]  # (B, hidden): final hidden state
    torch.testing.assert_close(model(x), model.head(h_last))
    # a row after the first changes the output: the model reads the whole sequence
    y = x.clone()
    y[:, 5] += 1
    assert not torch.allclose(model(x), model(y))


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_gradient_explainers_on_sequences_equal_captum(name):
    handle = load_model(name, zoo_dir=ZOO)
    data = load_dataset("digits-rows", "test").head(4)
    ours = create_explainer("saliency", handle).explain(data, target="label")
    theirs = Saliency(handle.module).attribute(data.x.clone().requires_grad_(), target=data.y)
    np.testing.assert_allclose(ours.attributions, theirs.detach().numpy(), rtol=1e-5, atol=1e-7)
    ig = create_explainer("integrated-gradients", handle, steps=16).explain(data, target="label")
    theirs = IntegratedGradients(handle.module).attribute(
        data.x, baselines=torch.zeros_like(data.x), target=data.y, n_steps=16)
    np.testing.assert_allclose(ig.attributions, theirs.numpy(), rtol=1e-4, atol=1e-6)
    assert ig.modality == "sequence" and ig.attributions.shape == (4, 8, 8)


@pytest.mark.parametrize("name", list_models())
def test_committed_card_was_made_by_the_current_recipe(name):
    card = read_card(name, ZOO)
    entry = get_entry(name)
    assert card["recipe"] == entry.recipe and card["layers"] == list(entry.layers)
    assert card["dataset"] == entry.dataset and card["seed"] == 0


def test_training_runs_on_one_thread_and_restores_the_count():
    before = torch.get_num_threads()
    with single_cpu_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
