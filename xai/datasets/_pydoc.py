"""A word2vec corpus from Python's own documentation (``pydoc_data.topics``, in every CPython).

The 79 help topics of the standard library (about 64k tokens) are tokenised (lower case,
identifiers ``[a-z_][a-z0-9_]*``, so ``__init__`` stays one token). The topics change
between Python releases, so the tokens ship as a snapshot of CPython 3.11.7's
(``data/pydoc-topics-tokens.txt.gz``, rebuilt by ``_build_pydoc.py``): every Python reads
the same rows, and the zoo's word2vec weights fit its vocabulary. Words seen fewer than
:data:`MIN_COUNT` times are dropped (the vocabulary is capped at :data:`MAX_VOCAB`), and
frequent words are subsampled as in word2vec (Mikolov et al. 2013; keep probability
``(sqrt(f / t) + 1) t / f`` for a word of frequency ``f``, ``t = 1e-3``), once, with a fixed
seed. Two datasets come from the token stream of each topic:

- ``pydoc-skipgram``: one row per (centre, context) pair within :data:`WINDOW` tokens;
  ``x`` is the centre id ``(N, 1)``, ``y`` the context id;
- ``pydoc-cbow``: one row per centre token; ``x`` holds the ids of the up to ``2 * WINDOW``
  surrounding tokens ``(N, 2 * WINDOW)`` (padded with id ``V``, the vocabulary size),
  ``y`` the centre id.

Each is split into train and held-out rows by a seeded permutation (10% held out,
``seed 0``, independent of any training seed). :func:`pydoc_analogies` builds a small
analogy set from the vocabulary (plurals, past tenses and builtin function -> dunder method,
e.g. ``len : __len__ :: repr : __repr__``).
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import permutations

import numpy as np
import pandas as pd
import torch

from xai.datasets._base import Dataset, Split, register_dataset

__all__ = [
    "PydocCorpus",
    "load_pydoc_cbow",
    "load_pydoc_skipgram",
    "pydoc_analogies",
    "pydoc_corpus",
]

MIN_COUNT = 5
MAX_VOCAB = 3000
SUBSAMPLE = 1e-3
WINDOW = 2
HELD_OUT = 0.1
DATA_SEED = 0
TOKEN_PATTERN = re.compile(r"[a-z_][a-z0-9_]*")
#: The tokens of CPython 3.11.7's help topics, one ``key<TAB>tokens`` line per topic (DATASETS.md).
TOPICS_FILE = "pydoc-topics-tokens.txt.gz"

#: Analogy relations: pairs are kept when both words are in the vocabulary.
_PLURALS = ("object", "value", "function", "method", "exception", "statement", "type", "name", "instance",
            "module", "string", "list", "expression", "attribute", "sequence", "argument", "key", "clause",
            "pattern", "tuple", "character", "assignment", "keyword", "line", "variable", "item", "operation",
            "parameter", "integer", "operator", "file", "frame", "container", "identifier", "literal",
            "comparison", "definition", "result", "target", "mapping", "class", "number", "block", "element")
_PAST = ("return", "call", "import", "implement", "pass", "raise", "define", "create", "evaluate", "compare",
         "execute", "remove", "delete", "invoke", "assign", "convert", "ignore", "store", "replace", "print",
         "include", "compile", "support", "search", "access", "insert", "handle", "produce", "require")
_DUNDER = ("len", "repr", "str", "hash", "iter", "bool", "format", "int", "index", "dir", "getattr", "setattr",
           "delattr", "call", "next", "float", "bytes", "abs", "complex", "contains", "init", "new", "del",
           "add", "sub", "mul", "getitem", "setitem", "delitem", "enter", "exit", "aiter", "anext")


@dataclass(frozen=True, eq=False)
class PydocCorpus:
    """The tokenised corpus: vocabulary by frequency, counts and the subsampled documents."""

    words: tuple[str, ...]
    counts: np.ndarray  # (V,) counts before subsampling
    documents: tuple[np.ndarray, ...]  # word ids per topic, after dropping rare words and subsampling
    tokens: int  # tokens before anything was dropped

    @property
    def index(self) -> dict[str, int]:
        """Word -> id."""
        return {w: i for i, w in enumerate(self.words)}


@lru_cache(maxsize=1)
def pydoc_corpus() -> PydocCorpus:
    """The corpus of the shipped ``pydoc_data.topics`` snapshot (see the module docstring); cached."""
    texts = topic_tokens()
    counter: dict[str, int] = {}
    for text in texts:
        for token in text:
            counter[token] = counter.get(token, 0) + 1
    ranked = sorted((w for w, n in counter.items() if n >= MIN_COUNT), key=lambda w: (-counter[w], w))
    words = tuple(ranked[:MAX_VOCAB])
    index = {w: i for i, w in enumerate(words)}
    counts = np.array([counter[w] for w in words], dtype=np.int64)
    freq = counts / counts.sum()
    keep = np.minimum(1.0, (np.sqrt(freq / SUBSAMPLE) + 1) * SUBSAMPLE / freq)  # (V,)
    rng = np.random.default_rng(DATA_SEED)
    documents = []
    for text in texts:
        ids = np.array([index[t] for t in text if t in index], dtype=np.int64)
        documents.append(ids[rng.random(len(ids)) < keep[ids]])
    return PydocCorpus(words=words, counts=counts, documents=tuple(documents),
                       tokens=sum(len(t) for t in texts))


def topic_tokens() -> list[list[str]]:
    """The shipped help topics' tokens, one list per topic in sorted key order."""
    raw = gzip.decompress(resources.files("xai.datasets.data").joinpath(TOPICS_FILE).read_bytes())
    return [line.split("\t", 1)[1].split() for line in raw.decode().splitlines()]


