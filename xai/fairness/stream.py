"""Streaming count tables: one pass over Arrow batches, merged by addition, saved and re-reported without rows.

A prediction file (CSV, Parquet, a partitioned Parquet folder or Arrow IPC) is read one
record batch at a time, only the label, prediction (or score) and sensitive columns
(column projection). Each column is coded against a growing index of the distinct
values seen so far: a dictionary-encoded column keeps its codes (only its small
per-batch dictionary is looked up, never a string per row), a small integer or boolean
column is offset into a lookup table, anything else is dictionary-encoded by Arrow.
The codes are combined into one flat cell index and counted with ``np.bincount`` into
a raw table ``(sensitive values..., label values, prediction values)``, plus a score
histogram ``(sensitive values..., label values, bins, [rows, sum of scores])`` for
calibration and a fine one ``(sensitive values..., label values, 1000 bins)`` for the
AUC. Memory is the batch plus the table: independent of the number of rows.

What the values *mean* is decided once, at the end, on the distinct values alone, with
pandas' own rules, so the numbers equal those of reading the whole file with pandas
(``xai.fairness.predictions.load_predictions``): CSV columns are read as text and their
distinct values typed as ``pandas.read_csv`` would type the column (``1`` and ``1.0`` in
one column are both ``1.0``), sensitive values become ``str`` of that type, labels are
checked to be binary (or ``--pos-label``) and mapped to 0/1.

A :class:`CountTable` is the resolved result: cells per (group of every sensitive
column, cell) and the score histogram. Tables add up exactly (integer cells) across
batches, files, workers and time windows (``a.merge(b)``, ``a + b``), save to a small
JSON file (:meth:`CountTable.save`) and load back, validated as untrusted input
(:func:`load_counts`), and report like the rows they came from (:func:`tabulate_counts`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from xai._io import atomic_write_text
from xai.errors import DataError, UnknownNameError
from xai.fairness import _engine

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from xai.fairness._base import FairnessResult, GroupTable

__all__ = ["COUNTS_FORMAT", "CountTable", "load_counts", "merge_counts", "scan_predictions", "tabulate_counts"]

PredictionTask = Literal["binary", "multiclass", "regression"]
#: ``format`` field of a saved count table, and its version.
COUNTS_FORMAT = "xai-counts"
COUNTS_VERSION = 1
#: Largest counts file :func:`load_counts` reads: 1,000 groups with their AUC histograms take about 5 MB;
#: the bound keeps a hostile file's parse (one Python int per number) under a GB.
MAX_COUNTS_BYTES = 32 * 1024**2
#: Bins of the calibration histogram (``group.py``'s ``_CALIBRATION_BINS``).
CALIBRATION_BINS = 10
#: Equal-width score bins of the AUC histogram: the AUC is exact up to pairs that share a bin (see CountTable.auc).
AUC_BINS = 1000
#: Rows per record batch: large enough that per-batch Python work is negligible, small enough to keep memory flat.
BATCH_ROWS = 1 << 20
#: Distinct raw values a binary label column may show before it is refused (``1`` and ``1.0`` are two raw values).
_MAX_LABEL_VALUES = 16
#: Most raw cells the scan accumulates (memory bound of the table, not of the rows).
_MAX_RAW_CELLS = 50_000_000
#: pandas' default missing-value markers (``read_csv``'s ``na_values``): CSV gaps are found as pandas finds them.
_PANDAS_NA = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
              "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
_CSV = (".csv", ".gz")
_PARQUET = (".parquet", ".pq")
_IPC = (".arrow", ".feather", ".ipc")


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True, eq=False)
class CountTable:
    """Counts of predictions per group, enough to report every group metric without the rows.

    Attributes
    ----------
    task
        ``binary``, ``multiclass`` or ``regression``.
    features
        The sensitive column names.
    levels
        Per feature, its groups (text, sorted as ``pandas.factorize(sort=True)`` sorts them).
    cells
        ``(G1, ..., Gk, C)`` counts of every combination of groups (see ``_engine.CELLS``;
        float sums for regression); each feature's table is a sum over the others.
    calibration
        ``(G1, ..., Gk, bins, 3)`` score histogram (rows, positives, sum of scores) when
        ``--score`` gave probabilities in [0, 1]; else None.
    rows
        Rows counted.
    source
        What gave the predictions: the ``--y-pred`` column, or ``"score >= 0.5"``.
    positive_label
        The positive label of a binary task, as text ("" otherwise).
    score_range
        ``(min, max)`` of the ``--score`` column; None when ``--y-pred`` was given.
    threshold
        The ``--threshold`` of a score; None when ``--y-pred`` was given.
    inputs
        ``(name, sha256)`` of every file (or folder) counted.
    score_histogram
        ``(G1, ..., Gk, 2, AUC_BINS)`` rows per (label 0/1, score bin) when ``--score`` gave
        probabilities: each group's ROC AUC without the rows (:meth:`auc`); else None.
    """

    task: PredictionTask
    features: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    cells: np.ndarray
    calibration: np.ndarray | None
    rows: int
    source: str
    positive_label: str = ""
    score_range: tuple[float, float] | None = None
    threshold: float | None = None
    inputs: tuple[tuple[str, str], ...] = ()
    score_histogram: np.ndarray | None = None

    # -- derived facts --------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The counted inputs' names, joined."""
        return " + ".join(name for name, _ in self.inputs) or "counts"

    @property
    def sha256(self) -> str:
        """The one input's sha256, or a digest of every input's (name, sha256)."""
        if len(self.inputs) == 1:
            return self.inputs[0][1]
        return hashlib.sha256("".join(f"{n}\0{h}\n" for n, h in self.inputs).encode()).hexdigest()

    @property
    def accuracy(self) -> float:
        """Share of correct predictions (NaN for regression)."""
        if self.task == "regression" or not self.rows:
            return math.nan
        flat = self.cells.reshape(-1, self.cells.shape[-1]).sum(axis=0)
        right = flat[0] + flat[3] if self.task == "binary" else flat[1]
        return float(right / self.rows)

    @property
    def notes(self) -> tuple[str, ...]:
        """Warnings about the input itself: a threshold that puts every row on one side."""
        if self.task != "binary" or self.score_range is None or self.threshold is None or not self.rows:
            return ()
        flat = self.cells.reshape(-1, 4).sum(axis=0)
        positive = int(flat[1] + flat[3])
        if 0 < positive < self.rows:
            return ()
        side = "positive" if positive else "negative"
        low, high = self.score_range
        column = self.source.rsplit(" >= ", 1)[0]
        return (f"--threshold {self.threshold:g} predicts every row {side} (scores in {column!r} range "
                f"{low:.4g} to {high:.4g}): selection rates are all {int(bool(positive))}, "
                "so a demographic parity difference of 0 says nothing about the model",)

    def feature_cells(self, feature: str | None = None) -> tuple[str, tuple[str, ...], np.ndarray, np.ndarray | None]:
        """``(name, groups, (G, C) cells, (G, bins, 3) calibration)`` of one feature, or of the intersection (None)."""
        k = len(self.features)
        if feature is None:
            labels = tuple(" x ".join(parts) for parts in _product(self.levels))
            calibration = (None if self.calibration is None
                           else self.calibration.reshape(-1, *self.calibration.shape[k:]))
            return " x ".join(self.features), labels, self.cells.reshape(-1, self.cells.shape[-1]), calibration
        axis = self.features.index(feature)
        others = tuple(i for i in range(k) if i != axis)
        cells = self.cells.sum(axis=others) if others else self.cells
        calibration = None
        if self.calibration is not None:
            calibration = self.calibration.sum(axis=others) if others else self.calibration
        return feature, self.levels[axis], cells, calibration

    def auc(self, feature: str | None = None) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """``(groups, ROC AUC, bound)`` of one feature (or the intersection) from the score histogram.

        Pairs of a positive and a negative row in different bins are ordered exactly; pairs
        in one bin count 1/2 (as scikit-learn counts exact ties), so ``|AUC - exact| <= bound``,
        half the share of such pairs (0 when no two rows of different labels share a bin).
        NaN for a group without both labels.
        """
        if self.score_histogram is None:
            raise DataError("the AUC needs --score probabilities in [0, 1] (this table has no score histogram)")
        k = len(self.features)
        if feature is None:
            labels = tuple(" x ".join(parts) for parts in _product(self.levels))
            hist = self.score_histogram.reshape(-1, 2, AUC_BINS)
        else:
            axis = self.features.index(feature)
            others = tuple(i for i in range(k) if i != axis)
            hist = self.score_histogram.sum(axis=others) if others else self.score_histogram
            labels = self.levels[axis]
        negatives, positives = hist[:, 0, :].astype(np.float64), hist[:, 1, :].astype(np.float64)
        below = np.cumsum(negatives, axis=-1) - negatives  # negatives in lower bins
        pairs = negatives.sum(axis=-1) * positives.sum(axis=-1)
        tied = (positives * negatives).sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = np.where(pairs > 0, ((positives * below).sum(axis=-1) + 0.5 * tied) / pairs, np.nan)
            bound = np.where(pairs > 0, 0.5 * tied / pairs, np.nan)
        return labels, auc, bound

    # -- algebra --------------------------------------------------------------------------

    def merge(self, other: CountTable) -> CountTable:
        """The table of both tables' rows: cells add up, group lists are united (exact for counts)."""
        if not isinstance(other, CountTable):
            return NotImplemented
        for what, a, b in (("task", self.task, other.task), ("sensitive columns", self.features, other.features),
                           ("predictions", self.source, other.source),
                           ("positive label", self.positive_label, other.positive_label)):
            if a != b:
                raise DataError(f"cannot merge count tables with different {what}: {_show(a)} and {_show(b)}")
        levels = tuple(tuple(sorted(set(a) | set(b))) for a, b in zip(self.levels, other.levels, strict=True))
        cells = _reindex(self.cells, self.levels, levels) + _reindex(other.cells, other.levels, levels)
        calibration = None
        if self.calibration is not None and other.calibration is not None:
            calibration = (_reindex(self.calibration, self.levels, levels)
                           + _reindex(other.calibration, other.levels, levels))
        histogram = None
        if self.score_histogram is not None and other.score_histogram is not None:
            histogram = (_reindex(self.score_histogram, self.levels, levels)
                         + _reindex(other.score_histogram, other.levels, levels))
        score_range = None
        if self.score_range is not None and other.score_range is not None:
            score_range = (min(self.score_range[0], other.score_range[0]),
                           max(self.score_range[1], other.score_range[1]))
        return dataclasses.replace(self, levels=levels, cells=cells, calibration=calibration,
                                   rows=self.rows + other.rows, score_range=score_range,
                                   inputs=self.inputs + other.inputs, score_histogram=histogram)

    __add__ = merge

    def same_counts(self, other: CountTable, *, rtol: float = 0.0) -> bool:
        """Equal groups and cells (score sums within ``rtol``, the one float of a binary table)."""
        if self.levels != other.levels or self.features != other.features or self.rows != other.rows:
            return False
        if self.cells.dtype.kind == "f" or other.cells.dtype.kind == "f":
            same = np.allclose(self.cells, other.cells, rtol=rtol, atol=0)
        else:
            same = np.array_equal(self.cells, other.cells)
        if (self.calibration is None) != (other.calibration is None):
            return False
        if (self.score_histogram is None) != (other.score_histogram is None):
            return False
        if self.score_histogram is not None and other.score_histogram is not None:
            same = same and np.array_equal(self.score_histogram, other.score_histogram)
        if self.calibration is not None and other.calibration is not None:
            same = same and np.array_equal(self.calibration[..., :2], other.calibration[..., :2]) and np.allclose(
                self.calibration[..., 2], other.calibration[..., 2], rtol=rtol, atol=0)
        return bool(same)

    def bootstrap(self, *, n_boot: int, seed: int | np.random.Generator = 0,
                  method: Literal["poisson", "multinomial"] = "poisson") -> np.ndarray:
        """``(n_boot, G1, ..., Gk, C)`` resampled cells (see ``_engine.poisson_bootstrap_cells``)."""
        draw = _engine.poisson_bootstrap_cells if method == "poisson" else _engine.bootstrap_cells
        return draw(self.cells, n_boot=n_boot, seed=seed)

    # -- files ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The table as JSON-ready data (:func:`load_counts` reads it back)."""
        integer = self.cells.dtype.kind != "f"
        return {
            "format": COUNTS_FORMAT,
            "version": COUNTS_VERSION,
            "task": self.task,
            "features": list(self.features),
            "levels": [list(level) for level in self.levels],
            "rows": self.rows,
            "source": self.source,
            "positive_label": self.positive_label,
            "score_range": None if self.score_range is None else list(self.score_range),
            "threshold": self.threshold,
            "inputs": [list(pair) for pair in self.inputs],
            "cells": (self.cells.astype(np.int64) if integer else self.cells).reshape(-1).tolist(),
            "calibration": None if self.calibration is None else self.calibration.reshape(-1).tolist(),
            "score_histogram": None if self.score_histogram is None else self.score_histogram.reshape(-1).tolist(),
        }

    def save(self, path: str | Path) -> Path:
        """Write the table to ``path`` as JSON, atomically (a kill leaves the old file or none)."""
        return atomic_write_text(path, json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False) + "\n")


