"""Generation-aware attribution for language models: which prompt tokens drive each generated token.

The model generates a continuation of each prompt (greedy); then, for every generated
token, each prompt token gets a score from:

- ``feature-ablation``: captum's :class:`~captum.attr.LLMAttribution` with
  :class:`~captum.attr.FeatureAblation`: the drop of the generated token's log-probability
  when that prompt token is replaced by the baseline token (``[UNK]``);
- ``shapley``: the same wrapper with :class:`~captum.attr.ShapleyValueSampling` (seeded
  permutations), the token's Shapley value for the log-probability;
- ``layer-ig``: captum's :class:`~captum.attr.LLMGradientAttribution` with
  :class:`~captum.attr.LayerIntegratedGradients` on the token embedding (baseline: the
  ``[UNK]`` embedding), summed over the embedding dimensions;
- ``rollout``: causal attention rollout (:func:`causal_rollout`): attention rollout whose
  head fusion, discarding and re-normalisation stay inside the causal mask, read at the
  position that predicts each generated token.

captum is used as it is, through a thin adapter (:class:`CaptumTokenizer`,
:class:`CausalLMAdapter`): a Hugging Face-style tokenizer (``encode``, ``decode``,
``convert_ids_to_tokens``, ``convert_tokens_to_ids``, offsets) and a model whose forward
returns ``.logits`` and which can ``generate``. The adapter reads logits through one method,
:meth:`CausalLMAdapter.logits`, from the concatenated ``prompt + generated`` ids. An
encoder-decoder model plugs in through :class:`EncoderDecoderAdapter`, which overrides it
(the prompt is the source; the generated tokens, after a start token, the decoder's input;
logits aligned so that position ``t`` predicts token ``t + 1``), with captum unchanged: a
module with ``encode_decode_logits(source, target)`` and no ``lm_logits`` is run that way
(causal rollout is then left out: it reads a decoder-only model's self-attention).

Captum reference: Miglani et al. 2023, "Using Captum to Explain Generative Language Models",
https://arxiv.org/abs/2312.05491; rollout: Abnar & Zuidema 2020, https://arxiv.org/abs/2005.00928.

Example
-------
>>> from xai.zoo import load_model
>>> result = GenerationAttribution.run(load_model("gpt-mini"), None, {"prompts": ["the method returns"],
...     "max_new_tokens": 2, "methods": ["feature-ablation"]})
>>> result.prompts[0].scores["feature-ablation"].shape  # (generated, prompt tokens)
(2, 3)
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, cast

import numpy as np
import torch
from pydantic import Field
from torch import nn

from xai._method import Capabilities, Kind, Method, Options
from xai._provenance import Provenance
from xai._results import to_jsonable
from xai.datasets import Dataset
from xai.errors import DataError
from xai.explain._index import LLM_METHODS
from xai.explain.rollout import AttentionRecorder, HeadFusion, fuse_heads
from xai.zoo.handle import ModelHandle, eval_mode

__all__ = [
    "CaptumTokenizer",
    "CausalLMAdapter",
    "CausalLMOutput",
    "EncoderDecoderAdapter",
    "GenerationAttribution",
    "GenerationAttributionResult",
    "PromptAttribution",
    "captum_attribution",
    "causal_rollout",
]

LLMMethod = Literal["feature-ablation", "shapley", "layer-ig"]
LLM_METHODS_ALL: tuple[LLMMethod, ...] = ("feature-ablation", "shapley", "layer-ig")
_WORD = re.compile(r"\S+")


class CaptumTokenizer:
    """A word-level tokenizer (``vocab``, ``index``, ``cls_id``, ``unk_id``, ``split``) as captum's ``TokenizerLike``.

    ``encode`` puts ``[CLS]`` (the start of a text) first when ``add_special_tokens``;
    ``decode`` joins the words with spaces; calling it gives ``input_ids`` and the
    character ``offset_mapping`` of each word (what captum reads to print tokens).

    Examples
    --------
    >>> from xai.datasets import WordTokenizer
    >>> tok = CaptumTokenizer(WordTokenizer(["the", "method", "returns"]))
    >>> tok.encode("the method returns")
    [1, 6, 4, 5]
    >>> tok.convert_ids_to_tokens([1, 6, 4]), tok.decode(torch.tensor([4, 5]))
    (['[CLS]', 'the', 'method'], 'method returns')
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.vocab: list[str] = list(tokenizer.vocab)
        self.index: dict[str, int] = dict(tokenizer.index)

    def _ids(self, text: str) -> list[int]:
        return [self.index.get(w, self.tokenizer.unk_id) for w in self.tokenizer.split(text)]

    def encode(self, text: str, add_special_tokens: bool = True, return_tensors: str | None = None
               ) -> list[int] | torch.Tensor:
        """Token ids of ``text`` (``[CLS]`` first with ``add_special_tokens``); ``(1, T)`` for ``"pt"``."""
        ids = ([self.tokenizer.cls_id] if add_special_tokens else []) + self._ids(text)
        return torch.tensor([ids], dtype=torch.long) if return_tensors == "pt" else ids

    def decode(self, token_ids: torch.Tensor | Sequence[int] | int) -> str:
        """The tokens of ``token_ids`` joined by spaces (padding left out)."""
        ids = torch.as_tensor(token_ids).flatten().tolist()
        return " ".join(self.vocab[i] for i in ids if i != self.tokenizer.pad_id)

    def convert_ids_to_tokens(self, token_ids: list[int] | int) -> list[str] | str:
        """Token strings of ids (one string for one id)."""
        if isinstance(token_ids, int):
            return self.vocab[token_ids]
        return [self.vocab[i] for i in token_ids]

    def convert_tokens_to_ids(self, tokens: list[str] | str) -> list[int] | int:
        """Ids of token strings (unknown ones: ``[UNK]``)."""
        if isinstance(tokens, str):
            return self.index.get(tokens, self.tokenizer.unk_id)
        return [self.index.get(t, self.tokenizer.unk_id) for t in tokens]

    def __call__(self, text: str, add_special_tokens: bool = True, return_offsets_mapping: bool = False
                 ) -> dict[str, Any]:
        """``{"input_ids": [...], "offset_mapping": [(start, end), ...]}`` (special tokens get ``(0, 0)``)."""
        spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        ids = [self.index.get(w, self.tokenizer.unk_id) for w in (text[a:b].lower() for a, b in spans)]
        if add_special_tokens:
            ids, spans = [self.tokenizer.cls_id, *ids], [(0, 0), *spans]
        out: dict[str, Any] = {"input_ids": ids}
        if return_offsets_mapping:
            out["offset_mapping"] = spans
        return out


