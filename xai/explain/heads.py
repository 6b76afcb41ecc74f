"""Attention heads: per-layer, per-head attention maps, and head importance by masking.

Two views of a transformer's heads, read from the handle's ``attention`` modules (their
outputs are the attention probabilities ``(B, heads, T, T)``, as for attention rollout):

- **maps**: every layer's and head's attention on a few samples, and the row the model
  reads its prediction from (the CLS token's row, or for a mean-pooled sentence encoder
  the mean of the real tokens' rows). Averaged over the heads they are exactly what
  attention rollout fuses with ``head_fusion="mean"`` before adding the residual.
- **importance** (Michel, Levy & Neubig 2019, "Are Sixteen Heads Really Better than
  One?", https://arxiv.org/abs/1905.10650): each head in turn is masked, i.e. its
  attention probabilities are multiplied by 0 so that its output (the head's slice of the
  input to the attention output projection) is 0, as Hugging Face's ``head_mask`` does;
  the drop of the model's own metric (accuracy for a classifier, the card's metric
  otherwise, e.g. Spearman for a sentence encoder) and, for classifiers, the rise of the
  cross-entropy loss on the same rows is the head's importance.

Example
-------
>>> from xai.datasets import load_dataset
>>> from xai.zoo import load_model
>>> result = AttentionHeads.run(load_model("vit"), load_dataset("digits").head(64), {"samples": 2})
>>> result.attention.shape  # (samples, layers, heads, T, T): CLS + 16 patches
(2, 4, 4, 17, 17)
>>> result.drop.shape  # accuracy drop when each (layer, head) is masked
(4, 4)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from xai._method import Capabilities, Kind, Method, Options
from xai._provenance import Provenance
from xai._results import to_jsonable
from xai.datasets import Dataset
from xai.errors import DataError
from xai.explain._index import HEAD_METHODS
from xai.explain.rollout import AttentionRecorder, TokenLayout, pooled_row
from xai.zoo.handle import ModelHandle, eval_mode

__all__ = ["AttentionHeads", "HeadMask", "HeadsResult", "head_importance"]

_CLASSIFIERS = ("classification", "binary-classification")


class HeadMask:
    """Context manager: zero the attention probabilities of chosen heads (so their outputs are 0).

    Parameters
    ----------
    module
        The model.
    names
        Its attention modules (outputs ``(B, heads, T, T)``), first layer first.
    masked
        ``(layer index, head index)`` pairs to silence. The hooks are removed on exit.
    """

    def __init__(self, module: torch.nn.Module, names: Sequence[str], masked: Sequence[tuple[int, int]]) -> None:
        modules = dict(module.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise DataError(f"attention module(s) not found: {', '.join(missing)}")
        self._modules = [modules[n] for n in names]
        self._masked = list(masked)
        self._handles: list[Any] = []

    def __enter__(self) -> HeadMask:
        by_layer: dict[int, list[int]] = {}
        for layer, head in self._masked:
            by_layer.setdefault(layer, []).append(head)
        for layer, heads in by_layer.items():
            self._handles.append(self._modules[layer].register_forward_hook(_zero_heads(heads)))
        return self

    def __exit__(self, *exc: object) -> None:
        for hook in self._handles:
            hook.remove()
        self._handles = []


def _zero_heads(heads: list[int]) -> Any:
    def hook(_module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
        keep = torch.ones(output.shape[1], dtype=output.dtype, device=output.device)
        keep[heads] = 0
        return output * keep[None, :, None, None]  # (B, H, T, T): a masked head attends to nothing

    return hook


def _scores_logits(handle: ModelHandle) -> bool:
    """Whether the head is scored on class logits (accuracy and loss) rather than the model's own ``evaluate``."""
    return handle.task in _CLASSIFIERS and handle.evaluate is None and len(handle.class_names) >= 2


def _score(handle: ModelHandle, data: Dataset, metric: str) -> tuple[float, float]:
    """``(metric, cross-entropy loss)`` of the model on ``data`` (the loss is NaN for non-classifiers)."""
    if _scores_logits(handle):
        logits = handle.predict(data.x)  # (N, classes)
        if logits.ndim == 2 and logits.shape[1] == len(handle.class_names):
            y = data.y.to(logits.device)
            accuracy = float((logits.argmax(1) == y).float().mean())
            return accuracy, float(F.cross_entropy(logits.float(), y))
    performance = handle.performance(data)
    return float(performance[metric]), float("nan")


def primary_metric(handle: ModelHandle, performance: dict[str, float]) -> str:
    """The metric whose drop measures a head: accuracy for classifiers, else the card's headline metric."""
    if _scores_logits(handle):
        return "accuracy"
    headline = (handle.card or {}).get("headline")
    named = headline.get("metric") if isinstance(headline, dict) else None  # the card's headline metric
    if isinstance(named, str) and named in performance:
        return named
    if not performance:
        raise DataError(f"{handle.name} reports no metric whose drop could measure a head")
    return next(iter(performance))


