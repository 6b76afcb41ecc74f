"""Slice discovery over a predictions file in streamed passes: memory independent of rows.

Pass 1 reads the label, prediction and slice columns batch by batch. The labels go through
the counter of ``xai fairness --data`` (:mod:`xai.fairness.stream`), so they are typed and
checked as there; each slice column keeps its distinct values with their counts. From those
counts every column gets the codes :func:`~xai.fairness.slices.encode_columns` gives the
whole column in memory: quantile bins from the value counts (:class:`~xai.fairness.slices.Distribution`
reproduces numpy's quantiles exactly), categories sorted as ``pandas.factorize(sort=True)``
sorts them, rare ones pooled by count. Pass 2 adds each batch's joint counts into every
block's table of the in-memory search's plan (one pass per group of blocks whose tables fit
in :data:`MAX_TABLE_CELLS`), and :func:`~xai.fairness.slices.findings_from_tables`, shared
with the in-memory search, tests and ranks the slices block by block. The same file
therefore gives the same findings streamed or in memory.

A numeric column with more than :data:`MAX_DISTINCT` distinct values (a continuous score, an
amount) is not counted value by value: the few order statistics its bins need are selected
exactly in a few more passes over that column (:class:`_Ranker`), in memory bounded by the
number of ranks, not by rows. A text column with that many values is refused (an ID cannot
make a large slice).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xai.errors import DataError
from xai.fairness import slices as _slices
from xai.fairness import stream as _stream
from xai.fairness.stream import PredictionTask

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["MAX_DISTINCT", "MAX_TABLE_CELLS", "scan_slices"]

#: Distinct values of one slice column kept with their counts (a few MB each); beyond, a numeric
#: column's quantiles are selected by :class:`_Ranker`.
MAX_DISTINCT = 1 << 16
#: Rows per batch: a quarter of the fairness scan's, as every batch is coded into ~20 columns and ~30 blocks
BATCH_ROWS = 1 << 18
#: Values a rank's bracket may hold to be kept and read; a fuller bracket narrows by a histogram.
RANK_VALUES = 1 << 16
_RANK_BINS = 4096
#: Cells of the block tables one pass over the file fills (int64: 64 MiB); more blocks take more passes.
MAX_TABLE_CELLS = 1 << 23


class _SliceColumn:
    """One slice column in pass 1: its distinct values (coded across batches) and rows per value."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.levels = _stream._Levels(name, MAX_DISTINCT)
        self.counts = _stream._Accumulator()
        self.missing = 0
        # a column with too many values to count: a sample pass, then passes that select its quantiles
        self.sample: _Sample | None = None
        self.ranker: _Ranker | None = None
        self.low_count = 0  # rows holding its minimum

    def feed(self, array: pa.Array, text: bool) -> None:
        present, missing = _split_missing(array, text)
        if self.ranker is not None:  # a selection pass: the counts are known
            self.ranker.feed(_floats(self.name, present, text))
            return
        self.missing += int(missing.sum()) if missing is not None else 0
        if self.sample is not None:
            self.sample.add(_floats(self.name, present, text))
            return
        if not text and _numeric_type(present.type) and (
                len(self.levels) + _distinct(present) > MAX_DISTINCT):  # before hashing a batch of new values
            self._overflow()
        try:
            codes = self.levels.encode(present)
        except _stream._TooMany:
            try:
                _floats(self.name, present, text)
            except DataError:
                raise DataError(f"slice column {self.name!r} has more than {MAX_DISTINCT:,} distinct values and "
                                "they are not numbers (an ID cannot make a large slice): leave it out") from None
            self._overflow()
        self.counts.add(np.bincount(codes, minlength=len(self.levels)))

    def _overflow(self) -> None:
        # a numeric column with too many values: its bins come from selected order statistics (exact
        # too), so counting stops here and the values counted so far are let go
        self.levels, self.counts = _stream._Levels(self.name, MAX_DISTINCT), _stream._Accumulator()
        raise _Overflow(self)


def _numeric_type(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return bool(pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type))


def _distinct(array: pa.Array) -> int:
    import pyarrow.compute as pc

    return int(pc.count_distinct(array).as_py())


class _Overflow(Exception):
    def __init__(self, column: _SliceColumn) -> None:
        super().__init__(column.name)
        self.column = column


