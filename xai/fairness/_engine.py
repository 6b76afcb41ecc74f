"""The group-metric engine: every count-based metric from a table of cell counts.

Rows are reduced once to integer codes and counted with ``np.bincount`` into a
``(groups, cells)`` table: for binary tasks the cells are the confusion counts
``(tn, fp, fn, tp)`` of each group, for multiclass tasks ``(wrong, right)``, for
regression the sufficient statistics ``(n, sum |e|, sum e^2)``. Every metric, every
disparity and every bootstrap resample is then arithmetic on that small table, so the
cost after the one pass over the rows does not depend on the number of rows.

Undefined rates follow fairlearn (and scikit-learn's ``confusion_matrix(normalize="true")``
and ``zero_division="warn"``): a group with no positives has TPR = FNR = 0, one with no
negatives FPR = TNR = 0, one with no predicted positives precision 0, and balanced
accuracy averages the recalls of the classes present in the group's labels. An empty
group (possible among intersections) has NaN for every metric and count 0 (fairlearn
reports NaN for its count too); NaN groups are left out of disparities, as pandas does.

One deliberate difference: a worst case over several metrics (equalized odds) skips an
undefined part. fairlearn's ``equalized_odds_ratio`` takes Python's ``min`` over
[TPR ratio, FPR ratio] and so returns NaN when every group's TPR is 0 (ratio 0/0), even
if the FPR ratio is defined; ours returns the FPR ratio. Wherever fairlearn's value is
defined the two agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from xai.errors import DataError, UnknownNameError

Task = Literal["binary", "multiclass", "regression"]
Method = Literal["between_groups", "to_overall"]

#: Cell layout of each task's count table (the last axis of ``cells``).
CELLS: dict[str, tuple[str, ...]] = {
    "binary": ("tn", "fp", "fn", "tp"),
    "multiclass": ("wrong", "right"),
    "regression": ("n", "abs_error", "squared_error"),
}


# ----------------------------------------------------------------------------- grouping


@dataclass(frozen=True)
class Groups:
    """Rows coded by group: the intersection of one or more sensitive features.

    Attributes
    ----------
    names
        The sensitive feature names.
    levels
        One tuple of feature values per group, in sorted product order (fairlearn's).
    codes
        ``(N,)`` int64 group index of each row.
    """

    names: tuple[str, ...]
    levels: tuple[tuple[Any, ...], ...]
    codes: np.ndarray

    @property
    def feature(self) -> str:
        """The (intersectional) feature name, e.g. ``"sex x race"``."""
        return " x ".join(self.names)

    @property
    def labels(self) -> tuple[str, ...]:
        """One string per group, e.g. ``"Female x White"``."""
        return tuple(" x ".join(str(v) for v in level) for level in self.levels)

    def __len__(self) -> int:
        return len(self.levels)


def as_feature_columns(sensitive_features: Any) -> dict[str, Any]:
    """A 1-D array, a 2-D array, a DataFrame, a Series or a dict -> named 1-D columns.

    pandas columns stay pandas (factorizing an Arrow-backed string column directly is
    several times faster than converting it to a NumPy object array first).
    """
    import pandas as pd  # here, not at the top: streamed counts are reported without pandas

    if isinstance(sensitive_features, pd.DataFrame):
        return {str(c): sensitive_features[c] for c in sensitive_features.columns}
    if isinstance(sensitive_features, pd.Series):
        return {str(sensitive_features.name or "sensitive_feature_0"): sensitive_features}
    if isinstance(sensitive_features, Mapping):
        return {str(k): np.asarray(v) for k, v in sensitive_features.items()}
    array = np.asarray(sensitive_features)
    if array.ndim == 1:
        return {"sensitive_feature_0": array}
    if array.ndim == 2:
        return {f"sensitive_feature_{i}": array[:, i] for i in range(array.shape[1])}
    raise DataError(f"sensitive features must be 1-D or 2-D, got shape {array.shape}")


def encode_groups(columns: Mapping[str, Any]) -> Groups:
    """Code the rows by the intersection of ``columns`` (all value combinations, empty ones too)."""
    import pandas as pd

    if not columns:
        raise DataError("name at least one sensitive feature")
    codes: np.ndarray | None = None
    uniques: list[list[Any]] = []
    for name, values in columns.items():
        # hash-based factorization: one O(N) pass, no sort of the rows
        column = values if isinstance(values, pd.Series) else np.asarray(values)
        feature_codes, feature_uniques = pd.factorize(column, sort=True)
        if (feature_codes < 0).any():
            raise DataError(f"sensitive feature {name!r} has {int((feature_codes < 0).sum())} missing values")
        uniques.append(list(feature_uniques))
        feature_codes = feature_codes.astype(np.int64)
        codes = feature_codes if codes is None else codes * len(feature_uniques) + feature_codes
    assert codes is not None
    return Groups(tuple(columns), tuple(itertools.product(*uniques)), codes)


# ----------------------------------------------------------------------------- counting


def check_finite(array: np.ndarray, what: str) -> None:
    """Refuse NaN (a missing value) and +-inf in a float array; ``what`` names it in the message."""
    if array.dtype.kind not in "fc":
        return
    missing = np.isnan(array)
    if missing.any():
        raise DataError(f"{what} has {int(missing.sum())} missing values (NaN)")
    infinite = np.isinf(array)
    if infinite.any():
        raise DataError(f"{what} has {int(infinite.sum())} infinite values (+inf or -inf)")


def as_binary(values: Any, *, pos_label: Any = 1, what: str = "y") -> np.ndarray:
    """Labels with at most two distinct values -> int64 0/1 (1 where ``== pos_label``)."""
    array = np.asarray(values)
    if array.ndim != 1:
        array = array.reshape(-1)
    check_finite(array, what)
    positive = array == pos_label
    other = array[~positive]
    # a linear scan instead of np.unique's sort: every non-positive value must be the same one
    if other.size and (other != other[0]).any():
        import pandas as pd

        shown = ", ".join(map(str, pd.unique(array)[:6]))
        raise DataError(f"{what} must be binary for binary metrics (two values, positive = {pos_label!r}); "
                        f"found: {shown}")
    return positive.astype(np.int64)


def count_cells(groups: Groups, y_true: Any, y_pred: Any, *, task: Task = "binary",
                pos_label: Any = 1) -> np.ndarray:
    """The ``(G, C)`` count table of ``task`` (see :data:`CELLS`); float for regression."""
    n = len(groups.codes)
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape[0] != n or p.shape[0] != n:
        raise DataError(f"y_true ({t.shape[0]}), y_pred ({p.shape[0]}) and the sensitive features ({n}) "
                        "must have the same number of rows")
    size = len(groups)
    if task == "binary":
        cell = groups.codes * 4 + as_binary(t, pos_label=pos_label, what="y_true") * 2 \
            + as_binary(p, pos_label=pos_label, what="y_pred")
        return np.bincount(cell, minlength=4 * size).reshape(size, 4)
    if task == "multiclass":
        # NaN != NaN would count a missing label as a wrong prediction
        check_finite(t, "y_true")
        check_finite(p, "y_pred")
        cell = groups.codes * 2 + (t == p)
        return np.bincount(cell, minlength=2 * size).reshape(size, 2)
    if task == "regression":
        check_finite(t.astype(np.float64), "y_true")
        check_finite(p.astype(np.float64), "y_pred")
        error = p.astype(np.float64) - t.astype(np.float64)
        return np.stack([np.bincount(groups.codes, minlength=size).astype(np.float64),
                         np.bincount(groups.codes, weights=np.abs(error), minlength=size),
                         np.bincount(groups.codes, weights=error * error, minlength=size)], axis=-1)
    raise UnknownNameError("task", str(task), CELLS)


# ----------------------------------------------------------------------------- metrics


def _div(num: np.ndarray, den: np.ndarray, undefined: float = 0.0) -> np.ndarray:
    """``num / den`` with ``undefined`` where ``den == 0``."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64))
    return np.divide(num, den, out=np.full(num.shape, undefined), where=den > 0)


def _balanced_accuracy(c: Mapping[str, np.ndarray]) -> np.ndarray:
    # scikit-learn averages the recalls of the classes present in y_true
    pos, neg = c["tp"] + c["fn"], c["tn"] + c["fp"]
    recall_sum = _div(c["tp"], pos) + _div(c["tn"], neg)
    return _div(recall_sum, (pos > 0).astype(np.float64) + (neg > 0), undefined=np.nan)


@dataclass(frozen=True)
class MetricDef:
    """One metric computed from a group's cell counts.

    Attributes
    ----------
    fn
        ``cells -> values``; ``cells`` maps each cell name (and ``n``, ``right``) to an
        array of any shape, so one definition serves groups and bootstrap resamples.
    tasks
        The tasks it applies to.
    """

    name: str
    fn: Callable[[Mapping[str, np.ndarray]], np.ndarray]
    tasks: frozenset[str]
    doc: str


_B, _M, _R = frozenset({"binary"}), frozenset({"binary", "multiclass"}), frozenset({"regression"})
_ALL = _M | _R

#: Every base metric, keyed by name (the one place a metric is defined).
METRICS: dict[str, MetricDef] = {m.name: m for m in (
    MetricDef("count", lambda c: c["n"].astype(np.float64), _ALL, "Number of rows."),
    MetricDef("accuracy", lambda c: _div(c["right"], c["n"]), _M, "Share of correct predictions."),
    MetricDef("selection_rate", lambda c: _div(c["tp"] + c["fp"], c["n"]), _B, "P(pred = 1)."),
    MetricDef("true_positive_rate", lambda c: _div(c["tp"], c["tp"] + c["fn"]), _B, "P(pred = 1 | y = 1)."),
    MetricDef("false_positive_rate", lambda c: _div(c["fp"], c["fp"] + c["tn"]), _B, "P(pred = 1 | y = 0)."),
    MetricDef("false_negative_rate", lambda c: _div(c["fn"], c["tp"] + c["fn"]), _B, "P(pred = 0 | y = 1)."),
    MetricDef("true_negative_rate", lambda c: _div(c["tn"], c["fp"] + c["tn"]), _B, "P(pred = 0 | y = 0)."),
    MetricDef("precision", lambda c: _div(c["tp"], c["tp"] + c["fp"]), _B, "P(y = 1 | pred = 1)."),
    MetricDef("balanced_accuracy", _balanced_accuracy, _B, "Mean recall of the classes present."),
    MetricDef("mean_absolute_error", lambda c: _div(c["abs_error"], c["n"]), _R, "Mean |pred - y|."),
    MetricDef("mean_squared_error", lambda c: _div(c["squared_error"], c["n"]), _R, "Mean (pred - y)^2."),
)}

#: The metrics a task reports when none are named.
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate", "count"),
    "multiclass": ("accuracy", "count"),
    "regression": ("mean_absolute_error", "mean_squared_error", "count"),
}


