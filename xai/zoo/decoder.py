"""A decoder-only transformer of the zoo: ``gpt-mini``, a word-level language model of the pydoc text.

GPT (Radford et al. 2018) at miniature scale: token and position embeddings, ``depth``
pre-norm blocks of *masked* (causal) multi-head self-attention, so position ``t`` reads
only positions ``<= t``, and a linear head giving next-word logits at every position
(:meth:`GPTMini.lm_logits`, ``(B, T, V)``). It is trained with teacher forcing on the
windows of :mod:`xai.datasets._pydoc_lm` and generates autoregressively
(:meth:`GPTMini.generate`, greedy).

Each layer's attention probabilities are the output of its own module
(``blocks.<i>.attn.softmax``, ``(B, heads, T, T)``, zero above the diagonal), listed in
``ZooEntry.attention``: attention rollout, the head view and the causal rollout of
:mod:`xai.explain.llm` read them with plain forward hooks. ``forward`` returns the logits
of the word after the last real token ``(B, V)``, so the classifier-style explainers
(integrated gradients on ``token_embed`` ...) explain "the next word" with the targets
adapter ``class_logit`` (target = a word id). Padding (id 0) goes at the end: the causal
mask alone keeps it out of every real position.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xai.datasets import Dataset
from xai.datasets._pydoc_lm import CONTEXT, PydocTokenizer, next_token_targets, pydoc_tokenizer
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, seed_everything
from xai.zoo.handle import class_logit
from xai.zoo.transformer import MLP, MultiHeadSelfAttention

__all__ = ["CausalSelfAttention", "DecoderBlock", "GPTMini", "evaluate_lm", "lm_loss"]


class CausalSelfAttention(MultiHeadSelfAttention):
    """:class:`~xai.zoo.transformer.MultiHeadSelfAttention` with a causal mask.

    ``self.softmax`` outputs the attention probabilities ``(B, heads, T, T)``; every entry
    above the diagonal (a later key) is exactly 0.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, dim)`` -> ``(B, T, dim)``."""
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, H, T, d_head) each
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)  # (B, H, T, T)
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)  # (T, T): key after query
        attn = self.softmax(scores.masked_fill(future, float("-inf")))  # (B, H, T, T)
        out = (attn @ v).transpose(1, 2).reshape(b, t, d)  # (B, T, dim)
        return self.proj(out)


class DecoderBlock(nn.Module):
    """Pre-norm decoder block: ``x + attn(norm(x))`` (causal), then ``x + mlp(norm(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, dim)`` -> ``(B, T, dim)``."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class GPTMini(nn.Module):
    """A miniature GPT: embeddings, ``depth`` causal blocks, a final norm and a next-word head.

    Examples
    --------
    >>> model = GPTMini()
    >>> ids = model.tokenizer.encode(["the method returns", "a list"])
    >>> model.lm_logits(ids).shape, model(ids).shape  # every position; the word after the last real one
    (torch.Size([2, 4, 1917]), torch.Size([2, 1917]))
    >>> model.generate(ids[:1], max_new_tokens=3).shape  # the prompt and 3 greedy words
    torch.Size([1, 7])
    """

    def __init__(self, tokenizer: PydocTokenizer | None = None, dim: int = 64, depth: int = 2, heads: int = 4,
                 mlp_ratio: int = 4, max_length: int = CONTEXT + 16, dropout: float = 0.0) -> None:
        super().__init__()
        self.tokenizer = tokenizer or pydoc_tokenizer()
        self.max_length = max_length
        self.token_embed = nn.Embedding(len(self.tokenizer), dim, padding_idx=0)
        self.pos_embed = nn.Embedding(max_length, dim)
        self.drop = nn.Dropout(dropout)  # on the embeddings, while training only (57k words overfit fast)
        self.blocks = nn.ModuleList(DecoderBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, len(self.tokenizer))

    def lm_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """Next-word logits at every position ``(B, T, V)`` of token ids ``(B, T)``."""
        t = ids.shape[1]
        if t > self.max_length:
            raise ValueError(f"gpt-mini reads at most {self.max_length} tokens, got {t}")
        positions = torch.arange(t, device=ids.device)  # (T,)
        x = self.drop(self.token_embed(ids) + self.pos_embed(positions))  # (B, T, dim)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.norm(x))  # (B, T, V)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits of the word after the last real token ``(B, V)`` (padding 0 at the end)."""
        logits = self.lm_logits(ids)  # (B, T, V)
        last = ((ids != 0).sum(1) - 1).clamp(min=0)  # (B,)
        return logits[torch.arange(len(ids), device=ids.device), last]

    @torch.no_grad()
    def generate(self, ids: torch.Tensor, max_new_tokens: int = 8) -> torch.Tensor:
        """Greedy decoding: ``ids`` ``(1, T)`` and ``max_new_tokens`` arg-max words ``(1, T + n)``.

        The context is cut to the last ``max_length`` tokens (the position embeddings' reach).
        """
        out = ids
        for _ in range(max_new_tokens):
            logits = self.lm_logits(out[:, -self.max_length:])[:, -1]  # (1, V)
            logits[:, : self.tokenizer.unk_id + 1] = float("-inf")  # never a special token
            out = torch.cat([out, logits.argmax(-1, keepdim=True)], dim=1)
        return out


def _targets(batch: Dataset, tokenizer: PydocTokenizer) -> torch.Tensor:
    """Next-word targets ``(B, T)``; padding and ``[UNK]`` are -100 (no loss, not scored)."""
    targets = next_token_targets(batch.x, batch.y)
    return targets.masked_fill((targets == 0) | (targets == tokenizer.unk_id), -100)


def lm_loss(module: nn.Module, batch: Dataset) -> torch.Tensor:
    """Mean next-word cross-entropy over every position of every window (teacher forcing)."""
    assert isinstance(module, GPTMini)
    logits = module.lm_logits(batch.x.to(module.lm_head.weight.device))  # (B, T, V)
    targets = _targets(batch, module.tokenizer).to(logits.device)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)