def merge_counts(tables: Iterable[CountTable]) -> CountTable:
    """All ``tables`` merged (in order); at least one."""
    merged: CountTable | None = None
    for table in tables:
        merged = table if merged is None else merged.merge(table)
    if merged is None:
        raise DataError("no count tables to merge")
    return merged


def _show(value: Any) -> str:
    return ", ".join(map(repr, value)) if isinstance(value, tuple) else repr(value)


def _product(levels: Sequence[Sequence[str]]) -> Iterator[tuple[str, ...]]:
    import itertools

    return itertools.product(*levels)


def _reindex(array: np.ndarray, old: Sequence[Sequence[str]], new: Sequence[Sequence[str]]) -> np.ndarray:
    """``array`` whose first ``len(old)`` axes are ``old`` groups, placed at ``new``'s positions (zeros elsewhere)."""
    if tuple(map(tuple, old)) == tuple(map(tuple, new)):
        return array
    shape = tuple(len(level) for level in new) + array.shape[len(old):]
    out = np.zeros(shape, dtype=array.dtype)
    where = np.ix_(*[np.searchsorted(np.array(n, dtype=object), np.array(o, dtype=object)) if o else
                     np.zeros(0, np.intp) for o, n in zip(old, new, strict=True)])
    out[where] = array
    return out


# ----------------------------------------------------------------------------- loading counts