@dataclass
class CausalLMOutput:
    """What captum reads of a forward: ``logits`` ``(B, T, V)``."""

    logits: torch.Tensor


class CausalLMAdapter(nn.Module):
    """A language model as captum's LLM wrappers expect it: ``forward(input_ids) -> .logits``, ``generate``.

    ``module.lm_logits(ids)`` gives ``(B, T, V)`` next-token logits of a decoder-only model.
    An encoder-decoder model plugs in by overriding :meth:`logits` (see the module docstring):
    captum always hands over the prompt's ids followed by the target tokens generated so far.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    @property
    def device(self) -> torch.device:
        """Where the model's parameters are (captum moves the inputs there)."""
        return next(self.module.parameters()).device

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``(B, T, V)`` logits; position ``t`` predicts token ``t + 1``."""
        return self.module.lm_logits(input_ids)  # type: ignore[operator]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                **_ignored: Any) -> CausalLMOutput:
        """Logits of ``input_ids`` ``(B, T)``; the mask is all ones for captum's single unpadded prompt."""
        return CausalLMOutput(self.logits(input_ids))

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int = 8, attention_mask: torch.Tensor | None = None,
                 **_ignored: Any) -> torch.Tensor:
        """Greedy decoding: the prompt and ``max_new_tokens`` tokens ``(1, T + n)``; special tokens are never chosen."""
        generate = getattr(self.module, "generate", None)
        if callable(generate):
            return generate(input_ids, max_new_tokens=max_new_tokens)
        out = input_ids
        for _ in range(max_new_tokens):
            out = torch.cat([out, self.logits(out)[:, -1].argmax(-1, keepdim=True)], dim=1)
        return out


