"""Attention rollout, attention flow and gradient-weighted rollout for attention models.

Three ways to read "how much does the CLS token draw on each input token" from the
attention probabilities of every layer (the outputs of the handle's ``attention``
modules, ``(B, heads, T, T)``, token 0 the CLS token):

- ``rollout`` (Abnar & Zuidema 2020, https://arxiv.org/abs/2005.00928): fuse the heads
  (mean, max or min), optionally zero the lowest ``discard_ratio`` of the entries, add the
  identity for the residual connection, re-normalise the rows and multiply the layers,
  ``R = A_L ... A_1``; the CLS row of ``R`` scores the tokens.
- ``flow`` (same paper): the maximum flow from the last layer's CLS node to each input
  token through the layered graph whose edge capacities are the residual-augmented,
  row-normalised attentions. One max-flow per token and sample (scipy's Dinic on integer
  capacities scaled by 1e6), so it is slow: limited to ``FLOW_MAX_TOKENS`` tokens.
- ``grad`` (Chefer et al. 2021, https://arxiv.org/abs/2103.15679, generic attention
  explainability): per layer ``Ā = E_h[(∇A ⊙ A)^+]`` with the gradient of the explained
  output w.r.t. the attention, and ``R ← R + Ā R`` from ``R = I`` (the rollout-style
  product of ``I + Ā``, without re-normalising).

The CLS-to-token relevance is mapped back to the input's spatial shape (patch grid,
nearest upsampling), so an image model's attributions have the input's shape.

A model whose tokens are not just a patch grid declares its token layout (see
:class:`TokenLayout`): ``module.token_mask(x)``, the ``(B, T)`` real tokens (padding is
then excluded exactly as for text), and ``module.tokens_to_input(scores, x)``, the
``(B, T - 1)`` scores of the tokens after CLS back in the input's shape. The single-stream
VQA transformer (``vqa-transformer``, packed image + question plane) is one: its patch
scores land on the RGB channels and each word's on its question-plane row, so the
explanation splits into an image map and question-word scores like any other method's.

Text models (``(B, T)`` token ids, pad id 0) get one relevance per token, ``(B, T)``:
the CLS row, or for a mean-pooled sentence encoder (``module.pooling == "mean"``, e.g.
MiniLM) the mean of the real tokens' rows, which is what the pooled embedding reads
(option ``pool``). Padding is excluded exactly: padding rows and columns are zeroed
before the residual identity is added, the discarded share counts only real entries,
and padding tokens get relevance 0, so a padded sentence scores as it would alone.
For ``grad`` mode on a sentence encoder the explained scalar is an embedding component
(the target, default the largest), or with option ``compare`` the cosine similarity to
another sentence's (fixed) embedding: which tokens make the two sentences similar.

Examples
--------
>>> from xai.datasets import load_dataset
>>> from xai.explain import create_explainer
>>> from xai.zoo import load_model
>>> explainer = create_explainer("attention-rollout", load_model("vit"), mode="grad")
>>> explainer.explain(load_dataset("digits").head(4)).attributions.shape  # patch scores upsampled to the input
(4, 1, 32, 32)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from pydantic import Field
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_flow
from torch import nn

from xai._method import Capabilities
from xai.errors import DataError
from xai.explain import _choices
from xai.explain._base import Explainer, ExplainerOptions, register_explainer
from xai.explain._hooks import NamedForwardHooks
from xai.zoo.handle import ModelHandle, eval_mode

__all__ = [
    "FLOW_MAX_TOKENS",
    "AttentionRecorder",
    "AttentionRollout",
    "TokenLayout",
    "attention_flow",
    "discard_lowest",
    "fuse_heads",
    "grad_rollout",
    "mask_padding",
    "pooled_row",
    "residual_normalise",
    "rollout",
]

Mode = Literal["rollout", "flow", "grad"]
HeadFusion = Literal["mean", "max", "min"]
MODES: tuple[str, ...] = _choices.ROLLOUT_MODES  # kept torch-free in _choices for the CLI's --help
HEAD_FUSIONS: tuple[str, ...] = _choices.HEAD_FUSIONS
POOLS: tuple[str, ...] = ("cls", "mean")
#: Attention flow runs one max-flow per token and sample; beyond this many tokens it is refused.
FLOW_MAX_TOKENS = 65
#: Flow capacities are scaled to integers (scipy's max-flow is exact on integers).
_FLOW_SCALE = 1_000_000


@runtime_checkable
class TokenLayout(Protocol):
    """A module that says which of its tokens are real and how token scores map onto its input.

    Token 0 is the CLS token; the explainer reads relevance over the other ``T - 1`` tokens.
    """

    def token_mask(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` bool, True for real tokens (CLS included), False for padding."""
        ...

    def tokens_to_input(self, scores: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Scores of the tokens after CLS ``(B, T - 1)`` -> a tensor of ``x``'s shape."""
        ...


class AttentionRecorder(NamedForwardHooks):
    """Context manager: forward hooks that keep the output of each attention module.

    Parameters
    ----------
    module
        The model.
    names
        Submodule names whose outputs are attention probabilities ``(B, heads, T, T)``,
        first layer first. The hooks are removed on exit, even after an error.
    retain_graph
        Keep the outputs in the autograd graph (for gradients w.r.t. the attention);
        otherwise they are detached.

    Examples
    --------
    >>> from xai.zoo import load_model
    >>> vit = load_model("vit")
    >>> with AttentionRecorder(vit.module, vit.attention) as rec:
    ...     _ = vit.module(torch.zeros(2, 1, 32, 32))
    >>> [tuple(a.shape) for a in rec.attentions]  # (B, heads, T, T) per layer: CLS + 16 patches
    [(2, 4, 17, 17), (2, 4, 17, 17), (2, 4, 17, 17), (2, 4, 17, 17)]
    """

    def __init__(self, module: nn.Module, names: Sequence[str], retain_graph: bool = False) -> None:
        super().__init__(module, names)
        self.retain_graph = retain_graph
        self.attentions: list[torch.Tensor] = []

    def _hook(self, _module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        self.attentions.append(output if self.retain_graph else output.detach())

    def _reset(self) -> None:
        self.attentions = []

    def __enter__(self) -> AttentionRecorder:
        super().__enter__()
        return self

    def checked(self) -> list[torch.Tensor]:
        """The recorded attentions, one ``(B, heads, T, T)`` per layer (validated)."""
        if len(self.attentions) != len(self.names):
            raise DataError(f"expected {len(self.names)} attention outputs (one per module), "
                            f"got {len(self.attentions)}")
        for name, a in zip(self.names, self.attentions, strict=True):
            if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
                raise DataError(f"{name} should output attention (B, heads, T, T), got {tuple(a.shape)}")
        return self.attentions


def fuse_heads(attention: torch.Tensor, how: HeadFusion = "mean") -> torch.Tensor:
    """Fuse the heads of ``(B, heads, T, T)`` attention into ``(B, T, T)`` by mean, max or min."""
    if how == "mean":
        return attention.mean(1)
    if how == "max":
        return attention.amax(1)
    if how == "min":
        return attention.amin(1)
    raise DataError(f"head fusion must be one of {', '.join(HEAD_FUSIONS)}, got {how!r}")


def _pair_mask(mask: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` real-token mask -> ``(B, T, T)`` mask of entries between two real tokens."""
    return mask[:, :, None] & mask[:, None, :]


def mask_padding(attention: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Zero the rows and columns of padding tokens of ``(B, T, T)`` (``mask``: ``(B, T)``, True = real)."""
    if mask is None:
        return attention
    return attention * _pair_mask(mask.to(attention.device)).to(attention.dtype)


def discard_lowest(attention: torch.Tensor, ratio: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Zero the ``floor(ratio * T * T)`` smallest entries of each ``(T, T)`` matrix of ``(B, T, T)``.

    With a ``(B, T)`` real-token ``mask`` only the ``n * n`` entries between a sample's
    ``n`` real tokens count (``floor(ratio * n * n)`` are zeroed among them), as if the
    sample were unpadded. The identity added afterwards (:func:`residual_normalise`)
    keeps every row non-zero.
    """
    b, t, _ = attention.shape
    if mask is not None:
        n = mask.sum(1).to(torch.float64)  # (B,)
        k = torch.floor(ratio * n * n).long().to(attention.device)  # (B,)
        if int(k.max()) <= 0:
            return attention
        valid = _pair_mask(mask.to(attention.device)).reshape(b, t * t)  # (B, T*T)
        flat = attention.reshape(b, t * t).masked_fill(~valid, math.inf)  # padding sorts last
        order = flat.argsort(dim=1, stable=True)  # (B, T*T)
        ranks = torch.empty_like(order).scatter_(1, order, torch.arange(t * t, device=order.device).expand(b, -1))
        return attention.reshape(b, t * t).masked_fill(ranks < k[:, None], 0.0).reshape(b, t, t)
    n_drop = int(math.floor(ratio * t * t))
    if n_drop <= 0:
        return attention
    flat = attention.reshape(b, t * t).clone()  # (B, T*T)
    lowest = flat.topk(n_drop, dim=1, largest=False).indices  # (B, n_drop)
    flat.scatter_(1, lowest, 0.0)
    return flat.reshape(b, t, t)


def residual_normalise(attention: torch.Tensor) -> torch.Tensor:
    """``A + I`` with rows re-normalised to sum to 1 (the residual connection), ``(B, T, T)``."""
    eye = torch.eye(attention.shape[-1], dtype=attention.dtype, device=attention.device)
    a = attention + eye  # (B, T, T)
    return a / a.sum(-1, keepdim=True)


def _layer_matrix(attention: torch.Tensor, head_fusion: HeadFusion, discard_ratio: float,
                  mask: torch.Tensor | None) -> torch.Tensor:
    """Fused, padding-masked, discarded, residual-augmented and row-normalised ``(B, T, T)``."""
    a = mask_padding(fuse_heads(attention, head_fusion), mask)
    return residual_normalise(discard_lowest(a, discard_ratio, mask))


def rollout(attentions: Sequence[torch.Tensor], head_fusion: HeadFusion = "mean",
            discard_ratio: float = 0.0, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Attention rollout ``A_L ... A_1`` of per-layer ``(B, heads, T, T)`` attentions, ``(B, T, T)``.

    Each ``A_l`` is the head-fused, discarded, residual-augmented and row-normalised
    attention of layer ``l``, so every row of the result sums to 1. With a ``(B, T)``
    real-token ``mask`` padding rows and columns are zeroed first (padding rows become
    identity rows; real tokens then score exactly as without padding). Paper:
    https://arxiv.org/abs/2005.00928.
    """
    result: torch.Tensor | None = None
    for attention in attentions:
        a = _layer_matrix(attention, head_fusion, discard_ratio, mask)
        result = a if result is None else a @ result  # later layers multiply from the left
    if result is None:
        raise DataError("rollout needs at least one attention layer")
    return result


def grad_rollout(attentions: Sequence[torch.Tensor], gradients: Sequence[torch.Tensor],
                 head_fusion: HeadFusion = "mean", discard_ratio: float = 0.0,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    """Chefer et al.'s relevance ``R = (I + Ā_L) ... (I + Ā_1)``, ``Ā = fuse_h[(∇A ⊙ A)^+]``, ``(B, T, T)``.

    Paper: https://arxiv.org/abs/2103.15679 (generic attention explainability; mean head
    fusion is the paper's). ``mask``: ``(B, T)`` real tokens; padding entries are zeroed.
    """
    if not attentions or len(attentions) != len(gradients):
        raise DataError("grad rollout needs one gradient per attention layer")
    b, _, t, _ = attentions[0].shape
    relevance = torch.eye(t, dtype=attentions[0].dtype, device=attentions[0].device).expand(b, t, t)
    for attention, grad in zip(attentions, gradients, strict=True):
        a = mask_padding(fuse_heads((grad * attention).clamp(min=0), head_fusion), mask)  # (B, T, T)
        a = discard_lowest(a, discard_ratio, mask)
        relevance = relevance + a @ relevance
    return relevance


def attention_flow(attentions: Sequence[torch.Tensor], head_fusion: HeadFusion = "mean",
                   discard_ratio: float = 0.0, source: int = 0, mask: torch.Tensor | None = None,
                   pool: Literal["cls", "mean"] = "cls") -> torch.Tensor:
    """Maximum flow from token ``source`` at the top to each input token, ``(B, T)``.

    The layered graph has a node per token and layer (layer 0 = the inputs); layer ``l``'s
    token ``i`` reaches layer ``l - 1``'s token ``j`` with capacity ``A_l[i, j]``, the
    residual-augmented, row-normalised attention (as in :func:`rollout`). Paper:
    https://arxiv.org/abs/2005.00928. Slow: ``B * T`` max-flow problems. ``mask``:
    ``(B, T)`` real tokens (padding gets no capacity and flow 0). ``pool="mean"``: the
    flow from a super-source that feeds each real top token ``1 / n`` (mean pooling).
    """
    mats = [_layer_matrix(a, head_fusion, discard_ratio, mask) for a in attentions]  # L x (B, T, T)
    if not mats:
        raise DataError("attention flow needs at least one attention layer")
    b, t, _ = mats[0].shape
    if t > FLOW_MAX_TOKENS:
        raise DataError(f"attention flow solves one max-flow per token and is limited to "
                        f"{FLOW_MAX_TOKENS} tokens; this model has {t} (use --mode rollout or grad)")
    layers = len(mats)
    n = (layers + 1) * t
    caps = np.stack([m.detach().double().cpu().numpy() for m in mats], axis=1)  # (B, L, T, T)
    caps = np.rint(caps * _FLOW_SCALE).astype(np.int32)
    # Edge (l, i) -> (l - 1, j) for l = 1..L: node id of (l, i) is l * t + i.
    upper = (np.arange(1, layers + 1)[:, None, None] * t + np.arange(t)[None, :, None])  # (L, T, 1)
    lower = ((np.arange(layers)[:, None, None]) * t + np.arange(t)[None, None, :])  # (L, 1, T)
    rows = np.broadcast_to(upper, (layers, t, t)).ravel()
    cols = np.broadcast_to(lower, (layers, t, t)).ravel()
    real = (np.ones((b, t), dtype=bool) if mask is None else mask.cpu().numpy().astype(bool))  # (B, T)
    # Padding nodes are unreachable: real rows give them no capacity (see _layer_matrix).
    out = np.zeros((b, t), dtype=np.float64)
    for s in range(b):
        if pool == "mean":  # super-source node n feeds each real top token 1/n
            top, size = n, n + 1
            feed = np.rint(real[s] / real[s].sum() * _FLOW_SCALE).astype(np.int32)
            graph = csr_matrix((np.concatenate([caps[s].ravel(), feed]),
                                (np.concatenate([rows, np.full(t, n)]),
                                 np.concatenate([cols, layers * t + np.arange(t)]))), shape=(size, size))
        else:
            top = layers * t + source
            graph = csr_matrix((caps[s].ravel(), (rows, cols)), shape=(n, n))
        for j in np.flatnonzero(real[s]):
            out[s, j] = maximum_flow(graph, top, int(j), method="dinic").flow_value / _FLOW_SCALE
    return torch.from_numpy(out).to(mats[0].dtype)


def _to_input_shape(tokens: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``(B, N)`` token scores -> the input's shape ``(B, C, H, W)`` (patch grid, nearest)."""
    b, n = tokens.shape
    if len(shape) != 4:
        raise DataError(f"attention rollout maps tokens onto (B, C, H, W) images, got input {tuple(shape)}")
    _, c, h, w = shape
    rows = round(math.sqrt(n * h / w))
    cols = n // max(rows, 1)
    if rows * cols != n:
        raise DataError(f"{n} tokens do not tile a {h}x{w} image as a patch grid")
    grid = tokens.reshape(b, 1, rows, cols)  # (B, 1, rows, cols)
    return F.interpolate(grid, size=(h, w), mode="nearest").expand(b, c, h, w)  # (B, C, H, W)


@register_explainer("attention-rollout")
class AttentionRollout(Explainer):
    """CLS-to-patch (images), per-token (text) or per-token-layout (multimodal) relevance from every layer's attention.

    Options: ``mode`` (``rollout``, ``flow`` or ``grad``; default ``rollout``),
    ``head_fusion`` (``mean``, ``max`` or ``min``; default ``mean``), ``discard_ratio``
    (share of the lowest fused attentions zeroed per layer, ``0 <= r < 1``; default 0),
    ``pool`` (``cls`` or ``mean``: which row of the rollout scores the tokens; default
    the module's ``pooling`` attribute, else ``cls``) and, for sentence encoders in
    ``grad`` mode, ``compare`` (a sentence: the explained scalar becomes the cosine
    similarity to its embedding). Token 0 is the CLS token. The model's weights and
    modes are left as they were. Papers: https://arxiv.org/abs/2005.00928,
    https://arxiv.org/abs/2103.15679.

    Examples
    --------
    >>> from xai.datasets import load_dataset
    >>> from xai.explain import create_explainer
    >>> from xai.zoo import load_model
    >>> explainer = create_explainer("attention-rollout", load_model("vit"), head_fusion="max")
    >>> explainer.explain(load_dataset("digits").head(8)).attributions.shape
    (8, 1, 32, 32)
    >>> bert = load_model("bert-mini")
    >>> ids = bert.module.tokenizer.encode(["she feels very happy"])
    >>> bert.module.tokenizer.tokens(ids[0])
    ['[CLS]', 'she', 'feels', 'very', 'happy']
    >>> create_explainer("attention-rollout", bert).relevance(ids).shape  # one score per token
    torch.Size([1, 5])
    """

    class Options(ExplainerOptions):
        """Attention rollout's options (see the class docstring)."""

        mode: Mode = "rollout"
        head_fusion: HeadFusion = "mean"
        #: Share of the lowest fused attentions zeroed per layer.
        discard_ratio: float = Field(default=0.0, ge=0.0, lt=1.0)
        #: ``None``: the module's ``pooling`` attribute, else ``cls``.
        pool: Literal["cls", "mean"] | None = None
        #: A sentence: grad mode explains the cosine similarity to its embedding (sentence encoders).
        compare: str | None = Field(default=None, min_length=1)

    paper = "https://arxiv.org/abs/2005.00928"
    capabilities: ClassVar[Capabilities] = Capabilities(
        tasks=Explainer.capabilities.tasks | {"embedding"}, modalities=frozenset({"image", "text", "multimodal"}),
        needs_attention=True)
    input_grad = False  # grad mode makes its own leaf; token ids cannot require grad

    @classmethod
    def why_not(cls, handle: ModelHandle) -> str | None:
        """Also: a multimodal model must declare its token layout (:class:`TokenLayout`)."""
        reason = super().why_not(handle)
        if reason is None and handle.modality == "multimodal" and not isinstance(handle.module, TokenLayout):
            return "a multimodal model needs a token layout (module.token_mask and module.tokens_to_input)"
        return reason

    def resolve(self, options: Any) -> dict[str, Any]:
        """Pick the pooling; ``compare`` only in grad mode on a sentence encoder."""
        pool = options.pool or getattr(self.handle.module, "pooling", "cls")
        if pool not in POOLS:
            raise DataError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
        checked: dict[str, Any] = {"mode": options.mode, "head_fusion": options.head_fusion,
                                   "discard_ratio": options.discard_ratio, "pool": pool}
        compare = options.compare
        if compare is not None:
            if options.mode != "grad":
                raise DataError("compare (a second sentence) sets the target of grad mode; use mode=grad")
            if self.handle.task != "embedding" or getattr(self.handle.module, "tokenizer", None) is None:
                raise DataError(f"compare needs a sentence encoder with a tokenizer; {self.handle.name} is not one")
            if not compare.strip():
                raise DataError("compare must be a non-empty sentence")
            checked["compare"] = compare
        return checked

    @property
    def _text(self) -> bool:
        return self.handle.modality == "text"

    @property
    def _layout(self) -> TokenLayout | None:
        module = self.handle.module
        return module if isinstance(module, TokenLayout) else None

    def _mask(self, x: torch.Tensor) -> torch.Tensor | None:
        """Real-token mask ``(B, T)``: token ids (pad id 0), the module's :class:`TokenLayout`, else ``None``."""
        if self._text and not x.is_floating_point():
            return x != 0
        layout = self._layout
        return layout.token_mask(x).to(torch.bool) if layout is not None else None

    def matrix(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """The full ``(B, T, T)`` rollout (``rollout``) or relevance (``grad``) matrix for ``x``."""
        mode, fusion, ratio = self.options["mode"], self.options["head_fusion"], self.options["discard_ratio"]
        handle, mask = self.handle, self._mask(x)
        if mode == "grad":
            if target is None and "compare" not in self.options:
                raise DataError("grad mode needs a target per sample")
            attentions, grads = _attention_and_grads(handle, x, target, self._reference())
            return grad_rollout(attentions, grads, fusion, ratio, mask)
        if mode == "flow":
            raise DataError("attention flow has no token-to-token matrix; use relevance()")
        with torch.no_grad():
            return rollout(_attentions(handle, x), fusion, ratio, mask)

    def relevance(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """Token relevance: images and token-layout models ``(B, T - 1)`` (CLS dropped); text ``(B, T)``; padding 0.

        The row read is the CLS token's (``pool="cls"``) or the mean over the real
        tokens' rows (``pool="mean"``). In ``grad`` mode the row is read from ``R - I``,
        the relevance gained through attention, so a token's own starting 1 does not
        swamp the scores (for images this changes nothing: the CLS entry is dropped).
        """
        mask, pool = self._mask(x), self.options["pool"]
        if self.options["mode"] == "flow":
            with torch.no_grad():
                attentions = _attentions(self.handle, x)
            scores = attention_flow(attentions, self.options["head_fusion"], self.options["discard_ratio"],
                                    mask=mask, pool=pool).to(x.device)  # (B, T)
        else:
            matrix = self.matrix(x, target)  # (B, T, T)
            if self.options["mode"] == "grad":  # relevance gained through attention: R - I (Chefer's R minus its start)
                matrix = matrix - torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
            real = mask if mask is not None else torch.ones(matrix.shape[:2], dtype=torch.bool, device=matrix.device)
            scores = pooled_row(matrix, real, pool)  # (B, T)
        if mask is not None:
            scores = scores * mask.to(scores.dtype)  # padding: exactly 0
        return scores if self._text else scores[:, 1:]  # (B, T - 1): CLS dropped

    def _reference(self) -> torch.Tensor | None:
        """The compared sentence's embedding ``(1, D)`` (fixed), when ``compare`` is set."""
        if "compare" not in self.options:
            return None
        module = self.handle.module
        tokenizer: Any = module.tokenizer  # checked in resolve; nn.Module.__getattr__ hides its type
        ids = tokenizer.encode([self.options["compare"]]).to(self.handle.device)
        with torch.no_grad(), eval_mode(module):
            return module(ids).detach()

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Relevance in the input's shape: per token ``(B, T)`` for text, upsampled ``(B, C, H, W)`` for images.

        A :class:`TokenLayout` module maps its token scores itself (``tokens_to_input``).
        """
        scores = self.relevance(x, target).float()
        if self._text:
            return scores
        layout = self._layout
        if layout is not None:
            return layout.tokens_to_input(scores, x).float()
        return _to_input_shape(scores, x.shape)


def pooled_row(matrix: torch.Tensor, real: torch.Tensor, pool: str) -> torch.Tensor:
    """Row 0 (``cls``) or the mean of the real tokens' rows (``mean``) of ``(B, T, T)``, ``(B, T)``."""
    if pool == "cls":
        return matrix[:, 0]
    weights = real.to(matrix.dtype) / real.sum(1, keepdim=True).to(matrix.dtype)  # (B, T)
    return (weights[:, :, None] * matrix).sum(1)  # (B, T)


def _attentions(handle: ModelHandle, x: torch.Tensor) -> list[torch.Tensor]:
    """One forward pass with the attention recorded: ``L x (B, heads, T, T)``."""
    with eval_mode(handle.module), AttentionRecorder(handle.module, handle.attention) as rec:
        handle.module(x)
    return rec.checked()


def _attention_and_grads(handle: ModelHandle, x: torch.Tensor, target: torch.Tensor | None,
                         reference: torch.Tensor | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Attentions and the gradient of each sample's target w.r.t. them (no parameter .grad).

    With a ``reference`` embedding ``(1, D)`` the explained scalar is ``output . reference``
    (the cosine similarity for unit-length embeddings) instead of the target.
    """
    if x.is_floating_point() and not x.requires_grad:
        x = x.detach().requires_grad_()  # a fresh leaf: attention computed from the input is in the graph
    with torch.enable_grad(), eval_mode(handle.module), \
            AttentionRecorder(handle.module, handle.attention, retain_graph=True) as rec:
        if reference is not None:
            scores = (handle.module(x) * reference).sum(1)  # (B,)
        else:
            assert target is not None
            scores = handle.forward_target(x, target)  # (B,): samples are independent, so one sum
        attentions = rec.checked()
        if not all(a.requires_grad for a in attentions):
            raise DataError("grad mode needs attention outputs that depend on the input or weights")
        grads = torch.autograd.grad(scores.sum(), attentions)
    return [a.detach() for a in attentions], [g.detach() for g in grads]