def load_counts(path: str | Path) -> CountTable:
    """A count table saved by :meth:`CountTable.save`, checked field by field (it is untrusted input).

    Raises :class:`~xai.errors.DataError` (one line) for a missing, oversized, non-JSON
    or malformed file: wrong format or version, unknown task, a shape that does not fit
    the groups, negative, fractional or non-finite counts, duplicate or unsorted groups.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"counts file not found: {path}")
    size = path.stat().st_size
    if size > MAX_COUNTS_BYTES:
        raise DataError(f"counts file {path.name} is {size:,} bytes (limit {MAX_COUNTS_BYTES:,})")
    try:
        document = json.loads(path.read_bytes(), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise DataError(f"counts file {path.name} is not a count table (JSON): {_one_line(err)}") from None
    try:
        return _table_from(document)
    except DataError as err:
        raise DataError(f"counts file {path.name}: {err}") from None


def _refuse_constant(token: str) -> None:
    raise ValueError(f"{token} is not a number")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:200]


def _field(document: dict[str, Any], key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    value = document.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple)
                                                                                 else (kind,)):
        raise DataError(f"field {key!r} is missing or has the wrong type")
    return value


def _texts(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{what} must be a list of strings")
    return tuple(value)


def _table_from(document: Any) -> CountTable:
    if not isinstance(document, dict) or document.get("format") != COUNTS_FORMAT:
        raise DataError(f"not a count table (no \"format\": \"{COUNTS_FORMAT}\")")
    if document.get("version") != COUNTS_VERSION:
        raise DataError(f"unsupported count table version {document.get('version')!r} (this xai reads "
                        f"{COUNTS_VERSION})")
    task = _field(document, "task", str)
    if task not in _engine.CELLS:
        raise UnknownNameError("task", task, _engine.CELLS)
    features = _texts(document.get("features"), "features")
    if not features or len(set(features)) != len(features):
        raise DataError("features must name at least one sensitive column, each once")
    raw_levels = document.get("levels")
    if not isinstance(raw_levels, list) or len(raw_levels) != len(features):
        raise DataError("levels must hold one list of groups per feature")
    levels = tuple(_texts(level, f"the groups of {name!r}") for level, name in zip(raw_levels, features, strict=True))
    for name, level in zip(features, levels, strict=True):
        if not level or list(level) != sorted(set(level)):
            raise DataError(f"the groups of {name!r} must be distinct, sorted and at least one")
    shape = tuple(len(level) for level in levels)
    groups = math.prod(shape)
    if groups > 10_000_000:
        raise DataError(f"{groups:,} groups is more than a count table may hold")
    n_cells = len(_engine.CELLS[task])
    cells = _numbers(document.get("cells"), groups * n_cells, "cells", integer=task != "regression")
    cells = cells.reshape(*shape, n_cells)
    rows = _field(document, "rows", int)
    counted = cells[..., 0].sum() if task == "regression" else cells.sum()
    if rows != counted:
        raise DataError(f"rows ({rows:,}) is not the sum of the cells ({counted:,})")
    calibration = None
    if document.get("calibration") is not None:
        if task != "binary":
            raise DataError("only a binary table has a calibration histogram")
        flat = _numbers(document["calibration"], None, "calibration", integer=False)
        per_group = CALIBRATION_BINS * 3
        if flat.size != groups * per_group:
            raise DataError(f"calibration must hold {groups * per_group:,} numbers, got {flat.size:,}")
        calibration = flat.reshape(*shape, CALIBRATION_BINS, 3)
        by_group = calibration[..., 0].sum(axis=-1)
        if (not np.array_equal(by_group, cells.sum(axis=-1)) or (calibration[..., 1] > calibration[..., 0]).any()
                or (calibration[..., 2] > calibration[..., 0] * (1 + 1e-9)).any()):
            raise DataError("calibration does not fit the cells (rows, positives and score sums per bin)")
    histogram = None
    if document.get("score_histogram") is not None:
        if task != "binary":
            raise DataError("only a binary table has a score histogram")
        histogram = _numbers(document["score_histogram"], groups * 2 * AUC_BINS, "score_histogram", integer=True)
        histogram = histogram.reshape(*shape, 2, AUC_BINS)
        by_label = histogram.sum(axis=-1)  # (..., 2): negatives, positives
        if not (np.array_equal(by_label[..., 0], cells[..., 0] + cells[..., 1])
                and np.array_equal(by_label[..., 1], cells[..., 2] + cells[..., 3])):
            raise DataError("score_histogram does not fit the cells (rows per label)")
    source = _field(document, "source", str)
    positive = _field(document, "positive_label", str)
    threshold = _field(document, "threshold", (int, float), optional=True)
    score_range = document.get("score_range")
    if score_range is not None:
        if (not isinstance(score_range, list) or len(score_range) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in score_range)
                or score_range[0] > score_range[1]):
            raise DataError("score_range must be [min, max]")
        score_range = (float(score_range[0]), float(score_range[1]))
    inputs = document.get("inputs", [])
    if not isinstance(inputs, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) for v in p) for p in inputs):
        raise DataError("inputs must be a list of [name, sha256] pairs")
    return CountTable(task=task, features=features, levels=levels, cells=cells, calibration=calibration,
                      rows=rows, source=source, positive_label=positive, score_range=score_range,
                      threshold=None if threshold is None else float(threshold),
                      inputs=tuple((str(a), str(b)) for a, b in inputs), score_histogram=histogram)


def _numbers(value: Any, size: int | None, what: str, *, integer: bool) -> np.ndarray:
    if not isinstance(value, list) or (size is not None and len(value) != size):
        raise DataError(f"{what} must be a list of {size:,} numbers" if size is not None
                        else f"{what} must be a list of numbers")
    if not all(type(v) in (int, float) for v in value):  # not bool, not nested lists, not strings
        raise DataError(f"{what} must hold only numbers")
    if integer:
        if not all(type(v) is int for v in value):
            raise DataError(f"{what} must be whole counts")
        if any(v < 0 or v >= 2**62 for v in value):
            raise DataError(f"{what} must be counts from 0 to 2^62")
        return np.array(value, dtype=np.int64)
    array = np.array(value, dtype=np.float64)
    if not np.isfinite(array).all() or (array < 0).any():  # rows, errors and scores: sums of non-negatives
        raise DataError(f"{what} must be finite and non-negative")
    return array


# ----------------------------------------------------------------------------- reading batches


@dataclass
class _Source:
    """An opened input: its column names, a batch iterator, a row total if known, and how values are typed."""

    name: str
    columns: tuple[str, ...]
    batches: Callable[[], Iterator[pa.RecordBatch]]
    total_rows: int | None
    text: bool  # CSV: every value arrives as text and is typed at the end as pandas would


def _open(path: Path, projected: Sequence[str], dictionary: Sequence[str], batch_rows: int) -> _Source:
    import pyarrow as pa

    if path.is_dir():
        return _open_folder(path, projected, dictionary, batch_rows)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in _CSV:
            return _open_csv(path, projected, batch_rows)
        if suffix in _PARQUET:
            return _open_parquet(path, projected, dictionary, batch_rows)
        if suffix in _IPC:
            return _open_ipc(path, projected)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DataError(f"cannot read {path}: {_one_line(err)}") from None
    raise DataError(f"--data takes a .csv, .parquet or Arrow IPC (.arrow, .feather) file or a folder of "
                    f".parquet files, got {path.name}")


def _check_columns(path: Path, names: Sequence[str], projected: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"{path.name} has two columns named {name!r}: rename one (which one to use is ambiguous)")
        seen.add(name)
    for name in projected:
        if name not in seen:
            raise UnknownNameError(f"column in {path.name}", name, names)


def _open_csv(path: Path, projected: Sequence[str], batch_rows: int) -> _Source:
    import gzip

    import pyarrow as pa
    from pyarrow import csv as pacsv

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read {path}: {_one_line(err)}") from None
    if not header:
        raise DataError(f"{path} is empty")
    _check_columns(path, header, projected)

    def batches() -> Iterator[pa.RecordBatch]:
        convert = pacsv.ConvertOptions(include_columns=list(projected),
                                       column_types={c: pa.string() for c in projected},
                                       null_values=list(_PANDAS_NA), strings_can_be_null=True,
                                       quoted_strings_can_be_null=True)
        read = pacsv.ReadOptions(block_size=max(1 << 20, min(batch_rows * 16, 64 << 20)))
        try:
            yield from pacsv.open_csv(path, read_options=read, convert_options=convert)
        except pa.ArrowException as err:
            raise DataError(f"cannot read {path}: {_one_line(err)}") from None

    return _Source(path.name, tuple(header), batches, None, text=True)


def _string_columns(schema: pa.Schema, names: Sequence[str]) -> list[str]:
    import pyarrow as pa

    return [n for n in names if n in schema.names and (pa.types.is_string(schema.field(n).type)
                                                       or pa.types.is_large_string(schema.field(n).type)
                                                       or pa.types.is_binary(schema.field(n).type))]


def _open_parquet(path: Path, projected: Sequence[str], dictionary: Sequence[str], batch_rows: int) -> _Source:
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    _check_columns(path, schema.names, projected)
    keep = _string_columns(schema, dictionary)

    def batches() -> Iterator[pa.RecordBatch]:
        # sensitive text columns stay dictionary-encoded: codes, not one string per row; no pre-buffering,
        # which keeps whole column chunks around (peak RSS grew with the file: 352 MB at 200M rows, 218 without)
        with pq.ParquetFile(path, read_dictionary=keep, pre_buffer=False) as reader:
            yield from reader.iter_batches(batch_size=batch_rows, columns=list(projected), use_threads=True)

    total = pq.ParquetFile(path).metadata.num_rows
    return _Source(path.name, tuple(schema.names), batches, total, text=False)


def _open_folder(path: Path, projected: Sequence[str], dictionary: Sequence[str], batch_rows: int) -> _Source:
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        # hive folders (sex=F/part-0.parquet): partition values come as dictionary columns
        partitioning = ds.HivePartitioning.discover(infer_dictionary=True)
        dataset = ds.dataset(path, format="parquet", partitioning=partitioning, exclude_invalid_files=False)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DataError(f"cannot read the parquet folder {path}: {_one_line(err)}") from None
    if not dataset.files:
        raise DataError(f"{path} holds no .parquet files")
    _check_columns(path, dataset.schema.names, projected)
    keep = _string_columns(dataset.schema, dictionary)
    fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=keep),
                               default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False))
    dataset = ds.dataset(path, format=fmt, partitioning=partitioning)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from dataset.to_batches(columns=list(projected), batch_size=batch_rows, use_threads=True)
        except (pa.ArrowException, OSError) as err:
            raise DataError(f"cannot read the parquet folder {path}: {_one_line(err)}") from None

    return _Source(path.name, tuple(dataset.schema.names), batches, None, text=False)


def _open_ipc(path: Path, projected: Sequence[str]) -> _Source:
    import pyarrow as pa

    def reader(source: Any) -> Any:
        try:
            return pa.ipc.open_file(source)
        except pa.ArrowInvalid:  # the streaming format has no footer
            return pa.ipc.open_stream(source)

    with pa.memory_map(str(path)) as source:
        schema = reader(source).schema
    _check_columns(path, schema.names, projected)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            with pa.memory_map(str(path)) as source:  # zero copy: only the projected columns are touched
                opened = reader(source)
                if isinstance(opened, pa.ipc.RecordBatchFileReader):
                    parts: Iterable[pa.RecordBatch] = (opened.get_batch(i) for i in range(opened.num_record_batches))
                else:
                    parts = opened
                for batch in parts:
                    yield batch.select(list(projected))
        except (pa.ArrowException, OSError) as err:
            raise DataError(f"cannot read {path}: {_one_line(err)}") from None

    return _Source(path.name, tuple(schema.names), batches, None, text=False)


# ----------------------------------------------------------------------------- coding values


class _Levels:
    """The distinct values of one column in order of first sight, coded 0, 1, 2 ... across batches."""

    def __init__(self, name: str, limit: int | None, *, first_rows: bool = False) -> None:
        self.name = name
        self.limit = limit
        self.values: list[Any] = []
        #: 1-based data row where each value was first seen (kept for label columns: few values)
        self.first_row: list[int] | None = [] if first_rows else None
        self._index: dict[Any, int] = {}
        self.arrow_type: pa.DataType | None = None

    def __len__(self) -> int:
        return len(self.values)

    def _ids(self, values: Sequence[Any]) -> np.ndarray:
        ids = np.empty(len(values), dtype=np.int64)
        for i, value in enumerate(values):
            code = self._index.get(value)
            if code is None:
                code = self._index[value] = len(self.values)
                self.values.append(value)
            ids[i] = code
        if self.limit is not None and len(self.values) > self.limit:
            raise _TooMany(self)
        return ids

    def encode(self, array: pa.Array, offset: int = 0) -> np.ndarray:
        """``(N,)`` int64 codes of a null-free array whose first row is data row ``offset + 1``."""
        known = len(self.values)
        codes = self._encode(array)
        if self.first_row is not None:
            for new in range(known, len(self.values)):
                self.first_row.append(offset + int(np.argmax(codes == new)) + 1)
        return codes

    def _encode(self, array: pa.Array) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.arrow_type is None:
            self.arrow_type = array.type
        if pa.types.is_boolean(array.type):
            array = array.cast(pa.int8())
        if pa.types.is_integer(array.type) and len(array):
            values = _to_numpy(array)
            bounds = pc.min_max(array)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            if high - low < 1 << 16:  # small range: a lookup table instead of hashing
                # int64 before the offset (an int8 minus a negative minimum would wrap)
                local = values.astype(np.int64) - low if low or values.dtype == np.uint64 else values
                if high - low <= 1:  # the minimum and the maximum are all the values (0/1 labels)
                    present = np.arange(high - low + 1)
                else:
                    present = np.flatnonzero(np.bincount(local, minlength=high - low + 1))
                lut = np.zeros(high - low + 1, dtype=np.int64)
                lut[present] = self._ids([int(v) + low for v in present])
                return _lookup(lut, local)
        if not pa.types.is_dictionary(array.type):
            array = pc.dictionary_encode(array)
        indices = _to_numpy(array.indices)
        dictionary = array.dictionary
        listed: list[Any] | None = dictionary.to_pylist() if len(dictionary) <= 1 << 17 else None
        if listed is not None:
            known = [self._index.get(v) for v in listed]
            if None not in known:  # every value seen before (the usual batch): no pass to find the used ones
                return _lookup(np.array(known, dtype=np.int64), indices)
        # a dictionary may hold values absent from this batch: only those present become groups
        present = np.flatnonzero(np.bincount(indices, minlength=len(dictionary)))
        lut = np.zeros(len(dictionary), dtype=np.int64)
        if listed is None:
            listed = dictionary.to_pylist()
        lut[present] = self._ids([listed[i] for i in present])
        return _lookup(lut, indices)

    def typed(self, text: bool) -> pd.Series:
        """The distinct values as a pandas Series of the type pandas gives the whole column."""
        import pandas as pd

        if not text:
            series = pd.Series(self.values)
            if self.arrow_type is not None and _is_bool(self.arrow_type):
                series = series.astype(bool)
            return series
        # the distinct values of a CSV column, typed by pandas as it types the whole column
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for value in self.values:
            writer.writerow([value])
        buffer.seek(0)
        return pd.read_csv(buffer, header=None, keep_default_na=False, na_filter=False)[0] if self.values else (
            pd.Series([], dtype=object))


def _is_bool(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return bool(pa.types.is_boolean(arrow_type))


def _to_numpy(array: pa.Array) -> np.ndarray:
    """A NumPy view of a null-free integer or float array, straight from its buffer.

    ``Array.to_numpy`` would do too, but it imports pandas (pyarrow's pandas shim) on first
    use: 0.4 s of a streamed audit that needs no pandas.
    """
    import pyarrow as pa

    kind = array.type
    if array.null_count == 0 and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        code = "f" if pa.types.is_floating(kind) else ("u" if pa.types.is_unsigned_integer(kind) else "i")
        dtype = np.dtype(f"{code}{kind.bit_width // 8}")
        return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array) + array.offset)[array.offset:]
    return array.to_numpy(zero_copy_only=False)


def _lookup(lut: np.ndarray, local: np.ndarray) -> np.ndarray:
    """``lut[local]``, or ``local`` itself when the table is the identity (codes already global: no pass)."""
    if len(lut) and lut[0] == 0 and (len(lut) == 1 or np.array_equal(lut, np.arange(len(lut)))):
        return local
    return lut[local]


class _TooMany(Exception):
    def __init__(self, levels: _Levels) -> None:
        super().__init__(levels.name)
        self.levels = levels


@dataclass
class _Problems:
    """Missing and infinite values per column, with the first data row of each (1-based)."""

    missing: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    infinite: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    def add(self, kind: dict[str, list[int]], name: str, mask: np.ndarray, offset: int) -> None:
        count = int(mask.sum())
        if count:
            entry = kind.setdefault(name, [0, offset + int(np.argmax(mask)) + 1])
            entry[0] += count

    def raise_for(self, name: str) -> None:
        if name in self.missing:
            count, first = self.missing[name]
            raise DataError(f"column {name!r} has {count} missing values (first at data row {first})")
        if name in self.infinite:
            count, first = self.infinite[name]
            raise DataError(f"column {name!r} has {count} infinite values (first at data row {first})")


def _numeric(array: pa.Array, name: str, *, text: bool, what: str) -> np.ndarray:
    """A float64 view of a numeric column (CSV text parsed as pandas would), or a one-line error."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    kind = array.type
    if text:
        try:
            return _to_numpy(pc.cast(array, pa.float64()))
        except pa.ArrowInvalid:
            raise DataError(what.format(name=name, dtype="object")) from None
    if pa.types.is_boolean(kind) or not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                                         or pa.types.is_decimal(kind)):
        dtype = "bool" if pa.types.is_boolean(kind) else "object"
        raise DataError(what.format(name=name, dtype=dtype))
    return _to_numpy(array.cast(pa.float64()))


