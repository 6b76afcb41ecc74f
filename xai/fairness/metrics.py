"""Group fairness metrics as pure keyword-only functions over a count-table engine.

The numbers equal fairlearn's ``MetricFrame`` and ``fairlearn.metrics`` functions
(https://fairlearn.org; tested within 1e-9 over hypothesis-generated inputs) but come
from one ``np.bincount`` over integer codes instead of one scikit-learn call per group
and metric, and bootstrap intervals come from multinomial draws of the cell counts
instead of resampled rows.

Example
-------
>>> import numpy as np
>>> frame = group_frame(y_true=np.array([1, 0, 1, 0]), y_pred=np.array([1, 1, 0, 0]),
...                     sensitive_features=np.array(["a", "a", "b", "b"]), min_group_size=1)
>>> frame.by_group["selection_rate"]
{'a': 1.0, 'b': 0.0}
>>> demographic_parity_difference(y_true=[1, 0, 1, 0], y_pred=[1, 1, 0, 0],
...                               sensitive_features=["a", "a", "b", "b"])
1.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xai.errors import DataError, UnknownNameError
from xai.fairness import _engine, _intervals
from xai.fairness._engine import DEFAULT_METRICS, DERIVED, METRICS, Method, Task

__all__ = [
    "DEFAULT_METRICS",
    "DERIVED",
    "METRICS",
    "FourFifths",
    "GroupFrame",
    "Intervals",
    "Calibration",
    "bootstrap_intervals",
    "calibration_error",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "derived_metric",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "four_fifths",
    "four_fifths_rule",
    "group_frame",
]

#: Groups smaller than this get a warning in the result (their metrics are noisy).
MIN_GROUP_SIZE = 30


@dataclass(frozen=True)
class GroupFrame:
    """Metrics of each group of one (possibly intersectional) sensitive feature.

    Attributes
    ----------
    feature
        Feature name; ``"sex x race"`` for an intersection.
    groups
        Group labels (``"Female x White"``), in fairlearn's sorted order; with several
        features every combination is listed, empty ones too (count 0, metrics NaN).
    by_group
        ``{metric: {group: value}}``.
    overall
        ``{metric: value}`` over all rows.
    cells
        ``(G, C)`` count table the numbers come from (see ``_engine.CELLS``).
    warnings
        Small or empty groups and undefined rates, one sentence each.
    """

    feature: str
    groups: tuple[str, ...]
    task: Task
    metrics: tuple[str, ...]
    by_group: dict[str, dict[str, float]]
    overall: dict[str, float]
    cells: np.ndarray = field(repr=False)
    min_group_size: int = MIN_GROUP_SIZE
    warnings: tuple[str, ...] = ()

    def values(self, metric: str) -> np.ndarray:
        """``(G,)`` values of ``metric``."""
        return np.array([self.by_group[metric][g] for g in self.groups])

    def derived(self, name: str, method: Method = "between_groups") -> float:
        """A derived metric (``demographic_parity_difference``, ``accuracy_ratio`` ...)."""
        spec = _require_derived(name, self.task)
        table = _engine.compute(self.cells, spec.base, self.task)
        overall = _engine.compute(self.cells.sum(axis=0), spec.base, self.task)
        return float(_engine.derive(name, table, overall, method))

    def difference(self, metric: str, method: Method = "between_groups") -> float:
        """Largest absolute gap of ``metric`` between groups (or to overall)."""
        return float(_engine.difference(self.values(metric), np.asarray(self.overall[metric], np.float64), method))

    def ratio(self, metric: str, method: Method = "between_groups") -> float:
        """Smallest ratio (<= 1) of ``metric`` between groups (or to overall)."""
        return float(_engine.ratio(self.values(metric), np.asarray(self.overall[metric], np.float64), method))


@dataclass(frozen=True)
class Intervals:
    """Bootstrap intervals ``(low, high)`` of a :class:`GroupFrame`'s numbers.

    Group and overall metrics: percentile intervals. Derived metrics (disparities):
    symmetric intervals of the observed extreme pair, which contain the estimate (see
    :mod:`xai.fairness._intervals`).
    """

    confidence: float
    n_boot: int
    seed: int
    by_group: dict[str, dict[str, tuple[float, float]]]
    overall: dict[str, tuple[float, float]]
    derived: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class FourFifths:
    """The four-fifths (80 %) rule of the US EEOC Uniform Guidelines (29 CFR 1607.4 D).

    ``ratio`` is the lowest group selection rate over the highest; the rule passes when
    it is at least ``threshold``.
    """

    ratio: float
    threshold: float
    passed: bool
    lowest_group: str
    highest_group: str


def group_frame(*, y_true: Any, y_pred: Any, sensitive_features: Any, metrics: Sequence[str] | None = None,
                task: Task = "binary", pos_label: Any = 1, min_group_size: int = MIN_GROUP_SIZE) -> GroupFrame:
    """Per-group and overall metrics (fairlearn's ``MetricFrame`` from counts).

    Parameters
    ----------
    y_true, y_pred
        Labels and predictions, ``(N,)``; binary tasks take two values with ``pos_label``
        as the positive one.
    sensitive_features
        ``(N,)`` array, or ``(N, F)`` array / DataFrame / dict of columns: several
        features are crossed into intersectional groups.
    metrics
        Names from :data:`METRICS`; default :data:`DEFAULT_METRICS` of ``task``.
    task
        ``binary``, ``multiclass`` or ``regression``.
    min_group_size
        Groups with fewer rows are listed in ``warnings``.
    """
    names = tuple(metrics) if metrics is not None else DEFAULT_METRICS[task]
    _engine.check_metrics(names, task)
    groups = _engine.encode_groups(_engine.as_feature_columns(sensitive_features))
    if len(groups.codes) == 0:
        raise DataError("no rows to measure")
    cells = _engine.count_cells(groups, y_true, y_pred, task=task, pos_label=pos_label)
    return frame_from_cells(cells, feature=groups.feature, groups=groups.labels, metrics=names, task=task,
                            min_group_size=min_group_size)


def frame_from_cells(cells: np.ndarray, *, feature: str, groups: Sequence[str], metrics: Sequence[str] | None = None,
                     task: Task = "binary", min_group_size: int = MIN_GROUP_SIZE) -> GroupFrame:
    """A :class:`GroupFrame` from a ``(G, C)`` count table alone (streamed, merged or loaded counts)."""
    names = tuple(metrics) if metrics is not None else DEFAULT_METRICS[task]
    _engine.check_metrics(names, task)
    labels = tuple(groups)
    if cells.shape != (len(labels), len(_engine.CELLS[task])):
        raise DataError(f"a {task} count table of {len(labels)} groups has shape "
                        f"({len(labels)}, {len(_engine.CELLS[task])}), got {cells.shape}")
    by_group = _engine.compute(cells, names, task)
    overall = _engine.compute(cells.sum(axis=0), names, task)
    return GroupFrame(
        feature=feature,
        groups=labels,
        task=task,
        metrics=names,
        by_group={m: dict(zip(labels, map(float, by_group[m]), strict=True)) for m in names},
        overall={m: float(overall[m]) for m in names},
        cells=cells,
        min_group_size=min_group_size,
        warnings=_warnings(cells, labels, task, min_group_size),
    )


@dataclass(frozen=True)
class Calibration:
    """Expected calibration error of each group, overall, and its widest gap.

    Attributes
    ----------
    cells
        ``(G, bins, 3)`` score histogram per group: rows, positives, sum of scores.
    """

    feature: str
    groups: tuple[str, ...]
    by_group: dict[str, float]
    overall: float
    difference: float
    cells: np.ndarray = field(repr=False)
    n_bins: int = 10

    def intervals(self, *, n_boot: int, confidence: float = 0.95, seed: int = 0,
                  eligible: np.ndarray | None = None
                  ) -> tuple[dict[str, tuple[float, float]], tuple[float, float], tuple[float, float]]:
        """Bootstrap intervals per group, overall and of the difference, each containing its estimate.

        Binned ECE is biased upward (a resample's bins are noisier), so a percentile
        interval can lie wholly above the estimate; these are symmetric intervals around
        it, and the difference is the observed extreme pair's (over the ``eligible``
        groups, default every group with rows): see :mod:`xai.fairness._intervals`.
        """
        _engine.check_bootstrap(self.feature, len(self.groups), n_boot, "binary", self.n_bins)
        samples = _engine.bootstrap_calibration(self.cells, n_boot=n_boot, seed=seed)  # (R, G, B, 3)
        per_group = _engine.expected_calibration_error(samples)  # (R, G)
        overall = _engine.expected_calibration_error(samples.sum(axis=1))  # (R,)
        estimates = np.array([self.by_group[g] for g in self.groups], dtype=np.float64)
        lo, hi = _intervals.symmetric_intervals(estimates, per_group, confidence, bounds=(0.0, 1.0))
        olo, ohi = _intervals.symmetric_interval(self.overall, overall, confidence, bounds=(0.0, 1.0))
        mask = self.cells[..., 0].sum(axis=-1) > 0 if eligible is None else eligible
        pair = _intervals.extreme("calibration_error_difference", {"calibration_error": estimates},
                                  {"calibration_error": self.overall}, mask, kind="difference")
        dlo, dhi = (float("nan"), float("nan")) if pair is None else _intervals.symmetric_interval(
            pair.value, _intervals.extreme_samples(pair, {"calibration_error": per_group},
                                                   {"calibration_error": overall}),
            confidence, bounds=(0.0, 1.0))
        by_group = {g: (float(a), float(b)) for g, a, b in zip(self.groups, lo, hi, strict=True)}
        return by_group, (float(olo), float(ohi)), (float(dlo), float(dhi))


def _nan_spread(values: np.ndarray) -> np.ndarray:
    """Largest minus smallest value over the last axis, ignoring NaN groups (NaN when none is defined)."""
    finite = np.isfinite(values)
    high = np.where(finite, values, -np.inf).max(axis=-1)
    low = np.where(finite, values, np.inf).min(axis=-1)
    return np.where(finite.any(axis=-1), high - low, np.nan)


def calibration_error(*, y_true: Any, y_score: Any, sensitive_features: Any, n_bins: int = 10,
                      pos_label: Any = 1) -> Calibration:
    """Expected calibration error (ECE) of positive-class scores, per group and overall.

    ECE is the row-weighted mean over ``n_bins`` equal-width score bins of
    |mean score - share of positives| (Naeini et al. 2015; Pleiss et al. 2017 for its
    group gap). The bins are scikit-learn's ``calibration_curve(strategy="uniform")``
    bins, so each group's number equals one computed from ``calibration_curve`` and
    ``np.histogram``. ``difference`` is the largest gap between groups.

    Examples
    --------
    >>> cal = calibration_error(y_true=[0, 1, 1, 1], y_score=[0.1, 0.9, 0.2, 0.8],
    ...                         sensitive_features=["a", "a", "b", "b"], n_bins=2)
    >>> round(cal.by_group["b"], 3), round(cal.overall, 3)
    (0.5, 0.25)
    """
    if n_bins < 1:
        raise DataError(f"n_bins must be at least 1, got {n_bins}")
    groups = _engine.encode_groups(_engine.as_feature_columns(sensitive_features))
    labels = _engine.as_binary(y_true, pos_label=pos_label, what="y_true")
    if len(labels) != len(groups.codes):
        raise DataError(f"labels and sensitive features differ in length: {len(labels)} vs {len(groups.codes)}")
    cells = _engine.calibration_cells(groups.codes, len(groups), labels, np.asarray(y_score), n_bins)
    return calibration_from_cells(cells, feature=groups.feature, groups=groups.labels)


def calibration_from_cells(cells: np.ndarray, *, feature: str, groups: Sequence[str]) -> Calibration:
    """A :class:`Calibration` from a ``(G, bins, 3)`` score histogram alone (streamed or loaded counts)."""
    labels = tuple(groups)
    n_bins = cells.shape[1]
    per_group = _engine.expected_calibration_error(cells)
    return Calibration(
        feature=feature,
        groups=labels,
        by_group=dict(zip(labels, map(float, per_group), strict=True)),
        overall=float(_engine.expected_calibration_error(cells.sum(axis=0))),
        difference=float(_nan_spread(per_group)),
        cells=cells,
        n_bins=n_bins,
    )


#: Above this many groups with the same warning, one sentence names the first few and counts the rest.
_WARNINGS_PER_KIND = 5


def _warnings(cells: np.ndarray, labels: tuple[str, ...], task: Task, min_group_size: int) -> tuple[str, ...]:
    view = _engine.cell_view(cells, task)
    kinds: dict[str, list[str]] = {"empty": [], "small": [], "no_positive": [], "no_negative": []}
    for i, label in enumerate(labels):
        n = int(view["n"][i])
        if n == 0:
            kinds["empty"].append(label)
        elif n < min_group_size:
            kinds["small"].append(label)
        if n and task == "binary":
            if view["tp"][i] + view["fn"][i] == 0:
                kinds["no_positive"].append(label)
            if view["tn"][i] + view["fp"][i] == 0:
                kinds["no_negative"].append(label)
    sizes = {label: int(view["n"][i]) for i, label in enumerate(labels)}
    one = {
        "empty": lambda g: f"group {g!r} is empty: its metrics are NaN and left out of disparities",
        "small": lambda g: f"group {g!r} has {sizes[g]} rows (< {min_group_size}): its metrics are unreliable",
        "no_positive": lambda g: f"group {g!r} has no positive labels: TPR and FNR are undefined, reported as 0",
        "no_negative": lambda g: f"group {g!r} has no negative labels: FPR and TNR are undefined, reported as 0",
    }
    many = {
        "empty": "groups are empty: their metrics are NaN and left out of disparities",
        "small": f"groups have fewer than {min_group_size} rows: their metrics are unreliable",
        "no_positive": "groups have no positive labels: TPR and FNR are undefined, reported as 0",
        "no_negative": "groups have no negative labels: FPR and TNR are undefined, reported as 0",
    }
    notes = []
    for kind, groups in kinds.items():
        if len(groups) <= _WARNINGS_PER_KIND:
            notes += [one[kind](g) for g in groups]
        else:  # thousands of groups must not give thousands of lines
            shown = ", ".join(repr(g) for g in groups[:_WARNINGS_PER_KIND])
            notes.append(f"{len(groups):,} {many[kind]} ({shown} ... and {len(groups) - _WARNINGS_PER_KIND:,} more)")
    return tuple(notes)


def _require_derived(name: str, task: Task) -> _engine.Derived:
    if name not in DERIVED:
        raise UnknownNameError("disparity", name, DERIVED)
    spec = DERIVED[name]
    _engine.check_metrics(spec.base, task)
    return spec


def bootstrap_intervals(frame: GroupFrame, *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
                        derived: Sequence[str] = (), method: Method = "between_groups",
                        eligible: np.ndarray | None = None) -> Intervals:
    """Bootstrap intervals of every metric, group, overall and ``derived`` metric.

    Metrics of a group and overall get percentile intervals. A derived metric (a
    disparity) gets the symmetric interval of its observed extreme pair, which contains
    the estimate by construction (a percentile interval of a max - min over groups can
    exclude it): see :mod:`xai.fairness._intervals`.

    Each resample draws the frame's cell counts from Multinomial(N, counts / N), which
    is exactly the distribution of the counts of N rows resampled with replacement, so
    ``n_boot`` resamples cost O(n_boot x cells), not O(n_boot x rows). Resamples in which
    a group is empty are left out of that group's interval.

    Parameters
    ----------
    frame
        From :func:`group_frame` (binary or multiclass).
    n_boot
        Number of resamples.
    confidence
        Nominal coverage, e.g. 0.95 for the 2.5th-97.5th percentiles.
    seed
        Seed of the resampling (same seed, same intervals).
    derived
        Names from :data:`DERIVED` to give intervals too.
    eligible
        ``(G,)`` mask of the groups a disparity ranks (default: every group with rows);
        the disparity and its interval are over those groups only.
    """
    if n_boot < 1:
        raise DataError(f"n_boot must be a positive integer, got {n_boot}")
    if not 0 < confidence < 1:
        raise DataError(f"confidence must be in (0, 1), got {confidence}")
    for name in derived:
        _require_derived(name, frame.task)
    _engine.check_bootstrap(frame.feature, len(frame.groups), n_boot, frame.task)
    samples = _engine.bootstrap_cells(frame.cells, n_boot=n_boot, seed=seed)  # (R, G, C)
    needed = list(dict.fromkeys([*frame.metrics, *(m for d in derived for m in DERIVED[d].base)]))
    by_group = _engine.compute(samples, needed, frame.task)  # {metric: (R, G)}
    overall = _engine.compute(samples.sum(axis=1), needed, frame.task)  # {metric: (R,)}

    def pair(lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
        return (float(lo), float(hi))

    group_iv, overall_iv = {}, {}
    for metric in frame.metrics:
        lo, hi = _engine.percentile_interval(by_group[metric], confidence)
        group_iv[metric] = {g: pair(lo[i], hi[i]) for i, g in enumerate(frame.groups)}
        overall_iv[metric] = pair(*_engine.percentile_interval(overall[metric], confidence))
    mask = _engine.cell_view(frame.cells, frame.task)["n"] > 0 if eligible is None else np.asarray(eligible)
    estimates = _engine.compute(frame.cells, needed, frame.task)
    whole = {k: float(v) for k, v in _engine.compute(frame.cells.sum(axis=0), needed, frame.task).items()}
    derived_iv = {}
    for name in derived:
        found = _intervals.extreme(name, estimates, whole, mask, method)
        if found is None:  # undefined (fewer than two groups): no interval
            derived_iv[name] = (float("nan"), float("nan"))
            continue
        derived_iv[name] = _intervals.symmetric_interval(
            found.value, _intervals.extreme_samples(found, by_group, overall), confidence,
            bounds=_intervals.RANGES[found.kind])
    return Intervals(confidence=confidence, n_boot=n_boot, seed=seed, by_group=group_iv, overall=overall_iv,
                     derived=derived_iv)


def derived_metric(name: str, *, y_true: Any, y_pred: Any, sensitive_features: Any,
                   method: Method = "between_groups", pos_label: Any = 1) -> float:
    """Any metric of :data:`DERIVED` by name (``accuracy_difference``, ``precision_ratio`` ...)."""
    spec = _require_derived(name, "binary")
    frame = group_frame(y_true=y_true, y_pred=y_pred, sensitive_features=sensitive_features,
                        metrics=spec.base, pos_label=pos_label)
    return frame.derived(name, method)


def _make_derived(name: str) -> Callable[..., float]:
    def metric(*, y_true: Any, y_pred: Any, sensitive_features: Any, method: Method = "between_groups",
               pos_label: Any = 1) -> float:
        return derived_metric(name, y_true=y_true, y_pred=y_pred, sensitive_features=sensitive_features,
                              method=method, pos_label=pos_label)

    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = (f"{DERIVED[name].doc} Equals ``fairlearn.metrics.{name}``.\n\n"
                      "Keyword-only: ``y_true``, ``y_pred``, ``sensitive_features``, ``method``\n"
                      "(``between_groups`` or ``to_overall``), ``pos_label``.")
    return metric


demographic_parity_difference = _make_derived("demographic_parity_difference")
demographic_parity_ratio = _make_derived("demographic_parity_ratio")
equalized_odds_difference = _make_derived("equalized_odds_difference")
equalized_odds_ratio = _make_derived("equalized_odds_ratio")
equal_opportunity_difference = _make_derived("equal_opportunity_difference")
equal_opportunity_ratio = _make_derived("equal_opportunity_ratio")


def four_fifths_rule(*, y_true: Any, y_pred: Any, sensitive_features: Any, threshold: float = 0.8,
                     pos_label: Any = 1) -> FourFifths:
    """Whether the lowest group selection rate is at least ``threshold`` of the highest."""
    frame = group_frame(y_true=y_true, y_pred=y_pred, sensitive_features=sensitive_features,
                        metrics=("selection_rate",), pos_label=pos_label, min_group_size=0)
    return four_fifths(frame, threshold=threshold)


def four_fifths(frame: GroupFrame, *, threshold: float = 0.8, groups: Sequence[str] | None = None) -> FourFifths:
    """The four-fifths rule on a frame that has ``selection_rate``.

    ``groups`` restricts the comparison (the groups large enough to rank; default all).
    The Uniform Guidelines themselves (29 CFR 1607.4 D) discount differences that rest on
    small numbers, which is why the group-metrics probe passes only its eligible groups.

    Raises :class:`~xai.errors.DataError` when fewer than two groups have rows or no
    group has a positive prediction: the rule compares selection rates, so then it
    neither passes nor fails.
    """
    keep = None if groups is None else set(groups)
    rates = {g: v for g, v in frame.by_group["selection_rate"].items()
             if np.isfinite(v) and (keep is None or g in keep)}
    if len(rates) < 2:
        which = "with rows" if keep is None else f"with at least {frame.min_group_size} rows"
        raise DataError(f"the four-fifths rule compares groups; {frame.feature!r} has "
                        f"{len(rates)} group{'s' if len(rates) != 1 else ''} {which}")
    low, high = min(rates, key=rates.__getitem__), max(rates, key=rates.__getitem__)
    if rates[high] == 0:
        raise DataError(f"the four-fifths rule compares selection rates; no group of {frame.feature!r} "
                        "has a positive prediction (0/0)")
    value = frame.ratio("selection_rate") if keep is None else float(np.float64(rates[low]) / rates[high])
    return FourFifths(ratio=value, threshold=threshold, passed=bool(value >= threshold),
                      lowest_group=low, highest_group=high)
