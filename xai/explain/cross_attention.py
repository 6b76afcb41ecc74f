"""Cross-attention maps of an encoder-decoder transformer, their rollout, and source ablation per generated token.

Three readings of which source tokens each *generated* token comes from, on the model's
own greedy output (teacher-forced: with the causal mask, each position sees exactly the
prefix it saw while generating):

- **cross-attention**: every decoder layer's cross-attention probabilities
  ``softmax(Q K^T / sqrt(d_head))`` ``(heads, T, S)``, and their mean over the heads;
- **rollout** through the decoder (Abnar & Zuidema 2020, https://arxiv.org/abs/2005.00928,
  extended to an encoder-decoder): each target position's make-up is a distribution over
  the decoder's input tokens and the source tokens. It starts as the position itself; a
  causal self-attention layer mixes it as ``0.5 A + 0.5 I`` (the residual), a
  cross-attention layer keeps half and adds half from the source through the
  head-averaged cross-attention times the encoder's own rollout. The source part,
  normalised, is the rolled-out map. (Its total is ``1 - 0.5^layers`` whatever the
  attention: with the residual weighted 0.5, the rollout tells where source information
  comes from, not how much of it there is.)
- **ablation**: each real source token in turn is replaced by the baseline token
  (``[PAD]``: the token is masked out of every attention), and the drop of the
  log-probability of each generated token (its prefix kept) is that token's attribution
  (captum's FeatureAblation with one feature per source position; the tests compare).
- **Shapley values**: each real source token's exact Shapley value for each generated
  token's log-probability, the tokens left out of a coalition being the baseline token.
  Up to 12 real tokens the 2^n coalitions are enumerated in one batch for every generated
  token at once (captum's ShapleyValues would run n! permutations per token); longer
  sources use captum's ShapleyValueSampling. Values sum to the log-probability minus its
  value with every token the baseline (efficiency).
- **layer integrated gradients** on the source token embedding (captum's
  LayerIntegratedGradients), from the baseline token's embedding at every real position
  to the real one (positions and padding unchanged), summed over the embedding; the
  completeness gap is reported as ``ig_max_delta``.

Where the data says which source tokens each target token copies (annotations
``source_fields`` and ``target_fields``, as the ``dates`` dataset carries), the
**alignment** of each reading is the share of its mass on that field, averaged over the
target tokens that copy a field: the gateable ``alignment.L<l>``, ``alignment`` (the best
layer), ``rollout_alignment``, ``ablation_alignment``, ``shapley_alignment`` and
``ig_alignment`` (absolute values for the signed readings).

The model must be an encoder-decoder with ``generate(src)``, ``teacher_forced(src, tgt)``,
a ``tokenizer`` and the names of its ``encoder_attention``, ``decoder_self_attention``
and ``cross_attention`` softmax modules (:class:`~xai.zoo.seq2seq.Seq2SeqTransformer`);
layer integrated gradients also need the name of its ``source_embedding`` module.

Example
-------
>>> from xai.datasets import load_dataset
>>> from xai.zoo import load_model
>>> result = CrossAttention.run(load_model("seq2seq-dates"), load_dataset("dates").head(32), {"samples": 2})
>>> result.cross.shape  # (samples, decoder layers, heads, generated T, source S)
(2, 2, 4, 11, 10)
>>> result.alignment.shape, result.rows
((2,), 32)
"""

from __future__ import annotations

import math
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
from xai.explain._hooks import NamedForwardHooks
from xai.explain._index import SEQ2SEQ_METHODS
from xai.zoo.handle import ModelHandle, eval_mode

__all__ = ["AttentionByName", "CrossAttention", "CrossAttentionResult", "alignment_mask", "decoder_rollout",
           "generated_lengths", "source_ablation", "source_integrated_gradients", "source_shapley"]

#: Target fields that copy a source field (separators and the end copy nothing).
COPIED = ("year", "month", "day")
_NEEDS = ("generate", "teacher_forced", "tokenizer", "encoder_attention", "decoder_self_attention", "cross_attention")
#: Most real source tokens whose Shapley values are computed exactly (2^12 coalitions per row).
EXACT_SHAPLEY_PLAYERS = 12


