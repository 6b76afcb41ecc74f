"""Per-token attention relevance of text models: real sentences in, a token heat map's numbers out.

:func:`token_relevance` tokenises sentences with the model's own tokenizer (the zoo's
text-model convention: ``module.tokenizer.encode`` / ``.tokens``), runs
:class:`~xai.explain.rollout.AttentionRollout` (``rollout``, ``flow`` or ``grad``) and
returns each sentence's real tokens (padding dropped) with their relevance.

Example
-------
>>> from xai.zoo import load_model
>>> result = token_relevance(load_model("minilm"), ["The nurse said she would help."])
>>> result.tokens[0]
('[CLS]', 'the', 'nurse', 'said', 'she', 'would', 'help', '.', '[SEP]')
>>> round(sum(result.relevance[0]), 4)  # a rollout row is a distribution over the tokens
1.0
>>> round(result.relevance[0][0], 2)  # [CLS] gets the largest share
0.66
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Protocol, cast

import torch
from pydantic import Field

from xai._method import Capabilities, Kind, Method
from xai._provenance import Provenance, sha256_array
from xai.datasets import Dataset
from xai.errors import DataError
from xai.explain._index import TOKEN_METHODS
from xai.explain.rollout import AttentionRollout
from xai.zoo.handle import ModelHandle, eval_mode

__all__ = ["TokenRelevance", "TokenRelevanceMethod", "token_relevance"]


class TextTokenizer(Protocol):
    """The zoo's text-model tokenizer convention (``module.tokenizer``; checked by ``why_not``)."""

    def encode(self, texts: list[str]) -> torch.Tensor: ...

    def tokens(self, ids: torch.Tensor) -> list[str]: ...