# ----------------------------------------------------------------------------- the scan


class _Accumulator:
    """A growing ``(K1, ..., Kn)`` table that batch tables of the current sizes are added into."""

    def __init__(self, trailing: tuple[int, ...] = (), dtype: Any = np.int64) -> None:
        self.table: np.ndarray | None = None
        self.trailing = trailing
        self.dtype = dtype

    def add(self, part: np.ndarray) -> None:
        if self.table is None:
            self.table = part.astype(self.dtype, copy=True)
            return
        if self.table.shape != part.shape:  # a column met new values: pad with zeros
            shape = tuple(max(a, b) for a, b in zip(self.table.shape, part.shape, strict=True))
            self.table = np.pad(self.table, [(0, s - k) for s, k in zip(shape, self.table.shape, strict=True)])
            if part.shape != shape:
                part = np.pad(part, [(0, s - k) for s, k in zip(shape, part.shape, strict=True)])
        self.table += part

    def result(self, shape: tuple[int, ...]) -> np.ndarray:
        if self.table is None:
            return np.zeros(shape, dtype=self.dtype)
        return np.pad(self.table, [(0, s - k) for s, k in zip(shape, self.table.shape, strict=True)])


def _flat(codes: Sequence[np.ndarray], sizes: Sequence[int]) -> np.ndarray:
    flat = codes[0].astype(np.int64, copy=True)
    for code, size in zip(codes[1:], sizes[1:], strict=True):
        flat *= size
        flat += code
    return flat