class AttentionByName(NamedForwardHooks):
    """Context manager: the output of each named softmax module, kept by name (last call wins)."""

    def __init__(self, module: torch.nn.Module, names: Sequence[str]) -> None:
        super().__init__(module, names)
        self._name_of = {id(m): n for m, n in zip(self._modules, self.names, strict=True)}
        self.outputs: dict[str, torch.Tensor] = {}

    def _hook(self, module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        self.outputs[self._name_of[id(module)]] = output.detach().float()

    def _reset(self) -> None:
        self.outputs = {}

    def __enter__(self) -> AttentionByName:
        super().__enter__()
        return self

    def stacked(self, names: Sequence[str]) -> torch.Tensor:
        """``(B, layers, heads, Tq, Tk)`` of ``names`` (each must have run)."""
        missing = [n for n in names if n not in self.outputs]
        if missing:
            raise DataError(f"attention module(s) did not run: {', '.join(missing)}")
        return torch.stack([self.outputs[n] for n in names], dim=1)


def generated_lengths(generated: torch.Tensor, eos_id: int) -> torch.Tensor:
    """``(B,)`` generated tokens up to and including the first ``eos_id`` (all when there is none)."""
    t = generated.shape[1]
    is_eos = generated == eos_id  # (B, T)
    first = torch.where(is_eos.any(1), is_eos.float().argmax(1), torch.full_like(is_eos[:, 0], t - 1, dtype=torch.long))
    return first.long() + 1


def _with_residual(attention: torch.Tensor) -> torch.Tensor:
    """``0.5 A + 0.5 I`` of head-averaged attention ``(B, T, T)`` (rows stay distributions)."""
    eye = torch.eye(attention.shape[-1], dtype=attention.dtype, device=attention.device)
    return 0.5 * attention + 0.5 * eye


def decoder_rollout(encoder: torch.Tensor, decoder_self: torch.Tensor,
                    cross: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rollout from generated tokens to source tokens through the encoder and the causal decoder.

    Parameters
    ----------
    encoder
        ``(B, Le, H, S, S)`` encoder self-attention.
    decoder_self
        ``(B, Ld, H, T, T)`` causal decoder self-attention.
    cross
        ``(B, Ld, H, T, S)`` cross-attention.

    Returns
    -------
    ``(map (B, T, S), source_share (B, T))``: each target position's source part of its
    make-up, normalised to sum to 1, and that part's total before normalising (which is
    ``1 - 0.5^layers`` for any attention, the residual keeping half at each cross-attention).
    """
    b, _, _, s, _ = encoder.shape
    t = cross.shape[3]
    source = torch.eye(s, dtype=encoder.dtype, device=encoder.device).expand(b, s, s)  # (B, S, S)
    for layer in range(encoder.shape[1]):
        source = _with_residual(encoder[:, layer].mean(1)) @ source
    make_up = torch.cat([torch.eye(t, dtype=cross.dtype, device=cross.device).expand(b, t, t),
                         torch.zeros(b, t, s, dtype=cross.dtype, device=cross.device)], dim=2)  # (B, T, T+S)
    for layer in range(cross.shape[1]):
        make_up = _with_residual(decoder_self[:, layer].mean(1)) @ make_up
        from_source = cross[:, layer].mean(1) @ source  # (B, T, S)
        make_up = 0.5 * make_up + 0.5 * torch.cat([torch.zeros_like(make_up[..., :t]), from_source], dim=2)
    part = make_up[..., t:]  # (B, T, S)
    share = part.sum(-1)  # (B, T)
    return part / share.clamp_min(1e-12)[..., None], share


@torch.no_grad()
def source_ablation(module: Any, src: torch.Tensor, generated: torch.Tensor,
                    baseline_id: int, batch_size: int = 4096) -> torch.Tensor:
    """``(B, T, S)``: drop of each generated token's log-probability when source token ``s`` is the baseline.

    The prefix of each generated token stays the model's own output (teacher-forced).
    Padding positions (already the pad id) get 0, as replacing a token by itself changes
    nothing. Equal to captum's ``FeatureAblation`` with one feature per source position
    and the log-probability of token ``t`` as the target.
    """
    b, s = src.shape
    t = generated.shape[1]
    variants = src[:, None, :].repeat(1, s + 1, 1)  # (B, S+1, S): the original, then position s ablated
    positions = torch.arange(s, device=src.device)
    variants[:, 1 + positions, positions] = baseline_id
    flat = variants.reshape(-1, s)
    targets = generated[:, None, :].expand(b, s + 1, t).reshape(-1, t)
    logp = []
    for i in range(0, len(flat), batch_size):
        logits = module.teacher_forced(flat[i:i + batch_size], targets[i:i + batch_size])  # (n, T, vocab)
        logp.append(F.log_softmax(logits.float(), -1).gather(2, targets[i:i + batch_size, :, None]).squeeze(2))
    scores = torch.cat(logp).reshape(b, s + 1, t)  # (B, S+1, T)
    return (scores[:, :1] - scores[:, 1:]).transpose(1, 2)  # (B, T, S)


def _token_logprob(module: Any, src: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` log-probability of each generated token given its prefix (teacher-forced) and ``src``."""
    logits = module.teacher_forced(src, generated)  # (B, T, vocab)
    return F.log_softmax(logits.float(), -1).gather(2, generated[..., None]).squeeze(2)


def _coalition_weights(n: int) -> torch.Tensor:
    """``(n + 1,)``: Shapley weight ``k! (n - k - 1)! / n!`` of a coalition of ``k`` other players."""
    return torch.tensor([math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) if k < n else 0.0
                         for k in range(n + 1)], dtype=torch.float64)


