"""Text models of the zoo: a BERT-mini encoder and an LSTM on the templated sentiment task.

Both take ``(B, T)`` token ids (pad id 0; the padding mask is computed inside from the
ids), carry the task's :class:`~xai.datasets.WordTokenizer` as ``module.tokenizer``, and
name their token-embedding module first in ``ZooEntry.layers`` (what layer attributions
such as LayerIntegratedGradients attribute to).

``bert-mini`` (Devlin et al. 2019, at miniature scale) is pretrained with masked-language
modelling on the training sentences, then fine-tuned with a classifier head on ``[CLS]``;
its attention probabilities are the outputs of ``blocks.<i>.attn.softmax`` ``(B, heads, T, T)``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xai.datasets import Dataset
from xai.datasets._text import SENTIMENT_CLASSES, WordTokenizer, sentiment_tokenizer
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, fit_classifier, seed_everything
from xai.zoo.transformer import MLP, MultiHeadSelfAttention

__all__ = ["BertMini", "EncoderBlock", "MaskedSelfAttention", "TextLSTM", "mask_tokens"]


class MaskedSelfAttention(MultiHeadSelfAttention):
    """:class:`MultiHeadSelfAttention` that ignores padded keys.

    ``self.softmax`` outputs the attention probabilities ``(B, heads, T, T)``; padded
    keys get probability 0.
    """

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T, dim)`` and a ``(B, T)`` padding mask (True = pad) -> ``(B, T, dim)``."""
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, H, T, d_head) each
        scores = q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5  # (B, H, T, T)
        if pad is not None:
            scores = scores.masked_fill(pad[:, None, None, :], torch.finfo(scores.dtype).min)
        attn = self.softmax(scores)  # (B, H, T, T)
        out = (attn @ v).transpose(1, 2).reshape(b, t, d)  # (B, T, dim)
        return self.proj(out)


class EncoderBlock(nn.Module):
    """Pre-norm encoder block with a padding mask: ``x + attn(norm(x))``, ``x + mlp(norm(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MaskedSelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio * dim)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """``(B, T, dim)`` -> ``(B, T, dim)``."""
        x = x + self.attn(self.norm1(x), pad)
        return x + self.mlp(self.norm2(x))


class BertMini(nn.Module):
    """A miniature BERT: token + position embeddings, ``depth`` encoder blocks, two heads.

    ``forward`` gives class logits from the final ``[CLS]`` state; :meth:`mlm_logits` gives
    the masked-language-model logits of every position (pretraining).

    Examples
    --------
    >>> model = BertMini()
    >>> model(model.tokenizer.encode(["she feels very happy"])).shape
    torch.Size([1, 2])
    """

    def __init__(self, tokenizer: WordTokenizer | None = None, num_classes: int = 2, dim: int = 64,
                 depth: int = 2, heads: int = 4, mlp_ratio: int = 2, max_length: int = 32) -> None:
        super().__init__()
        self.tokenizer = tokenizer or sentiment_tokenizer()
        self.max_length = max_length
        self.token_embed = nn.Embedding(len(self.tokenizer), dim, padding_idx=0)
        self.pos_embed = nn.Embedding(max_length, dim)
        self.embed_norm = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.mlm_head = nn.Linear(dim, len(self.tokenizer))
        self.head = nn.Linear(dim, num_classes)

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        """Final hidden states ``(B, T, dim)`` of token ids ``(B, T)``."""
        pad = ids == 0  # (B, T)
        positions = torch.arange(ids.shape[1], device=ids.device)  # (T,)
        x = self.embed_norm(self.token_embed(ids) + self.pos_embed(positions))  # (B, T, dim)
        for block in self.blocks:
            x = block(x, pad)
        return self.norm(x)

    def mlm_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits at every position ``(B, T, vocab)``."""
        return self.mlm_head(self.encode(ids))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` read from the ``[CLS]`` token."""
        return self.head(self.encode(ids)[:, 0])


class TextLSTM(nn.Module):
    """Embedding, a one-layer LSTM, and a linear head on the state after the last word.

    Examples
    --------
    >>> model = TextLSTM()
    >>> model(model.tokenizer.encode(["she feels happy", "he is not sad"])).shape
    torch.Size([2, 2])
    """

    def __init__(self, tokenizer: WordTokenizer | None = None, num_classes: int = 2, dim: int = 32,
                 hidden: int = 64) -> None:
        super().__init__()
        self.tokenizer = tokenizer or sentiment_tokenizer()
        self.embed = nn.Embedding(len(self.tokenizer), dim, padding_idx=0)
        self.rnn = nn.LSTM(dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` of token ids ``(B, T)`` (padding at the end)."""
        last = ((ids != 0).sum(1) - 1).clamp(min=0)  # (B,) index of the last real token
        use_cudnn = self.training or not torch.is_grad_enabled()  # cuDNN's RNN backward needs train mode
        with torch.backends.cudnn.flags(enabled=use_cudnn and torch.backends.cudnn.enabled):
            out = self.rnn(self.embed(ids))[0]  # (B, T, hidden)
        state = out.gather(1, last.view(-1, 1, 1).expand(-1, 1, out.shape[2])).squeeze(1)  # (B, hidden)
        return self.head(state)


def mask_tokens(ids: torch.Tensor, tokenizer: WordTokenizer, generator: torch.Generator,
                rate: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: pick ``rate`` of the word tokens; 80% ``[MASK]``, 10% random, 10% kept.

    Returns the corrupted ids and the labels (the original id at picked positions, -100
    elsewhere, which cross-entropy ignores).
    """
    words = ids > tokenizer.unk_id  # (B, T): not a special token
    picked = (torch.rand(ids.shape, generator=generator) < rate) & words
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    roll = torch.rand(ids.shape, generator=generator)
    corrupted = torch.where(picked & (roll < 0.8), torch.full_like(ids, tokenizer.mask_id), ids)
    random_ids = torch.randint(tokenizer.unk_id + 1, len(tokenizer), ids.shape, generator=generator)
    corrupted = torch.where(picked & (roll >= 0.8) & (roll < 0.9), random_ids, corrupted)
    return corrupted, labels


