"""SEAT (May et al. 2019): WEAT over sentence embeddings of semantically bleached templates.

Each word of a WEAT word set (Caliskan et al. 2017, ``weat.json``) is put into every
template of :data:`SEAT_TEMPLATES` ("This is <word>.", "<word> is here.", ...), which
carry no meaning of their own; the sentences are encoded by a sentence encoder and
every sentence is one element of its set. The WEAT statistic, effect size and one-sided
permutation p-value (:func:`xai.fairness.embedding.weat_score`, reused unchanged) are
then computed over the sentence embeddings. Paper: https://arxiv.org/abs/1903.10561.

May et al. vary the templates with the kind of word (names, nouns with an article,
adjectives); one article-free set is used here for every word, so each set has
``len(words) * len(templates)`` sentences. A word the encoder's tokenizer cannot spell
(its tokens include ``[UNK]``) is left out and listed in ``missing_words`` (a WordPiece
model such as MiniLM spells every word in these sets, but the field is kept).

Example
-------
>>> from xai.zoo import load_model
>>> result = seat(load_model("minilm"), tests=["career-family"], templates=["This is {}."], permutations=1000)
>>> round(result.metrics()["seat.career-family.effect_size"], 1)  # male names sit nearer the career words
1.1
>>> result.metrics()["seat.career-family.p_value"] < 0.01
True

Leaving out ``templates`` uses all of :data:`SEAT_TEMPLATES` (eight sentences per word).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from xai._provenance import Provenance, sha256_array
from xai.datasets import WordVectors
from xai.errors import DataError, NotApplicableError, UnknownNameError
from xai.fairness.embedding import DEFAULT_PERMUTATIONS, WeatResult, WeatScore, WeatTest, WordSet, weat, weat_tests

__all__ = ["SEAT_TEMPLATES", "SeatResult", "handle_encoder", "seat", "seat_sentences"]

#: Semantically bleached templates (after May et al. 2019), ``{}`` is the word.
SEAT_TEMPLATES = (
    "This is {}.",
    "That is {}.",
    "There is {}.",
    "Here is {}.",
    "{} is here.",
    "{} is there.",
    "It is {}.",
    "This will be {}.",
)

Encoder = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class SeatResult:
    """SEAT scores of one sentence encoder.

    ``weat`` is the WEAT result over the sentences (its ``used`` sets hold sentences);
    ``missing_words`` lists, per test and set (``X``, ``Y``, ``A``, ``B``), the words left
    out because the tokenizer cannot spell them.
    """

    model: str
    templates: tuple[str, ...]
    weat: WeatResult
    missing_words: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]]
    provenance: Provenance

    @property
    def scores(self) -> tuple[WeatScore, ...]:
        """One score per test."""
        return self.weat.scores

    def metrics(self) -> dict[str, float]:
        """``seat.<test>.effect_size``, ``.p_value``, ``.statistic`` and ``.n_missing_words`` per test."""
        out: dict[str, float] = {}
        for score in self.weat.scores:
            base = f"seat.{score.test}"
            out[f"{base}.effect_size"] = score.effect_size
            out[f"{base}.p_value"] = score.p_value
            out[f"{base}.statistic"] = score.statistic
            out[f"{base}.n_missing_words"] = float(sum(len(m) for m in self.missing_words.get(score.test, ())))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with the metric names)."""
        document = asdict(self)
        document["weat"] = self.weat.to_dict()
        document["metrics"] = self.metrics()
        return document


def seat_sentences(words: Sequence[str], templates: Sequence[str] = SEAT_TEMPLATES) -> tuple[str, ...]:
    """Every word in every template, word by word (a template that starts with the word capitalises it)."""
    out = []
    for word in words:
        for template in templates:
            text = template.format(word)
            out.append(text[0].upper() + text[1:] if template.startswith("{}") else text)
    return tuple(out)


