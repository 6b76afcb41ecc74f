"""Transformers of the zoo: a small Vision Transformer on the digits.

Attention is written by hand so that each layer's attention probabilities are the output
of their own module (``blocks.<i>.attn.softmax``, ``(B, heads, T, T)``): attention rollout
reads them with plain forward hooks, and the entry lists them in ``ZooEntry.attention``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from xai.datasets._digits import DIGIT_CLASSES
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, fit_classifier
from xai.zoo.cnn import random_shift

__all__ = ["MLP", "MultiHeadSelfAttention", "PatchEmbedding", "TransformerBlock", "VisionTransformer"]


class PatchEmbedding(nn.Module):
    """Non-overlapping ``patch x patch`` patches, each projected linearly to ``dim``."""

    def __init__(self, in_channels: int, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, N, dim)`` with ``N = (H / patch) * (W / patch)``."""
        return self.proj(x).flatten(2).transpose(1, 2)


class MultiHeadSelfAttention(nn.Module):
    """Scaled dot-product self-attention over ``heads`` heads (Vaswani et al. 2017).

    ``self.softmax`` outputs the attention probabilities ``(B, heads, T, T)``.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.softmax = nn.Softmax(dim=-1)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, dim)`` -> ``(B, T, dim)``."""
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, H, T, d_head) each
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)  # (B, H, T, T)
        attn = self.softmax(scores)  # (B, H, T, T)
        out = (attn @ v).transpose(1, 2).reshape(b, t, d)  # (B, T, dim)
        return self.proj(out)


class MLP(nn.Module):
    """Position-wise feed-forward network: Linear, GELU, Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, dim)`` -> ``(B, T, dim)``."""
        return self.fc2(self.act(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm encoder block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, dim)`` -> ``(B, T, dim)``."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """A small ViT (Dosovitskiy et al. 2021) for ``(B, 1, 32, 32)`` digits.

    Patch embedding, a learned CLS token and position embeddings, ``depth`` pre-norm
    encoder blocks, and a linear head on the final CLS token.

    Examples
    --------
    >>> VisionTransformer()(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 32, patch: int = 4,
                 dim: int = 64, depth: int = 4, heads: int = 4, mlp_ratio: int = 2) -> None:
        super().__init__()
        self.patch_embed = PatchEmbedding(in_channels, patch, dim)
        tokens = (image_size // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[TransformerBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)``."""
        tokens = self.patch_embed(x)  # (B, N, dim)
        cls = self.cls_token.expand(len(tokens), -1, -1)  # (B, 1, dim)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos_embed  # (B, N + 1, dim)
        tokens = self.norm(self.blocks(tokens))  # (B, N + 1, dim)
        return self.head(tokens[:, 0])  # (B, classes): read from the CLS token


_VIT_ARCH = {"patch": 8, "dim": 64, "depth": 4, "heads": 4, "mlp_ratio": 2}
_VIT_RECIPE: dict[str, Any] = {"epochs": 40, "lr": 3e-3, "batch_size": 128, "weight_decay": 1e-4,
                               "augment": "random shift +-2 px", **_VIT_ARCH}


def build_vit() -> VisionTransformer:
    """The zoo's ViT."""
    return VisionTransformer(**_VIT_ARCH)


def _train_vit(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    return fit_classifier(module, ctx, epochs=_VIT_RECIPE["epochs"], lr=_VIT_RECIPE["lr"],
                          batch_size=_VIT_RECIPE["batch_size"], weight_decay=_VIT_RECIPE["weight_decay"],
                          augment=random_shift, label="vit")


_DEPTH = _VIT_ARCH["depth"]

register_model(
    ZooEntry(
        name="vit",
        family="transformer",
        task="classification",
        modality="image",
        dataset="digits",
        build=build_vit,
        train=_train_vit,
        input_shape=(1, 32, 32),
        class_names=DIGIT_CLASSES,
        layers=tuple(f"blocks.{i}" for i in range(_DEPTH)),
        metric="accuracy",
        floor=0.95,
        paper="https://arxiv.org/abs/2010.11929",
        description="small Vision Transformer (8x8 patches, CLS token, 4 blocks of 4-head self-attention)",
        recipe=_VIT_RECIPE,
        attention=tuple(f"blocks.{i}.attn.softmax" for i in range(_DEPTH)),
    )
)