def cell_view(cells: np.ndarray, task: Task) -> dict[str, np.ndarray]:
    """Name the last axis of a ``(..., C)`` count table, adding ``n`` and ``right``."""
    view = {name: cells[..., i] for i, name in enumerate(CELLS[task])}
    if task == "binary":
        view["n"] = cells.sum(axis=-1)
        view["right"] = view["tn"] + view["tp"]
    elif task == "multiclass":
        view["n"] = view["wrong"] + view["right"]
    return view


def check_metrics(metrics: Sequence[str], task: Task) -> None:
    """Raise a clear error for an unknown metric or one that does not fit ``task``."""
    for name in metrics:
        if name not in METRICS:
            raise UnknownNameError("metric", name, METRICS)
        if task not in METRICS[name].tasks:
            raise DataError(f"metric {name!r} does not apply to {task} tasks; "
                            f"use one of {', '.join(m for m in METRICS if task in METRICS[m].tasks)}")


def compute(cells: np.ndarray, metrics: Sequence[str], task: Task) -> dict[str, np.ndarray]:
    """Each metric over a ``(..., C)`` table -> ``(...)`` arrays; NaN where a group is empty."""
    view = cell_view(cells, task)
    empty = view["n"] == 0
    out = {}
    for name in metrics:
        values = np.asarray(METRICS[name].fn(view), dtype=np.float64)
        out[name] = values if name == "count" else np.where(empty, np.nan, values)
    return out