def handle_encoder(handle: Any, batch_size: int = 64) -> tuple[Encoder, Callable[[str], bool]]:
    """The sentence encoder of a text-model handle and its "cannot spell this word" test.

    The model must embed sentences (task ``embedding``) and carry a ``tokenizer``.
    """
    module = handle.module
    tokenizer = getattr(module, "tokenizer", None)
    if handle.task != "embedding" or tokenizer is None:
        raise NotApplicableError(f"SEAT needs a sentence encoder with a tokenizer; {handle.name} is a "
                                 f"{handle.task} model on {handle.modality} inputs")

    def encode(sentences: list[str]) -> np.ndarray:
        outs = []
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                for i in range(0, len(sentences), batch_size):
                    ids = tokenizer.encode(sentences[i:i + batch_size]).to(handle.device)
                    outs.append(module(ids).float().cpu())
        finally:
            module.train(was_training)
        return torch.cat(outs).numpy()

    def unknown(word: str) -> bool:
        return "[UNK]" in tokenizer.tokens(tokenizer.encode([word])[0])

    return encode, unknown


def seat(encoder: Encoder | Any, tests: Sequence[str | WeatTest] | None = None, *,
         templates: Sequence[str] = SEAT_TEMPLATES, unknown: Callable[[str], bool] | None = None,
         permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0, name: str | None = None) -> SeatResult:
    """Run SEAT tests on a sentence encoder.

    Parameters
    ----------
    encoder
        A :class:`~xai.zoo.ModelHandle` of a sentence encoder, or any function from a list
        of sentences to an ``(N, D)`` array of embeddings.
    tests
        Shipped WEAT test names or :class:`WeatTest` objects; ``None`` runs every shipped test.
    templates
        Format strings with one ``{}`` for the word.
    unknown
        Words for which it returns True are left out (``missing_words``); a handle brings
        its own (tokens include ``[UNK]``), a plain function defaults to none.
    permutations, seed
        As for :func:`~xai.fairness.embedding.weat` (with many sentences per set the
        p-value is a seeded Monte Carlo estimate).
    """
    start = time.perf_counter()
    if not templates or not all(isinstance(t, str) and t.count("{}") == 1 for t in templates):
        raise DataError("each SEAT template needs exactly one {} for the word")
    model_sha = "function"
    if not callable(encoder):
        name = name or encoder.name
        model_sha = encoder.sha256
        encoder, handle_unknown = handle_encoder(encoder)
        unknown = unknown or handle_unknown
    name = name or "sentence encoder"
    shipped = weat_tests()
    chosen: list[WeatTest] = []
    for item in (list(shipped.values()) if tests is None else tests):
        if isinstance(item, WeatTest):
            chosen.append(item)
        elif item in shipped:
            chosen.append(shipped[item])
        else:
            raise UnknownNameError("WEAT test", item, shipped)
    missing_words: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {}
    sentence_tests: list[WeatTest] = []
    for test in chosen:
        kept: list[WordSet] = []
        lost: list[tuple[str, ...]] = []
        for word_set in test.sets:
            gone = tuple(w for w in word_set.words if unknown is not None and unknown(w))
            kept.append(WordSet(word_set.name, seat_sentences([w for w in word_set.words if w not in gone], templates)))
            lost.append(gone)
        missing_words[test.name] = (lost[0], lost[1], lost[2], lost[3])  # X, Y, A, B
        sentence_tests.append(replace(test, x=kept[0], y=kept[1], a=kept[2], b=kept[3]))
    sentences = list(dict.fromkeys(s for t in sentence_tests for ws in t.sets for s in ws.words))
    if not sentences:
        raise DataError("SEAT has no sentences to encode")
    vectors = np.asarray(encoder(sentences), dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(sentences):
        raise DataError(f"the encoder returned {vectors.shape} for {len(sentences)} sentences; expected (N, D)")
    wv = WordVectors(name=f"{name} (SEAT, {len(templates)} templates)", words=tuple(sentences), vectors=vectors,
                     sha256=model_sha, vocab_size=len(sentences))
    result = weat(wv, sentence_tests, permutations=permutations, seed=seed)
    provenance = Provenance(model_sha256=model_sha, data_sha256=sha256_array(np.array(sentences)), seed=seed,
                            wall_seconds=round(time.perf_counter() - start, 4), device="cpu")
    return SeatResult(model=name, templates=tuple(templates), weat=result,
                      missing_words=missing_words, provenance=provenance)
