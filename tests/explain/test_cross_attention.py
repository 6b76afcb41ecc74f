"""Cross-attention maps, decoder rollout and source ablation of the encoder-decoder (seq2seq-dates)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xai.datasets import load_dataset
from xai.errors import DataError, NotApplicableError
from xai.explain import cross_attention
from xai.explain.cross_attention import (
    AttentionByName,
    CrossAttention,
    alignment_mask,
    decoder_rollout,
    generated_lengths,
    source_ablation,
    source_integrated_gradients,
    source_shapley,
)
from xai.zoo import load_model

from ..conftest import ZOO


@pytest.fixture(scope="module")
def handle():
    return load_model("seq2seq-dates", zoo_dir=ZOO)


@pytest.fixture(scope="module")
def dates():
    return load_dataset("dates", "test")


def _hand_attention(attn: torch.nn.Module, x: torch.Tensor, memory: torch.Tensor,
                    blocked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T / sqrt(d_head)) written out from the layer's weights; returns (probabilities, output)."""
    heads = attn.heads
    b, tq, d = x.shape
    dh = d // heads
    q = x @ attn.q.weight.T + attn.q.bias  # (B, Tq, d)
    w_k, w_v = attn.kv.weight[:d], attn.kv.weight[d:]
    b_k, b_v = attn.kv.bias[:d], attn.kv.bias[d:]
    k = memory @ w_k.T + b_k
    v = memory @ w_v.T + b_v
    probs, outs = [], []
    for h in range(heads):
        part = slice(h * dh, (h + 1) * dh)
        scores = q[..., part] @ k[..., part].transpose(1, 2) / math.sqrt(dh)  # (B, Tq, Tk)
        scores = scores.masked_fill(blocked, float("-inf"))
        p = scores.exp() / scores.exp().sum(-1, keepdim=True)
        probs.append(p)
        outs.append(p @ v[..., part])
    out = torch.cat(outs, -1) @ attn.proj.weight.T + attn.proj.bias
    return torch.stack(probs, 1), out


def test_captured_cross_attention_equals_softmax_qk_by_hand(handle, dates):
    module = handle.module
    src = dates.x[:6]
    generated = module.generate(src)
    with torch.no_grad(), AttentionByName(module, module.cross_attention + module.decoder_self_attention) as rec:
        module.teacher_forced(src, generated)
    cross = rec.stacked(module.cross_attention)  # (B, L, H, T, S)
    with torch.no_grad():
        memory, pad = module.encode(src)
        tgt_in = module.shift(generated)
        t = tgt_in.shape[1]
        y = module.tgt_embed.weight[tgt_in] + module.tgt_pos.weight[:t]
        causal = torch.ones(t, t, dtype=torch.bool).triu(1)
        for layer, block in enumerate(module.decoder):
            h = block.norm1(y)
            self_probs, self_out = _hand_attention(block.self_attn, h, h, causal[None])
            torch.testing.assert_close(rec.outputs[module.decoder_self_attention[layer]], self_probs,
                                       atol=1e-6, rtol=1e-5)
            y = y + self_out
            probs, out = _hand_attention(block.cross_attn, block.norm2(y), memory, pad[:, None, :])
            torch.testing.assert_close(cross[:, layer], probs, atol=1e-6, rtol=1e-5)
            y = y + out
            y = y + block.mlp(block.norm3(y))
    assert (cross.sum(-1) - 1).abs().max() < 1e-5
    assert float(cross.masked_select(pad[:, None, None, None, :].expand_as(cross)).abs().max()) == 0.0
    assert rec.outputs[module.decoder_self_attention[0]].triu(1).abs().max() == 0  # causal: nothing ahead


def test_teacher_forced_maps_equal_what_each_greedy_step_saw(handle, dates):
    module = handle.module
    src = dates.x[:4]
    seen = []
    hook = module.get_submodule(module.cross_attention[-1]).register_forward_hook(
        lambda _m, _i, out: seen.append(out[:, :, -1].detach().clone()))
    try:
        generated = module.generate(src)
    finally:
        hook.remove()
    with torch.no_grad(), AttentionByName(module, module.cross_attention) as rec:
        module.teacher_forced(src, generated)
    last = rec.outputs[module.cross_attention[-1]]  # (B, H, T, S)
    assert len(seen) == generated.shape[1]
    for step, row in enumerate(seen):
        torch.testing.assert_close(last[:, :, step], row, atol=1e-6, rtol=1e-5)


def test_rollout_through_the_decoder_by_hand():
    # S = T = 2, one head, one encoder and one decoder layer
    encoder = torch.tensor([[1.0, 0.0], [0.5, 0.5]])[None, None, None]  # (1, 1, 1, 2, 2)
    decoder_self = torch.tensor([[1.0, 0.0], [0.5, 0.5]])[None, None, None]
    cross = torch.tensor([[0.0, 1.0], [1.0, 0.0]])[None, None, None]
    # encoder rollout 0.5 A + 0.5 I = [[1, 0], [.25, .75]]; decoder mix M the same; cross @ R_enc =
    # [[.25, .75], [1, 0]]; make-up = 0.5 [M | 0] + 0.5 [0 | X R] -> source parts [.125, .375] and [.5, 0]
    rolled, share = decoder_rollout(encoder, decoder_self, cross)
    torch.testing.assert_close(rolled[0], torch.tensor([[0.25, 0.75], [1.0, 0.0]]))
    torch.testing.assert_close(share[0], torch.tensor([0.5, 0.5]))