def _progress(total: int | None, name: str) -> Any:
    """A rich progress bar with rows/s on stderr, or None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from xai._text import safe_text

    progress = Progress(TextColumn("counting {task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("rows  {task.fields[rate]} rows/s"), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=True)
    progress.start()
    progress.add_task(safe_text(name), total=total, rate="-")
    return progress


def _hash_input(path: Path, out: list[str]) -> None:
    from xai._provenance import sha256_file

    if path.is_file():
        out.append(sha256_file(path))
        return
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
    out.append(digest.hexdigest())


@dataclass(frozen=True)
class _Spec:
    """What to count: the columns and how to read them (picklable, for workers)."""

    y_true: str
    sensitive: tuple[str, ...]
    y_pred: str | None
    score: str | None
    threshold: float
    pos_label: str | None
    task: PredictionTask
    limit: int
    text: bool
    #: Probabilities beside ``y_pred`` (a model's own softmax): calibration and AUC histograms, not predictions.
    y_score: str | None = None

    @property
    def calibration_col(self) -> str | None:
        """The column the score histograms read: ``score``, else ``y_score``."""
        return self.score if self.score is not None else self.y_score

    @property
    def label_col(self) -> str:
        column = self.y_pred if self.y_pred is not None else self.score
        assert column is not None
        return column

    @property
    def projected(self) -> list[str]:
        extra = [self.y_score] if self.y_score is not None else []
        return list(dict.fromkeys([self.y_true, self.label_col, *extra, *self.sensitive]))


class _Counter:
    """The raw counts of a stream of batches: coded values and growing tables (see the module docstring).

    Counters of different batches, files or workers merge (:meth:`merge`) by their raw
    values, and one :meth:`finish` gives the values their meaning, so a merged count is the
    count of one pass.
    """

    def __init__(self, spec: _Spec) -> None:
        self.spec = spec
        binary = spec.task == "binary"
        self.truth = _Levels(spec.y_true, _MAX_LABEL_VALUES if binary else None, first_rows=True)
        self.pred = (_Levels(spec.label_col, _MAX_LABEL_VALUES if binary else None, first_rows=True)
                     if spec.y_pred is not None and spec.task != "regression" else None)
        self.groups = [_Levels(name, spec.limit) for name in spec.sensitive]
        self.problems = _Problems()
        self.counts = _Accumulator(dtype=np.float64 if spec.task == "regression" else np.int64)
        # the score histogram: rows per (groups..., labels, bins), and sums of scores per (groups..., bins)
        # (summed in row order as one np.bincount over the file would: the same floats for one batch)
        self.hist_rows, self.hist_sums = _Accumulator(), _Accumulator(dtype=np.float64)
        self.auc_rows = _Accumulator()  # (groups..., labels, AUC_BINS)
        self.score_low, self.score_high = math.inf, -math.inf
        self.probabilities = True
        self.rows = 0

    def feed(self, batch: pa.RecordBatch) -> None:
        """Count one record batch (its rows follow the rows counted so far)."""
        spec, n = self.spec, batch.num_rows
        if not n:
            return
        columns = {name: batch.column(name) for name in spec.projected}
        broken = False
        for name in spec.projected:
            broken |= _check_missing(columns[name], name, self.problems, self.rows, spec.text)
        numeric: dict[str, np.ndarray] = {}
        for name in ([spec.calibration_col] if spec.calibration_col is not None else []) + (
                [spec.y_true, spec.label_col] if spec.task == "regression" else []):
            if name in numeric:
                continue
            if name == spec.calibration_col:
                what = "--score column {name!r} must be numeric, got {dtype}"
            else:
                what = "column {name!r} must be numeric for a regression audit, got {dtype}"
            values = _numeric(columns[name].fill_null(0) if columns[name].null_count else columns[name], name,
                              text=spec.text, what=what)
            infinite = np.isinf(values)
            if infinite.any():
                self.problems.add(self.problems.infinite, name, infinite, self.rows)
                broken = True
            numeric[name] = values
        if broken:  # an error at the end anyway: keep counting the problems, not the cells
            self.rows += n
            return
        group_codes = [levels.encode(columns[levels.name]) for levels in self.groups]
        sizes = [len(levels) for levels in self.groups]
        if spec.task == "regression":
            flat = _flat(group_codes, sizes)
            error = numeric[spec.label_col] - numeric[spec.y_true]
            size = math.prod(sizes)
            part = np.stack([np.bincount(flat, minlength=size).astype(np.float64),
                             np.bincount(flat, weights=np.abs(error), minlength=size),
                             np.bincount(flat, weights=error * error, minlength=size)], axis=-1)
            self.counts.add(part.reshape(*sizes, 3))
            self.rows += n
            return
        t = self.truth.encode(columns[spec.y_true], self.rows)
        if spec.score is not None:
            values = numeric[spec.score]
            p = (values >= spec.threshold).astype(np.int64)
            psize = 2
            self.score_low = min(self.score_low, float(values.min()))
            self.score_high = max(self.score_high, float(values.max()))
        else:
            assert self.pred is not None
            p = self.pred.encode(columns[spec.label_col], self.rows)
            psize = len(self.pred)
        cell_sizes = [*sizes, len(self.truth), psize]
        if math.prod(cell_sizes) > _MAX_RAW_CELLS:
            raise DataError(f"{math.prod(cell_sizes):,} combinations of groups and labels are more than a "
                            "count table may hold: name fewer sensitive columns, or check that the labels "
                            "are classes")
        flat = _flat([*group_codes, t, p], cell_sizes)
        self.counts.add(np.bincount(flat, minlength=math.prod(cell_sizes)).reshape(cell_sizes))
        if spec.calibration_col is not None and self.probabilities:
            values = numeric[spec.calibration_col]
            if values.min() < 0 or values.max() > 1:
                self.probabilities = False  # not probabilities: no calibration
            else:
                bins = np.searchsorted(_EDGES, values)
                hist_sizes = [*sizes, len(self.truth), CALIBRATION_BINS]
                flat = _flat([*group_codes, t, bins], hist_sizes)
                self.hist_rows.add(np.bincount(flat, minlength=math.prod(hist_sizes)).reshape(hist_sizes))
                sum_sizes = [*sizes, CALIBRATION_BINS]
                flat = _flat([*group_codes, bins], sum_sizes)
                self.hist_sums.add(np.bincount(flat, weights=values, minlength=math.prod(sum_sizes))
                                   .reshape(sum_sizes))
                fine = np.minimum((values * AUC_BINS).astype(np.int64), AUC_BINS - 1)
                auc_sizes = [*sizes, len(self.truth), AUC_BINS]
                flat = _flat([*group_codes, t, fine], auc_sizes)
                self.auc_rows.add(np.bincount(flat, minlength=math.prod(auc_sizes)).reshape(auc_sizes))
        self.rows += n

    def merge(self, other: _Counter) -> _Counter:
        """Add ``other``'s counts (of later rows) into this counter, matching raw values by value."""
        columns = [*self.groups, self.truth, *([self.pred] if self.pred is not None else [])]
        theirs = [*other.groups, other.truth, *([other.pred] if other.pred is not None else [])]
        luts: list[np.ndarray | None] = []
        for mine, their in zip(columns, theirs, strict=True):
            known = len(mine)
            luts.append(mine._ids(their.values))
            if mine.first_row is not None and their.first_row is not None:
                for code, row in zip(mine._ids(their.values), their.first_row, strict=True):
                    if code >= known:
                        mine.first_row.append(row + self.rows)
            if mine.arrow_type is None:
                mine.arrow_type = their.arrow_type
        k = len(self.groups)
        plan: list[tuple[_Accumulator, _Accumulator, list[np.ndarray | None]]]
        if self.spec.task == "regression":
            plan = [(self.counts, other.counts, luts[:k])]
        else:
            label_luts = luts[: k + 1] + ([luts[k + 1]] if self.pred is not None else [None])
            plan = [(self.counts, other.counts, label_luts),
                    (self.hist_rows, other.hist_rows, [*luts[: k + 1], None]),
                    (self.hist_sums, other.hist_sums, [*luts[:k], None]),
                    (self.auc_rows, other.auc_rows, [*luts[: k + 1], None])]
        for acc, part, maps in plan:
            if part.table is not None:
                acc.add(_scatter(part.table, maps, [len(c) for c in columns]))
        for kind in ("missing", "infinite"):
            mine_kind, their_kind = getattr(self.problems, kind), getattr(other.problems, kind)
            for name, (count, first) in their_kind.items():
                entry = mine_kind.setdefault(name, [0, first + self.rows])
                entry[0] += count
        self.score_low, self.score_high = min(self.score_low, other.score_low), max(self.score_high, other.score_high)
        self.probabilities = self.probabilities and other.probabilities
        self.rows += other.rows
        return self

    def finish(self, name: str, sha256: str, where: str | Path | None = None) -> CountTable:
        """The :class:`CountTable` of everything counted (one-line errors for what the values break)."""
        spec = self.spec
        if self.rows == 0:
            raise DataError(f"{where or name} has a header but no rows")
        for column in spec.projected:
            self.problems.raise_for(column)
        table = _resolve(
            task=spec.task, truth=self.truth, pred=self.pred, groups=self.groups, text=spec.text,
            pos_label=spec.pos_label, counts=self.counts, rows=self.rows,
            histogram=((self.hist_rows, self.hist_sums, self.auc_rows)
                       if spec.calibration_col is not None and self.probabilities else None),
            source=spec.y_pred if spec.y_pred is not None else f"{spec.score} >= {spec.threshold:g}",
            score_range=(self.score_low, self.score_high) if spec.score is not None else None,
            threshold=spec.threshold if spec.score is not None else None, inputs=((name, sha256),))
        if table.calibration is not None and not 0 <= spec.threshold <= 1:
            raise DataError(f"--threshold {spec.threshold:g} is outside [0, 1], but the scores in {spec.score!r} "
                            "are probabilities in [0, 1]")
        return table