@dataclass
class _Sample:
    """A seeded uniform sample of a column's present values, with their count, minimum and maximum.

    The sample is the values of the ``size`` smallest of one random key per row; the count, the
    extremes and the rows at the minimum are exact.
    """

    size: int
    rng: np.random.Generator
    keys: np.ndarray
    values: np.ndarray
    count: int = 0
    low: float = math.inf
    high: float = -math.inf
    low_count: int = 0

    @classmethod
    def start(cls, size: int, seed: int) -> _Sample:
        return cls(size, np.random.default_rng(seed), np.zeros(0), np.zeros(0))

    def add(self, values: np.ndarray) -> None:
        if not values.size:
            return
        self.count += values.size
        low = float(values.min())
        if low < self.low:
            self.low, self.low_count = low, 0
        if low == self.low:
            self.low_count += int(np.count_nonzero(values == low))
        self.high = max(self.high, float(values.max()))
        keys = np.concatenate([self.keys, self.rng.random(values.size)])
        values = np.concatenate([self.values, values])
        if keys.size > self.size:
            keep = np.argpartition(keys, self.size - 1)[: self.size]
            keys, values = keys[keep], values[keep]
        self.keys, self.values = keys, values


class _Ranker:
    """Exact order statistics of a column too large to count value by value, in a few streamed passes.

    Each wanted rank starts with a bracket of values around it, read from the sample. Every
    pass counts, per rank, the values below its bracket and a histogram of those inside it,
    keeping them while there are at most :data:`RANK_VALUES`. After the pass a rank whose
    bracket holds it (checked by the counts, so a sampling fluke only costs a pass) is read
    from the kept values; a fuller bracket narrows to the smallest and largest value of the
    histogram bin holding the rank (a bin of one repeated value gives the rank at once).
    Memory is ranks x :data:`RANK_VALUES` values, whatever the rows.
    """

    def __init__(self, sample: _Sample, ranks: set[int]) -> None:
        self.size, self.low, self.high = sample.count, sample.low, sample.high
        self.found: dict[int, float] = {0: self.low, self.size - 1: self.high}
        drawn = np.sort(sample.values)
        k = drawn.size
        self.brackets: dict[int, tuple[float, float]] = {}
        for rank in sorted(ranks - set(self.found)):
            p = rank / (self.size - 1)
            centre, half = p * (k - 1), 6.0 * math.sqrt(k * p * (1 - p)) + 3.0
            first, last = math.floor(centre - half), math.ceil(centre + half)
            self.brackets[rank] = (float(drawn[first]) if first > 0 else self.low,
                                   float(drawn[last]) if last < k - 1 else self.high)
        self._start()

    def _start(self) -> None:
        self.below = dict.fromkeys(self.brackets, 0)
        self.inside = dict.fromkeys(self.brackets, 0)
        self.hist = {r: np.zeros(_RANK_BINS, np.int64) for r in self.brackets}
        # each bin's smallest and largest value: the next bracket, and a tie (smallest == largest) read at once
        self.bin_low = {r: np.full(_RANK_BINS, math.inf) for r in self.brackets}
        self.bin_high = {r: np.full(_RANK_BINS, -math.inf) for r in self.brackets}
        self.kept: dict[int, list[np.ndarray]] = {r: [] for r in self.brackets}

    @property
    def done(self) -> bool:
        return not self.brackets

    def feed(self, values: np.ndarray) -> None:
        for rank, (low, high) in self.brackets.items():
            self.below[rank] += int(np.count_nonzero(values < low))
            inside = values[(values >= low) & (values <= high)]
            self.inside[rank] += inside.size
            if low < high:
                edges = np.linspace(low, high, _RANK_BINS + 1)
                bins = np.clip(np.searchsorted(edges, inside, side="right") - 1, 0, _RANK_BINS - 1)
                self.hist[rank] += np.bincount(bins, minlength=_RANK_BINS)
                np.minimum.at(self.bin_low[rank], bins, inside)
                np.maximum.at(self.bin_high[rank], bins, inside)
            if self.inside[rank] <= RANK_VALUES:
                self.kept[rank].append(inside)

    def finish_pass(self) -> None:
        for rank in list(self.brackets):
            low, high = self.brackets[rank]
            below, inside = self.below[rank], self.inside[rank]
            if not below <= rank < below + inside:  # the sample's bracket missed the rank: the whole range
                self.brackets[rank] = (self.low, self.high)
            elif low == high:
                self.found[rank] = low
                del self.brackets[rank]
            elif inside <= RANK_VALUES:
                self.found[rank] = float(np.sort(np.concatenate(self.kept[rank]))[rank - below])
                del self.brackets[rank]
            else:
                j = int(np.searchsorted(below + np.cumsum(self.hist[rank]), rank, side="right"))
                first, last = float(self.bin_low[rank][j]), float(self.bin_high[rank][j])
                if first == last:  # every value of the rank's bin is the same
                    self.found[rank] = first
                    del self.brackets[rank]
                else:
                    self.brackets[rank] = (first, last)
        self._start()


