"""Slice discovery: the intersections of up to three columns whose metric departs from the rest.

Every column is coded once (categories as they are, numbers cut into quantile bins), each
row's outcome is one cell of the engine's count table (``tn, fp, fn, tp`` for binary tasks,
``wrong, right`` for multiclass; see :mod:`xai.fairness._engine`), and every slice of up to
``max_order`` columns is then a row of a count table built with ``np.bincount``. The cost
is a few passes over the rows, independent of the number of slices:

- the ``r``-column combinations (``r = max_order``) are covered by *blocks* of columns whose
  joint table stays small (:func:`block_budget`: about an eighth of the rows, at most 2**21
  cells); one ``np.bincount`` per block
  over the block's combined codes gives the joint table, and every combination inside the
  block (and every smaller one) is a sum over the other axes of it. 20 columns of 4 to 5
  levels need about 40 passes instead of 1,350 (one per combination);
- each slice is tested against its complement (every other row), for each metric, against
  the null hypothesis ``|metric in slice - metric in rest| <= min_gap``; the p-value is the
  larger of two (:func:`slice_p_values`): the two-proportion z-test with the variance at the
  null (right for large slices, where the rest's own noise matters) and the exact binomial
  test of the slice's count against the rest's rate +- ``min_gap`` (right in the skewed tails
  of small slices, where a normal approximation gives p-values orders of magnitude too small
  and floods the findings with slices of 30 rows and no error). ``min_gap = 0`` gives the
  usual two-sided tests; a ``min_gap`` of a point keeps the diluted echoes of a real slice
  (its parents and the rest of the data, shifted by a fraction of a point) from counting as
  findings on large data;
- the p-values of every slice and metric together are adjusted with the Benjamini–Hochberg
  step-up procedure (1995); a finding is a slice with ``q <= alpha`` (the false-discovery
  rate is controlled at ``alpha`` under independence or positive dependence of the tests,
  and in practice for the nested slices tested here: see ``tests/fairness/test_slices.py``).

Slices with fewer than ``min_size`` rows (or whose metric's denominator is empty in the
slice or in the rest) are not tested and do not count in the adjustment.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from xai._provenance import Provenance, sha256_array
from xai._results import to_jsonable
from xai.errors import DataError, UnknownNameError
from xai.fairness._base import GroupTable, Probe, ProbeOptions, register_probe
from xai.fairness._engine import as_binary, check_finite

if TYPE_CHECKING:
    from xai.datasets import Dataset  # torch: only a model audit has a Dataset

__all__ = [
    "BLOCK_CELLS",
    "PROPORTIONS",
    "SliceFinding",
    "SliceResult",
    "SliceDiscovery",
    "SlicePlan",
    "benjamini_hochberg",
    "block_budget",
    "discover_slices",
    "findings_from_tables",
    "encode_columns",
    "plan_blocks",
    "slice_p_values",
]

#: Largest joint count table (cells) one pass builds; 2**19 int64 cells are 4 MiB (in cache).
BLOCK_CELLS = 1 << 19
#: Rows per chunk of a pass (the combined codes of a chunk are 1 MiB).
_CHUNK = 1 << 18
_MISSING = "(missing)"
_OTHER = "(other)"

#: Each proportion metric as (numerator cells, denominator cells) of the engine's cell layout.
PROPORTIONS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "binary": {
        "error_rate": (("fp", "fn"), ("tn", "fp", "fn", "tp")),
        "accuracy": (("tn", "tp"), ("tn", "fp", "fn", "tp")),
        "selection_rate": (("fp", "tp"), ("tn", "fp", "fn", "tp")),
        "true_positive_rate": (("tp",), ("fn", "tp")),
        "false_negative_rate": (("fn",), ("fn", "tp")),
        "false_positive_rate": (("fp",), ("tn", "fp")),
        "true_negative_rate": (("tn",), ("tn", "fp")),
        "precision": (("tp",), ("fp", "tp")),
    },
    "multiclass": {
        "error_rate": (("wrong",), ("wrong", "right")),
        "accuracy": (("right",), ("wrong", "right")),
    },
}
_CELLS = {"binary": ("tn", "fp", "fn", "tp"), "multiclass": ("wrong", "right")}


# ----------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class CodedColumn:
    """One column as small integer codes and the description of each level."""

    name: str
    codes: np.ndarray
    levels: tuple[str, ...]
    #: ``category`` (levels as they are) or ``quantile`` (numeric bins).
    kind: str

    def describe(self, level: int) -> str:
        """``sex = Female`` or ``age in [25, 33)``."""
        text = self.levels[level]
        return f"{self.name} {text}" if self.kind == "quantile" and text != _MISSING else f"{self.name} = {text}"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _small_codes(codes: np.ndarray, levels: int) -> np.ndarray:
    return codes.astype(np.uint8 if levels <= 255 else np.uint16)


class Distribution:
    """The sorted present values of a numeric column, through its order statistics.

    Built from the values, from distinct values with their counts, or from the few order
    statistics a streamed scan selected (:mod:`xai.fairness.slice_scan`); each gives the same
    quantiles as :func:`numpy.quantile` (linear) of the whole column, so a column streamed
    batch by batch is binned exactly as the column in memory.

    Examples
    --------
    >>> values = np.array([3.0, 1.0, 1.0, 7.0, 2.0])
    >>> counted = Distribution.from_counts(np.array([1.0, 2.0, 3.0, 7.0]), np.array([2, 1, 1, 1]))
    >>> bool(np.array_equal(counted.quantile(np.array([0.3, 0.5])), np.quantile(values, [0.3, 0.5])))
    True
    """

    def __init__(self, size: int, value_at: Callable[[np.ndarray], np.ndarray], low_count: int,
                 values: np.ndarray | None = None) -> None:
        self.size = size
        self._value_at = value_at  # sorted values at 0-based ranks
        self._low_count = low_count  # rows holding the minimum
        self._values = values

    @classmethod
    def of_values(cls, values: np.ndarray) -> Distribution:
        """The present values themselves (quantiles by numpy)."""
        low = values.min()
        return cls(values.size, lambda ranks: np.sort(values)[ranks], int(np.count_nonzero(values == low)), values)

    @classmethod
    def from_counts(cls, distinct: np.ndarray, counts: np.ndarray) -> Distribution:
        """Sorted distinct values and how many rows hold each."""
        ends = np.cumsum(counts)
        return cls(int(ends[-1]), lambda ranks: distinct[np.searchsorted(ends, ranks, side="right")], int(counts[0]))

    @classmethod
    def from_ranks(cls, size: int, ranked: Mapping[int, float], low_count: int) -> Distribution:
        """Only the order statistics :func:`needed_ranks` names (``rank -> value``)."""
        return cls(size, lambda ranks: np.array([ranked[int(r)] for r in ranks], dtype=np.float64), low_count)

    @property
    def low(self) -> float:
        return float(self._value_at(np.array([0]))[0])

    @property
    def high(self) -> float:
        return float(self._value_at(np.array([self.size - 1]))[0])

    def quantile(self, q: np.ndarray) -> np.ndarray:
        if self._values is not None:
            return np.asarray(np.quantile(self._values, q))
        # numpy's linear quantile reads the two order statistics around (n - 1) q and interpolates
        # between them by the fraction; np.quantile of those two values at that fraction is the same
        # floating-point operation
        below, fraction = quantile_positions(q, self.size)
        first = self._value_at(below)
        second = self._value_at(np.minimum(below + 1, self.size - 1))
        return np.array([np.quantile([a, b], g) for a, b, g in zip(first, second, fraction, strict=True)])

    def above_low(self) -> Distribution | None:
        """The values above the minimum (None if every value is the minimum)."""
        if self._low_count >= self.size:
            return None
        if self._values is not None:
            return Distribution.of_values(self._values[self._values > self._values.min()])
        offset = self._low_count
        # low_count 1: quantile_edges never asks the upper part for its own above_low
        return Distribution(self.size - offset, lambda ranks: self._value_at(np.asarray(ranks) + offset), 1)


def quantile_positions(q: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower 0-based rank and fraction of numpy's linear quantile among ``size`` sorted values."""
    position = np.asarray(q, dtype=np.float64) * (size - 1)
    below = np.floor(position)
    return below.astype(np.int64), position - below