def head_importance(handle: ModelHandle, data: Dataset, metric: str | None = None
                    ) -> tuple[str, float, float, np.ndarray, np.ndarray]:
    """Mask each head alone; the drop of ``metric`` and the rise of the loss per ``(layer, head)``.

    Returns ``(metric, baseline, baseline_loss, drop (L, H), loss_increase (L, H))``.
    """
    names = handle.attention
    if not names:
        raise DataError(f"{handle.name} names no attention modules")
    with torch.no_grad(), eval_mode(handle.module), AttentionRecorder(handle.module, names) as rec:
        handle.module(data.x[:1].to(handle.device))
    heads = [a.shape[1] for a in rec.checked()]
    if _scores_logits(handle):
        metric = metric or "accuracy"
        base, base_loss = _score(handle, data, metric)
    else:  # the model's own evaluate: one pass gives the baseline and names the metric
        performance = handle.performance(data)
        metric = metric or primary_metric(handle, performance)
        if metric not in performance:
            raise DataError(f"{handle.name} reports no {metric!r}; it reports {', '.join(performance)}")
        base, base_loss = float(performance[metric]), float("nan")
    drop = np.zeros((len(names), max(heads)))
    loss = np.zeros_like(drop)
    for layer, count in enumerate(heads):
        drop[layer, count:] = np.nan
        loss[layer, count:] = np.nan
        for head in range(count):
            with HeadMask(handle.module, names, [(layer, head)]):
                score, masked_loss = _score(handle, data, metric)
            drop[layer, head] = base - score
            loss[layer, head] = masked_loss - base_loss
    return metric, base, base_loss, drop, loss