def _contexts(ids: np.ndarray, pad: int) -> np.ndarray:
    """``(n, 2 * WINDOW)`` ids around each position (``pad`` beyond the document's ends)."""
    padded = np.concatenate([np.full(WINDOW, pad), ids, np.full(WINDOW, pad)])
    offsets = [o for o in range(-WINDOW, WINDOW + 1) if o != 0]
    return np.stack([padded[WINDOW + o: WINDOW + o + len(ids)] for o in offsets], axis=1)


@lru_cache(maxsize=2)
def _rows(kind: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All rows ``(x, y)`` of a kind and the held-out mask (seeded permutation)."""
    corpus = pydoc_corpus()
    pad = len(corpus.words)
    xs, ys = [], []
    for ids in corpus.documents:
        if len(ids) < 2:
            continue
        context = _contexts(ids, pad)  # (n, 2W)
        if kind == "skipgram":
            centre = np.repeat(ids, context.shape[1])
            flat = context.reshape(-1)
            real = flat != pad
            xs.append(centre[real, None])
            ys.append(flat[real])
        else:
            real = (context != pad).any(axis=1)
            xs.append(context[real])
            ys.append(ids[real])
    x = torch.from_numpy(np.concatenate(xs))
    y = torch.from_numpy(np.concatenate(ys))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(DATA_SEED))
    held_out = torch.zeros(len(y), dtype=torch.bool)
    held_out[order[: int(round(HELD_OUT * len(y)))]] = True
    return x, y, held_out


def _dataset(kind: str, split: Split) -> Dataset:
    x, y, held_out = _rows(kind)
    mask = {"train": ~held_out, "test": held_out, "all": torch.ones_like(held_out)}[split]
    corpus = pydoc_corpus()
    what = ("(centre, context) pairs; x = centre id (N, 1), y = context id" if kind == "skipgram" else
            f"centre words; x = ids of the {2 * WINDOW} surrounding words (N, {2 * WINDOW}, padded with id "
            f"{len(corpus.words)}), y = centre id")
    return Dataset(
        name=f"pydoc-{kind}",
        split=split,
        modality="text",
        x=x[mask],
        y=y[mask],
        class_names=(),
        groups=pd.DataFrame(index=range(int(mask.sum()))),
        description=f"Python's pydoc topics ({corpus.tokens:,} tokens, {len(corpus.words):,}-word vocabulary), "
                    f"{what}",
    )


@register_dataset("pydoc-skipgram")
def load_pydoc_skipgram(split: Split = "test") -> Dataset:
    """Skip-gram (centre, context) pairs of the pydoc corpus (see the module docstring)."""
    return _dataset("skipgram", split)


@register_dataset("pydoc-cbow")
def load_pydoc_cbow(split: Split = "test") -> Dataset:
    """CBOW (context window, centre) rows of the pydoc corpus (see the module docstring)."""
    return _dataset("cbow", split)


@lru_cache(maxsize=1)
def pydoc_analogies() -> tuple[tuple[str, tuple[str, str, str, str]], ...]:
    """A small analogy set over the corpus vocabulary: ``((section, (a, b, c, d)), ...)``.

    Three relations, each pair kept when both words are in the vocabulary, every ordered
    pair of pairs ``(a, b), (c, d)`` asked once as ``a : b :: c : d``: ``plural``
    (``method : methods``), ``past-tense`` (``call : called``) and ``dunder`` (a builtin
    and its special method, ``len : __len__``). Small and specific to this corpus: a
    sanity check of the geometry, not a benchmark.
    """
    vocab = set(pydoc_corpus().words)
    relations = {
        "plural": [(w, w + ("es" if w.endswith(("s", "x")) else "s")) for w in _PLURALS],
        "past-tense": [(w, w + ("d" if w.endswith("e") else ("ed" if not w.endswith("p") else "ped")))
                       for w in _PAST],
        "dunder": [(w, f"__{w}__") for w in _DUNDER],
    }
    out = []
    for section, pairs in relations.items():
        kept = [p for p in pairs if p[0] in vocab and p[1] in vocab]
        out += [(section, (a, b, c, d)) for (a, b), (c, d) in permutations(kept, 2)]
    return tuple(out)