def needed_ranks(size: int, low_count: int, n_bins: int) -> set[int]:
    """The order statistics :func:`quantile_edges` reads from ``size`` values whose minimum ``low_count`` rows hold."""
    ranks = {0, size - 1}
    parts = [(0, size, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])]
    if low_count < size:
        parts.append((low_count, size - low_count, np.linspace(0.0, 1.0, n_bins)[1:-1]))
        ranks.update({low_count, min(low_count + 1, size - 1)})
    for offset, count, q in parts:
        below, _ = quantile_positions(q, count)
        ranks.update(int(r) + offset for r in below)
        ranks.update(int(min(r + 1, count - 1)) + offset for r in below)
    return ranks


def quantile_edges(present: Distribution, n_bins: int) -> np.ndarray:
    """Inner bin edges of a numeric column's present values: its quantiles, or a bin for a dominant value."""
    inner = present.quantile(np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    edges = np.unique(inner[(inner > present.low) & (inner <= present.high)])
    upper = present.above_low()
    if edges.size == 0 and upper is not None:
        # one value holds most rows (a capital gain of 0): it is a bin, the other values share the rest
        edges = np.unique([upper.low, *upper.quantile(np.linspace(0.0, 1.0, n_bins)[1:-1])])
    return edges


def bin_levels(edges: np.ndarray) -> list[str]:
    """The description of each bin of ``np.searchsorted(edges, x, side="right")``."""
    bounds = [-math.inf, *edges.tolist(), math.inf]
    levels = []
    for low, high in itertools.pairwise(bounds):
        if low == -math.inf:
            levels.append(f"< {_fmt(high)}" if high != math.inf else "(any)")
        elif high == math.inf:
            levels.append(f">= {_fmt(low)}")
        else:
            levels.append(f"in [{_fmt(low)}, {_fmt(high)})")
    return levels


def _encode_numeric(name: str, values: np.ndarray, n_bins: int) -> CodedColumn:
    missing = np.isnan(values)
    present = values[~missing]
    if present.size == 0:
        return CodedColumn(name, np.zeros(values.shape, np.uint8), (_MISSING,), "category")
    edges = quantile_edges(Distribution.of_values(present), n_bins)
    codes = np.searchsorted(edges, values, side="right")  # bin i holds [edge_{i-1}, edge_i)
    levels = bin_levels(edges)
    if missing.any():
        codes = np.where(missing, len(levels), codes)
        levels.append(_MISSING)
    return CodedColumn(name, _small_codes(codes, len(levels)), tuple(levels), "quantile")


def _encode_category(name: str, values: Any, max_levels: int) -> CodedColumn:
    codes, uniques = pd.factorize(values, sort=True)  # -1 marks a missing value
    labels = [str(u) for u in uniques]
    if (codes < 0).any():
        codes = np.where(codes < 0, len(labels), codes)
        labels.append(_MISSING)
    if len(labels) > max_levels:
        # the rarest levels cannot make a large slice: pool them so the tables stay small
        counts = np.bincount(codes, minlength=len(labels))
        keep = np.sort(np.argsort(-counts, kind="stable")[: max_levels - 1])
        remap = np.full(len(labels), max_levels - 1)
        remap[keep] = np.arange(len(keep))
        codes = remap[codes]
        labels = [labels[i] for i in keep] + [_OTHER]
    return CodedColumn(name, _small_codes(codes, len(labels)), tuple(labels), "category")


def encode_columns(columns: Mapping[str, Any], *, n_bins: int = 4, max_levels: int = 32) -> list[CodedColumn]:
    """Code each column: numbers with more than ``n_bins`` values in quantile bins, others as categories.

    Missing values are a level of their own (``(missing)``); a categorical column with more
    than ``max_levels`` levels keeps its ``max_levels - 1`` most frequent ones and pools the
    rest as ``(other)``.
    """
    coded = []
    for name, raw in columns.items():
        values = raw.reset_index(drop=True) if isinstance(raw, pd.Series) else pd.Series(raw)  # keeps categoricals
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if numeric:
            array = values.to_numpy(np.float64, na_value=np.nan)
            if np.isinf(array).any():
                raise DataError(f"slice column {name!r} has infinite values")
            head = array[:65536]  # a few distinct values among the first rows: count them all
            if pd.unique(head[~np.isnan(head)]).size > n_bins or pd.unique(array[~np.isnan(array)]).size > n_bins:
                coded.append(_encode_numeric(str(name), array, n_bins))
                continue
        coded.append(_encode_category(str(name), values, max_levels))
    return coded


# ----------------------------------------------------------------------------- blocks


def plan_blocks(levels: Sequence[int], order: int, cells: int, budget: int = BLOCK_CELLS) -> list[tuple[int, ...]]:
    """Blocks of columns whose joint tables together contain every ``order``-column combination.

    Greedy cover: a block starts from the first combination not yet covered and takes, one
    by one, the column that completes most uncovered combinations while the block's table
    (product of its levels times ``cells``) stays within ``budget``. A combination whose own
    table exceeds the budget is a block by itself.

    Examples
    --------
    >>> plan_blocks([2, 2, 2, 2], order=2, cells=4, budget=64)
    [(0, 1, 2, 3)]
    >>> len(plan_blocks([5] * 20, order=3, cells=4)) < 1140 // 10  # blocks, not one pass per triple
    True
    """
    k = len(levels)
    order = min(order, k)
    uncovered = set(itertools.combinations(range(k), order))
    blocks: list[tuple[int, ...]] = []
    while uncovered:
        block = list(min(uncovered))
        size = math.prod(levels[i] for i in block) * cells
        while True:
            best, best_gain = -1, 0
            for j in range(k):
                if j in block or size * levels[j] > budget:
                    continue
                gain = sum(1 for rest in itertools.combinations(block, order - 1)
                           if tuple(sorted((*rest, j))) in uncovered)
                if gain > best_gain:
                    best, best_gain = j, gain
            if best < 0:
                break
            block.append(best)
            size *= levels[best]
        block.sort()
        uncovered.difference_update(itertools.combinations(block, order))
        blocks.append(tuple(block))
    return blocks


@dataclass(frozen=True)
class SlicePlan:
    """The passes of one discovery: blocks and which combinations each block yields."""

    blocks: tuple[tuple[int, ...], ...]
    #: Per block, the combinations (of every order up to ``max_order``) read from its table.
    combos: tuple[tuple[tuple[int, ...], ...], ...]


def _plan(levels: Sequence[int], max_order: int, cells: int, budget: int) -> SlicePlan:
    blocks = plan_blocks(levels, max_order, cells, budget)
    seen: set[tuple[int, ...]] = set()
    combos = []
    for block in blocks:
        mine = []
        for r in range(1, min(max_order, len(block)) + 1):
            for combo in itertools.combinations(block, r):
                if combo not in seen:
                    seen.add(combo)
                    mine.append(combo)
        combos.append(tuple(mine))
    return SlicePlan(tuple(blocks), tuple(combos))


def _block_table(columns: Sequence[CodedColumn], block: Sequence[int], cell: np.ndarray, n_cells: int) -> np.ndarray:
    """Joint count table ``(L_1, ..., L_k, cells)`` of the block's columns, in chunks of rows."""
    shape = [len(columns[i].levels) for i in block] + [n_cells]
    size = math.prod(shape)
    table = np.zeros(size, dtype=np.int64)
    n = cell.shape[0]
    # int32 codes (a table is far below 2**31 cells) in cache-sized chunks: the pass is memory-bound
    buffer = np.empty(min(n, _CHUNK), dtype=np.int32 if size < 2**31 else np.int64)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        code = buffer[: stop - start]
        code[:] = 0
        for i in block:
            code *= len(columns[i].levels)
            code += columns[i].codes[start:stop]
        code *= n_cells
        code += cell[start:stop]
        table += np.bincount(code, minlength=size)
    return table.reshape(shape)


class _Marginals:
    """Marginal tables of one block's joint table, each summed from a cached parent over one axis.

    The parent of a kept set of axes adds back its largest missing axis, so the first sums run
    over the outer axes of the joint table (contiguous rows) and the intermediate tables are
    shared by the combinations below them: about ``k`` full-table passes per block instead of
    one per combination.
    """

    def __init__(self, table: np.ndarray) -> None:
        self._k = table.ndim - 1  # the last axis holds the cells
        self._cache: dict[tuple[int, ...], np.ndarray] = {tuple(range(self._k)): table}

    def __call__(self, keep: tuple[int, ...]) -> np.ndarray:
        keep = tuple(sorted(keep))
        found = self._cache.get(keep)
        if found is None:
            added = max(a for a in range(self._k) if a not in keep)
            parent = tuple(sorted((*keep, added)))
            found = self(parent).sum(axis=parent.index(added))
            self._cache[keep] = found
        return found


def block_budget(rows: int) -> int:
    """Cells of a block's table for ``rows`` rows: about an eighth of the rows, within [2**10, 2**21].

    Bigger blocks mean fewer passes over the rows but more work per combination (a sum over
    the block's table); the balance moves with the number of rows.
    """
    return int(min(max(1 << max(rows // 8, 1).bit_length(), 1 << 10), 1 << 21))


# ----------------------------------------------------------------------------- statistics


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values): ``min_{j >= i} p_(j) m / j``, at most 1.

    Equal to ``scipy.stats.false_discovery_control(p, method="bh")``.

    Examples
    --------
    >>> benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5])).round(4).tolist()
    [0.04, 0.0533, 0.0533, 0.5]
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    q = np.empty(m)
    q[order] = q_sorted
    return q


def slice_p_values(events: np.ndarray, trials: np.ndarray, rest_events: np.ndarray, rest_trials: np.ndarray,
                   min_gap: float = 0.0) -> np.ndarray:
    """Two-sided p-values of the null ``|p_slice - p_rest| <= min_gap``: the larger of two tests.

    With ``d = x_s / n_s - x_r / n_r`` and the slice's rate under the null ``p0 = p_rest +- min_gap``
    (on the side of ``d``):

    - the two-proportion z-test with the variance at the null,
      ``z = (|d| - min_gap) / sqrt(p0 (1 - p0) / n_s + p_r (1 - p_r) / n_r)``, ``p = 2 Phi(-z)``:
      it counts the rest's own noise (large slices);
    - the exact binomial test of the slice's count against ``p0`` (``2 P(X >= x_s)`` or
      ``2 P(X <= x_s)`` for ``X ~ Bin(n_s, p0)``): it is exact in the skewed tails of small
      slices, where the normal approximation gives p-values far too small.

    Rates are kept ``1 / (2 (n_r + 1))`` away from 0 and 1 so a rest without events still
    has a variance. ``min_gap = 0`` gives the usual two-sided tests.

    Examples
    --------
    No event in 39 rows where the rest has 20%: the binomial test gives ``2 * 0.8**39 = 0.00033``,
    the z-test ``2 Phi(-0.2 / sqrt(0.16 / 39 + 0.16 / 2000)) = 0.00198``; the larger counts.

    >>> float(slice_p_values(np.array([0]), np.array([39]), np.array([400]), np.array([2000]))[0].round(5))
    0.00198
    """
    from scipy.special import bdtr, bdtrc, ndtr

    k1, m1 = np.asarray(events, np.int64), np.asarray(trials, np.int64)  # scipy's bdtr wants integer n
    x1, n1 = k1.astype(np.float64), m1.astype(np.float64)
    x2, n2 = np.asarray(rest_events, np.float64), np.asarray(rest_trials, np.float64)
    d = x1 / n1 - x2 / n2
    eps = 0.5 / (n2 + 1)
    rest = np.clip(x2 / n2, eps, 1 - eps)
    up, low = np.clip(rest + min_gap, eps, 1 - eps), np.clip(rest - min_gap, eps, 1 - eps)
    with np.errstate(invalid="ignore"):
        upper = np.where(k1 > 0, bdtrc(np.maximum(k1 - 1, 0), m1, up), 1.0)  # P(X >= x1), X ~ Bin(n1, up)
        lower = bdtr(k1, m1, low)  # P(X <= x1), X ~ Bin(n1, low)
    exact = np.minimum(2 * np.minimum(upper, lower), 1.0)
    null_rate = np.where(d >= 0, up, low)
    se = np.sqrt(null_rate * (1 - null_rate) / n1 + rest * (1 - rest) / n2)
    normal = np.minimum(2 * ndtr(-(np.abs(d) - min_gap) / se), 1.0)
    return np.maximum(exact, normal)


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SliceFinding:
    """One slice whose metric departs from the rest of the rows."""

    description: str
    conditions: tuple[tuple[str, str], ...]
    metric: str
    size: int
    support: float
    value: float
    rest_value: float
    difference: float
    p_value: float
    q_value: float
    #: Rows in the metric's denominator (e.g. the negatives for the false positive rate), slice and rest.
    trials: int
    rest_trials: int


@dataclass(frozen=True)
class SliceResult:
    """Ranked slices of one model's or one file's predictions.

    Findings come strongest first: by the low end of a 95% Wald interval of ``|difference|``,
    so a slice outranks the noisier small slices inside it.

    Shaped like a fairness result without group tables, so the audit runner, the metric
    namespace (``fairness.slices.count_significant``) and the report take it as they take
    the other probes.
    """

    probe: str
    model: str
    dataset: str
    columns: tuple[str, ...]
    levels: dict[str, tuple[str, ...]]
    metric_names: tuple[str, ...]
    rows: int
    overall: dict[str, float]
    n_tested: int
    #: Distinct findings per metric (q <= alpha), without the redundant ones.
    n_significant: dict[str, int]
    #: Significant slices left out (``prune``): the same rows as a simpler finding inside their
    #: conditions, or no different from the rest of a significant parent with one condition fewer.
    n_redundant: int
    findings: tuple[SliceFinding, ...]
    alpha: float
    min_gap: float
    min_size: int
    max_order: int
    n_bins: int
    test: str
    provenance: Provenance
    notes: tuple[str, ...] = ()
    positive_class: str | None = None
    tables: tuple[GroupTable, ...] = ()
    intersection: GroupTable | None = None
    rankings: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def count_significant(self) -> int:
        """Distinct slices (over every metric) with ``q <= alpha``."""
        return int(sum(self.n_significant.values()))

    @property
    def values(self) -> dict[str, float]:
        """The gateable numbers (shown as the probe's named numbers where no slice table is rendered)."""
        return self.metrics()

    def metrics(self) -> dict[str, float]:
        """``count_significant``, ``max_abs_difference``, ``n_tested`` and ``<metric>.count_significant``."""
        out = {
            "count_significant": float(self.count_significant),
            "max_abs_difference": max((abs(f.difference) for f in self.findings), default=0.0),
            "n_tested": float(self.n_tested),
        }
        for name, count in self.n_significant.items():
            out[f"{name}.count_significant"] = float(count)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with the gateable metrics."""
        document = to_jsonable(self)
        document["metrics"] = to_jsonable(self.metrics())
        return document


# ----------------------------------------------------------------------------- discovery


def _outcome_cells(y_true: Any, y_pred: Any, task: str, pos_label: Any) -> np.ndarray:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.ndim != 1 or p.shape != t.shape:
        raise DataError(f"y_true {t.shape} and y_pred {p.shape} must be 1-D of the same length")
    if task == "binary":
        return (as_binary(t, pos_label=pos_label, what="y_true") * 2
                + as_binary(p, pos_label=pos_label, what="y_pred")).astype(np.int8)
    check_finite(t, "y_true")
    check_finite(p, "y_pred")
    return (t == p).astype(np.int8)


def check_slice_options(*, metrics: Sequence[str], task: str, max_order: int, alpha: float, min_gap: float,
                        min_size: int, n_bins: int, max_levels: int) -> None:
    """One-line :class:`DataError` for each bad option (before any pass over the rows)."""
    if task not in PROPORTIONS:
        raise DataError(f"slice discovery applies to binary and multiclass tasks, not {task}")
    if not metrics:
        raise DataError("name at least one slice metric")
    for name in metrics:
        if name not in PROPORTIONS[task]:
            raise UnknownNameError(f"slice metric for {task} tasks", name, PROPORTIONS[task])
    if not 1 <= max_order <= 3:
        raise DataError(f"max_order must be 1, 2 or 3, got {max_order}")
    if not 0 < alpha < 1:
        raise DataError(f"alpha must be strictly between 0 and 1, got {alpha}")
    if not 0 <= min_gap < 1:
        raise DataError(f"min_gap must be in [0, 1), got {min_gap}")
    if min_size < 1:
        raise DataError(f"min_size must be at least 1, got {min_size}")
    if not 2 <= n_bins <= 64:
        raise DataError(f"n_bins must be between 2 and 64, got {n_bins}")
    if not 2 <= max_levels <= 255:
        raise DataError(f"max_levels must be between 2 and 255, got {max_levels}")


def discover_slices(y_true: Any, y_pred: Any, columns: Mapping[str, Any], *,
                    metrics: Sequence[str] = ("error_rate",), task: str = "binary", pos_label: Any = 1,
                    max_order: int = 3, alpha: float = 0.05, min_gap: float = 0.01, min_size: int = 30,
                    n_bins: int = 4, max_levels: int = 32, max_findings: int = 100,
                    model: str = "predictions", dataset: str = "", model_sha256: str = "",
                    data_sha256: str | None = None, seed: int = 0, positive_class: str | None = None,
                    notes: Sequence[str] = (), block_cells: int | None = None, prune: bool = True) -> SliceResult:
    """Every slice of up to ``max_order`` of ``columns`` tested against the rest; BH-adjusted findings.

    Parameters
    ----------
    y_true, y_pred
        ``(N,)`` labels and predictions (0/1, or ``pos_label``, for binary tasks).
    columns
        ``{name: (N,) values}``: sensitive attributes and any other columns to slice by.
    metrics
        Proportion metrics to test (:data:`PROPORTIONS`): ``error_rate``, ``accuracy``,
        ``selection_rate``, ``false_positive_rate``, ``false_negative_rate`` ...
    alpha
        False-discovery rate of the Benjamini–Hochberg procedure over every tested slice and metric.
    min_gap
        Differences of at most this much are the null hypothesis (0: any difference counts).
    min_size
        Slices with fewer rows are not tested.
    n_bins
        Quantile bins of a numeric column (with more distinct values than that).
    prune
        Leave out a finding with the same rows as a simpler finding inside its conditions, or
        whose rate does not differ (two-sided, at ``alpha``) from the rest of a significant
        parent with one condition fewer; they are counted in ``n_redundant``, not in
        ``count_significant``.

    Examples
    --------
    >>> y = np.array([0, 1] * 100)
    >>> pred = y.copy()
    >>> pred[:40] = 1 - pred[:40]          # errors only among the first 40 rows
    >>> group = np.array(["a"] * 40 + ["b"] * 160)
    >>> found = discover_slices(y, pred, {"group": group}, min_size=10)
    >>> sorted((f.description, f.value, f.rest_value) for f in found.findings)
    [('group = a', 1.0, 0.0), ('group = b', 0.0, 1.0)]
    """
    start = time.perf_counter()
    check_slice_options(metrics=metrics, task=task, max_order=max_order, alpha=alpha, min_gap=min_gap,
                        min_size=min_size, n_bins=n_bins, max_levels=max_levels)
    if not columns:
        raise DataError("name at least one column to slice by")
    cell = _outcome_cells(y_true, y_pred, task, pos_label)
    n = cell.shape[0]
    if n == 0:
        raise DataError("no rows to slice")
    for name, values in columns.items():
        if len(values) != n:
            raise DataError(f"slice column {name!r} has {len(values)} rows, the predictions {n}")
    coded_all = encode_columns(columns, n_bins=n_bins, max_levels=max_levels)
    coded, constant = split_constant(coded_all)
    n_cells = len(_CELLS[task])
    plan = _plan([len(c.levels) for c in coded], max_order, n_cells, block_cells or block_budget(n))
    tables = (_block_table(coded, block, cell, n_cells) for block in plan.blocks)
    if data_sha256 is None:
        data_sha256 = sha256_array(cell, *(c.codes for c in coded))
    return findings_from_tables(
        coded, constant, plan, tables, np.bincount(cell, minlength=n_cells).astype(np.int64), start=start,
        metrics=metrics, task=task, alpha=alpha, min_gap=min_gap, min_size=min_size, max_order=max_order,
        n_bins=n_bins, max_findings=max_findings, prune=prune, model=model, dataset=dataset,
        model_sha256=model_sha256, data_sha256=data_sha256, seed=seed, positive_class=positive_class,
        notes=notes)


def split_constant(coded: Sequence[CodedColumn]) -> tuple[list[CodedColumn], list[str]]:
    """The columns with at least two levels, and the names of the others; none to slice by is an error."""
    kept = [c for c in coded if len(c.levels) > 1]
    constant = [c.name for c in coded if len(c.levels) < 2]
    if not kept:
        raise DataError(f"every slice column has a single value: {', '.join(constant)}")
    return kept, constant


def findings_from_tables(coded: Sequence[CodedColumn], constant: Sequence[str], plan: SlicePlan,
                         tables: Iterable[np.ndarray], total: np.ndarray, *, start: float,
                         metrics: Sequence[str], task: str, alpha: float, min_gap: float, min_size: int,
                         max_order: int, n_bins: int, max_findings: int, prune: bool, model: str, dataset: str,
                         model_sha256: str, data_sha256: str, seed: int, positive_class: str | None,
                         notes: Sequence[str]) -> SliceResult:
    """Test every slice of the plan's joint tables (one per block, in order) and rank the findings.

    ``total`` counts the rows per outcome cell. The tables may come from rows in memory
    (:func:`discover_slices`) or from a file streamed batch by batch (:mod:`xai.fairness.slice_scan`).
    """
    cell_names = _CELLS[task]
    n_cells = len(cell_names)
    n = int(total.sum())
    index = {c: i for i, c in enumerate(cell_names)}
    selectors = {m: ([index[c] for c in PROPORTIONS[task][m][0]], [index[c] for c in PROPORTIONS[task][m][1]])
                 for m in metrics}

    # every testable (slice, metric): counts, and where it came from
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("x", "t", "size", "metric", "combo", "cell")}
    combos: list[tuple[int, ...]] = []
    for block, block_combos, table in zip(plan.blocks, plan.combos, tables, strict=True):
        marginal = _Marginals(table)
        for combo in block_combos:
            flat = marginal(tuple(block.index(col) for col in combo)).reshape(-1, n_cells)  # (slices, cells)
            size = flat.sum(axis=1)
            combo_id = len(combos)
            combos.append(combo)
            for m_id, name in enumerate(metrics):
                num, den = selectors[name]
                x, t = flat[:, num].sum(axis=1), flat[:, den].sum(axis=1)
                rest_t = total[den].sum() - t
                keep = np.flatnonzero((size >= min_size) & (t > 0) & (rest_t > 0))
                parts["x"].append(x[keep])
                parts["t"].append(t[keep])
                parts["size"].append(size[keep])
                parts["metric"].append(np.full(keep.size, m_id))
                parts["combo"].append(np.full(keep.size, combo_id))
                parts["cell"].append(keep)
    arrays = {k: (np.concatenate(v) if v else np.zeros(0, np.int64)) for k, v in parts.items()}
    totals_x = np.array([total[selectors[m][0]].sum() for m in metrics], dtype=np.int64)
    totals_t = np.array([total[selectors[m][1]].sum() for m in metrics], dtype=np.int64)
    x, t, metric_ids = arrays["x"], arrays["t"], arrays["metric"].astype(np.intp)
    rest_x, rest_t = totals_x[metric_ids] - x, totals_t[metric_ids] - t
    p_values = slice_p_values(x, t, rest_x, rest_t, min_gap)
    q_values = benjamini_hochberg(p_values)
    significant = q_values <= alpha
    value = x / np.maximum(t, 1)
    rest_value = rest_x / np.maximum(rest_t, 1)
    difference = value - rest_value
    chosen = np.flatnonzero(significant)
    # rank by the low end of a 95% interval of |difference|: a small slice inside a real one has the
    # same gap, measured more noisily, and must not outrank it
    value_c, rest_c = value[chosen], rest_value[chosen]
    se = np.sqrt(value_c * (1 - value_c) / t[chosen] + rest_c * (1 - rest_c) / rest_t[chosen])
    strength = np.abs(difference[chosen]) - 1.96 * se
    order = np.array([len(combos[int(c)]) for c in arrays["combo"][chosen]], dtype=np.int64)
    chosen = chosen[np.lexsort((order, q_values[chosen], -strength))]
    findings: list[SliceFinding] = []
    kept = np.zeros(metric_ids.shape, dtype=bool)
    parts_of: dict[int, frozenset[tuple[int, int]]] = {}
    for i in chosen:
        combo = combos[int(arrays["combo"][i])]
        level_ids = np.unravel_index(int(arrays["cell"][i]), [len(coded[c].levels) for c in combo])
        parts_of[int(i)] = frozenset((c, int(lv)) for c, lv in zip(combo, level_ids, strict=True))
    significant_counts = {(int(metric_ids[i]), parts_of[int(i)]): (int(x[i]), int(t[i])) for i in chosen}
    # a slice with exactly the rows and counts of a simpler finding inside its conditions says nothing new
    seen: dict[tuple[int, int, int, int], list[frozenset[tuple[int, int]]]] = {}
    for i in chosen:
        combo = combos[int(arrays["combo"][i])]
        level_ids = np.unravel_index(int(arrays["cell"][i]), [len(coded[c].levels) for c in combo])
        key = (int(metric_ids[i]), int(arrays["size"][i]), int(x[i]), int(t[i]))
        parts_set = parts_of[int(i)]
        if prune and (any(prior <= parts_set for prior in seen.get(key, ()))
                      or _subsumed(parts_set, int(metric_ids[i]), int(x[i]), int(t[i]), significant_counts, alpha)):
            continue
        seen.setdefault(key, []).append(parts_set)
        kept[i] = True
        if len(findings) >= max_findings:
            continue
        conditions = tuple((coded[c].name, coded[c].levels[int(lv)]) for c, lv in zip(combo, level_ids, strict=True))
        description = " & ".join(coded[c].describe(int(lv)) for c, lv in zip(combo, level_ids, strict=True))
        findings.append(SliceFinding(
            description=description, conditions=conditions, metric=metrics[metric_ids[i]],
            size=int(arrays["size"][i]), support=float(arrays["size"][i] / n), value=float(value[i]),
            rest_value=float(rest_value[i]), difference=float(difference[i]), p_value=float(p_values[i]),
            q_value=float(q_values[i]), trials=int(t[i]), rest_trials=int(rest_t[i])))
    n_significant = {name: int(np.count_nonzero(kept & (metric_ids == m_id))) for m_id, name in enumerate(metrics)}
    n_redundant = int(np.count_nonzero(significant)) - int(np.count_nonzero(kept))
    overall = {name: float(totals_x[m] / totals_t[m]) if totals_t[m] else math.nan for m, name in enumerate(metrics)}
    extra = []
    if constant:
        extra.append(f"not sliced (a single value or bin): {', '.join(constant)}")
    if sum(n_significant.values()) > max_findings:
        extra.append(f"{sum(n_significant.values()):,} significant slices; the {max_findings} strongest "
                     "are listed")
    return SliceResult(
        probe="slices", model=model, dataset=dataset, columns=tuple(c.name for c in coded),
        levels={c.name: c.levels for c in coded}, metric_names=tuple(metrics), rows=int(n), overall=overall,
        n_tested=int(p_values.size), n_significant=n_significant, n_redundant=n_redundant,
        findings=tuple(findings), alpha=float(alpha),
        min_gap=float(min_gap), min_size=int(min_size), max_order=int(max_order), n_bins=int(n_bins),
        test=("slice against the rest, null |difference| <= min_gap: the larger p-value of the two-proportion "
              "z-test (variance at the null) and the exact binomial test of the slice's count; "
              "Benjamini-Hochberg q-values over every tested slice and metric"),
        provenance=Provenance(model_sha256=model_sha256, data_sha256=data_sha256, seed=seed,
                              wall_seconds=round(time.perf_counter() - start, 4), device="cpu"),
        notes=(*notes, *extra), positive_class=positive_class)


def _subsumed(parts: frozenset[tuple[int, int]], metric: int, x: int, t: int,
              significant: Mapping[tuple[int, frozenset[tuple[int, int]]], tuple[int, int]], alpha: float) -> bool:
    """Whether a finding adds nothing to a significant parent (one condition fewer) of the same metric.

    The child is compared with the rest of its parent (the parent's rows outside it, same
    test, no gap): a child no different from the rest of its parent is the parent's effect
    seen in a smaller, noisier slice (the winner's curse would otherwise rank the luckiest
    of a real slice's children above it). A planted slice inside a parent that is only
    diluted by it differs from the rest of that parent, so it stays.
    """
    if len(parts) < 2:
        return False
    for part in parts:
        parent = significant.get((metric, parts - {part}))
        if parent is None:
            continue
        rest_x, rest_t = parent[0] - x, parent[1] - t
        if rest_t <= 0:
            return True  # the same rows as the parent
        p = slice_p_values(np.array([x]), np.array([t]), np.array([rest_x]), np.array([rest_t]))[0]
        if p > alpha:
            return True
    return False


# ----------------------------------------------------------------------------- sources


def dataset_columns(data: Dataset, sensitive: Sequence[str], extra: Sequence[str] | None) -> dict[str, Any]:
    """Sensitive columns of ``data.groups`` and input columns of a tabular dataset, decoded from ``data.x``.

    ``extra`` ``None`` takes every input column of a tabular dataset (a one-hot block is read
    back as its category; a numeric input keeps the model's input scale, e.g. standardised);
    a list names them.
    """
    out: dict[str, Any] = {c: data.groups[c].astype(str).to_numpy() for c in sensitive}
    feature_columns = tuple(getattr(data, "feature_columns", ()) or ())
    if not feature_columns or data.modality not in ("tabular", "state"):
        if extra:
            raise DataError(f"{data.name} has no input columns to slice by; name sensitive columns only")
        return out
    names = list(dict.fromkeys(feature_columns))
    wanted = names if extra is None else list(extra)
    for column in wanted:
        if column not in names:
            raise UnknownNameError("input column", column, names)
        if column in out:
            continue
        idx = [j for j, c in enumerate(feature_columns) if c == column]
        block = data.x[:, idx].detach().cpu().numpy().astype(np.float64)
        if len(idx) == 1:
            out[column] = block[:, 0]
        else:  # one-hot: the level named after "=" in the feature name; no hot input -> unseen level
            labels = np.array([data.feature_names[j].partition("=")[2] or data.feature_names[j] for j in idx] +
                              ["(unseen)"], dtype=object)
            hot = np.where(block.max(axis=1) > 0, block.argmax(axis=1), len(idx))
            out[column] = labels[hot]
    return out


@register_probe("slices")
class SliceDiscovery(Probe):
    """Slice discovery: intersections of up to 3 columns whose error (or other) rate departs from the rest.

    Every slice of up to ``max_order`` columns (the sensitive columns and, for tabular data,
    the model's input columns, numbers in ``n_bins`` quantile bins) with at least
    ``min_size`` rows is tested against the other rows (null ``|difference| <= min_gap``; the
    larger p-value of a two-proportion z-test and an exact binomial test) and the p-values are adjusted with
    Benjamini–Hochberg at ``alpha``. Gate on ``slices.count_significant``. In the spirit of
    SliceFinder (Chung et al. 2019, https://arxiv.org/abs/1807.06068), on count tables.
    """

    class Options(ProbeOptions):
        """Slice discovery's options."""

        #: Proportion metrics to test: error_rate, accuracy, selection_rate, false_positive_rate ...
        metrics: list[str] = Field(default_factory=lambda: ["error_rate"], min_length=1)
        #: Other columns to slice by (tabular input columns); ``None``: every input column.
        columns: list[str] | None = None
        #: Largest number of columns in a slice.
        max_order: int = Field(default=3, ge=1, le=3)
        #: False-discovery rate (Benjamini–Hochberg).
        alpha: float = Field(default=0.05, gt=0, lt=1)
        #: Differences of at most this much are the null hypothesis.
        min_gap: float = Field(default=0.01, ge=0, lt=1)
        #: Slices with fewer rows are not tested.
        min_size: int = Field(default=30, ge=1)
        #: Quantile bins of a numeric column.
        n_bins: int = Field(default=4, ge=2, le=64)
        #: Most levels a categorical column keeps (the rarest are pooled).
        max_levels: int = Field(default=32, ge=2, le=255)
        #: Findings listed in the result (all are counted).
        max_findings: int = Field(default=100, ge=1)
        #: Leave out findings that add nothing to a simpler finding (see ``discover_slices``).
        prune: bool = True

        @field_validator("metrics")
        @classmethod
        def _known_metrics(cls, value: list[str]) -> list[str]:
            unknown = [m for m in value if m not in PROPORTIONS["binary"]]
            if unknown:
                raise ValueError(f"unknown slice metric {unknown[0]!r}; use one of {', '.join(PROPORTIONS['binary'])}")
            return value

    paper = "https://arxiv.org/abs/1807.06068"
    default: ClassVar[bool] = False  # many tests; an audit asks for it by name
    #: What ``run`` returns (the audit page finds the slices' section by it once results are routed by type).
    result_type: ClassVar[str] = "xai.fairness.slices:SliceResult"

    def probe(self, data: Dataset, *, sensitive: list[str], seed: int = 0) -> SliceResult:
        """Predict ``data`` and search its slices."""
        if len(data) == 0:
            raise DataError("no rows to probe")
        for column in sensitive:
            if column not in data.groups.columns:
                raise UnknownNameError("sensitive column", column, data.groups.columns)
        options = dict(self.options)
        columns = dataset_columns(data, sensitive, options.pop("columns"))
        if not columns:
            raise DataError("name a sensitive column or an input column to slice by")
        binary = self.handle.task == "binary-classification"
        check_slice_options(metrics=options["metrics"], task="binary" if binary else "multiclass",
                            **{k: options[k] for k in ("max_order", "alpha", "min_gap", "min_size", "n_bins",
                                                       "max_levels")})
        y_pred = self.handle.predict(data.x).argmax(1).numpy()
        notes = []
        if data.modality in ("tabular", "state") and any(c not in sensitive for c in columns):
            notes.append("numeric input columns are binned on the model's input scale (standardised)")
        return discover_slices(
            data.y.numpy(), y_pred, columns, task="binary" if binary else "multiclass", model=self.handle.name,
            dataset=f"{data.name}:{data.split}", model_sha256=self.handle.sha256, data_sha256=data.sha256,
            seed=seed, positive_class=self.handle.class_names[1] if binary else None, notes=notes, **options)