_BERT_ARCH: dict[str, Any] = {"dim": 64, "depth": 2, "heads": 4, "mlp_ratio": 2}
_BERT_RECIPE: dict[str, Any] = {"mlm_epochs": 6, "mlm_lr": 2e-3, "mask_rate": 0.15, "epochs": 8, "lr": 1e-3,
                                "batch_size": 64, "weight_decay": 1e-4, **_BERT_ARCH}


def build_bert_mini() -> BertMini:
    """The zoo's BERT-mini."""
    return BertMini(**_BERT_ARCH)


def pretrain_mlm(module: BertMini, ctx: TrainContext, *, epochs: int, lr: float, batch_size: int,
                 rate: float = 0.15) -> float:
    """Masked-language-model pretraining on the training sentences; returns the final loss."""
    generator = seed_everything(ctx.seed)
    module.to(ctx.device).train()
    optimiser = torch.optim.Adam(module.parameters(), lr=lr)
    ids_all = ctx.train.x
    running = float("nan")
    with ctx.progress() as progress:
        task = progress.add_task("bert-mini mlm", total=epochs, status="")
        for _ in range(epochs):
            order = torch.randperm(len(ids_all), generator=generator)
            total, count = 0.0, 0
            for start in range(0, len(order), batch_size):
                ids = ids_all[order[start:start + batch_size]]
                corrupted, labels = mask_tokens(ids, module.tokenizer, generator, rate)
                optimiser.zero_grad(set_to_none=True)
                logits = module.mlm_logits(corrupted.to(ctx.device))  # (B, T, vocab)
                loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten().to(ctx.device), ignore_index=-100)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(ids)
                count += len(ids)
            running = total / count
            progress.update(task, advance=1, status=f"loss {running:.4f}")
    return running


@torch.no_grad()
def mlm_accuracy(module: BertMini, data: Dataset, seed: int = 0, rate: float = 0.15) -> float:
    """Share of masked words the MLM head recovers (seeded masking of ``data``)."""
    generator = torch.Generator().manual_seed(seed)
    corrupted, labels = mask_tokens(data.x, module.tokenizer, generator, rate)
    module.eval()
    predicted = module.mlm_logits(corrupted).argmax(-1)
    picked = labels != -100
    return float((predicted[picked] == labels[picked]).float().mean())


def _train_bert_mini(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    assert isinstance(module, BertMini)
    r = _BERT_RECIPE
    mlm_loss = pretrain_mlm(module, ctx, epochs=r["mlm_epochs"], lr=r["mlm_lr"], batch_size=r["batch_size"],
                            rate=r["mask_rate"])
    mlm_acc = mlm_accuracy(module, ctx.test, seed=ctx.seed, rate=r["mask_rate"])
    metrics = fit_classifier(module, ctx, epochs=r["epochs"], lr=r["lr"], batch_size=r["batch_size"],
                             weight_decay=r["weight_decay"], label="bert-mini fine-tune")
    return {**metrics, "mlm_train_loss": mlm_loss, "mlm_accuracy_after_pretraining": mlm_acc}


_LSTM_RECIPE: dict[str, Any] = {"epochs": 10, "lr": 3e-3, "batch_size": 64, "dim": 32, "hidden": 64}


def _train_lstm_text(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    r = _LSTM_RECIPE
    return fit_classifier(module, ctx, epochs=r["epochs"], lr=r["lr"], batch_size=r["batch_size"],
                          label="lstm-text")


_DEPTH = _BERT_ARCH["depth"]

register_model(
    ZooEntry(
        name="bert-mini",
        family="transformer",
        task="classification",
        modality="text",
        dataset="sentiment-text",
        build=build_bert_mini,
        train=_train_bert_mini,
        input_shape=(16,),
        class_names=SENTIMENT_CLASSES,
        layers=("token_embed", *(f"blocks.{i}" for i in range(_DEPTH))),
        metric="accuracy",
        floor=0.90,
        paper="https://arxiv.org/abs/1810.04805",
        description=f"BERT-mini encoder ({_DEPTH} blocks of 4-head self-attention, [CLS] head), "
                    "masked-LM pretrained, then fine-tuned on templated sentiment",
        recipe=_BERT_RECIPE,
        attention=tuple(f"blocks.{i}.attn.softmax" for i in range(_DEPTH)),
    )
)

register_model(
    ZooEntry(
        name="lstm-text",
        family="rnn",
        task="classification",
        modality="text",
        dataset="sentiment-text",
        build=lambda: TextLSTM(dim=_LSTM_RECIPE["dim"], hidden=_LSTM_RECIPE["hidden"]),
        train=_train_lstm_text,
        input_shape=(16,),
        class_names=SENTIMENT_CLASSES,
        layers=("embed", "rnn"),
        metric="accuracy",
        floor=0.95,
        paper="https://doi.org/10.1162/neco.1997.9.8.1735",
        description="LSTM (32-d word embeddings, 64 hidden units) reading templated sentiment sentences",
        recipe=_LSTM_RECIPE,
    )
)
