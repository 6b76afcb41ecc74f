from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from xai.cli import app
from xai.errors import DataError, NotApplicableError
from xai.explain import AttentionRecorder, create_explainer, list_explainers
from xai.explain.rollout import (
    attention_flow,
    discard_lowest,
    fuse_heads,
    grad_rollout,
    residual_normalise,
    rollout,
)
from xai.zoo import ModelHandle, load_model

from ..conftest import ZOO

runner = CliRunner()

# Two one-head layers of 2x2 attention (rows sum to 1), used by several hand examples.
A1 = [[0.6, 0.4], [0.2, 0.8]]
A2 = [[0.5, 0.5], [0.3, 0.7]]


def heads(*mats: list[list[float]]) -> torch.Tensor:
    """``(1, heads, T, T)`` from hand-written ``(T, T)`` matrices."""
    return torch.tensor([mats], dtype=torch.float64)


@pytest.fixture(scope="module")
def vit():
    return load_model("vit", zoo_dir=ZOO)


# ---- hand-computed examples ---------------------------------------------------------


def test_rollout_equals_a_hand_computed_two_layer_example():
    # (A1 + I) / 2 = [[.8, .2], [.1, .9]];  (A2 + I) / 2 = [[.75, .25], [.15, .85]]
    # product layer 2 @ layer 1: [[.75*.8 + .25*.1, .75*.2 + .25*.9], [.15*.8 + .85*.1, .15*.2 + .85*.9]]
    expected = torch.tensor([[0.625, 0.375], [0.205, 0.795]], dtype=torch.float64)
    result = rollout([heads(A1), heads(A2)])
    torch.testing.assert_close(result[0], expected)


def test_head_fusion_mean_max_min_by_hand():
    a = heads([[0.9, 0.1], [0.4, 0.6]], [[0.3, 0.7], [0.8, 0.2]])  # (1, 2 heads, 2, 2)
    torch.testing.assert_close(fuse_heads(a, "mean")[0], torch.tensor([[0.6, 0.4], [0.6, 0.4]], dtype=torch.float64))
    torch.testing.assert_close(fuse_heads(a, "max")[0], torch.tensor([[0.9, 0.7], [0.8, 0.6]], dtype=torch.float64))
    torch.testing.assert_close(fuse_heads(a, "min")[0], torch.tensor([[0.3, 0.1], [0.4, 0.2]], dtype=torch.float64))
    # One layer, max fusion: ([[.9, .7], [.8, .6]] + I) / row sums [2.6, 2.4].
    expected = torch.tensor([[1.9 / 2.6, 0.7 / 2.6], [0.8 / 2.4, 1.6 / 2.4]], dtype=torch.float64)
    torch.testing.assert_close(rollout([a], head_fusion="max")[0], expected)
    with pytest.raises(DataError, match="head fusion"):
        fuse_heads(a, "median")  # type: ignore[arg-type]


def test_discard_ratio_on_a_hand_example():
    a = heads([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.25, 0.35, 0.4]])
    # floor(0.34 * 9) = 3 lowest entries (0.1, 0.2, 0.25) are zeroed.
    kept = torch.tensor([[0.5, 0.3, 0.0], [0.0, 0.6, 0.3], [0.0, 0.35, 0.4]], dtype=torch.float64)
    torch.testing.assert_close(discard_lowest(a[:, 0], 0.34)[0], kept)
    # + I, rows re-normalised by their sums 1.8, 1.9, 1.75.
    expected = torch.tensor([[5 / 6, 1 / 6, 0.0], [0.0, 16 / 19, 3 / 19], [0.0, 0.2, 0.8]], dtype=torch.float64)
    torch.testing.assert_close(rollout([a], discard_ratio=0.34)[0], expected)
    torch.testing.assert_close(discard_lowest(a[:, 0], 0.0), a[:, 0])  # nothing discarded


def test_attention_flow_equals_hand_max_flow():
    # Layered graph top CLS -> middle k -> input j: disjoint two-edge paths, so the max
    # flow to j is sum_k min(L2[0, k], L1[k, j]) with L = the residual-normalised layers.
    # L1 = [[.8, .2], [.1, .9]], L2 = [[.75, .25], [.15, .85]]:
    # j=0: min(.75, .8) + min(.25, .1) = .85;  j=1: min(.75, .2) + min(.25, .9) = .45
    flow = attention_flow([heads(A1), heads(A2)])
    np.testing.assert_allclose(flow[0].numpy(), [0.85, 0.45], atol=2e-6)
    one_layer = attention_flow([heads(A1)])  # a single layer: the edge capacity itself
    np.testing.assert_allclose(one_layer[0].numpy(), [0.8, 0.2], atol=2e-6)