@torch.no_grad()
def _exact_shapley_row(module: Any, src: torch.Tensor, generated: torch.Tensor, players: torch.Tensor,
                       baseline_id: int, batch_size: int) -> torch.Tensor:
    """``(T, S)`` exact Shapley values of one row ``src (S,)`` over the positions ``players``."""
    n, s = len(players), src.shape[0]
    codes = torch.arange(2 ** n, device=src.device)
    member = (codes[:, None] >> torch.arange(n, device=src.device)) & 1  # (2^n, n): is player j in?
    variants = src.repeat(2 ** n, 1)  # (2^n, S)
    variants[:, players] = torch.where(member.bool(), src[players], torch.full_like(src[players], baseline_id))
    values = torch.cat([_token_logprob(module, variants[i:i + batch_size],
                                       generated.expand(len(variants[i:i + batch_size]), -1))
                        for i in range(0, len(variants), batch_size)]).double()  # (2^n, T)
    weight = _coalition_weights(n).to(src.device)[member.sum(1)]  # (2^n,) weight of a coalition of that size
    out = torch.zeros(generated.shape[0], s, dtype=torch.float64, device=src.device)
    for j in range(n):  # phi_j = sum over coalitions C without j of w(|C|) (v(C + j) - v(C))
        without = member[:, j] == 0
        gain = values[codes[without] | (1 << j)] - values[without]  # (2^(n-1), T)
        out[:, players[j]] = (weight[without, None] * gain).sum(0)
    return out.float()


def _sampled_shapley_row(module: Any, src: torch.Tensor, generated: torch.Tensor, players: torch.Tensor,
                         baseline_id: int, permutations: int, seed: int) -> torch.Tensor:
    """``(T, S)`` captum ``ShapleyValueSampling`` of one row over the positions ``players``, per generated token."""
    from captum.attr import ShapleyValueSampling

    def value(chosen: torch.Tensor) -> torch.Tensor:  # (k, n) player tokens -> (k, T)
        ids = src.repeat(len(chosen), 1)
        ids[:, players] = chosen
        return _token_logprob(module, ids, generated.expand(len(ids), -1))

    out = torch.zeros(generated.shape[0], src.shape[0], device=src.device)
    sampler = ShapleyValueSampling(value)
    for t in range(generated.shape[0]):
        torch.manual_seed(seed)  # the same permutations for every generated token
        with torch.no_grad():
            out[t, players] = sampler.attribute(src[players][None], baselines=baseline_id, target=t,
                                                n_samples=permutations,
                                                perturbations_per_eval=len(players) + 1)[0].float()
    return out