@dataclass(frozen=True)
class _Encoder:
    """How pass 2 codes one column: a lookup from its pass-1 value codes, or bin edges of selected quantiles."""

    coded: _slices.CodedColumn
    column: _SliceColumn
    lut: np.ndarray | None
    edges: np.ndarray | None
    missing_code: int

    def encode(self, array: pa.Array, text: bool) -> np.ndarray:
        present, missing = _split_missing(array, text)
        if self.edges is not None:
            codes = np.searchsorted(self.edges, _floats(self.coded.name, present, text), side="right")
        else:
            assert self.lut is not None
            codes = self.lut[self.column.levels.encode(present)]
        if missing is None:
            return codes
        out = np.full(missing.size, self.missing_code, dtype=np.int64)
        out[~missing] = codes
        return out


def _split_missing(array: pa.Array, text: bool) -> tuple[pa.Array, np.ndarray | None]:
    """The present values and the missing mask (nulls, and NaN as pandas counts it), None when none is missing."""
    import pyarrow as pa

    mask = array.is_null().to_numpy(zero_copy_only=False) if array.null_count else None
    if not text and _stream._is_float(array.type):
        values = array.dictionary_decode() if isinstance(array, pa.DictionaryArray) else array
        nan = np.isnan(values.fill_null(0.0).to_numpy(zero_copy_only=False))
        if nan.any():
            mask = nan if mask is None else mask | nan
    if mask is None or not mask.any():
        return array, None
    return array.filter(pa.array(~mask)), mask


def _floats(name: str, array: pa.Array, text: bool) -> np.ndarray:
    values = _stream._numeric(array, name, text=text, what="slice column {name!r} must be numeric, got {dtype}")
    if np.isinf(values).any():
        raise DataError(f"slice column {name!r} has infinite values")
    return values


def _encoder(column: _SliceColumn, text: bool, n_bins: int, max_levels: int) -> _Encoder:
    """The codes :func:`~xai.fairness.slices.encode_columns` would give the whole column."""
    import pandas as pd

    name, missing = column.name, column.missing
    if column.ranker is not None:
        ranker = column.ranker
        if ranker.size == 0:
            levels = [_slices._MISSING]
            edges = np.zeros(0)
        else:
            present = _slices.Distribution.from_ranks(ranker.size, ranker.found, column.low_count)
            edges = _slices.quantile_edges(present, n_bins)
            levels = _slices.bin_levels(edges)
            if missing:
                levels.append(_slices._MISSING)
        coded = _slices.CodedColumn(name, np.zeros(0, np.uint8), tuple(levels), "quantile")
        return _Encoder(coded, column, None, edges, len(levels) - 1 if missing else -1)
    typed = _stream._typed(column.levels, text)
    counts = column.counts.result((len(column.levels),))
    values: list[Any] = typed.values
    if typed.kind == "int" and missing:
        values = [float(v) for v in values]  # pandas holds an integer column with missing values as float
    if typed.kind in ("int", "float"):
        numbers = np.array(values, dtype=np.float64)
        if np.isinf(numbers).any():
            raise DataError(f"slice column {name!r} has infinite values")
        distinct, inverse = np.unique(numbers, return_inverse=True)
        if distinct.size > n_bins:
            per_value = np.bincount(inverse, weights=counts, minlength=distinct.size).astype(np.int64)
            edges = _slices.quantile_edges(_slices.Distribution.from_counts(distinct, per_value), n_bins)
            levels = _slices.bin_levels(edges)
            lut = np.searchsorted(edges, numbers, side="right").astype(np.int64)
            if missing:
                levels.append(_slices._MISSING)
            coded = _slices.CodedColumn(name, np.zeros(0, np.uint8), tuple(levels), "quantile")
            return _Encoder(coded, column, lut, None, len(levels) - 1 if missing else -1)
    # categories, sorted as pandas.factorize(sort=True) sorts the column's values; missing last
    order, uniques = pd.factorize(pd.Series(values, dtype=object if typed.kind == "text" else None), sort=True)
    labels = [str(u) for u in uniques]
    lut = order.astype(np.int64)
    per_label = np.bincount(lut, weights=counts, minlength=len(labels)).astype(np.int64) if len(lut) else (
        np.zeros(0, np.int64))
    missing_code = -1
    if missing:
        missing_code = len(labels)
        labels.append(_slices._MISSING)
        per_label = np.append(per_label, missing)
    if len(labels) > max_levels:  # the rarest levels pooled, as in memory
        keep = np.sort(np.argsort(-per_label, kind="stable")[: max_levels - 1])
        remap = np.full(len(labels), max_levels - 1)
        remap[keep] = np.arange(len(keep))
        lut = remap[lut]
        missing_code = int(remap[missing_code]) if missing else -1
        labels = [labels[i] for i in keep] + [_slices._OTHER]
    coded = _slices.CodedColumn(name, np.zeros(0, np.uint8), tuple(labels), "category")
    return _Encoder(coded, column, lut, None, missing_code)