def test_rollout_rows_are_distributions_and_the_source_total_is_fixed_by_depth(handle, dates):
    result = CrossAttention.run(handle, dates.head(8), {"samples": 8, "ablation": False, "shapley": False,
                                                           "integrated_gradients": False})
    np.testing.assert_allclose(result.rollout.sum(-1), 1.0, atol=1e-5)
    rng = torch.Generator().manual_seed(0)
    for layers in (1, 2, 3):  # any attention: the residual keeps half at each cross-attention
        shape = (2, layers, 3, 4, 4)
        a = torch.rand(shape, generator=rng).tril()
        a = a / a.sum(-1, keepdim=True)
        c = torch.rand((2, layers, 3, 4, 5), generator=rng)
        e = torch.rand((2, 2, 3, 5, 5), generator=rng)
        _, share = decoder_rollout(e / e.sum(-1, keepdim=True), a, c / c.sum(-1, keepdim=True))
        torch.testing.assert_close(share, torch.full((2, 4), 1 - 0.5 ** layers))
    assert result.ablation.size == 0 and "ablation_alignment" not in result.metrics()


def test_source_ablation_equals_captum_feature_ablation(handle, dates):
    from captum.attr import FeatureAblation

    module = handle.module
    src = dates.x[:3]
    generated = module.generate(src)
    ours = source_ablation(module, src, generated, baseline_id=module.tokenizer.pad_id)  # (B, T, S)

    def logprob(ids: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:  # (B, T)
        logits = module.teacher_forced(ids, tokens)
        return F.log_softmax(logits, -1).gather(2, tokens[..., None]).squeeze(2)

    ablation = FeatureAblation(logprob)
    for t in range(generated.shape[1]):
        theirs = ablation.attribute(src, baselines=module.tokenizer.pad_id, target=t,
                                    additional_forward_args=(generated,))
        torch.testing.assert_close(ours[:, t], theirs.float(), atol=1e-5, rtol=1e-4)
    assert float(ours[src[:, None, :].expand_as(ours) == 0].abs().max()) == 0.0  # padding: nothing to remove


def test_alignment_on_the_trained_model(handle, dates):
    data = dates.head(32)
    result = CrossAttention.run(handle, data, {"samples": 32, "rows": 32})
    assert result.exact_match >= 0.95
    # the alignment recomputed from the shown maps and the fields, by loops
    t, s = result.maps.shape[2:]
    mask = alignment_mask(data, t, s).numpy()
    for layer in range(len(result.layers)):
        shares = [float(result.maps[n, layer, i][mask[n, i]].sum())
                  for n in range(len(data)) for i in range(len(result.generated_tokens[n])) if mask[n, i].any()]
        assert result.alignment[layer] == pytest.approx(np.mean(shares), abs=1e-6)
    metrics = result.metrics()
    # the model reads the field it copies: far above the field's share of the source tokens (about 1/3)
    assert metrics["alignment"] >= 0.6
    assert metrics["ablation_alignment"] >= 0.6
    assert metrics["alignment"] == max(metrics["alignment.L0"], metrics["alignment.L1"])
    assert result.to_dict()["cross_shape"] == [32, 2, 4, 11, 10] and "cross" not in result.to_dict()
    # the signed readings' alignments: share of |value| on the copied field, by loops
    assert result.attribution_rows == 32 and result.shapley.shape == result.integrated_gradients.shape == (32, t, s)
    for name, maps in (("shapley_alignment", result.shapley), ("ig_alignment", result.integrated_gradients)):
        shares = [float(np.abs(maps[n, i])[mask[n, i]].sum() / np.abs(maps[n, i]).sum())
                  for n in range(len(data)) for i in range(len(result.generated_tokens[n])) if mask[n, i].any()]
        assert metrics[name] == pytest.approx(np.mean(shares), abs=1e-6)
        assert metrics[name] > 0.5  # over the field's share of the source tokens
    assert 0 <= metrics["ig_max_delta"] < 0.5


def test_generated_lengths_stop_at_the_first_end_token():
    ids = torch.tensor([[5, 2, 7, 2], [5, 6, 7, 8], [2, 0, 0, 0]])
    assert generated_lengths(ids, eos_id=2).tolist() == [2, 4, 1]


def test_data_without_fields_gives_a_note_and_no_alignment(handle, dates):
    bare = dataclasses.replace(dates.head(4), annotations=())
    result = CrossAttention.run(handle, bare, {"samples": 2, "ablation": False})
    assert "alignment" not in result.metrics() and "no alignment score" in result.notes[0]


def test_it_applies_to_encoder_decoders_only(handle):
    assert CrossAttention.why_not(handle) is None
    with pytest.raises(NotApplicableError, match="applies to generation models, not classification"):
        CrossAttention.check_applies(load_model("lstm-text", zoo_dir=ZOO))
    with pytest.raises(DataError, match="cross-attention needs source rows"):
        CrossAttention.run(handle, None, {})


def _logprob(module, ids: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(B, T) log-probability of each token of ``tokens`` (teacher-forced), written out."""
    logits = module.teacher_forced(ids, tokens.expand(len(ids), -1))
    return F.log_softmax(logits, -1).gather(2, tokens.expand(len(ids), -1)[..., None]).squeeze(2)


def _short_source(module, dates) -> tuple[torch.Tensor, torch.Tensor]:
    """A date cut to its first 4 tokens (the rest padding), and the full date's generated output."""
    src = dates.x[:1].clone()
    src[0, 4:] = module.tokenizer.pad_id
    return src, module.generate(dates.x[:1])


@pytest.mark.parametrize("baseline", ["pad", "unk"])
def test_exact_shapley_equals_captum_shapley_values_on_a_short_source(handle, dates, baseline):
    from captum.attr import ShapleyValues

    module = handle.module
    baseline_id = getattr(module.tokenizer, f"{baseline}_id")
    src, generated = _short_source(module, dates)
    ours = source_shapley(module, src, generated, baseline_id, pad_id=module.tokenizer.pad_id)  # (1, T, S)

    def value(chosen: torch.Tensor) -> torch.Tensor:  # captum sees the 4 real tokens only
        ids = src.repeat(len(chosen), 1)
        ids[:, :4] = chosen
        return _logprob(module, ids, generated)

    exact = ShapleyValues(value)  # all 4! orders
    for t in range(generated.shape[1]):
        with torch.no_grad():
            theirs = exact.attribute(src[:, :4], baselines=baseline_id, target=t)
        torch.testing.assert_close(ours[0, t, :4], theirs[0].float(), atol=1e-5, rtol=1e-4)
    assert ours[0, :, 4:].abs().max() == 0  # padding is no player


def test_shapley_values_add_up_to_the_log_probability_change(handle, dates):
    # efficiency: each generated token's values sum to its log-probability minus that with
    # every real source token the baseline ([PAD]: all masked out); rows of 6 to 10 tokens
    module = handle.module
    pad = module.tokenizer.pad_id
    src = dates.x[:6]
    generated = module.generate(src)
    phi = source_shapley(module, src, generated, pad, pad_id=pad)
    with torch.no_grad():
        change = _logprob(module, src, generated) - _logprob(module, torch.full_like(src, pad), generated)
    torch.testing.assert_close(phi.sum(-1), change, atol=1e-4, rtol=1e-4)
    assert {int((row != pad).sum()) for row in src} <= set(range(6, 11))


def test_sampled_shapley_beyond_the_exact_limit_keeps_efficiency_and_nears_the_exact_values(
        handle, dates, monkeypatch):
    module = handle.module
    pad = module.tokenizer.pad_id
    src, generated = _short_source(module, dates)
    exact = source_shapley(module, src, generated, pad, pad_id=pad)
    monkeypatch.setattr(cross_attention, "EXACT_SHAPLEY_PLAYERS", 3)  # 4 tokens: captum's sampling
    sampled = source_shapley(module, src, generated, pad, pad_id=pad, permutations=100, seed=0)
    assert not torch.equal(sampled, exact)
    torch.testing.assert_close(sampled.sum(-1), exact.sum(-1), atol=1e-4, rtol=1e-4)
    assert (sampled - exact).abs().max() < 0.1 * exact.abs().max()


def test_layer_integrated_gradients_equal_the_gauss_legendre_sum_by_hand(handle, dates):
    module = handle.module
    pad = module.tokenizer.pad_id
    src = dates.x[:2]
    generated = module.generate(src)
    steps = 16
    ours, delta = source_integrated_gradients(module, module.src_embed, src, generated, pad, pad_id=pad,
                                              steps=steps)
    nodes, weights = np.polynomial.legendre.leggauss(steps)  # captum's default rule on [0, 1]
    with torch.no_grad():
        real = module.src_embed(src)
        base = module.src_embed(torch.where(src == pad, src, pad))  # [PAD] at every real position
    assert base[src != pad].abs().max() == 0  # the padding row of the embedding is zero
    for t in (0, 4, generated.shape[1] - 1):
        total = torch.zeros_like(real)
        for node, weight in zip(nodes, weights, strict=True):
            point = (base + 0.5 * (1 + node) * (real - base)).requires_grad_()
            hook = module.src_embed.register_forward_hook(lambda _m, _i, _o, p=point: p)
            try:
                (grad,) = torch.autograd.grad(_logprob(module, src, generated)[:, t].sum(), point)
            finally:
                hook.remove()
            total += 0.5 * weight * grad
        torch.testing.assert_close(ours[:, t], (total * (real - base)).sum(-1), atol=1e-5, rtol=1e-4)
    _, fine = source_integrated_gradients(module, module.src_embed, src, generated, pad, pad_id=pad, steps=64)
    assert fine.abs().max() < 1e-2 and fine.abs().max() <= delta.abs().max()  # completeness with more steps