# ----------------------------------------------------------------------------- disparities


def _nan_reduce(values: np.ndarray, op: Literal["max", "min"], axis: int = -1) -> np.ndarray:
    """``nanmax``/``nanmin`` without the all-NaN warning (all NaN -> NaN)."""
    fill = -np.inf if op == "max" else np.inf
    reduced = getattr(np.where(np.isnan(values), fill, values), op)(axis=axis)
    return np.where(reduced == fill, np.nan, reduced)


def difference(by_group: np.ndarray, overall: np.ndarray, method: Method = "between_groups") -> np.ndarray:
    """Largest |gap| between groups or to overall (fairlearn's ``MetricFrame.difference``).

    ``by_group`` is ``(..., G)`` and ``overall`` ``(...)``; NaN groups are skipped.
    """
    if method == "between_groups":
        return _nan_reduce(by_group, "max") - _nan_reduce(by_group, "min")
    if method == "to_overall":
        return _nan_reduce(np.abs(by_group - overall[..., None]), "max")
    raise UnknownNameError("method", str(method), ("between_groups", "to_overall"))


def ratio(by_group: np.ndarray, overall: np.ndarray, method: Method = "between_groups") -> np.ndarray:
    """Smallest ratio (<= 1) between groups or to overall (fairlearn's ``MetricFrame.ratio``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "between_groups":
            return _nan_reduce(by_group, "min") / _nan_reduce(by_group, "max")
        if method == "to_overall":
            r = by_group / overall[..., None]
            return _nan_reduce(np.where(r > 1, 1 / r, r), "min")
    raise UnknownNameError("method", str(method), ("between_groups", "to_overall"))


@dataclass(frozen=True)
class Derived:
    """A disparity declared over base metrics (fairlearn's ``make_derived_metric``).

    ``kind`` is ``difference``, ``ratio``, ``group_min`` or ``group_max``; with several
    base metrics the worst case is taken (largest difference, smallest ratio).
    """

    name: str
    base: tuple[str, ...]
    kind: Literal["difference", "ratio", "group_min", "group_max"]
    doc: str = ""


def _derived_table() -> dict[str, Derived]:
    table = [
        Derived("demographic_parity_difference", ("selection_rate",), "difference",
                "Largest gap in selection rate."),
        Derived("demographic_parity_ratio", ("selection_rate",), "ratio",
                "Smallest ratio of selection rates."),
        Derived("equalized_odds_difference", ("true_positive_rate", "false_positive_rate"), "difference",
                "Larger of the TPR and FPR gaps (Hardt et al. 2016)."),
        Derived("equalized_odds_ratio", ("true_positive_rate", "false_positive_rate"), "ratio",
                "Smaller of the TPR and FPR ratios."),
        Derived("equal_opportunity_difference", ("true_positive_rate",), "difference", "Largest gap in TPR."),
        Derived("equal_opportunity_ratio", ("true_positive_rate",), "ratio", "Smallest ratio of TPRs."),
    ]
    # and, like fairlearn's _generated_metrics, <metric>_{difference,ratio,group_min,group_max}
    for metric in METRICS:
        if metric == "count":
            continue
        for kind in ("difference", "ratio", "group_min", "group_max"):
            table.append(Derived(f"{metric}_{kind}", (metric,), kind))
    return {d.name: d for d in table}


#: Every derived metric (disparity), keyed by name.
DERIVED: dict[str, Derived] = _derived_table()


def derive(name: str, by_group: Mapping[str, np.ndarray], overall: Mapping[str, np.ndarray],
           method: Method = "between_groups") -> np.ndarray:
    """Derived metric ``name`` from ``(..., G)`` group values and ``(...)`` overall values."""
    if name not in DERIVED:
        raise UnknownNameError("disparity", name, DERIVED)
    spec = DERIVED[name]
    parts = []
    for metric in spec.base:
        if spec.kind == "difference":
            parts.append(difference(by_group[metric], overall[metric], method))
        elif spec.kind == "ratio":
            parts.append(ratio(by_group[metric], overall[metric], method))
        else:
            parts.append(_nan_reduce(by_group[metric], "min" if spec.kind == "group_min" else "max"))
    stacked = np.stack(parts, axis=-1)
    return _nan_reduce(stacked, "min" if spec.kind == "ratio" else "max")


# ----------------------------------------------------------------------------- bootstrap

#: Most bootstrap resamples an audit may ask for.
MAX_N_BOOT = 100_000
#: Most memory the bootstrap of one table may allocate (resampled tables and their metrics).
MAX_BOOTSTRAP_BYTES = 2 * 1024**3
#: Bytes the bootstrap holds per (resample, group): measured peaks of ``group_table``
#: (100k groups x 1000 resamples of a binary table took 11.3 GB), with some margin.
_BOOT_BYTES_PER_GROUP = {"binary": 120, "multiclass": 64}
_BOOT_BYTES_PER_BIN = 40  # calibration: (group, bin, label) draws and (group, bin, 3) tables


def check_n_boot(n_boot: int) -> None:
    """Refuse a resample count outside ``0..MAX_N_BOOT`` (0: no intervals)."""
    if not 0 <= n_boot <= MAX_N_BOOT:
        raise DataError(f"--n-boot must be between 0 (no intervals) and {MAX_N_BOOT:,}, got {n_boot:,}")


def bootstrap_bytes(n_groups: int, n_boot: int, task: str, calibration_bins: int = 0) -> int:
    """Estimated peak memory of bootstrapping a ``n_groups`` table ``n_boot`` times."""
    per_group = _BOOT_BYTES_PER_GROUP.get(task, 120) + _BOOT_BYTES_PER_BIN * calibration_bins
    return n_groups * n_boot * per_group


def check_bootstrap(feature: str, n_groups: int, n_boot: int, task: str, calibration_bins: int = 0) -> None:
    """Refuse, before allocating, a bootstrap whose memory would exceed :data:`MAX_BOOTSTRAP_BYTES`."""
    check_n_boot(n_boot)
    need = bootstrap_bytes(n_groups, n_boot, task, calibration_bins)
    if n_boot and need > MAX_BOOTSTRAP_BYTES:
        fits = MAX_BOOTSTRAP_BYTES // max(1, bootstrap_bytes(n_groups, 1, task, calibration_bins))
        raise DataError(f"the bootstrap of {feature!r} ({n_groups:,} groups x {n_boot:,} resamples) would need "
                        f"about {need / 1024**3:.1f} GB (limit {MAX_BOOTSTRAP_BYTES / 1024**3:g} GB): lower --n-boot "
                        f"to at most {fits:,} (0: no intervals) or audit fewer groups")


def bootstrap_cells(cells: np.ndarray, *, n_boot: int, seed: int | np.random.Generator) -> np.ndarray:
    """``n_boot`` bootstrap copies of a ``(G, C)`` count table -> ``(n_boot, G, C)``.

    Resampling N rows with replacement draws each row's cell with probability
    (cell count) / N independently, so the resampled cell counts are exactly
    Multinomial(N, counts / N): one draw per resample over the G x C cells, never a
    pass over the rows (Efron & Tibshirani 1993, ch. 6).
    """
    if cells.dtype.kind == "f":
        raise DataError("the multinomial bootstrap needs count cells (binary or multiclass tasks)")
    check_n_boot(n_boot)
    if n_boot * cells.size * 8 > MAX_BOOTSTRAP_BYTES:  # the draws alone; callers check the whole cost first
        raise DataError(f"{n_boot:,} resamples of {cells.size:,} count cells would need "
                        f"{n_boot * cells.size * 8 / 1024**3:.1f} GB: lower n_boot")
    flat = cells.reshape(-1).astype(np.int64)
    total = int(flat.sum())
    if total == 0:
        raise DataError("no rows to resample")
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, flat / total, size=n_boot)  # (R, G * C)
    return draws.reshape(n_boot, *cells.shape)


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over the first axis, ignoring NaN resamples (all NaN -> NaN).

    Equal, bit for bit, to ``np.nanquantile(samples, [alpha, 1 - alpha], axis=0)`` (its
    default ``linear`` method), but vectorised: ``nanquantile`` falls back to one Python
    call per column when any value is NaN, which took minutes for 100k groups.
    """
    alpha = (1 - confidence) / 2
    values = np.where(np.isfinite(samples), samples, np.nan)
    ordered = np.sort(values, axis=0)  # NaN last
    count = np.isfinite(values).sum(axis=0)  # finite resamples per column
    dead = count == 0
    last = np.maximum(count - 1, 0)
    out = []
    for q in (alpha, 1 - alpha):
        virtual = last * np.float64(q)  # numpy's linear method: (n - 1) * q
        below = np.floor(virtual)
        gamma = virtual - below
        low_i = below.astype(np.intp)[None]
        high_i = np.minimum(below.astype(np.intp) + 1, last)[None]
        a = np.take_along_axis(ordered, low_i, axis=0)[0]
        b = np.take_along_axis(ordered, high_i, axis=0)[0]
        diff = b - a  # numpy's _lerp, including its switch at gamma >= 0.5
        value = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
        out.append(np.where(dead, np.nan, value))
    return out[0], out[1]


# ----------------------------------------------------------------------------- calibration


def calibration_cells(codes: np.ndarray, n_groups: int, y_true: np.ndarray, scores: np.ndarray,
                      n_bins: int = 10) -> np.ndarray:
    """Score histogram per group: ``(G, bins, 3)`` of (rows, positives, sum of scores).

    Bins are scikit-learn's ``calibration_curve(strategy="uniform")`` bins: ``n_bins``
    equal widths over [0, 1], a score on an inner edge going to the lower bin.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != y_true.shape:
        raise DataError(f"scores and labels differ in length: {scores.shape[0]} vs {y_true.shape[0]}")
    if not np.isfinite(scores).all() or scores.min(initial=0.0) < 0 or scores.max(initial=0.0) > 1:
        raise DataError("calibration needs scores that are probabilities in [0, 1] (no NaN)")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], scores)  # (N,) as scikit-learn bins them
    flat = codes * n_bins + bins
    size = n_groups * n_bins
    out = np.empty((n_groups, n_bins, 3), dtype=np.float64)
    out[..., 0] = np.bincount(flat, minlength=size).reshape(n_groups, n_bins)
    out[..., 1] = np.bincount(flat, weights=y_true.astype(np.float64), minlength=size).reshape(n_groups, n_bins)
    out[..., 2] = np.bincount(flat, weights=scores, minlength=size).reshape(n_groups, n_bins)
    return out


def expected_calibration_error(cells: np.ndarray) -> np.ndarray:
    """ECE of each table ``(..., bins, 3)`` -> ``(...)``: sum over bins of |sum scores - positives| / rows.

    That is the bin-weighted mean of |mean score - observed positive rate| (Naeini et al.
    2015); NaN for an empty group.
    """
    rows = cells[..., 0].sum(axis=-1)
    gap = np.abs(cells[..., 2] - cells[..., 1]).sum(axis=-1)
    return np.where(rows > 0, gap / np.where(rows > 0, rows, 1.0), np.nan)


def bootstrap_calibration(cells: np.ndarray, *, n_boot: int, seed: int | np.random.Generator) -> np.ndarray:
    """``n_boot`` resampled ``(G, bins, 3)`` tables from multinomial draws of (group, bin, label) cells.

    Rows are resampled as (group, bin, label) cells, as :func:`bootstrap_cells` does; a
    resampled row keeps its bin's mean score (the one approximation, since the table does
    not keep each row's score: exact when scores are constant within a bin).
    """
    rows, positives, score_sum = cells[..., 0], cells[..., 1], cells[..., 2]
    by_label = np.stack([rows - positives, positives], axis=-1)  # (G, B, 2) negatives, positives
    mean_score = np.divide(score_sum, rows, out=np.zeros_like(score_sum), where=rows > 0)
    draws = bootstrap_cells(np.rint(by_label).astype(np.int64), n_boot=n_boot, seed=seed)  # (R, G, B, 2)
    out = np.empty((n_boot, *cells.shape), dtype=np.float64)
    out[..., 0] = draws.sum(axis=-1)
    out[..., 1] = draws[..., 1]
    out[..., 2] = out[..., 0] * mean_score
    return out


def poisson_bootstrap_cells(cells: np.ndarray, *, n_boot: int, seed: int | np.random.Generator) -> np.ndarray:
    """``n_boot`` Poisson-bootstrap copies of a ``(..., C)`` count table -> ``(n_boot, ..., C)``.

    The Poisson bootstrap (Hanley & MacGibbon 2006; Chamandy et al. 2012) gives every row
    an independent Poisson(1) weight instead of the Binomial(N, 1/N) multiplicity of a
    row resample; a cell of ``n`` rows then gets an independent Poisson(n) count. This is
    exactly the multinomial of :func:`bootstrap_cells` with its total N left free
    (Multinomial(N, p) is independent Poissons conditioned on their sum), so metrics that
    are ratios of counts (every rate, and disparities of rates) have the same bootstrap
    distribution to O(1/N); only ``count`` itself varies a little more (variance n instead
    of n(1 - n/N)). It is used where cells are drawn apart: each cell, table, file or
    worker draws its own counts without knowing N, and one vectorised ``rng.poisson``
    over ``n_boot x cells`` costs O(cells x resamples), never a pass over the rows.
    """
    if cells.dtype.kind == "f":
        raise DataError("the Poisson bootstrap needs count cells (binary or multiclass tasks)")
    check_n_boot(n_boot)
    if n_boot * cells.size * 8 > MAX_BOOTSTRAP_BYTES:
        raise DataError(f"{n_boot:,} resamples of {cells.size:,} count cells would need "
                        f"{n_boot * cells.size * 8 / 1024**3:.1f} GB: lower n_boot")
    counts = cells.astype(np.int64)
    if int(counts.sum()) == 0:
        raise DataError("no rows to resample")
    rng = np.random.default_rng(seed)
    return rng.poisson(counts, size=(n_boot, *cells.shape)).astype(np.int64)