def _block_groups(shapes: Sequence[Sequence[int]]) -> list[list[int]]:
    """Consecutive blocks whose tables together stay within :data:`MAX_TABLE_CELLS`: one pass over the file each."""
    groups: list[list[int]] = []
    cells = 0
    for i, shape in enumerate(shapes):
        size = math.prod(shape)
        if not groups or cells + size > MAX_TABLE_CELLS:
            groups.append([])
            cells = 0
        groups[-1].append(i)
        cells += size
    return groups


def scan_slices(path: str | Path, *, y_true: str, columns: Sequence[str], y_pred: str | None = None,
                score: str | None = None, threshold: float = 0.5, pos_label: str | None = None,
                task: PredictionTask = "binary", options: Any = None, seed: int = 0,
                batch_rows: int = BATCH_ROWS, block_cells: int | None = None,
                progress: bool = True) -> _slices.SliceResult:
    """Slice discovery on a predictions file read in batches (``xai fairness --data F --slices``).

    ``columns`` are the columns to slice by (sensitive ones and any others); ``options`` are
    :class:`~xai.fairness.slices.SliceDiscovery`'s. The file types, label arguments and their
    one-line errors are :func:`~xai.fairness.stream.scan_predictions`'s.
    """
    start = time.perf_counter()
    parsed = _slices.SliceDiscovery.parse_options(options).model_dump(exclude={"sensitive", "columns"})
    _slices.check_slice_options(metrics=parsed["metrics"], task=task, max_order=parsed["max_order"],
                                alpha=parsed["alpha"], min_gap=parsed["min_gap"], min_size=parsed["min_size"],
                                n_bins=parsed["n_bins"], max_levels=parsed["max_levels"])
    if not columns:
        raise DataError("name at least one column to slice by")
    _stream._check_arguments(y_pred=y_pred, score=score, sensitive=columns, threshold=threshold, pos_label=pos_label,
                             task=task)
    path = Path(path)
    names = list(dict.fromkeys(columns))
    label_col = y_pred if y_pred is not None else score
    assert label_col is not None
    source = _stream._open(path, list(dict.fromkeys([y_true, label_col, *names])), names, batch_rows)
    spec = _stream._make_spec(path, y_true=y_true, sensitive=(), y_pred=y_pred, score=score, threshold=threshold,
                              pos_label=pos_label, task=task, max_groups=None, text=source.text)

    # pass 1: labels through the fairness counter, each slice column's values and counts
    counter = _stream._Counter(spec)
    slice_columns = [_SliceColumn(name, seed) for name in names]
    overflowed: list[_SliceColumn] = []
    for batch in _batches(source, "slice values (pass 1)", progress):
        counter.feed(batch)
        for column in slice_columns:
            if column in overflowed:
                continue
            try:
                column.feed(batch.column(column.name), source.text)
            except _Overflow:
                overflowed.append(column)
    if overflowed:
        _select_quantiles(overflowed, _stream._open(path, [c.name for c in overflowed], [], batch_rows),
                          parsed["n_bins"], seed, progress)
    digest: list[str] = []
    _stream._hash_input(path, digest)
    table = counter.finish(source.name, digest[0] if digest else "", path)  # the label checks of the fairness scan
    cell_of = _cell_lookup(counter, spec)

    encoders_all = [_encoder(c, source.text, parsed["n_bins"], parsed["max_levels"]) for c in slice_columns]
    coded, constant = _slices.split_constant([e.coded for e in encoders_all])
    encoders = [e for e in encoders_all if len(e.coded.levels) > 1]
    task_cells = len(_slices._CELLS[task])
    # the in-memory search's plan (so the same combinations in the same order: the same findings)
    plan = _slices._plan([len(c.levels) for c in coded], parsed["max_order"], task_cells,
                         block_cells or _slices.block_budget(table.rows))
    shapes = [[len(coded[i].levels) for i in block] + [task_cells] for block in plan.blocks]
    total = np.asarray(table.cells, dtype=np.int64).reshape(task_cells)  # rows per outcome cell, from pass 1

    def tables() -> Iterator[np.ndarray]:
        """Every block's joint counts, in plan order: one pass per group of blocks that fits in memory."""
        groups = _block_groups(shapes)
        for number, group in enumerate(groups, start=1):
            accs = {i: np.zeros(math.prod(shapes[i]), dtype=np.int64) for i in group}
            used = sorted({c for i in group for c in plan.blocks[i]})
            for batch in _batches(source, f"slice counts ({number} of {len(groups)})", progress):
                cell = cell_of(batch)
                codes = {c: encoders[c].encode(batch.column(encoders[c].coded.name), source.text) for c in used}
                for i, acc in accs.items():
                    block = plan.blocks[i]
                    flat = codes[block[0]].astype(np.int64, copy=True)
                    for c in block[1:]:
                        flat *= len(coded[c].levels)
                        flat += codes[c]
                    flat *= task_cells
                    flat += cell
                    acc += np.bincount(flat, minlength=acc.size)
            for i in group:
                yield accs.pop(i).reshape(shapes[i])

    return _slices.findings_from_tables(
        coded, constant, plan, tables(), total, start=start,
        task=task, model=f"predictions ({table.source})", dataset=source.name, model_sha256="",
        data_sha256=digest[0] if digest else "", seed=seed, positive_class=table.positive_label or None,
        notes=(), **{k: parsed[k] for k in ("metrics", "alpha", "min_gap", "min_size", "max_order", "n_bins",
                                                  "max_findings", "prune")})