def importance_rows(data: Dataset, n: int, seed: int) -> Dataset:
    """``n`` seeded rows of ``data``; rows that belong together (a ``pair`` column) come as whole pairs."""
    if n >= len(data):
        return data
    generator = torch.Generator().manual_seed(seed)
    if "pair" in data.groups:
        pairs = torch.tensor(data.groups["pair"].tolist())
        ids = torch.unique(pairs)
        keep = ids[torch.randperm(len(ids), generator=generator)[:max(1, n // 2)]]
        return data.subset(torch.isin(pairs, keep).nonzero().flatten())
    return data.subset(torch.randperm(len(data), generator=generator)[:n].sort().values)


@dataclass(frozen=True)
class HeadsResult:
    """Per-layer, per-head attention on a few samples and each head's importance.

    Attributes
    ----------
    attention
        ``(S, L, H, T, T)`` attention probabilities of the shown samples (not in the JSON).
    pooled
        ``(S, L, H, T)``: the row the prediction reads (``pool``: the CLS row or the mean of
        the real tokens' rows), per layer and head; padding columns are 0.
    mask
        ``(S, T)`` real tokens (all True for images).
    tokens
        Per sample, the token strings (text models with a tokenizer); else empty.
    inputs
        ``(S, C, H, W)`` images for image models (drawn under the patch maps); else empty.
    drop, loss_increase
        ``(L, H)`` drop of ``metric`` and rise of the cross-entropy loss (classifiers; NaN
        otherwise) when that head alone is masked, on ``importance_rows`` rows.
    """

    model: str
    layers: tuple[str, ...]
    heads: int
    pool: str
    attention: np.ndarray
    pooled: np.ndarray
    mask: np.ndarray
    tokens: tuple[tuple[str, ...], ...]
    inputs: np.ndarray
    metric: str
    baseline: float
    baseline_loss: float
    drop: np.ndarray
    loss_increase: np.ndarray
    importance_rows: int
    provenance: Provenance
    notes: tuple[str, ...] = field(default_factory=tuple)

    def metrics(self) -> dict[str, float]:
        """``baseline``, ``max_drop``, ``mean_drop``, ``drop.L<l>H<h>`` (and the loss's, for classifiers)."""
        if self.drop.size == 0:
            return {}
        out = {"baseline": self.baseline, "max_drop": float(np.nanmax(self.drop)),
               "mean_drop": float(np.nanmean(self.drop))}
        classifier = bool(np.isfinite(self.loss_increase).any())
        if classifier:
            out["max_loss_increase"] = float(np.nanmax(self.loss_increase))
        for (layer, head), value in np.ndenumerate(self.drop):
            if np.isfinite(value):
                out[f"drop.L{layer}H{head}"] = float(value)
                if classifier:
                    out[f"loss_increase.L{layer}H{head}"] = float(self.loss_increase[layer, head])
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the full ``(S, L, H, T, T)`` maps are left out (``pooled`` rows stay)."""
        out = {k: v for k, v in to_jsonable(self).items() if k not in ("attention", "inputs")}
        out["attention_shape"] = list(self.attention.shape)
        return out


@HEAD_METHODS.register("attention-heads")
class AttentionHeads(Method):
    """Per-layer and per-head attention maps, and each head's importance by masking it (Michel et al. 2019)."""

    name: ClassVar[str] = "attention-heads"
    kind: ClassVar[Kind] = "heads"
    paper: ClassVar[str] = "https://arxiv.org/abs/1905.10650"
    result_type: ClassVar[str] = "xai.explain.heads:HeadsResult"
    capabilities: ClassVar[Capabilities] = Capabilities(
        modalities=frozenset({"image", "text", "multimodal"}), needs_attention=True, needs_gradients=False)

    class Options(Options):
        """How many samples to map and how many rows the masking is scored on."""

        samples: int = Field(default=4, ge=1, le=64, description="samples whose per-head maps are kept")
        importance: bool = Field(default=True, description="mask each head and measure the metric's drop")
        importance_samples: int = Field(default=128, ge=2, description="rows the masked model is scored on")
        pool: Literal["cls", "mean"] | None = Field(
            default=None, description="row read per head (default: the module's pooling, else cls)")

    @classmethod
    def run(cls, handle: ModelHandle, data: Dataset | None, options: Any, seed: int = 0) -> HeadsResult:
        """Maps on the first ``samples`` rows; importance on ``importance_samples`` seeded rows."""
        opts = cls.parse_options(options)
        assert isinstance(opts, AttentionHeads.Options)
        cls.check_applies(handle)
        if data is None or len(data) == 0:
            raise DataError(f"{cls.name} needs data to run the model on")
        start = time.perf_counter()
        pool = opts.pool or getattr(handle.module, "pooling", "cls")
        if pool not in ("cls", "mean"):
            pool = "cls"
        shown = data.head(opts.samples)
        x = shown.x.to(handle.device)
        with torch.no_grad(), eval_mode(handle.module), AttentionRecorder(handle.module, handle.attention) as rec:
            handle.module(x)
        stacked = torch.stack([a.float() for a in rec.checked()], dim=1)  # (S, L, H, T, T)
        s, layers, heads, t, _ = stacked.shape
        mask = _real_tokens(handle, x, t)  # (S, T)
        rows = torch.stack([torch.stack([pooled_row(stacked[:, l_, h], mask, pool) for h in range(heads)], 1)
                            for l_ in range(layers)], 1)  # (S, L, H, T)
        rows = rows * mask[:, None, None, :].to(rows.dtype)
        notes: list[str] = []
        metric, base, base_loss = "", float("nan"), float("nan")
        drop = loss = np.zeros((0, 0))
        used = 0
        if opts.importance:
            subset = importance_rows(data, opts.importance_samples, seed)
            metric, base, base_loss, drop, loss = head_importance(handle, subset, None)
            used = len(subset)
        return HeadsResult(
            model=handle.name,
            layers=tuple(handle.attention),
            heads=heads,
            pool=pool,
            attention=stacked.cpu().numpy(),
            pooled=rows.cpu().numpy(),
            mask=mask.cpu().numpy(),
            tokens=_tokens(handle, shown.x),
            inputs=shown.x.float().numpy() if handle.modality == "image" and shown.x.ndim == 4 else np.zeros(0),
            metric=metric,
            baseline=base,
            baseline_loss=base_loss,
            drop=drop,
            loss_increase=loss,
            importance_rows=used,
            provenance=Provenance(model_sha256=handle.sha256, data_sha256=data.sha256, seed=seed,
                                  wall_seconds=round(time.perf_counter() - start, 4), device=str(handle.device)),
            notes=tuple(notes),
        )


def _real_tokens(handle: ModelHandle, x: torch.Tensor, t: int) -> torch.Tensor:
    """``(S, T)`` real tokens: token ids (pad 0), a :class:`TokenLayout`'s mask, else all."""
    if handle.modality == "text" and not x.is_floating_point() and x.shape[1] == t:
        return x != 0
    if isinstance(handle.module, TokenLayout):
        return handle.module.token_mask(x).to(torch.bool)
    return torch.ones(len(x), t, dtype=torch.bool, device=x.device)


def _tokens(handle: ModelHandle, x: torch.Tensor) -> tuple[tuple[str, ...], ...]:
    tokenizer = getattr(handle.module, "tokenizer", None)
    if handle.modality != "text" or tokenizer is None or x.is_floating_point():
        return ()
    return tuple(tuple(str(tok) for tok in tokenizer.tokens(row)) for row in x.cpu())