class EncoderDecoderAdapter(CausalLMAdapter):
    """An encoder-decoder model behind captum's decoder-only interface.

    ``module.encode_decode_logits(source, target)`` gives ``(B, T_target, V)`` logits of
    the decoder reading ``target`` (which starts with ``start_id``) with cross-attention to
    the encoded ``source``; position ``k`` predicts target token ``k + 1``. captum hands over
    the prompt's ``prompt_length`` ids followed by the tokens generated so far; they are
    split into the source and the decoder's input, and the decoder's logits are shifted so
    that position ``prompt_length - 1 + k`` predicts generated token ``k``, as in a
    decoder-only model. Greedy generation runs the same loop through :meth:`logits`.
    """

    def __init__(self, module: nn.Module, prompt_length: int, start_id: int) -> None:
        super().__init__(module)
        self.prompt_length = prompt_length
        self.start_id = start_id

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``(B, T, V)`` with zero logits over the prompt but its last position (never read by captum)."""
        p = self.prompt_length
        source, generated = input_ids[:, :p], input_ids[:, p:]
        start = torch.full((len(input_ids), 1), self.start_id, dtype=input_ids.dtype, device=input_ids.device)
        decoded = self.module.encode_decode_logits(source, torch.cat([start, generated], 1))  # type: ignore[operator]
        front = decoded.new_zeros(len(input_ids), p - 1, decoded.shape[-1])  # (B, P - 1, V)
        return torch.cat([front, decoded], dim=1)  # (B, T, V)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int = 8, attention_mask: torch.Tensor | None = None,
                 **_ignored: Any) -> torch.Tensor:
        """Greedy decoding through :meth:`logits`: the prompt and ``max_new_tokens`` tokens ``(1, P + n)``."""
        out = input_ids
        for _ in range(max_new_tokens):
            out = torch.cat([out, self.logits(out)[:, -1].argmax(-1, keepdim=True)], dim=1)
        return out


def captum_attribution(adapter: CausalLMAdapter, tokenizer: CaptumTokenizer, prompt: str, target: torch.Tensor,
                       method: str, *, baseline: int, shapley_samples: int = 25, ig_steps: int = 32,
                       layer: nn.Module | None = None, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Captum's attribution of ``target`` (generated ids) to the prompt's tokens: ``(n_target, n_prompt)``.

    The prompt's ``[CLS]`` is not a feature (captum's ``skip_tokens``). Returns the scores
    and the prompt tokens captum scored.
    """
    from captum.attr import (
        FeatureAblation,
        LayerIntegratedGradients,
        LLMAttribution,
        LLMGradientAttribution,
        ShapleyValueSampling,
        TextTokenInput,
    )

    inp = TextTokenInput(prompt, tokenizer, baselines=baseline, skip_tokens=[tokenizer.tokenizer.cls_id])
    if method == "layer-ig":
        if layer is None:
            raise DataError("layer-ig needs the token-embedding layer")
        gradient = LLMGradientAttribution(LayerIntegratedGradients(adapter, layer), tokenizer)
        result = gradient.attribute(inp, target=target, n_steps=ig_steps)
    else:
        torch.manual_seed(seed)  # ShapleyValueSampling draws its permutations from torch's generator
        attr_method = FeatureAblation(adapter) if method == "feature-ablation" else ShapleyValueSampling(adapter)
        wrapper = LLMAttribution(attr_method, tokenizer)
        extra = {"n_samples": shapley_samples} if method == "shapley" else {}
        # one forward of prompt + target per perturbation: for a model without a key-value cache the
        # logits equal captum's token-by-token loop exactly, at 1/len(target) of the cost
        result = wrapper.attribute(inp, target=target, use_cached_outputs=False, forward_in_tokens=False, **extra)
    scores = result.token_attr
    assert scores is not None
    return scores.detach().cpu().double().numpy(), list(result.input_tokens)