def test_attention_flow_on_the_vit_equals_networkx(vit, digits_test):
    with AttentionRecorder(vit.module, vit.attention) as rec, torch.no_grad():
        vit.module(digits_test.x[:1])
    attentions = rec.checked()
    ours = attention_flow(attentions, "mean")[0].numpy()  # (T,)
    mats = [residual_normalise(fuse_heads(a.double()))[0].numpy() for a in attentions]
    t, layers = mats[0].shape[0], len(mats)
    graph = nx.DiGraph()
    for lay, m in enumerate(mats, start=1):
        for i in range(t):
            for j in range(t):
                graph.add_edge((lay, i), (lay - 1, j), capacity=float(m[i, j]))
    for j in (1, 5, 16):  # a few tokens (networkx is slow)
        theirs = nx.maximum_flow_value(graph, (layers, 0), (0, j))
        assert ours[j] == pytest.approx(theirs, abs=1e-4)


class _TinyAttention(nn.Module):
    """Input ``(B, 8)`` is two layers of 2x2 attention; logit c = sum(W1_c * A1) + sum(W2_c * A2)."""

    def __init__(self) -> None:
        super().__init__()
        self.attn1 = nn.Identity()
        self.attn2 = nn.Identity()
        w1 = torch.tensor([[[1.0, -1.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])  # (classes, T, T)
        w2 = torch.tensor([[[0.5, 2.0], [-1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
        self.w1 = nn.Parameter(w1.double())
        self.w2 = nn.Parameter(w2.double())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a1 = self.attn1(x[:, :4].reshape(-1, 1, 2, 2))  # (B, 1, 2, 2)
        a2 = self.attn2(x[:, 4:].reshape(-1, 1, 2, 2))
        return (a1[:, 0, None] * self.w1).sum((2, 3)) + (a2[:, 0, None] * self.w2).sum((2, 3))  # (B, 2)


def test_grad_mode_on_a_tiny_hand_built_transformer():
    module = _TinyAttention()
    handle = ModelHandle(name="tiny", module=module, task="classification", modality="image",
                         input_shape=(8,), class_names=("a", "b"), source="test", sha256="0",
                         attention=("attn1", "attn2"))
    x = torch.tensor([A1[0] + A1[1] + A2[0] + A2[1]], dtype=torch.float64)
    explainer = create_explainer("attention-rollout", handle, mode="grad")
    # d logit_0 / d A_l = W_l[0]:  (W1 * A1)^+ = [[.6, 0], [.4, 0]],  (W2 * A2)^+ = [[.25, 1], [0, .7]]
    # R = (I + Ā2)(I + Ā1) = [[1.25, 1], [0, 1.7]] @ [[1.6, 0], [.4, 1]] = [[2.4, 1], [.68, 1.7]]
    expected = torch.tensor([[2.4, 1.0], [0.68, 1.7]], dtype=torch.float64)
    torch.testing.assert_close(explainer.matrix(x, torch.tensor([0]))[0], expected)
    torch.testing.assert_close(explainer.relevance(x, torch.tensor([0]))[0], torch.tensor([1.0], dtype=torch.float64))
    # Class 1 has zero weights: no gradient, so R = I and the CLS row keeps no patch.
    torch.testing.assert_close(explainer.matrix(x, torch.tensor([1]))[0], torch.eye(2, dtype=torch.float64))
    assert all(p.grad is None for p in module.parameters())
    assert not module.attn1._forward_hooks and not module.attn2._forward_hooks
    # The public function agrees given the same gradients.
    grads = [module.w1[0].view(1, 1, 2, 2), module.w2[0].view(1, 1, 2, 2)]
    torch.testing.assert_close(grad_rollout([heads(A1), heads(A2)], grads)[0], expected)


# ---- the zoo's vit ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["rollout", "flow", "grad"])
def test_vit_attributions_are_finite_and_of_input_shape(vit, digits_test, mode):
    data = digits_test.head(4)
    result = create_explainer("attention-rollout", vit, mode=mode).explain(data, batch_size=3)
    assert result.attributions.shape == tuple(data.x.shape)
    assert np.isfinite(result.attributions).all()
    assert (result.attributions >= 0).all()
    # Nearest upsampling of the 4x4 patch grid: every 8x8 patch is constant.
    patches = result.attributions[:, 0].reshape(4, 4, 8, 4, 8)
    np.testing.assert_allclose(patches, np.broadcast_to(patches[:, :, :1, :, :1], patches.shape))


def test_vit_rollout_rows_sum_to_one_and_match_the_cls_row(vit, digits_test):
    explainer = create_explainer("attention-rollout", vit, head_fusion="max", discard_ratio=0.5)
    x = digits_test.x[:5]
    matrix = explainer.matrix(x)  # (B, T, T)
    assert matrix.shape == (5, 17, 17)
    torch.testing.assert_close(matrix.sum(-1), torch.ones(5, 17))
    torch.testing.assert_close(explainer.relevance(x), matrix[:, 0, 1:])
    with AttentionRecorder(vit.module, vit.attention) as rec, torch.no_grad():
        vit.module(x)
    assert len(rec.checked()) == 4
    torch.testing.assert_close(rec.attentions[0].sum(-1), torch.ones(5, 4, 17))  # softmax rows


def test_vit_hooks_removed_and_weights_and_mode_unchanged(vit, digits_test):
    module = vit.module
    attention_modules = [vit.get_layer(n) for n in vit.attention]
    before = {k: v.clone() for k, v in module.state_dict().items()}
    module.train()
    try:
        for mode in ("rollout", "grad"):
            create_explainer("attention-rollout", vit, mode=mode).explain(digits_test.head(3))
        assert all(m.training for m in module.modules())
        assert all(p.grad is None for p in module.parameters())
        assert all(not m._forward_hooks for m in attention_modules)
        after = module.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
        # An error inside the recorder still removes the hooks.
        with pytest.raises(RuntimeError), AttentionRecorder(module, vit.attention):
            assert all(len(m._forward_hooks) == 1 for m in attention_modules)
            raise RuntimeError("boom")
        assert all(not m._forward_hooks for m in attention_modules)
    finally:
        module.eval()


def test_rollout_does_not_apply_to_lenet(lenet, vit):
    assert "attention-rollout" not in list_explainers(handle=lenet)
    assert "attention-rollout" in list_explainers(handle=vit)
    with pytest.raises(NotApplicableError, match="needs attention modules; lenet has none"):
        create_explainer("attention-rollout", lenet)


def test_bad_options_and_too_many_tokens_for_flow(vit):
    with pytest.raises(DataError, match="discard_ratio"):
        create_explainer("attention-rollout", vit, discard_ratio=1.0)
    with pytest.raises(DataError, match="mode"):
        create_explainer("attention-rollout", vit, mode="lrp")
    with pytest.raises(DataError, match="unknown option .* it takes target, mode, head_fusion"):
        create_explainer("attention-rollout", vit, steps=3)
    big = torch.full((1, 1, 66, 66), 1 / 66)
    with pytest.raises(DataError, match="limited to 65 tokens"):
        attention_flow([big])


# ---- CLI ----------------------------------------------------------------------------


def test_cli_rollout_exit_codes(tmp_path):
    ok = runner.invoke(app, ["rollout", "vit", "-n", "2", "--mode", "grad", "--head-fusion", "min", "--json",
                             "-o", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    assert doc["method"] == "attention-rollout"
    assert doc["options"]["mode"] == "grad" and doc["options"]["head_fusion"] == "min"
    assert np.asarray(doc["attributions"]).shape == (2, 1, 32, 32)
    assert (tmp_path / "rollout-grad.html").exists()

    table = runner.invoke(app, ["rollout", "vit", "-n", "2", "--discard-ratio", "0.9"])
    assert table.exit_code == 0, table.output
    assert "attention rollout on vit" in table.stdout

    for args, message in (
        (["rollout", "lenet", "-n", "2"], "needs attention modules; lenet has none"),
        (["rollout", "vit", "--text", "a sentence"], "needs a text model; vit takes image inputs"),
        (["rollout", "vit", "--mode", "lrp"], "--mode must be one of"),
        (["rollout", "vit", "--discard-ratio", "1.5"], "option discard_ratio: Input should be less than 1"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr
