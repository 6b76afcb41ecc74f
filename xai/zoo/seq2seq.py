"""An encoder-decoder transformer of the zoo: written dates to ISO 8601 (``seq2seq-dates``).

The architecture of Vaswani et al. (2017) at miniature scale: an encoder of pre-norm
self-attention blocks over the source (padding masked), a decoder whose blocks run
*masked* (causal) self-attention over the target prefix, then *cross-attention* from
each target position to the encoder's output, and a linear head over the vocabulary.
Generation is autoregressive and greedy (:meth:`Seq2SeqTransformer.generate`).

Attention is written by hand so that every attention's probabilities are the output of
its own ``softmax`` module, which forward hooks read:

- ``encoder.<i>.attn.softmax``: ``(B, heads, S, S)`` (listed in ``ZooEntry.attention``);
- ``decoder.<i>.self_attn.softmax``: ``(B, heads, T, T)``, zero above the diagonal;
- ``decoder.<i>.cross_attn.softmax``: ``(B, heads, T, S)``, zero on padded source tokens.

The module's ``forward(src)`` decodes greedily and returns the logits ``(B, T, vocab)``
that produced the generated tokens (a teacher-forced pass over ``[BOS]`` and the
model's own output: with the causal mask each position sees exactly what it saw while
generating), so gradients reach the source embedding.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xai.datasets import Dataset
from xai.datasets._dates import SOURCE_LENGTH, TARGET_LENGTH, DateTokenizer, date_tokenizer
from xai.errors import DataError
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, seed_everything
from xai.zoo.transformer import MLP

__all__ = ["Attention", "DecoderBlock", "EncoderBlock", "Seq2SeqTransformer", "generated_logprob", "seq2seq_metrics"]


class Attention(nn.Module):
    """Multi-head scaled dot-product attention of queries ``x`` over keys and values ``memory``.

    ``self.softmax`` outputs the probabilities ``(B, heads, Tq, Tk)``; ``blocked`` (True =
    may not attend) broadcasts to ``(B, 1, Tq, Tk)``.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.softmax = nn.Softmax(dim=-1)
        self.proj = nn.Linear(dim, dim)

    def scores(self, x: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled scores ``QK^T / sqrt(d_head)`` ``(B, H, Tq, Tk)`` and the values ``(B, H, Tk, d_head)``."""
        b, tq, d = x.shape
        tk = memory.shape[1]
        dh = d // self.heads
        q = self.q(x).reshape(b, tq, self.heads, dh).transpose(1, 2)  # (B, H, Tq, dh)
        kv = self.kv(memory).reshape(b, tk, 2, self.heads, dh).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]  # (B, H, Tk, dh) each
        return q @ k.transpose(-2, -1) / math.sqrt(dh), v

    def forward(self, x: torch.Tensor, memory: torch.Tensor, blocked: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, Tq, dim)`` queries over ``(B, Tk, dim)`` memory -> ``(B, Tq, dim)``."""
        scores, v = self.scores(x, memory)
        if blocked is not None:
            scores = scores.masked_fill(blocked, torch.finfo(scores.dtype).min)
        attn = self.softmax(scores)  # (B, H, Tq, Tk)
        out = (attn @ v).transpose(1, 2).reshape(x.shape)  # (B, Tq, dim)
        return self.proj(out)


class EncoderBlock(nn.Module):
    """Pre-norm encoder block: ``x + attn(norm(x))`` (padding masked), ``x + mlp(norm(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio * dim)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """``(B, S, dim)`` and the ``(B, S)`` padding (True = pad) -> ``(B, S, dim)``."""
        h = self.norm1(x)
        x = x + self.attn(h, h, pad[:, None, None, :])
        return x + self.mlp(self.norm2(x))


class DecoderBlock(nn.Module):
    """Pre-norm decoder block: causal self-attention, cross-attention to the encoder, MLP (each residual)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = Attention(dim, heads)
        self.norm3 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio * dim)

    def forward(self, y: torch.Tensor, memory: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """``(B, T, dim)`` targets, ``(B, S, dim)`` encoder output, ``(B, S)`` source padding -> ``(B, T, dim)``."""
        t = y.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=y.device).triu(1)  # (T, T): True above the diagonal
        h = self.norm1(y)
        y = y + self.self_attn(h, h, causal[None, None])
        y = y + self.cross_attn(self.norm2(y), memory, pad[:, None, None, :])
        return y + self.mlp(self.norm3(y))


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder transformer over token ids with greedy decoding.

    Examples
    --------
    >>> model = Seq2SeqTransformer()
    >>> src = model.tokenizer.encode(["7 march 2024"])
    >>> model.generate(src).shape, model(src).shape
    (torch.Size([1, 11]), torch.Size([1, 11, 40]))
    >>> model.cross_attention
    ('decoder.0.cross_attn.softmax', 'decoder.1.cross_attn.softmax')
    """

    def __init__(self, tokenizer: DateTokenizer | None = None, dim: int = 64, heads: int = 4, encoder_depth: int = 2,
                 decoder_depth: int = 2, mlp_ratio: int = 2, source_length: int = SOURCE_LENGTH,
                 target_length: int = TARGET_LENGTH) -> None:
        super().__init__()
        self.tokenizer = tokenizer or date_tokenizer()
        vocab = len(self.tokenizer)
        self.target_length = target_length
        self.src_embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.src_pos = nn.Embedding(source_length, dim)
        self.tgt_embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.tgt_pos = nn.Embedding(target_length, dim)
        self.encoder = nn.ModuleList(EncoderBlock(dim, heads, mlp_ratio) for _ in range(encoder_depth))
        self.encoder_norm = nn.LayerNorm(dim)
        self.decoder = nn.ModuleList(DecoderBlock(dim, heads, mlp_ratio) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    #: The source token embedding, where layer integrated gradients attribute (positions are added after it).
    source_embedding = "src_embed"

    @property
    def encoder_attention(self) -> tuple[str, ...]:
        """Names of the encoder self-attention softmax modules ``(B, H, S, S)``, first layer first."""
        return tuple(f"encoder.{i}.attn.softmax" for i in range(len(self.encoder)))

    @property
    def decoder_self_attention(self) -> tuple[str, ...]:
        """Names of the decoder's causal self-attention softmax modules ``(B, H, T, T)``."""
        return tuple(f"decoder.{i}.self_attn.softmax" for i in range(len(self.decoder)))

    @property
    def cross_attention(self) -> tuple[str, ...]:
        """Names of the cross-attention softmax modules ``(B, H, T, S)``, first decoder layer first."""
        return tuple(f"decoder.{i}.cross_attn.softmax" for i in range(len(self.decoder)))

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output ``(B, S, dim)`` and the padding ``(B, S)`` of source ids ``(B, S)``."""
        if src.shape[1] > self.src_pos.num_embeddings:
            raise DataError(f"sources of {src.shape[1]} tokens are longer than the model's "
                            f"{self.src_pos.num_embeddings}")
        pad = src == self.tokenizer.pad_id  # (B, S)
        x = self.src_embed(src) + self.src_pos(torch.arange(src.shape[1], device=src.device))
        for block in self.encoder:
            x = block(x, pad)
        return self.encoder_norm(x), pad

    def decode(self, memory: torch.Tensor, pad: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits ``(B, T, vocab)`` of every position of the decoder input ``(B, T)``."""
        y = self.tgt_embed(tgt_in) + self.tgt_pos(torch.arange(tgt_in.shape[1], device=tgt_in.device))
        for block in self.decoder:
            y = block(y, memory, pad)
        return self.head(self.decoder_norm(y))

    def shift(self, tgt: torch.Tensor) -> torch.Tensor:
        """The decoder input of a target ``(B, T)``: ``[BOS]`` and the target without its last token."""
        bos = torch.full_like(tgt[:, :1], self.tokenizer.bos_id)
        return torch.cat([bos, tgt[:, :-1]], dim=1)

    def teacher_forced(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, vocab)`` predicting each token of ``tgt`` ``(B, T)`` from its prefix and ``src``."""
        memory, pad = self.encode(src)
        return self.decode(memory, pad, self.shift(tgt))

    @torch.no_grad()
    def _greedy(self, memory: torch.Tensor, pad: torch.Tensor, length: int) -> torch.Tensor:
        out = torch.full((len(memory), 1), self.tokenizer.bos_id, dtype=torch.long, device=memory.device)
        for _ in range(length):
            logits = self.decode(memory, pad, out)[:, -1]  # (B, vocab) of the newest position
            out = torch.cat([out, logits.argmax(-1, keepdim=True)], dim=1)
        return out[:, 1:]

    @torch.no_grad()
    def generate(self, src: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Greedy decoding: ``(B, length)`` token ids, one arg-max per step (the decoder rerun on the prefix)."""
        return self._greedy(*self.encode(src), length or self.target_length)

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, vocab)`` of the greedy output: its arg-max at each position is the generated token.

        The source is encoded once (gradients flow from the returned logits to it); the
        greedy steps run on that encoding without gradients.
        """
        memory, pad = self.encode(src)
        generated = self._greedy(memory.detach(), pad, self.target_length)
        return self.decode(memory, pad, self.shift(generated))


def generated_logprob(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targets adapter: log-probability per sample ``(B,)`` of generated tokens.

    ``output`` is the model's ``(B, T, vocab)`` logits (of its greedy output). A ``(B,)``
    target picks an output position: the log-probability of the token generated there;
    a ``(B, T)`` target gives token ids (such as the reference): the summed
    log-probability of those tokens at those positions, given the model's own prefix.
    """
    logp = F.log_softmax(output.float(), dim=-1)  # (B, T, vocab)
    target = target.to(output.device)
    if target.ndim == 1:
        position = target.clamp(0, output.shape[1] - 1)
        row = logp[torch.arange(len(logp), device=logp.device), position]  # (B, vocab)
        return row.max(-1).values  # the generated token is the arg-max
    return logp.gather(2, target[..., None]).squeeze(2).sum(1)  # (B,)


def _loss(module: nn.Module, batch: Dataset) -> torch.Tensor:
    """Teacher-forced cross-entropy over every target token."""
    assert isinstance(module, Seq2SeqTransformer)
    device = next(module.parameters()).device
    logits = module.teacher_forced(batch.x.to(device), batch.y.to(device))  # (B, T, vocab)
    return F.cross_entropy(logits.flatten(0, 1), batch.y.to(device).flatten())


@torch.no_grad()
def seq2seq_metrics(module: nn.Module, data: Dataset, device: torch.device,
                    batch_size: int = 512) -> dict[str, float]:
    """Greedy decoding against the references: exact-sequence and token accuracy, and per source format."""
    assert isinstance(module, Seq2SeqTransformer)
    was_training = module.training
    module.eval()
    try:
        generated = torch.cat([module.generate(data.x[i:i + batch_size].to(device)).cpu()
                               for i in range(0, len(data), batch_size)])
    finally:
        module.train(was_training)
    same = generated == data.y  # (N, T)
    exact = same.all(1)
    metrics = {"exact_match": float(exact.float().mean()), "token_accuracy": float(same.float().mean())}
    if "format" in data.groups:
        formats = data.groups["format"].to_numpy()
        for form in sorted(set(formats)):
            metrics[f"exact_match.{form}"] = float(exact[torch.from_numpy(formats == form)].float().mean())
    return metrics