@dataclass(frozen=True)
class TokenRelevance:
    """Relevance of every real token of each sentence (JSON-ready through :meth:`to_dict`).

    Attributes
    ----------
    texts
        The sentences (decoded from the ids when only ids were given).
    tokens, relevance
        Per sentence, its tokens (``[CLS]`` and ``[SEP]`` included, padding excluded) and
        one relevance per token.
    explained
        Per sentence, what the relevance explains: the pooled row read (``rollout`` and
        ``flow``) or the scalar whose gradient weighs the attention (``grad``).
    """

    model: str
    method: str
    options: dict[str, Any]
    texts: tuple[str, ...]
    tokens: tuple[tuple[str, ...], ...]
    relevance: tuple[tuple[float, ...], ...]
    explained: tuple[str, ...]
    provenance: Provenance

    def top(self, i: int, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most relevant tokens of sentence ``i`` (ties in sentence order)."""
        pairs = list(zip(self.tokens[i], self.relevance[i], strict=True))
        return sorted(pairs, key=lambda p: -p[1])[:k]

    def metrics(self) -> dict[str, float]:
        """No named scalar yet: relevance is per token of free text, nothing a gate can address by name."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        document = asdict(self)
        document["samples"] = [
            {"text": t, "explained": e,
             "tokens": [{"token": tok, "relevance": r} for tok, r in zip(ts, rs, strict=True)]}
            for t, e, ts, rs in zip(self.texts, self.explained, self.tokens, self.relevance, strict=True)
        ]
        return document


def token_relevance(handle: ModelHandle, texts: list[str] | None = None, *, ids: torch.Tensor | None = None,
                    target: str | int = "predicted", **options: Any) -> TokenRelevance:
    """Attention relevance of each token of ``texts`` (or of ready token ``ids`` ``(B, T)``).

    Parameters
    ----------
    handle
        A text model (``modality == "text"``) with attention modules and a ``tokenizer``.
    texts, ids
        The sentences, or their token ids (pad id 0); give one of them.
    target
        ``grad`` mode only: ``predicted`` (the handle's default target) or an index of
        ``handle.target_names`` (for a sentence encoder, an embedding component). The
        option ``compare="a sentence"`` replaces it by the cosine similarity to that
        sentence's embedding.
    options
        :class:`~xai.explain.rollout.AttentionRollout` options (``mode``, ``head_fusion``,
        ``discard_ratio``, ``pool``, ``compare``).
    """
    TokenRelevanceMethod.check_applies(handle)
    tokenizer = cast(TextTokenizer, handle.module.tokenizer)  # check_applies: the module carries one
    if (texts is None) == (ids is None):
        raise DataError("give sentences or token ids, not both or neither")
    start = time.perf_counter()
    if texts is not None:
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise DataError("every sentence to explain must be a non-empty string")
        ids = tokenizer.encode(list(texts))
    assert ids is not None
    explainer = AttentionRollout(handle, **options)  # what create_explainer("attention-rollout") builds, typed
    device = handle.device
    x = ids.to(device)
    mode = explainer.options["mode"]
    chosen: torch.Tensor | None = None
    if mode == "grad" and "compare" not in explainer.options:
        if target == "predicted":
            chosen = handle.predict_targets(ids).to(device)
        elif isinstance(target, int) and not isinstance(target, bool) and 0 <= target < len(handle.target_names):
            chosen = torch.full((len(ids),), target, dtype=torch.long, device=device)
        else:
            raise DataError(f"target must be 'predicted' or an index 0..{len(handle.target_names) - 1}, got {target!r}")
    scores = explainer.relevance(x, chosen).detach().double().cpu()  # (B, T), padding 0
    real = ids != 0
    tokens = tuple(tuple(tokenizer.tokens(row[keep])) for row, keep in zip(ids, real, strict=True))
    relevance = tuple(tuple(float(v) for v in row[keep]) for row, keep in zip(scores, real, strict=True))
    if texts is None:
        texts = [" ".join(t for t in toks if t not in ("[CLS]", "[SEP]")).replace(" ##", "") for toks in tokens]
    pool = explainer.options["pool"]
    if mode != "grad":
        explained = tuple(f"{'mean of the token rows' if pool == 'mean' else 'CLS row'} of attention {mode}"
                          for _ in tokens)
    elif "compare" in explainer.options:
        explained = tuple(f"cosine similarity to {explainer.options['compare']!r}" for _ in tokens)
    else:
        assert chosen is not None
        explained = tuple(f"{handle.target_names[int(t)]} of the output" for t in chosen.cpu())
    provenance = Provenance(model_sha256=handle.sha256, data_sha256=sha256_array(ids), seed=0,
                            wall_seconds=round(time.perf_counter() - start, 4), device=str(device))
    return TokenRelevance(model=handle.name, method="attention-rollout", options=dict(explainer.options),
                          texts=tuple(texts), tokens=tokens, relevance=relevance, explained=explained,
                          provenance=provenance)


@TOKEN_METHODS.register("token-relevance")
class TokenRelevanceMethod(Method):
    """Per-token attention relevance of a text model's sentences (attention rollout, flow or grad)."""

    name: ClassVar[str] = "token-relevance"
    kind: ClassVar[Kind] = "tokens"
    result_type: ClassVar[str] = "xai.explain.tokens:TokenRelevance"
    paper: ClassVar[str] = AttentionRollout.paper
    capabilities: ClassVar[Capabilities] = Capabilities(
        tasks=AttentionRollout.capabilities.tasks, modalities=frozenset({"text"}), needs_attention=True)

    class Options(AttentionRollout.Options):
        """Attention rollout's options plus what to explain: ``texts``, or ``samples`` rows of the data."""

        texts: tuple[str, ...] | None = None
        samples: int = Field(default=8, gt=0)

    @classmethod
    def why_not(cls, handle: ModelHandle) -> str | None:
        """A text model first (the clearest reason), then the capabilities, then a tokenizer on the module."""
        if handle.modality != "text":
            return f"it needs a text model; {handle.name} takes {handle.modality} inputs"
        reason = super().why_not(handle)
        if reason is None and getattr(handle.module, "tokenizer", None) is None:
            reason = f"it needs a tokenizer (module.tokenizer); {handle.name} carries none"
        return reason

    @classmethod
    def run(cls, handle: ModelHandle, data: Dataset | None, options: Any, seed: int = 0) -> TokenRelevance:
        """:func:`token_relevance` of ``options.texts``, or of the first ``options.samples`` rows of ``data``."""
        opts = cls.parse_options(options)
        assert isinstance(opts, TokenRelevanceMethod.Options)
        rollout = opts.model_dump(exclude={"texts", "samples", "target"}, exclude_none=True)
        with eval_mode(handle.module):
            if opts.texts is not None:
                return token_relevance(handle, list(opts.texts), target=opts.target, **rollout)
            if data is None:
                raise DataError(f"{cls.name}: give texts or data to take token ids from")
            return token_relevance(handle, ids=data.x[:opts.samples], target=opts.target, **rollout)
