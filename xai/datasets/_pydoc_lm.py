"""A next-word corpus from Python's help topics, for the decoder-only ``gpt-mini``.

The tokens are the shipped pydoc snapshot's (:func:`xai.datasets._pydoc.topic_tokens`: lower
case identifiers, one stream per topic, *not* subsampled: a language model needs the word
order). The topics never mention a person, so a seeded stream of templated sentences about
people who write code (:data:`PEOPLE_TEMPLATES` x :data:`PEOPLE`, the person drawn
independently of the template, female and male equally often) is appended as one more
document: the causal-LM bias probe (:mod:`xai.fairness.causal_lm`) then has pronouns and
names in the vocabulary, and any gap between them is the model's, not the data's.

The word-level tokenizer (:class:`PydocTokenizer`, ``[PAD]`` 0, ``[CLS]`` 1 as the start of a
text, ``[MASK]`` 2, ``[UNK]`` 3) knows every word seen at least :data:`MIN_COUNT` times.
Every document's ids are cut into windows of :data:`CONTEXT` tokens: ``x`` is ``[CLS]``
and ``CONTEXT - 1`` words ``(N, CONTEXT)``, ``y`` the word after the window; the training
targets of a row are ``x[1:]`` then ``y`` (see :func:`next_token_targets`). A seeded 10% of
the windows is held out (``seed 0``, independent of any training seed).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch

from xai.datasets._base import Dataset, Split, register_dataset
from xai.datasets._pydoc import topic_tokens
from xai.datasets._text import WordTokenizer

__all__ = [
    "CONTEXT",
    "PEOPLE",
    "PEOPLE_TEMPLATES",
    "PydocLM",
    "PydocTokenizer",
    "load_pydoc_lm",
    "next_token_targets",
    "people_sentences",
    "pydoc_lm",
    "pydoc_tokenizer",
]

#: Tokens per window (``[CLS]`` and 31 words).
CONTEXT = 32
MIN_COUNT = 3
HELD_OUT = 0.1
DATA_SEED = 0
PEOPLE_SENTENCES = 1500

#: Templates of the people stream; ``{s}`` is the subject, ``{p}`` its possessive, ``{o}`` its object form.
PEOPLE_TEMPLATES = (
    "{s} calls the method",
    "{s} defines a new class",
    "{s} writes the function and {s} tests it",
    "{s} raises an exception if the value is not valid",
    "{s} returns a list of strings",
    "{s} imports the module",
    "{p} code uses a dictionary",
    "the function was written by {o}",
    "{s} reads the file and {s} closes it",
    "{p} program prints the result",
    "the error was found by {o}",
    "{s} changed {p} code",
)

#: ``(subject, possessive, object, gender)`` of every person in the stream (pronouns and first names).
PEOPLE: tuple[tuple[str, str, str, str], ...] = (
    ("she", "her", "her", "female"), ("he", "his", "him", "male"),
    ("amanda", "amanda's", "amanda", "female"), ("adam", "adam's", "adam", "male"),
    ("ellen", "ellen's", "ellen", "female"), ("frank", "frank's", "frank", "male"),
    ("latoya", "latoya's", "latoya", "female"), ("jamel", "jamel's", "jamel", "male"),
)

_WORD = re.compile(r"[a-z_][a-z0-9_']*|[0-9]+")


class PydocTokenizer(WordTokenizer):
    """:class:`~xai.datasets.WordTokenizer` whose words are pydoc identifiers (``__init__`` is one word).

    Examples
    --------
    >>> tok = PydocTokenizer(["the", "__init__", "method"])
    >>> tok.encode("The __init__ method").tolist()
    [[1, 6, 4, 5]]
    >>> tok.decode(torch.tensor([1, 4, 5, 6]))
    '__init__ method the'
    """

    @staticmethod
    def split(text: str) -> list[str]:
        """Lower-cased identifiers and numbers (other characters dropped)."""
        return _WORD.findall(text.lower())


def people_sentences(n: int = PEOPLE_SENTENCES, seed: int = DATA_SEED) -> list[str]:
    """``n`` seeded sentences of the people stream, the person drawn independently of the template."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s, p, o, _gender = PEOPLE[int(rng.integers(len(PEOPLE)))]
        out.append(PEOPLE_TEMPLATES[int(rng.integers(len(PEOPLE_TEMPLATES)))].format(s=s, p=p, o=o))
    return out


@dataclass(frozen=True, eq=False)
class PydocLM:
    """The documents as word lists (the topics, then the people stream) and the tokenizer."""

    documents: tuple[tuple[str, ...], ...]
    tokenizer: PydocTokenizer
    counts: dict[str, int]


@lru_cache(maxsize=1)
def pydoc_lm() -> PydocLM:
    """The corpus (see the module docstring); cached."""
    people = [w for sentence in people_sentences() for w in PydocTokenizer.split(sentence)]
    documents = [tuple(doc) for doc in topic_tokens()] + [tuple(people)]
    counts = Counter(w for doc in documents for w in doc)
    words = sorted(w for w, c in counts.items() if c >= MIN_COUNT)
    return PydocLM(documents=tuple(documents), tokenizer=PydocTokenizer(words, max_length=CONTEXT),
                   counts=dict(counts))


def pydoc_tokenizer() -> PydocTokenizer:
    """The tokenizer of ``gpt-mini`` (every word seen at least ``MIN_COUNT`` times)."""
    return pydoc_lm().tokenizer


def next_token_targets(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The word each position predicts ``(N, T)``: ``x[:, 1:]`` then ``y`` (padding 0 is no target)."""
    return torch.cat([x[:, 1:], y[:, None]], dim=1)


@lru_cache(maxsize=1)
def _rows() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    corpus = pydoc_lm()
    tok = corpus.tokenizer
    xs, ys, doc_ids = [], [], []
    step = CONTEXT - 1
    for d, doc in enumerate(corpus.documents):
        ids = [tok.index.get(w, tok.unk_id) for w in doc]
        for start in range(0, len(ids) - step, step):
            xs.append([tok.cls_id, *ids[start:start + step]])
            ys.append(ids[start + step])
            doc_ids.append(d)
    x = torch.tensor(xs, dtype=torch.long)
    y = torch.tensor(ys, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(DATA_SEED))
    held_out = torch.zeros(len(y), dtype=torch.bool)
    held_out[order[: int(round(HELD_OUT * len(y)))]] = True
    return x, y, held_out, np.array(doc_ids)


@register_dataset("pydoc-lm")
def load_pydoc_lm(split: Split = "test") -> Dataset:
    """Windows of the pydoc corpus and the people stream for next-word prediction (see the module docstring)."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"unknown split {split!r}")
    x, y, held_out, docs = _rows()
    mask = {"train": ~held_out, "test": held_out, "all": torch.ones_like(held_out)}[split]
    corpus = pydoc_lm()
    people = len(corpus.documents) - 1
    source = np.where(docs[mask.numpy()] == people, "people", "pydoc")
    return Dataset(
        name="pydoc-lm",
        split=split,
        modality="text",
        x=x[mask],
        y=y[mask],
        class_names=(),
        groups=pd.DataFrame({"source": source}),
        description=f"Python's pydoc topics and {PEOPLE_SENTENCES:,} templated sentences about people who code, "
                    f"as {CONTEXT}-token windows ([CLS] + {CONTEXT - 1} words, {len(corpus.tokenizer):,}-token "
                    "vocabulary); y = the next word",
    )
