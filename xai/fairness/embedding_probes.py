"""WEAT and direct bias as audit probes of word-embedding models (``[[probe]] name = "weat"``).

They apply to zoo entries of the ``embedding`` task whose module exposes ``word_vectors()``
(``skipgram``, ``cbow``, ``googlenews``), need no sensitive column, and give gateable
metrics under ``fairness.<probe>.``:

- ``weat``: ``<test>.weat_effect_size``, ``<test>.weat_abs_effect_size``,
  ``<test>.weat_p_value`` and ``<test>.weat_n_missing`` per WEAT test that ran (a gate on
  the short name ``weat_abs_effect_size`` checks the largest); ``<test>.weat_coverage``
  (share of the test's words in the vocabulary) per test asked for, run or refused, and
  ``weat_tests_run`` / ``weat_tests_refused`` (a gate ``weat_tests_refused <= 0`` fails when
  a vocabulary change makes a test unrunnable). Options: ``collection`` (``caliskan``: the
  ten tests of Caliskan et al.; ``pydoc``: tests chosen from the vocabulary of ``skipgram``
  and ``cbow``), ``tests`` (shipped test names; default all of the collection that the
  vocabulary allows), ``permutations`` (default 10,000), ``targets`` and ``attributes`` (two
  word-set files each: a custom test named ``X-Y``).
- ``direct-bias``: ``direct_bias``, ``explained_variance_first``, ``n_neutral``,
  ``n_missing_neutral``, ``n_pairs``. Options: ``c`` (default 1), ``pairs`` (a pairs file or
  a list of ``[first, second]``), ``neutral`` (a word file or a list).

A probe that cannot run on the model's vocabulary (too few words) reports why in its
notes and gives no metrics, so a gate on them fails as "unknown metric" instead of passing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from xai._method import Capabilities
from xai._provenance import Provenance
from xai._results import to_jsonable
from xai.datasets import Dataset, WordVectors
from xai.errors import DataError
from xai.fairness._base import GroupTable, Probe, ProbeOptions, register_probe
from xai.fairness.direct_bias import DirectBiasResult, direct_bias, read_word_pairs
from xai.fairness.embedding import MAX_PERMUTATIONS, WeatResult, WeatTest, read_word_set, weat
from xai.zoo.handle import ModelHandle

__all__ = ["DirectBiasProbe", "EmbeddingBiasResult", "WeatProbe"]


@dataclass(frozen=True)
class EmbeddingBiasResult:
    """An embedding probe's result, shaped like a fairness result without group tables.

    ``values`` holds the gateable numbers (``metrics()``); ``weat`` / ``direct`` the full
    result of the underlying test.
    """

    probe: str
    model: str
    dataset: str
    values: dict[str, float]
    provenance: Provenance
    notes: tuple[str, ...] = ()
    weat: WeatResult | None = None
    direct: DirectBiasResult | None = None
    tables: tuple[GroupTable, ...] = ()
    intersection: GroupTable | None = None
    positive_class: str | None = None
    rankings: dict[str, dict[str, float]] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """The gateable numbers (see the module docstring)."""
        return dict(self.values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what ``xai fairness MODEL --probe weat --json`` prints)."""
        return to_jsonable(self)


def _word_vectors(handle: ModelHandle) -> WordVectors:
    # nn.Module.__getattr__ types the method as Tensor | Module; why_not checked that it exists
    return handle.module.word_vectors()  # type: ignore[operator]


class _EmbeddingProbe(Probe):
    result_type: ClassVar[str] = "xai.fairness.embedding_probes:EmbeddingBiasResult"
    #: Static word embeddings; the word sets are the groups, so no sensitive column.
    capabilities: ClassVar[Capabilities] = Capabilities(
        tasks=frozenset({"embedding"}), needs_gradients=False, needs_sensitive=False)

    @classmethod
    def why_not(cls, handle: ModelHandle) -> str | None:
        """Also needs a module with ``word_vectors()``."""
        reason = super().why_not(handle)
        if reason is None and not callable(getattr(handle.module, "word_vectors", None)):
            return "its module has no word_vectors() (a static word embedding)"
        return reason

    def _result(self, data: Dataset, start: float, wv: WordVectors, values: dict[str, float],
                notes: list[str], seed: int, **parts: Any) -> EmbeddingBiasResult:
        return EmbeddingBiasResult(
            probe=self.name, model=self.handle.name, dataset=wv.name, values=values, notes=tuple(notes),
            provenance=Provenance(model_sha256=self.handle.sha256, data_sha256=wv.sha256, seed=seed,
                                  wall_seconds=round(time.perf_counter() - start, 4), device="cpu"),
            **parts,
        )