_EDGES = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)[1:-1]


def _scatter(table: np.ndarray, maps: Sequence[np.ndarray | None], sizes: Sequence[int]) -> np.ndarray:
    """``table`` with each mapped axis's entries moved to ``maps[axis]`` (injective) in an axis of ``sizes[axis]``."""
    for axis, mapping in enumerate(maps):
        if mapping is None:
            continue
        mapping = mapping[: table.shape[axis]]
        shape = list(table.shape)
        shape[axis] = max(sizes[axis], int(mapping.max(initial=-1)) + 1)
        out = np.zeros(shape, dtype=table.dtype)
        index: list[Any] = [slice(None)] * table.ndim
        index[axis] = mapping
        out[tuple(index)] = table
        table = out
    return table


def _make_spec(path: Path, *, y_true: str, sensitive: Sequence[str], y_pred: str | None, score: str | None,
               threshold: float, pos_label: str | None, task: PredictionTask, max_groups: int | None,
               text: bool) -> _Spec:
    from xai.fairness.group import MAX_GROUPS

    return _Spec(y_true=y_true, sensitive=tuple(sensitive), y_pred=y_pred, score=score, threshold=threshold,
                 pos_label=pos_label, task=task, limit=MAX_GROUPS if max_groups is None else max_groups, text=text)