def _select_quantiles(columns: Sequence[_SliceColumn], source: Any, n_bins: int, seed: int, progress: bool) -> None:
    """The order statistics the bins of each column need: a sample pass, then :class:`_Ranker` passes."""
    for column in columns:
        column.sample, column.missing = _Sample.start(MAX_DISTINCT, seed), 0
    for batch in _batches(source, "a sample of the continuous columns", progress):
        for column in columns:
            column.feed(batch.column(column.name), source.text)
    for column in columns:
        sample = column.sample
        assert sample is not None
        column.sample, column.low_count = None, sample.low_count
        if sample.count:
            column.ranker = _Ranker(sample, _slices.needed_ranks(sample.count, sample.low_count, n_bins))
    busy = [c for c in columns if c.ranker is not None and not c.ranker.done]
    while busy:
        for batch in _batches(source, "quantiles of the continuous columns", progress):
            for column in busy:
                column.feed(batch.column(column.name), source.text)
        for column in busy:
            assert column.ranker is not None
            column.ranker.finish_pass()
        busy = [c for c in busy if c.ranker is not None and not c.ranker.done]


def _batches(source: Any, what: str, progress: bool) -> Iterator[pa.RecordBatch]:
    bar = _stream._progress(source.total_rows, f"{what} of {source.name}") if progress else None
    rows, begun = 0, time.perf_counter()
    try:
        for batch in source.batches():
            yield batch
            rows += batch.num_rows
            if bar is not None:
                rate = rows / max(time.perf_counter() - begun, 1e-9)
                bar.update(bar.task_ids[0], completed=rows, rate=f"{rate:,.0f}")
    finally:
        if bar is not None:
            bar.stop()


def _cell_lookup(counter: Any, spec: Any) -> Any:
    """``batch -> (N,) outcome cells`` (tn fp fn tp, or wrong right) from the counter's resolved labels."""
    truth, pred = counter.truth, counter.pred
    psize = 2 if pred is None else len(pred)
    raw = counter.counts.result((len(truth), psize))
    if spec.task == "binary":
        t_map, _ = _stream._binary_map(truth, spec.pos_label, spec.text, raw.sum(axis=1))
        p_map = None if pred is None else _stream._binary_map(pred, spec.pos_label, spec.text, raw.sum(axis=0))[0]

        def binary(batch: pa.RecordBatch) -> np.ndarray:
            t = t_map[truth.encode(batch.column(spec.y_true))]
            if p_map is None:
                p = (_stream._numeric(batch.column(spec.score), spec.score, text=spec.text,
                                    what="--score column {name!r} must be numeric, got {dtype}")
                     >= spec.threshold).astype(np.int64)
            else:
                p = p_map[pred.encode(batch.column(spec.label_col))]
            return t * 2 + p

        return binary
    t_text = np.array(_stream._typed(truth, spec.text).texts, dtype=object)
    p_text = np.array(_stream._typed(pred, spec.text).texts, dtype=object)
    right = (t_text[:, None] == p_text[None, :]).astype(np.int64)

    def multiclass(batch: pa.RecordBatch) -> np.ndarray:
        return right[truth.encode(batch.column(spec.y_true)), pred.encode(batch.column(spec.label_col))]

    return multiclass