def causal_rollout(attentions: Sequence[torch.Tensor], head_fusion: HeadFusion = "mean",
                   discard_ratio: float = 0.0) -> torch.Tensor:
    """Attention rollout of a causal model ``(B, T, T)``, every step inside the causal mask.

    Per layer: fuse the heads of ``(B, heads, T, T)``; keep only the lower triangle
    (position ``i`` reads ``j <= i``; max/min fusion and discarding cannot leak past it);
    zero the ``floor(ratio * T (T + 1) / 2)`` smallest causal entries (the entries above the
    diagonal, which are 0 by construction, are not counted); add the identity for the
    residual stream and re-normalise each row; multiply the layers, ``R = A_L ... A_1``.
    Row ``i`` of ``R`` is a distribution over the tokens ``<= i``.
    """
    result: torch.Tensor | None = None
    for attention in attentions:
        a = fuse_heads(attention.double(), head_fusion)  # (B, T, T)
        t = a.shape[-1]
        causal = torch.ones(t, t, dtype=torch.bool, device=a.device).tril()  # (T, T)
        a = a.masked_fill(~causal, 0.0)
        n_drop = int(np.floor(discard_ratio * t * (t + 1) / 2))
        if n_drop > 0:
            flat = a.masked_fill(~causal, np.inf).reshape(len(a), t * t)  # above the diagonal sorts last
            lowest = flat.argsort(dim=1, stable=True)[:, :n_drop]  # (B, n_drop)
            a = a.reshape(len(a), t * t).scatter(1, lowest, 0.0).reshape(len(a), t, t)
        a = a + torch.eye(t, dtype=a.dtype, device=a.device)
        a = a / a.sum(-1, keepdim=True)
        result = a if result is None else a @ result
    if result is None:
        raise DataError("rollout needs at least one attention layer")
    return result


@dataclass(frozen=True)
class PromptAttribution:
    """One prompt, its greedy continuation and each method's ``(generated, prompt tokens)`` scores.

    ``log_probs`` is the model's log-probability of each generated token; ``rollout`` holds
    the causal-rollout rows of the positions that predict the generated tokens over the
    prompt's tokens (``[CLS]`` left out, as for the other methods), when it ran.
    """

    prompt: str
    prompt_tokens: tuple[str, ...]
    generated_tokens: tuple[str, ...]
    log_probs: np.ndarray
    scores: dict[str, np.ndarray]