def _word_list(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return list(read_word_set(value).words)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise DataError(f"option {what}: a word-list file or a list of words, got {value!r}")


@register_probe("weat")
class WeatProbe(_EmbeddingProbe):
    """WEAT (Caliskan et al. 2017) on the model's word vectors; see :mod:`xai.fairness.embedding`."""

    paper = "https://arxiv.org/abs/1608.07187"

    class Options(ProbeOptions):
        """WEAT's options."""

        #: Shipped tests that ``tests = None`` runs: Caliskan et al.'s ten, or the sets chosen from pydoc's words.
        collection: Literal["caliskan", "pydoc"] = "caliskan"
        #: Shipped WEAT tests to run; ``None``: every one of the collection that the vocabulary allows.
        tests: list[str] | None = None
        #: Permutations of the test's p-value.
        permutations: int = Field(default=10_000, ge=1, le=MAX_PERMUTATIONS)
        #: Two target word-set files ``[X, Y]`` of a custom test named ``X-Y`` (with ``attributes``).
        targets: list[str] | None = Field(default=None, min_length=2, max_length=2)
        #: Two attribute word-set files ``[A, B]`` of the custom test (with ``targets``).
        attributes: list[str] | None = Field(default=None, min_length=2, max_length=2)

    def resolve(self, options: Any) -> dict[str, Any]:
        """Read the custom test's word-set files, if any, into the tests to run."""
        if (options.targets is None) != (options.attributes is None):
            raise DataError("a custom WEAT needs options targets = [X, Y] and attributes = [A, B] (word-set files)")
        self.chosen: list[str | WeatTest] | None = list(options.tests) if options.tests is not None else None
        if options.targets is not None and options.attributes is not None:
            sets = [read_word_set(Path(p)) for p in (*options.targets, *options.attributes)]
            custom = WeatTest(f"{sets[0].name}-{sets[1].name}", sets[0], sets[1], sets[2], sets[3])
            self.chosen = [*(self.chosen or []), custom]
        return options.model_dump(exclude={"sensitive"})

    def probe(self, data: Dataset, *, sensitive: list[str], seed: int = 0) -> EmbeddingBiasResult:
        """WEAT on the model's vectors (``data`` and ``sensitive`` are not used)."""
        start = time.perf_counter()
        wv = _word_vectors(self.handle)
        notes: list[str] = []
        try:
            result = weat(wv, self.chosen, permutations=self.options["permutations"], seed=seed,
                          collection=self.options["collection"])
        except DataError as exc:
            return self._result(data, start, wv, {}, [f"not run: {exc}"], seed)
        values: dict[str, float] = {}
        for score in result.scores:
            values[f"{score.test}.weat_effect_size"] = score.effect_size
            values[f"{score.test}.weat_abs_effect_size"] = abs(score.effect_size)
            values[f"{score.test}.weat_p_value"] = score.p_value
            values[f"{score.test}.weat_n_missing"] = float(score.n_missing)
            if score.n_missing:
                lost = "; ".join(f"{label}: {', '.join(m)}"
                                 for label, m in zip("XYAB", score.missing, strict=True) if m)
                notes.append(f"{score.test}: {score.n_missing} words missing from the vocabulary ({lost})")
        for cover in result.coverage:
            values[f"{cover.test}.weat_coverage"] = cover.share
        values["weat_tests_run"] = float(len(result.scores))
        values["weat_tests_refused"] = float(len(result.skipped))
        notes += [f"{name} not run: {reason}" for name, reason in result.skipped.items()]
        return self._result(data, start, wv, values, notes, seed, weat=result)


@register_probe("direct-bias")
class DirectBiasProbe(_EmbeddingProbe):
    """Direct bias along the gender direction (Bolukbasi et al. 2016); see :mod:`xai.fairness.direct_bias`."""

    paper = "https://arxiv.org/abs/1607.06520"

    class Options(ProbeOptions):
        """Direct bias' options."""

        #: Strictness of DirectBias_c (1: the mean |cos| of the neutral words with the direction).
        c: float = Field(default=1.0, gt=0)
        #: Definitional pairs: a pairs file or a list of ``[first, second]``; ``None``: Bolukbasi et al.'s.
        pairs: str | list[tuple[str, str]] | None = None
        #: Gender-neutral words: a word file or a list; ``None``: the shipped list.
        neutral: str | list[str] | None = None

        @field_validator("pairs", mode="before")
        @classmethod
        def _pairs(cls, pairs: Any) -> Any:
            if pairs is None or isinstance(pairs, str):
                return pairs
            if isinstance(pairs, list | tuple) and all(isinstance(p, list | tuple) and len(p) == 2 for p in pairs):
                return [(str(a), str(b)) for a, b in pairs]
            raise ValueError("a pairs file or a list of [first, second]")

    def resolve(self, options: Any) -> dict[str, Any]:
        """Read the ``pairs`` and ``neutral`` files, if given as files."""
        pairs = options.pairs
        self.pairs = read_word_pairs(pairs) if isinstance(pairs, str) else pairs
        self.neutral = _word_list(options.neutral, "neutral") if options.neutral is not None else None
        return options.model_dump(exclude={"sensitive"})

    def probe(self, data: Dataset, *, sensitive: list[str], seed: int = 0) -> EmbeddingBiasResult:
        """Direct bias of the model's vectors (``data`` and ``sensitive`` are not used)."""
        start = time.perf_counter()
        wv = _word_vectors(self.handle)
        try:
            result = direct_bias(wv, pairs=self.pairs, neutral=self.neutral, c=self.options["c"])
        except DataError as exc:
            return self._result(data, start, wv, {}, [f"not run: {exc}"], seed)
        notes = []
        if result.missing_pairs:
            notes.append("definitional pairs missing: " + ", ".join(f"{a}/{b}" for a, b in result.missing_pairs))
        if result.missing_neutral:
            notes.append(f"{len(result.missing_neutral)} neutral words missing: " + ", ".join(result.missing_neutral))
        return self._result(data, start, wv, result.metrics(), notes, seed, direct=result)