def unigram_log_probs(train: Dataset, vocab: int) -> torch.Tensor:
    """Add-one smoothed log-frequencies of the training targets ``(V,)`` (the baseline that ignores context)."""
    targets = next_token_targets(train.x, train.y).flatten()
    counts = torch.bincount(targets, minlength=vocab).double() + 1.0
    counts[0] = 0.0  # padding is never a word
    return (counts / counts.sum()).log()


@torch.no_grad()
def evaluate_lm(module: nn.Module, data: Dataset, device: torch.device) -> dict[str, float]:
    """Next-word accuracy and perplexity on ``data``, beside a unigram baseline fitted on the train split.

    ``perplexity_ratio`` is the model's perplexity over the unigram model's (below 1: the
    context helps).
    """
    from xai.datasets import load_dataset

    assert isinstance(module, GPTMini)
    was_training = module.training
    module.eval()
    try:
        targets = _targets(data, module.tokenizer).flatten()  # (N*T,)
        scored = targets != -100
        log_probs = torch.cat([
            torch.log_softmax(module.lm_logits(data.x[i:i + 256].to(device)).float(), -1).cpu()
            for i in range(0, len(data), 256)]).flatten(0, 1)  # (N*T, V)
    finally:
        module.train(was_training)
    t = targets[scored]
    nll = -log_probs[scored].gather(1, t[:, None]).squeeze(1)
    unigram = unigram_log_probs(load_dataset("pydoc-lm", "train"), log_probs.shape[1])
    unigram_nll = -unigram[t]
    perplexity = float(nll.mean().exp())
    unigram_perplexity = float(unigram_nll.mean().exp())
    return {
        "next_token_accuracy": float((log_probs[scored].argmax(1) == t).float().mean()),
        "perplexity": perplexity,
        "unigram_accuracy": float((t == int(unigram.argmax())).float().mean()),
        "unigram_perplexity": unigram_perplexity,
        "perplexity_ratio": perplexity / unigram_perplexity,
        "scored_tokens": float(scored.sum()),
    }


_GPT_ARCH: dict[str, Any] = {"dim": 64, "depth": 2, "heads": 4, "mlp_ratio": 4, "dropout": 0.2}
_GPT_RECIPE: dict[str, Any] = {"epochs": 12, "lr": 3e-3, "batch_size": 64, "weight_decay": 0.05,
                               "context": CONTEXT, "optimiser": "AdamW, cosine schedule", **_GPT_ARCH}


def build_gpt_mini() -> GPTMini:
    """The zoo's gpt-mini."""
    return GPTMini(**_GPT_ARCH)


def _train_gpt_mini(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    assert isinstance(module, GPTMini)
    r = _GPT_RECIPE
    generator = seed_everything(ctx.seed)
    module.to(ctx.device).train()
    optimiser = torch.optim.AdamW(module.parameters(), lr=r["lr"], weight_decay=r["weight_decay"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=r["epochs"])
    running = float("nan")
    with ctx.progress() as progress:
        task = progress.add_task("gpt-mini", total=r["epochs"], status="")
        for _ in range(r["epochs"]):
            order = torch.randperm(len(ctx.train), generator=generator)
            total, count = 0.0, 0
            for start in range(0, len(order), r["batch_size"]):
                batch = ctx.train.subset(order[start:start + r["batch_size"]])
                optimiser.zero_grad(set_to_none=True)
                loss = lm_loss(module, batch)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
                count += len(batch)
            scheduler.step()
            running = total / count
            progress.update(task, advance=1, status=f"loss {running:.4f}")
    module.eval()
    return {**evaluate_lm(module, ctx.test, ctx.device), "train_loss": running}


_DEPTH = _GPT_ARCH["depth"]

register_model(
    ZooEntry(
        name="gpt-mini",
        family="transformer",
        task="generation",
        modality="text",
        dataset="pydoc-lm",
        build=build_gpt_mini,
        train=_train_gpt_mini,
        input_shape=(CONTEXT,),
        class_names=(),
        layers=("token_embed", *(f"blocks.{i}" for i in range(_DEPTH))),
        metric="next_token_accuracy",
        floor=0.15,  # the unigram baseline scores 0.08
        paper="https://cdn.openai.com/research-covers/language-unsupervised/language_understanding_paper.pdf",
        description=f"GPT-mini decoder ({_DEPTH} blocks of 4-head causal self-attention, d=64), word-level "
                    "language model of Python's help topics",
        recipe=_GPT_RECIPE,
        attention=tuple(f"blocks.{i}.attn.softmax" for i in range(_DEPTH)),
        loss=lm_loss,
        evaluate=evaluate_lm,
        targets=class_logit,  # the logit of word k as the next word
        target_names=tuple(pydoc_tokenizer().vocab),  # target k is the word with id k
    )
)