@dataclass(frozen=True)
class GenerationAttributionResult:
    """Per prompt, which prompt tokens drive each generated token, by each method.

    ``metrics()``: ``generated_log_prob`` (mean log-probability of the generated tokens),
    per method ``<method>.last_token_share`` (the share of the absolute attribution on
    the prompt's last token, mean over generated tokens: how local the model reads) and,
    for every method but feature ablation, ``<method>.agreement`` (mean Spearman rank
    correlation of its rows with feature ablation's).
    """

    model: str
    methods: tuple[str, ...]
    prompts: tuple[PromptAttribution, ...]
    baseline_token: str
    provenance: Provenance
    notes: tuple[str, ...] = field(default_factory=tuple)

    def metrics(self) -> dict[str, float]:
        """See the class docstring."""
        if not self.prompts:
            return {}
        out = {"generated_log_prob": float(np.mean(np.concatenate([p.log_probs for p in self.prompts])))}
        for method in self.methods:
            shares, agreements = [], []
            for p in self.prompts:
                rows = np.abs(p.scores[method])  # (G, P)
                total = rows.sum(1)
                shares += [r[-1] / s for r, s in zip(rows, total, strict=True) if s > 0]
                if method != "feature-ablation" and "feature-ablation" in p.scores:
                    agreements += [_spearman(a, b) for a, b in zip(p.scores[method], p.scores["feature-ablation"],
                                                                   strict=True)]
            if shares:
                out[f"{method}.last_token_share"] = float(np.mean(shares))
            finite = [a for a in agreements if np.isfinite(a)]
            if finite:
                out[f"{method}.agreement"] = float(np.mean(finite))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return to_jsonable(self)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (NaN when either side is constant)."""
    from scipy.stats import spearmanr

    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _kind_of(module: nn.Module) -> Literal["decoder", "encoder-decoder"] | None:
    """``decoder`` (``lm_logits``), ``encoder-decoder`` (``encode_decode_logits``) or ``None``."""
    if callable(getattr(module, "lm_logits", None)):
        return "decoder"
    if callable(getattr(module, "encode_decode_logits", None)):
        return "encoder-decoder"
    return None


def _tokenizer(handle: ModelHandle) -> Any:
    tokenizer = getattr(handle.module, "tokenizer", None)
    if tokenizer is None or not all(hasattr(tokenizer, a) for a in ("vocab", "index", "split", "cls_id", "unk_id")):
        raise DataError(f"{handle.name} carries no word tokenizer (module.tokenizer) that captum could use")
    return tokenizer


def _prompts_from_data(tokenizer: Any, data: Dataset | None, samples: int, words: int) -> list[str]:
    if data is None or len(data) == 0 or data.x.is_floating_point() or data.x.ndim != 2:
        raise DataError("llm-attribution needs prompts (option prompts) or token-id rows to take them from")
    out = []
    for row in data.x[:samples]:
        kept = [t for t in tokenizer.tokens(row) if t not in tokenizer.SPECIALS][:words]
        if kept:
            out.append(" ".join(kept))
    return out


@LLM_METHODS.register("llm-attribution")
class GenerationAttribution(Method):
    """Which prompt tokens drive each generated token (captum LLMAttribution and LLMGradientAttribution, rollout)."""

    name: ClassVar[str] = "llm-attribution"
    kind: ClassVar[Kind] = "llm"
    paper: ClassVar[str] = "https://arxiv.org/abs/2312.05491"
    result_type: ClassVar[str] = "xai.explain.llm:GenerationAttributionResult"
    capabilities: ClassVar[Capabilities] = Capabilities(
        tasks=frozenset({"generation"}), modalities=frozenset({"text"}), needs_tokenizer=True)

    class Options(Options):
        """Prompts, how much to generate and which attributions to compute."""

        prompts: list[str] | None = Field(
            default=None, min_length=1, description="prompts; default the first words of the first data rows")
        samples: int = Field(default=2, ge=1, le=32, description="data rows whose openings are prompts")
        prompt_words: int = Field(default=6, ge=1, le=24, description="words of each data row's opening")
        max_new_tokens: int = Field(default=4, ge=1, le=16, description="tokens generated (greedy) per prompt")
        methods: list[LLMMethod] = Field(default_factory=lambda: list(LLM_METHODS_ALL), min_length=1,
                                         description="captum attributions to compute")
        shapley_samples: int = Field(default=25, ge=1, le=1000, description="Shapley value sampling permutations")
        ig_steps: int = Field(default=32, ge=2, le=512, description="integrated-gradients steps")
        rollout: bool = Field(default=True, description="also the causal attention rollout (needs attention)")
        head_fusion: Literal["mean", "max", "min"] = "mean"
        discard_ratio: float = Field(default=0.0, ge=0.0, lt=1.0)
        baseline: str = Field(default="[UNK]", description="token that replaces an ablated prompt token")

    @classmethod
    def why_not(cls, handle: ModelHandle) -> str | None:
        """Also needs ``lm_logits`` (decoder-only) or ``encode_decode_logits`` (encoder-decoder)."""
        reason = super().why_not(handle)
        if reason is None and _kind_of(handle.module) is None:
            return (f"next-token logits (module.lm_logits, or module.encode_decode_logits of an encoder-decoder); "
                    f"{handle.name} has neither")
        return reason

    @classmethod
    def run(cls, handle: ModelHandle, data: Dataset | None, options: Any, seed: int = 0
            ) -> GenerationAttributionResult:
        """Generate from each prompt, then attribute every generated token to the prompt's tokens."""
        opts = cls.parse_options(options)
        assert isinstance(opts, GenerationAttribution.Options)
        cls.check_applies(handle)
        word_tokenizer = _tokenizer(handle)
        tokenizer = CaptumTokenizer(word_tokenizer)
        if opts.baseline not in tokenizer.index:
            raise DataError(f"llm-attribution: baseline token {opts.baseline!r} is not in {handle.name}'s vocabulary")
        prompts = list(opts.prompts) if opts.prompts else _prompts_from_data(
            word_tokenizer, data, opts.samples, opts.prompt_words)
        start = time.perf_counter()
        module = handle.module
        decoder_only = _kind_of(module) == "decoder"
        if not decoder_only and "layer-ig" in opts.methods:
            # captum's LLMGradientAttribution cuts the attributed layer's output as prompt + generated
            # tokens, which an encoder's embedding (the prompt only) is not
            raise DataError(f"llm-attribution: layer-ig needs a decoder-only model; {handle.name} is an "
                            "encoder-decoder (use feature-ablation or shapley)")
        layer = handle.get_layer(handle.layers[0]) if "layer-ig" in opts.methods else None
        notes: list[str] = []
        results = []
        with eval_mode(module):
            for prompt in prompts:
                ids = cast(torch.Tensor, tokenizer.encode(prompt, return_tensors="pt")).to(handle.device)  # (1, P + 1)
                if ids.shape[1] < 2:
                    raise DataError(f"llm-attribution: prompt {prompt!r} has no word")
                adapter = CausalLMAdapter(module) if decoder_only else EncoderDecoderAdapter(
                    module, ids.shape[1], int(getattr(module, "start_id", word_tokenizer.cls_id)))
                full = adapter.generate(ids, max_new_tokens=opts.max_new_tokens)  # (1, P + 1 + G)
                target = full[0, ids.shape[1]:].cpu()
                with torch.no_grad():
                    log_p = torch.log_softmax(adapter.logits(full).double(), -1)[0]  # (T, V)
                positions = torch.arange(ids.shape[1] - 1, full.shape[1] - 1)
                log_probs = log_p[positions, target.to(log_p.device)].cpu().numpy()
                scores: dict[str, np.ndarray] = {}
                tokens: list[str] = []
                for method in opts.methods:
                    scores[method], tokens = captum_attribution(
                        adapter, tokenizer, prompt, target, method, baseline=tokenizer.index[opts.baseline],
                        shapley_samples=opts.shapley_samples, ig_steps=opts.ig_steps, layer=layer, seed=seed)
                if opts.rollout and handle.attention and decoder_only:
                    with torch.no_grad(), AttentionRecorder(module, handle.attention) as rec:
                        module.lm_logits(full)  # type: ignore[operator]
                    rolled = causal_rollout(rec.checked(), opts.head_fusion, opts.discard_ratio)[0]  # (T, T)
                    scores["rollout"] = rolled[positions][:, 1:ids.shape[1]].cpu().numpy()
                results.append(PromptAttribution(
                    prompt=prompt, prompt_tokens=tuple(tokens or tokenizer.convert_ids_to_tokens(ids[0, 1:].tolist())),
                    generated_tokens=tuple(tokenizer.convert_ids_to_tokens(target.tolist())),
                    log_probs=log_probs, scores=scores))
        rolled_out = opts.rollout and bool(handle.attention) and decoder_only
        if opts.rollout and not rolled_out:
            notes.append(f"no causal rollout: {handle.name} is an encoder-decoder or names no attention modules")
        methods = tuple(opts.methods) + (("rollout",) if rolled_out else ())
        return GenerationAttributionResult(
            model=handle.name, methods=methods, prompts=tuple(results), baseline_token=opts.baseline,
            provenance=Provenance(model_sha256=handle.sha256, data_sha256=data.sha256 if data is not None else "",
                                  seed=seed, wall_seconds=round(time.perf_counter() - start, 4),
                                  device=str(handle.device)),
            notes=tuple(notes),
        )
