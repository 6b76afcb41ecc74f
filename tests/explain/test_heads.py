"""Attention heads: per-head maps recomputed by hand, head importance equal to masking done by hand."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xai.datasets import Dataset, load_dataset
from xai.errors import DataError
from xai.explain.heads import AttentionHeads, HeadMask
from xai.explain.rollout import _attentions, fuse_heads
from xai.zoo import ModelHandle, load_model
from xai.zoo.transformer import VisionTransformer

DEPTH, HEADS, DIM = 2, 2, 8


@pytest.fixture(scope="module")
def tiny():
    """A tiny random ViT (2 blocks x 2 heads, 8x8 images in 4x4 patches: CLS + 4 tokens)."""
    torch.manual_seed(0)
    module = VisionTransformer(num_classes=3, image_size=8, patch=4, dim=DIM, depth=DEPTH, heads=HEADS, mlp_ratio=2)
    with torch.no_grad():  # larger weights than the init, so that heads matter to the prediction
        for p in module.parameters():
            p.mul_(3.0)
    handle = ModelHandle.from_module(module, classes=3, input_shape=(1, 8, 8), name="tiny-vit")
    return dataclasses.replace(handle, attention=tuple(f"blocks.{i}.attn.softmax" for i in range(DEPTH)))


@pytest.fixture(scope="module")
def tiny_data(tiny):
    x = torch.randn(48, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = tiny.module(x)
    # labels: the model's prediction, except every fourth row's, so both accuracy and loss can move
    y = logits.argmax(1)
    y[::4] = (y[::4] + 1) % 3
    return Dataset.from_arrays(x, y, class_names=["a", "b", "c"], name="tiny")


def hand_forward(module: VisionTransformer, x: torch.Tensor, masked: tuple[int, int] | None = None,
                 record: list[torch.Tensor] | None = None) -> torch.Tensor:
    """The ViT forward written out, head by head; head ``masked = (layer, head)`` contributes 0."""
    tokens = module.patch_embed.proj(x).flatten(2).transpose(1, 2)
    tokens = torch.cat([module.cls_token.expand(len(x), -1, -1), tokens], 1) + module.pos_embed
    d_head = DIM // HEADS
    for layer, block in enumerate(module.blocks):
        y = block.norm1(tokens)
        w, b = block.attn.qkv.weight, block.attn.qkv.bias
        outs, maps = [], []
        for head in range(HEADS):
            rows = slice(head * d_head, (head + 1) * d_head)
            q = y @ w[rows].T + b[rows]
            k = y @ w[DIM:][rows].T + b[DIM:][rows]
            v = y @ w[2 * DIM:][rows].T + b[2 * DIM:][rows]
            a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d_head), dim=-1)  # (B, T, T)
            maps.append(a)
            out = a @ v
            outs.append(torch.zeros_like(out) if masked == (layer, head) else out)
        if record is not None:
            record.append(torch.stack(maps, 1))
        tokens = tokens + block.attn.proj(torch.cat(outs, -1))
        tokens = tokens + block.mlp(block.norm2(tokens))
    return module.head(module.norm(tokens)[:, 0])


@torch.no_grad()
def test_hand_forward_matches_the_module(tiny, tiny_data):
    torch.testing.assert_close(hand_forward(tiny.module, tiny_data.x), tiny.module(tiny_data.x), rtol=1e-5,
                               atol=1e-5)


@torch.no_grad()
def test_head_importance_equals_masking_by_hand(tiny, tiny_data):
    result = AttentionHeads.run(tiny, tiny_data, {"samples": 2, "importance_samples": 1000})
    assert result.metric == "accuracy" and result.importance_rows == len(tiny_data)
    y = tiny_data.y
    base = hand_forward(tiny.module, tiny_data.x)
    base_acc = float((base.argmax(1) == y).float().mean())
    base_loss = float(F.cross_entropy(base, y))
    assert result.baseline == pytest.approx(base_acc) and result.baseline_loss == pytest.approx(base_loss, rel=1e-5)
    drops, losses = np.zeros((DEPTH, HEADS)), np.zeros((DEPTH, HEADS))
    for layer in range(DEPTH):
        for head in range(HEADS):
            logits = hand_forward(tiny.module, tiny_data.x, masked=(layer, head))
            drops[layer, head] = base_acc - float((logits.argmax(1) == y).float().mean())
            losses[layer, head] = float(F.cross_entropy(logits, y)) - base_loss
    np.testing.assert_allclose(result.drop, drops, atol=1e-6)
    np.testing.assert_allclose(result.loss_increase, losses, rtol=1e-4, atol=1e-5)
    assert np.abs(losses).max() > 1e-3  # the check is not vacuous: masking a head changes the loss
    metrics = result.metrics()
    assert metrics["drop.L1H0"] == pytest.approx(drops[1, 0]) and metrics["max_drop"] == pytest.approx(drops.max())


@torch.no_grad()
def test_head_mask_removes_its_hooks_and_leaves_the_model_as_it_was(tiny, tiny_data):
    before = tiny.module(tiny_data.x)
    with HeadMask(tiny.module, tiny.attention, [(0, 1), (1, 0)]):
        masked = tiny.module(tiny_data.x)
    assert not torch.allclose(before, masked)
    torch.testing.assert_close(tiny.module(tiny_data.x), before)
    assert all(not m._forward_hooks for m in tiny.module.modules())


@torch.no_grad()
def test_per_head_maps_are_the_attention_computed_by_hand(tiny, tiny_data):
    result = AttentionHeads.run(tiny, tiny_data, {"samples": 5, "importance": False})
    record: list[torch.Tensor] = []
    hand_forward(tiny.module, tiny_data.x[:5], record=record)
    expected = torch.stack(record, 1).numpy()  # (S, L, H, T, T)
    np.testing.assert_allclose(result.attention, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.pooled, expected[:, :, :, 0], rtol=1e-5, atol=1e-6)  # the CLS rows
    assert result.drop.size == 0 and result.metrics() == {}


@pytest.mark.parametrize(("model", "data"), [("vit", "digits"), ("bert-mini", "sentiment-text"),
                                             ("minilm", "sentence-pairs")])
def test_head_maps_averaged_over_heads_equal_rollouts_mean_fusion(model, data):
    handle = load_model(model)
    rows = load_dataset(data, "test").head(3)
    result = AttentionHeads.run(handle, rows, {"samples": 3, "importance": False})
    with torch.no_grad():
        fused = [fuse_heads(a, "mean").numpy() for a in _attentions(handle, rows.x)]  # L x (S, T, T)
    assert result.attention.shape[:2] == (3, len(handle.attention))
    for layer, expected in enumerate(fused):
        np.testing.assert_allclose(result.attention[:, layer].mean(1), expected, rtol=1e-5, atol=1e-7)
    if handle.modality == "text":
        assert len(result.tokens) == 3 and result.tokens[0][0] == "[CLS]"
        assert (result.pooled[~np.broadcast_to(result.mask[:, None, None, :], result.pooled.shape)] == 0).all()


def test_vit_head_importance_on_the_zoo_model():
    handle = load_model("vit")
    result = AttentionHeads.run(handle, load_dataset("digits", "test"), {"samples": 2, "importance_samples": 64})
    assert result.drop.shape == (4, 4) and result.importance_rows == 64
    assert result.metrics()["max_drop"] > 0  # some head matters on the trained model
    assert result.to_dict()["attention_shape"] == [2, 4, 4, 17, 17] and "attention" not in result.to_dict()


def test_a_model_with_its_own_evaluate_is_scored_on_its_cards_metric():
    from xai.explain.heads import primary_metric

    handle = load_model("minilm")
    assert primary_metric(handle, {"cosine_paraphrase": 0.8, "spearman": 0.9}) == "spearman"
    assert primary_metric(dataclasses.replace(handle, card=None), {"cosine_paraphrase": 0.8}) == "cosine_paraphrase"
    with pytest.raises(DataError, match="reports no metric"):
        primary_metric(handle, {})