def scan_predictions(path: str | Path, *, y_true: str, sensitive: Sequence[str], y_pred: str | None = None,
                     score: str | None = None, threshold: float = 0.5, pos_label: str | None = None,
                     task: PredictionTask = "binary", max_groups: int | None = None,
                     batch_rows: int = BATCH_ROWS, progress: bool = True) -> CountTable:
    """Count a prediction file batch by batch into a :class:`CountTable` (the rows are never all in memory).

    ``path`` is a ``.csv`` (optionally ``.gz``), ``.parquet``, Arrow IPC (``.arrow``,
    ``.feather``) file or a folder of parquet files (hive partitions become columns).
    The arguments and the checks are :func:`~xai.fairness.predictions.load_predictions`'s,
    with the same one-line :class:`~xai.errors.DataError` messages; a sensitive column with
    more than ``max_groups`` values is refused as soon as it is seen. With ``progress`` and
    stderr a terminal, a progress bar shows rows/s.
    """
    _check_arguments(y_pred=y_pred, score=score, sensitive=sensitive, threshold=threshold, pos_label=pos_label,
                     task=task)
    path = Path(path)
    label_col = y_pred if y_pred is not None else score
    assert label_col is not None
    source = _open(path, list(dict.fromkeys([y_true, label_col, *sensitive])), sensitive, batch_rows)
    spec = _make_spec(path, y_true=y_true, sensitive=sensitive, y_pred=y_pred, score=score, threshold=threshold,
                      pos_label=pos_label, task=task, max_groups=max_groups, text=source.text)
    digest: list[str] = []
    hasher = threading.Thread(target=_hash_input, args=(path, digest), daemon=True)
    hasher.start()  # hashing overlaps the scan (hashlib releases the GIL)
    counter = _Counter(spec)
    bar = _progress(source.total_rows, source.name) if progress else None
    start = time.perf_counter()
    batches = source.batches()
    try:
        for batch in batches:
            counter.feed(batch)
            if bar is not None:
                elapsed = max(time.perf_counter() - start, 1e-9)
                bar.update(bar.task_ids[0], completed=counter.rows, rate=f"{counter.rows / elapsed:,.0f}")
    except _TooMany as exc:
        raise _too_many(exc, counter, batches) from None
    finally:
        if bar is not None:
            bar.stop()
    hasher.join()
    return counter.finish(source.name, digest[0] if digest else "", path)


def _too_many(exc: _TooMany, counter: _Counter, batches: Iterator[pa.RecordBatch]) -> DataError:
    levels, spec = exc.levels, counter.spec
    if levels in counter.groups:
        return DataError(f"sensitive column {levels.name!r} has {_count_groups(levels, batches, spec.text)} "
                         f"groups (limit {spec.limit:,}): is it an ID or a continuous column? Raise the limit with "
                         "--max-groups (max_groups in a spec) if it is meant")
    return DataError(_not_binary(levels, spec.pos_label, spec.text))


#: Distinct values counted, to name the size of a sensitive column over ``--max-groups``, before giving up.
_COUNT_GROUPS_CAP = 1_000_000


def _count_groups(levels: _Levels, batches: Iterator[pa.RecordBatch], text: bool) -> str:
    """How many groups a column over the limit has (its values only; ``"more than N"`` past a cap)."""
    import pyarrow.compute as pc

    levels.limit = None
    for batch in batches:
        levels._ids(pc.unique(batch.column(levels.name).drop_null()).to_pylist())
        if len(levels) > _COUNT_GROUPS_CAP:
            return f"more than {_COUNT_GROUPS_CAP:,}"
    return f"{len(set(_typed(levels, text).texts)):,}"