def source_shapley(module: Any, src: torch.Tensor, generated: torch.Tensor, baseline_id: int, *,
                   pad_id: int, permutations: int = 64, seed: int = 0, batch_size: int = 4096) -> torch.Tensor:
    """``(B, T, S)``: Shapley value of each real source token for each generated token's log-probability.

    Players are the real (not ``pad_id``) source tokens; a token outside a coalition is
    ``baseline_id``. Exact (all ``2^n`` coalitions, every generated token from one batch)
    up to :data:`EXACT_SHAPLEY_PLAYERS` real tokens; beyond, captum's
    ``ShapleyValueSampling`` with ``permutations`` seeded permutations, one generated token
    at a time. Padding gets 0.
    """
    b, s = src.shape
    out = torch.zeros(b, generated.shape[1], s, device=src.device)
    for row in range(b):
        players = (src[row] != pad_id).nonzero().squeeze(1)
        if len(players) <= EXACT_SHAPLEY_PLAYERS:
            out[row] = _exact_shapley_row(module, src[row], generated[row], players, baseline_id, batch_size)
        else:
            out[row] = _sampled_shapley_row(module, src[row], generated[row], players, baseline_id, permutations,
                                            seed)
    return out


def source_integrated_gradients(module: Any, embedding: torch.nn.Module, src: torch.Tensor, generated: torch.Tensor,
                                baseline_id: int, *, pad_id: int, steps: int = 32
                                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer integrated gradients on the source token embedding: ``((B, T, S), delta (B, T))``.

    captum's ``LayerIntegratedGradients`` from the embedding of ``baseline_id`` at every
    real source position to the real embedding (padding, positions and the attention mask
    stay the input's), summed over the embedding dimensions. All generated tokens run in
    one batch: row ``(t, b)`` of the repeated input scores token ``t`` of row ``b``.
    ``delta`` is the completeness gap: the attributions' sum minus the log-probability's
    change between the path's ends (the baseline end run with the input's mask, as the
    path is, so a ``[PAD]`` baseline is not also masked out).
    """
    from captum.attr import LayerIntegratedGradients

    b, t = generated.shape
    rows = torch.arange(b * t, device=src.device)
    token = rows // b  # (T*B,): token t of row b sits at t*B + b
    src_all, generated_all = src.repeat(t, 1), generated.repeat(t, 1)
    baseline = torch.where(src_all == pad_id, src_all, torch.full_like(src_all, baseline_id))

    def score(ids: torch.Tensor, tokens: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        return _token_logprob(module, ids, tokens).gather(1, which[:, None]).squeeze(1)

    ig = LayerIntegratedGradients(score, embedding)
    attr = ig.attribute(src_all, baselines=baseline, additional_forward_args=(generated_all, token), n_steps=steps)
    with torch.no_grad():
        start = embedding(baseline)
        hook = embedding.register_forward_hook(lambda _m, _i, _o: start)
        try:
            at_baseline = score(src_all, generated_all, token)
        finally:
            hook.remove()
        delta = attr.sum((1, 2)) - (score(src_all, generated_all, token) - at_baseline)
    return attr.sum(-1).detach().float().reshape(t, b, -1).transpose(0, 1), delta.float().reshape(t, b).T


def alignment_mask(data: Dataset, t: int, s: int) -> torch.Tensor | None:
    """``(N, T, S)`` True where target token ``t`` copies the field of source token ``s`` (annotations), else None."""
    notes = data.annotations
    if len(notes) != len(data) or not all(isinstance(a, dict) and "source_fields" in a and "target_fields" in a
                                          for a in notes):
        return None
    mask = torch.zeros(len(data), t, s, dtype=torch.bool)
    for n, a in enumerate(notes):
        for i, want in enumerate(tuple(a["target_fields"])[:t]):
            if want in COPIED:
                for j, have in enumerate(tuple(a["source_fields"])[:s]):
                    mask[n, i, j] = have == want
    return mask


def _share_on(mask: torch.Tensor, weights: torch.Tensor, counted: torch.Tensor) -> float:
    """Mean over counted (row, target token) of the share of ``weights`` ``(N, T, S)`` (>= 0) inside ``mask``."""
    total = weights.sum(-1)  # (N, T)
    use = counted & (total > 0)
    if not bool(use.any()):
        return float("nan")
    share = (weights * mask).sum(-1) / total.clamp_min(1e-12)
    return float(share[use].mean())


@dataclass(frozen=True)
class CrossAttentionResult:
    """Which source tokens each generated token reads: cross-attention, rollout, ablation, alignment.

    Attributes
    ----------
    cross
        ``(samples, layers, heads, T, S)`` cross-attention of the shown samples (not in the JSON;
        ``maps`` there holds the head means ``(samples, layers, T, S)``).
    rollout
        ``(samples, T, S)`` rolled-out source map (rows sum to 1).
    ablation
        ``(samples, T, S)`` drop of each generated token's log-probability when a source token is
        replaced by the baseline (empty when not run).
    shapley, integrated_gradients
        ``(samples, T, S)`` Shapley values and layer integrated gradients of the source tokens
        for each generated token's log-probability (empty when not run); their alignments
        average over the first ``attribution_rows`` rows, and ``ig_max_delta`` is the largest
        completeness gap there.
    alignment
        ``(layers,)`` mean head-averaged cross-attention mass on the field each copying token copies,
        over ``rows`` rows (NaN without field annotations).
    """

    model: str
    layers: tuple[str, ...]
    heads: int
    source_tokens: tuple[tuple[str, ...], ...]
    generated_tokens: tuple[tuple[str, ...], ...]
    reference_tokens: tuple[tuple[str, ...], ...]
    source_fields: tuple[tuple[str, ...], ...]
    target_fields: tuple[tuple[str, ...], ...]
    cross: np.ndarray
    rollout: np.ndarray
    ablation: np.ndarray
    baseline: str
    alignment: np.ndarray
    rollout_alignment: float
    ablation_alignment: float
    exact_match: float
    rows: int
    shapley: np.ndarray
    integrated_gradients: np.ndarray
    shapley_alignment: float
    ig_alignment: float
    ig_max_delta: float
    attribution_rows: int
    provenance: Provenance
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def maps(self) -> np.ndarray:
        """Head-averaged cross-attention ``(samples, layers, T, S)``."""
        return self.cross.mean(2)

    def metrics(self) -> dict[str, float]:
        """The gateable numbers (finite values only).

        ``alignment`` (best layer), ``alignment.L<l>``, ``rollout_alignment``, ``ablation_alignment``,
        ``shapley_alignment``, ``ig_alignment``, ``ig_max_delta``, ``exact_match``.
        """
        out: dict[str, float] = {}
        if self.alignment.size and np.isfinite(self.alignment).any():
            out["alignment"] = float(np.nanmax(self.alignment))
            out.update({f"alignment.L{i}": float(v) for i, v in enumerate(self.alignment) if np.isfinite(v)})
        for key in ("rollout_alignment", "ablation_alignment", "shapley_alignment", "ig_alignment", "ig_max_delta",
                    "exact_match"):
            value = float(getattr(self, key))
            if np.isfinite(value):
                out[key] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the per-head maps are left out (their head means stay, as ``maps``)."""
        out = {k: v for k, v in to_jsonable(self).items() if k != "cross"}
        out["maps"] = to_jsonable(self.maps)
        out["cross_shape"] = list(self.cross.shape)
        return out


def _why_not_encoder_decoder(handle: ModelHandle) -> str | None:
    missing = [name for name in _NEEDS if not hasattr(handle.module, name)]
    if missing:
        return f"it needs an encoder-decoder model; {handle.name} has no {', '.join(missing)}"
    return None


@SEQ2SEQ_METHODS.register("cross-attention")
class CrossAttention(Method):
    """Cross-attention maps per generated token, their decoder rollout, and source ablation, Shapley values and IG."""

    name: ClassVar[str] = "cross-attention"
    kind: ClassVar[Kind] = "seq2seq"
    paper: ClassVar[str] = "https://arxiv.org/abs/2005.00928"
    result_type: ClassVar[str] = "xai.explain.cross_attention:CrossAttentionResult"
    capabilities: ClassVar[Capabilities] = Capabilities(
        tasks=frozenset({"generation"}), modalities=frozenset({"text"}), needs_tokenizer=True, needs_gradients=False)

    class Options(Options):
        """How many samples to draw and how many rows the alignment is scored on."""

        samples: int = Field(default=4, ge=1, le=32, description="samples whose maps are drawn (the first rows)")
        rows: int = Field(default=256, ge=1, description="rows (the first) the alignment scores average over")
        ablation: bool = Field(default=True, description="ablate each source token per generated token")
        baseline: Literal["pad", "unk"] = Field(
            default="pad", description="token an ablated source token becomes ([PAD]: masked out; [UNK])")
        shapley: bool = Field(default=True, description="Shapley values of the source tokens per generated token")
        integrated_gradients: bool = Field(
            default=True, description="layer integrated gradients on the source token embedding")
        attribution_rows: int = Field(
            default=16, ge=1, description="rows (the first) the Shapley and gradient alignments average over")
        steps: int = Field(default=32, ge=2, le=512, description="integration steps of the integrated gradients")
        permutations: int = Field(
            default=64, ge=1, description=f"Shapley permutations for sources over {EXACT_SHAPLEY_PLAYERS} tokens "
                                          "(shorter ones are exact)")

    @classmethod
    def why_not(cls, handle: ModelHandle) -> str | None:
        """The capabilities' reason, or that the model is no encoder-decoder."""
        return super().why_not(handle) or _why_not_encoder_decoder(handle)

    @classmethod
    def run(cls, handle: ModelHandle, data: Dataset | None, options: Any, seed: int = 0) -> CrossAttentionResult:
        """Maps of the first ``samples`` rows; alignment scores over the first ``rows`` rows."""
        opts = cls.parse_options(options)
        assert isinstance(opts, CrossAttention.Options)
        cls.check_applies(handle)
        if data is None or len(data) == 0:
            raise DataError(f"{cls.name} needs source rows to generate from")
        if data.x.is_floating_point() or data.x.ndim != 2:
            raise DataError(f"{cls.name} takes (N, S) source token ids, got {data.x.dtype} {tuple(data.x.shape)}")
        start = time.perf_counter()
        module: Any = handle.module
        tokenizer = module.tokenizer
        baseline_id = tokenizer.pad_id if opts.baseline == "pad" else tokenizer.unk_id
        scored = data.head(opts.rows)
        src = scored.x.to(handle.device)
        names = (*module.encoder_attention, *module.decoder_self_attention, *module.cross_attention)
        notes: list[str] = []
        with torch.no_grad(), eval_mode(module):
            generated = module.generate(src)  # (N, T)
            with AttentionByName(module, names) as rec:
                module.teacher_forced(src, generated)
            encoder = rec.stacked(module.encoder_attention)  # (N, Le, H, S, S)
            decoder_self = rec.stacked(module.decoder_self_attention)  # (N, Ld, H, T, T)
            cross = rec.stacked(module.cross_attention)  # (N, Ld, H, T, S)
            rollout, _ = decoder_rollout(encoder, decoder_self, cross)
            ablation = source_ablation(module, src, generated, baseline_id) if opts.ablation else None
        attributed = slice(0, min(len(src), max(opts.samples, opts.attribution_rows)))
        pad_id = tokenizer.pad_id
        shapley = ig = ig_delta = None
        if opts.shapley:
            with eval_mode(module):
                shapley = source_shapley(module, src[attributed], generated[attributed], baseline_id, pad_id=pad_id,
                                         permutations=opts.permutations, seed=seed)
        embedding_name = getattr(module, "source_embedding", None)
        if opts.integrated_gradients and embedding_name is None:
            notes.append(f"{handle.name} names no source_embedding module: no integrated gradients")
        elif opts.integrated_gradients:
            with eval_mode(module):
                ig, ig_delta = source_integrated_gradients(
                    module, module.get_submodule(embedding_name), src[attributed], generated[attributed],
                    baseline_id, pad_id=pad_id, steps=opts.steps)
        n, layers, heads, t, s = cross.shape
        lengths = generated_lengths(generated, tokenizer.eos_id).cpu()
        produced = torch.arange(t)[None, :] < lengths[:, None]  # (N, T): generated up to [EOS]
        mask = alignment_mask(scored, t, s)
        alignment = np.full(layers, np.nan)
        rollout_alignment = ablation_alignment = shapley_alignment = ig_alignment = float("nan")
        ig_max_delta = float("nan") if ig_delta is None else float(
            ig_delta.abs().cpu()[produced[attributed]].max())
        if mask is None:
            notes.append(f"{data.name} says not which source tokens each output copies (no source_fields/"
                         "target_fields annotations): no alignment score")
        else:
            counted = mask.any(-1) & produced  # (N, T): copying tokens that were generated
            cross_mean = cross.mean(2).cpu()  # (N, L, T, S)
            alignment = np.array([_share_on(mask, cross_mean[:, i], counted) for i in range(layers)])
            rollout_alignment = _share_on(mask, rollout.cpu(), counted)
            if ablation is not None:
                ablation_alignment = _share_on(mask, ablation.abs().cpu(), counted)
            if shapley is not None:
                shapley_alignment = _share_on(mask[attributed], shapley.abs().cpu(), counted[attributed])
            if ig is not None:
                ig_alignment = _share_on(mask[attributed], ig.abs().cpu(), counted[attributed])
        references = scored.y if scored.y.ndim == 2 and scored.y.shape[1] == t else None
        exact = float("nan") if references is None else float((generated.cpu() == references).all(1).float().mean())
        k = min(opts.samples, n)
        shown_src = scored.x[:k]
        real = [int((row != tokenizer.pad_id).sum()) for row in shown_src]
        annotations = scored.annotations[:k] if len(scored.annotations) == n else ()
        return CrossAttentionResult(
            model=handle.name,
            layers=tuple(module.cross_attention),
            heads=heads,
            source_tokens=tuple(tuple(tokenizer.vocab[i] for i in row[:m].tolist()) for row, m in zip(
                shown_src, real, strict=True)),
            generated_tokens=tuple(tuple(tokenizer.vocab[i] for i in generated[j, :int(lengths[j])].tolist())
                                   for j in range(k)),
            reference_tokens=() if references is None else tuple(
                tuple(tokenizer.tokens(references[j])) for j in range(k)),
            source_fields=tuple(tuple(a.get("source_fields", ())) for a in annotations if isinstance(a, dict)),
            target_fields=tuple(tuple(a.get("target_fields", ())) for a in annotations if isinstance(a, dict)),
            cross=cross[:k].cpu().numpy(),
            rollout=rollout[:k].cpu().numpy(),
            ablation=np.zeros(0) if ablation is None else ablation[:k].cpu().numpy(),
            baseline=tokenizer.vocab[baseline_id],
            alignment=alignment,
            rollout_alignment=rollout_alignment,
            ablation_alignment=ablation_alignment,
            exact_match=exact,
            rows=n,
            shapley=np.zeros(0) if shapley is None else shapley[:k].cpu().numpy(),
            integrated_gradients=np.zeros(0) if ig is None else ig[:k].cpu().numpy(),
            shapley_alignment=shapley_alignment,
            ig_alignment=ig_alignment,
            ig_max_delta=ig_max_delta,
            attribution_rows=attributed.stop if (shapley is not None or ig is not None) else 0,
            provenance=Provenance(model_sha256=handle.sha256, data_sha256=scored.sha256, seed=seed,
                                  wall_seconds=round(time.perf_counter() - start, 4), device=str(handle.device)),
            notes=tuple(notes),
        )