_ARCH: dict[str, Any] = {"dim": 64, "heads": 4, "encoder_depth": 2, "decoder_depth": 2, "mlp_ratio": 2}
_RECIPE: dict[str, Any] = {"epochs": 3, "lr": 3e-3, "batch_size": 128, "weight_decay": 1e-4, **_ARCH}


def _train_seq2seq(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    """Adam with a cosine schedule on the teacher-forced loss; greedy decoding is scored on the test split."""
    assert isinstance(module, Seq2SeqTransformer)
    r = _RECIPE
    generator = seed_everything(ctx.seed)
    module.to(ctx.device).train()
    optimiser = torch.optim.AdamW(module.parameters(), lr=r["lr"], weight_decay=r["weight_decay"])
    steps = r["epochs"] * math.ceil(len(ctx.train) / r["batch_size"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=r["lr"], total_steps=steps, pct_start=0.1)
    running = float("nan")
    with ctx.progress() as progress:
        task = progress.add_task("seq2seq-dates", total=r["epochs"], status="")
        for _ in range(r["epochs"]):
            order = torch.randperm(len(ctx.train), generator=generator)
            total = 0.0
            for start in range(0, len(order), r["batch_size"]):
                batch = ctx.train.subset(order[start:start + r["batch_size"]])
                loss = _loss(module, batch)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                scheduler.step()
                total += float(loss.detach()) * len(batch)
            running = total / len(order)
            progress.update(task, advance=1, status=f"loss {running:.4f}")
    module.eval()
    return {**seq2seq_metrics(module, ctx.test, ctx.device), "train_loss": running}


def _greedy_position(output: torch.Tensor) -> torch.Tensor:
    """Default target: the first output position (the year's first digit) of every sample."""
    return torch.zeros(len(output), dtype=torch.long, device=output.device)


register_model(
    ZooEntry(
        name="seq2seq-dates",
        family="transformer",
        task="generation",
        modality="text",
        dataset="dates",
        build=lambda: Seq2SeqTransformer(**_ARCH),
        train=_train_seq2seq,
        input_shape=(SOURCE_LENGTH,),
        class_names=(),
        layers=("src_embed", *(f"encoder.{i}" for i in range(_ARCH["encoder_depth"])),
                *(f"decoder.{i}" for i in range(_ARCH["decoder_depth"]))),
        metric="exact_match",
        floor=0.95,
        paper="https://arxiv.org/abs/1706.03762",
        description="encoder-decoder transformer (2+2 blocks, 4 heads, 64-d; causal decoder self-attention, "
                    "cross-attention, greedy decoding) rewriting written dates as ISO 8601",
        recipe=_RECIPE,
        attention=tuple(f"encoder.{i}.attn.softmax" for i in range(_ARCH["encoder_depth"])),
        loss=_loss,
        evaluate=seq2seq_metrics,
        targets=generated_logprob,
        target_names=tuple(f"output position {i}" for i in range(TARGET_LENGTH)),
        predicted_target=_greedy_position,
    )
)