def _is_float(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return bool(pa.types.is_floating(arrow_type))


def _check_missing(array: pa.Array, name: str, problems: _Problems, offset: int, text: bool) -> bool:
    """Record nulls (and NaN, which pandas counts as missing) of one batch column; True if any."""
    import pyarrow as pa

    mask = None
    if array.null_count:
        mask = array.is_null().to_numpy(zero_copy_only=False)
    if not text and _is_float(array.type):
        values = (array.dictionary_decode() if isinstance(array, pa.DictionaryArray) else array)
        nan_mask = np.isnan(_to_numpy(values))  # nulls read as NaN: missing either way
        if nan_mask.any():
            mask = nan_mask if mask is None else mask | nan_mask
    if mask is None or not mask.any():
        return False
    problems.add(problems.missing, name, mask, offset)
    return True


def _check_arguments(*, y_pred: str | None, score: str | None, sensitive: Sequence[str], threshold: float,
                     pos_label: str | None, task: str) -> None:
    from xai.fairness.predictions import check_prediction_arguments  # the same rules as the in-memory path

    check_prediction_arguments(y_pred=y_pred, score=score, sensitive=sensitive, threshold=threshold,
                               pos_label=pos_label, task=task)


def _shown(values: Sequence[Any]) -> str:
    return ", ".join(map(str, values[:6])) + (" ..." if len(values) > 6 else "")


def _not_binary(levels: _Levels, pos_label: str | None, text: bool) -> str:
    shown = _shown(_typed(levels, text).texts)
    if pos_label is not None:
        return (f"column {levels.name!r} must hold two labels including --pos-label {pos_label!r} "
                f"for binary metrics; found: {shown}")
    return (f"column {levels.name!r} must hold binary labels 0/1 for binary metrics "
            f"(or name the positive one with --pos-label); found: {shown}")


@dataclass(frozen=True)
class _Typed:
    """A column's distinct values as pandas would type the whole column: its kind, the values and their text."""

    kind: Literal["bool", "int", "float", "text"]
    values: list[Any]
    texts: list[str]


def _typed(levels: _Levels, text: bool) -> _Typed:
    """:class:`_Typed` of a column; Arrow-typed integers, booleans, float64 and strings without pandas."""
    import pyarrow as pa

    arrow = levels.arrow_type
    if arrow is not None and pa.types.is_dictionary(arrow):
        arrow = arrow.value_type
    if not text and arrow is not None:
        # what pandas' astype(str) gives these dtypes: str() of each value (bool kept as True/False)
        if pa.types.is_boolean(arrow):
            values = [bool(v) for v in levels.values]
            return _Typed("bool", values, [str(v) for v in values])
        if pa.types.is_integer(arrow):
            return _Typed("int", list(levels.values), [str(v) for v in levels.values])
        if pa.types.is_float64(arrow):
            return _Typed("float", list(levels.values), [str(v) for v in levels.values])
        if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
            return _Typed("text", list(levels.values), list(levels.values))
    import pandas as pd  # CSV text and rarer types: pandas itself types them

    typed = levels.typed(text)
    if typed.dtype == bool:
        kind: Literal["bool", "int", "float", "text"] = "bool"
    elif pd.api.types.is_float_dtype(typed):
        kind = "float"
    elif pd.api.types.is_numeric_dtype(typed):
        kind = "int"
    else:
        kind = "text"
    return _Typed(kind, typed.tolist(), typed.astype(str).tolist())


def _check_finite(levels: _Levels, typed: _Typed, counts: np.ndarray) -> None:
    """``_finite``'s check on a label column's distinct values: +-inf in a float column is an error."""
    if typed.kind != "float":
        return
    infinite = np.isinf(np.array(typed.values, dtype=np.float64))
    if infinite.any():
        assert levels.first_row is not None
        first = min(row for row, bad in zip(levels.first_row, infinite, strict=True) if bad)
        raise DataError(f"column {levels.name!r} has {int(counts[infinite].sum())} infinite values "
                        f"(first at data row {first})")


def _binary_map(levels: _Levels, pos_label: str | None, text: bool, counts: np.ndarray) -> tuple[np.ndarray, str]:
    """0/1 for each raw value of a binary label column, and the positive label: ``_binary``'s rules on values."""
    typed = _typed(levels, text)
    _check_finite(levels, typed, counts)
    distinct = list(dict.fromkeys(typed.values))
    if pos_label is not None:
        if len(distinct) > 2 or pos_label not in set(typed.texts):
            raise DataError(_not_binary(levels, pos_label, text))
        return np.array([t == pos_label for t in typed.texts], dtype=np.int64), pos_label
    if typed.kind == "bool":
        return np.array(typed.values, dtype=np.int64), "True"
    if typed.kind == "text" or not set(distinct) <= {0, 1}:
        raise DataError(_not_binary(levels, pos_label, text))
    return np.array(typed.values, dtype=np.float64).astype(np.int64), "1"


def _group_map(levels: _Levels, text: bool) -> tuple[tuple[str, ...], np.ndarray]:
    """Sorted group names (``str`` of the pandas-typed values) and each raw value's index among them."""
    names = _typed(levels, text).texts
    ordered = tuple(sorted(set(names)))
    position = {name: i for i, name in enumerate(ordered)}
    return ordered, np.array([position[name] for name in names], dtype=np.int64)


def _collapse(array: np.ndarray, axis: int, mapping: np.ndarray, size: int) -> np.ndarray:
    """Sum the entries of ``axis`` that ``mapping`` sends to the same index (``size`` of them)."""
    if np.array_equal(mapping, np.arange(size)):
        return array
    moved = np.moveaxis(array, axis, 0)
    out = np.zeros((size, *moved.shape[1:]), dtype=array.dtype)
    np.add.at(out, mapping, moved)
    return np.moveaxis(out, 0, axis)


def _resolve(*, task: PredictionTask, truth: _Levels, pred: _Levels | None, groups: list[_Levels], text: bool,
             pos_label: str | None, counts: _Accumulator,
             histogram: tuple[_Accumulator, _Accumulator, _Accumulator] | None,
             rows: int, source: str,
             score_range: tuple[float, float] | None, threshold: float | None,
             inputs: tuple[tuple[str, str], ...]) -> CountTable:
    """Give the raw values their meaning (types, groups, 0/1 labels) and fold the raw table into cells."""
    k = len(groups)
    sizes = [len(levels) for levels in groups]
    group_maps = [_group_map(levels, text) for levels in groups]
    levels = tuple(names for names, _ in group_maps)
    positive = ""
    calibration = score_histogram = None
    if task == "regression":
        cells = counts.result((*sizes, 3))
    else:
        psize = 2 if pred is None else len(pred)
        raw = counts.result((*sizes, len(truth), psize))
        by_truth = raw.sum(axis=tuple(i for i in range(raw.ndim) if i != k))
        by_pred = raw.sum(axis=tuple(i for i in range(raw.ndim) if i != k + 1))
        if task == "binary":
            t_map, positive = _binary_map(truth, pos_label, text, by_truth)
            p_map = np.arange(2) if pred is None else _binary_map(pred, pos_label, text, by_pred)[0]
            joint = _collapse(_collapse(raw, k, t_map, 2), k + 1, p_map, 2)  # (..., label, pred)
            cells = joint.reshape(*sizes, 4)  # tn, fp, fn, tp
            if histogram is not None:
                by_label = _collapse(histogram[0].result((*sizes, len(truth), CALIBRATION_BINS)), k, t_map, 2)
                # (..., label, bins) rows and (..., bins) score sums -> (..., bins, [rows, positives, score sum])
                calibration = np.stack([by_label.sum(axis=k), np.take(by_label, 1, axis=k),
                                        histogram[1].result((*sizes, CALIBRATION_BINS))], axis=-1).astype(np.float64)
                score_histogram = _collapse(histogram[2].result((*sizes, len(truth), AUC_BINS)), k, t_map, 2)
        else:  # multiclass: right where the label and the prediction read the same as text
            assert pred is not None
            t_typed, p_typed = _typed(truth, text), _typed(pred, text)
            _check_finite(truth, t_typed, by_truth)
            _check_finite(pred, p_typed, by_pred)
            t_text, p_text = np.array(t_typed.texts, dtype=object), np.array(p_typed.texts, dtype=object)
            right = (t_text[:, None] == p_text[None, :]) if len(t_text) and len(p_text) else np.zeros((0, 0), bool)
            cells = np.stack([np.where(right, 0, raw).sum(axis=(k, k + 1)),
                              np.where(right, raw, 0).sum(axis=(k, k + 1))], axis=-1)
    for axis, (names, mapping) in enumerate(group_maps):
        cells = _collapse(cells, axis, mapping, len(names))
        if calibration is not None:
            calibration = _collapse(calibration, axis, mapping, len(names))
        if score_histogram is not None:
            score_histogram = _collapse(score_histogram, axis, mapping, len(names))
    return CountTable(task=task, features=tuple(levels_.name for levels_ in groups), levels=levels, cells=cells,
                      calibration=calibration, rows=rows, source=source, positive_label=positive,
                      score_range=score_range, threshold=threshold, inputs=inputs, score_histogram=score_histogram)


# ----------------------------------------------------------------------------- reporting


def tabulate_counts(table: CountTable, *, seed: int = 0, n_boot: int = 1000, confidence: float = 0.95,
                    min_group_size: int | None = None, max_groups: int | None = None,
                    ) -> tuple[tuple[GroupTable, ...], GroupTable | None]:
    """:func:`~xai.fairness.group.tabulate` of a count table: the same tables the rows would give."""
    from xai.fairness.group import MAX_GROUPS, check_feature_sizes, check_options, group_table
    from xai.fairness.metrics import MIN_GROUP_SIZE, calibration_from_cells, frame_from_cells

    checked = check_options(n_boot=n_boot, confidence=confidence,
                            min_group_size=MIN_GROUP_SIZE if min_group_size is None else min_group_size,
                            max_groups=MAX_GROUPS if max_groups is None else max_groups)
    if table.task == "regression":
        checked["n_boot"] = 0  # the multinomial bootstrap resamples count cells; regression cells are sums
    check_feature_sizes(dict(zip(table.features, map(len, table.levels), strict=True)),
                        max_groups=checked["max_groups"], n_boot=checked["n_boot"], task=table.task,
                        calibration=table.calibration is not None)
    options = {"binary": table.task == "binary", "n_boot": checked["n_boot"], "confidence": checked["confidence"],
               "seed": seed, "min_group_size": checked["min_group_size"], "task": table.task}

    def one(feature: str | None) -> GroupTable:
        name, labels, cells, calibration = table.feature_cells(feature)
        frame = frame_from_cells(cells, feature=name, groups=labels, task=table.task,
                                 min_group_size=checked["min_group_size"])
        cal = calibration_from_cells(calibration, feature=name, groups=labels) if calibration is not None else None
        return group_table(None, None, None, name, frame=frame, calibration=cal, **options)  # type: ignore[arg-type]

    tables = tuple(one(feature) for feature in table.features)
    intersection = one(None) if len(table.features) >= 2 else None
    notes = table.notes
    if notes:
        tables = tuple(dataclasses.replace(t, warnings=(*notes, *t.warnings)) for t in tables)
        if intersection is not None:
            intersection = dataclasses.replace(intersection, warnings=(*notes, *intersection.warnings))
    return tables, intersection


def audit_counts(table: CountTable, *, seed: int = 0, n_boot: int = 1000, confidence: float = 0.95,
                 min_group_size: int | None = None, max_groups: int | None = None) -> FairnessResult:
    """The ``group-metrics`` probe's result for a count table (scanned, merged or loaded)."""
    from xai._provenance import Provenance
    from xai.fairness._base import FairnessResult
    from xai.fairness.metrics import DEFAULT_METRICS

    start = time.perf_counter()
    tables, intersection = tabulate_counts(table, seed=seed, n_boot=n_boot, confidence=confidence,
                                           min_group_size=min_group_size, max_groups=max_groups)
    return FairnessResult(
        probe="group-metrics",
        model=f"predictions ({table.source})",
        dataset=table.name,
        metric_names=DEFAULT_METRICS[table.task],
        tables=tables,
        intersection=intersection,
        positive_class=table.positive_label or None,
        notes=table.notes,
        provenance=Provenance(model_sha256="", data_sha256=table.sha256, seed=seed,
                              wall_seconds=round(time.perf_counter() - start, 4), device="cpu"),
    )
