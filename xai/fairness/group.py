"""Group performance and disparities with bootstrap intervals, on the count-table engine."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from xai._provenance import Provenance
from xai.errors import DataError, UnknownNameError
from xai.fairness import _engine, _intervals
from xai.fairness._base import FairnessResult, GroupTable, Probe, ProbeOptions, register_probe
from xai.fairness.metrics import (
    DEFAULT_METRICS,
    MIN_GROUP_SIZE,
    Calibration,
    GroupFrame,
    bootstrap_intervals,
    calibration_error,
    four_fifths,
    group_frame,
)

if TYPE_CHECKING:  # the count engine's callers (prediction files, merged counts) import neither torch nor pandas
    import pandas as pd

    from xai.datasets import Dataset

#: The probe's metrics (the names are fairlearn's).
BINARY_METRICS = DEFAULT_METRICS["binary"]
MULTICLASS_METRICS = DEFAULT_METRICS["multiclass"]
#: Summary disparities: differences (larger is worse) and ratios (smaller is worse).
BINARY_DIFFERENCES = ("accuracy_difference", "demographic_parity_difference", "equalized_odds_difference")
BINARY_RATIOS = ("accuracy_ratio", "demographic_parity_ratio", "equalized_odds_ratio")
MULTICLASS_DIFFERENCES = ("accuracy_difference",)
MULTICLASS_RATIOS = ("accuracy_ratio",)
REGRESSION_DIFFERENCES = ("mean_absolute_error_difference", "mean_squared_error_difference")
#: Most groups a sensitive column (or an intersection) may have unless ``max_groups`` raises it:
#: more is usually an ID or a continuous column named by mistake.
MAX_GROUPS = 1000
#: Bins of the calibration histogram (``calibration_error``'s default).
_CALIBRATION_BINS = 10


def group_table(y_true: np.ndarray, y_pred: np.ndarray, groups: Any, feature: str | None = None, *,
                binary: bool, n_boot: int = 0, confidence: float = 0.95, seed: int = 0,
                min_group_size: int = MIN_GROUP_SIZE, scores: np.ndarray | None = None,
                task: str | None = None, frame: GroupFrame | None = None,
                calibration: Calibration | None = None) -> GroupTable:
    """Per-group metrics, disparities and (with ``n_boot``) bootstrap intervals.

    Binary tasks get accuracy, selection rate, TPR and FPR with the demographic parity
    and equalized odds differences and ratios and the four-fifths rule; multiclass tasks
    get accuracy and its gap. The numbers equal fairlearn's ``MetricFrame``.

    Parameters
    ----------
    groups
        ``(N,)`` group of each row, or a DataFrame of several sensitive columns (then the
        groups are their intersections and the feature is named ``"a x b"``).
    feature
        Name of a single ``groups`` column.
    n_boot
        Bootstrap resamples for the intervals (0: none).
    scores
        Positive-class probabilities ``(N,)`` of a binary task: adds each group's expected
        calibration error and ``calibration_error_difference``.
    task
        ``regression`` for numeric targets (MAE and MSE per group, no intervals);
        otherwise ``binary`` or ``multiclass`` as ``binary`` says.
    frame, calibration
        The group metrics (and score histogram) already counted, e.g. from streamed or
        merged count tables; then ``y_true``, ``y_pred``, ``groups`` and ``scores`` are not read.
    """
    frame_task: _engine.Task = "regression" if task == "regression" else ("binary" if binary else "multiclass")

    def rows() -> Any:
        import pandas as pd

        return groups if isinstance(groups, pd.DataFrame) else {feature or "group": np.asarray(groups)}

    if frame is None:
        frame = group_frame(y_true=y_true, y_pred=y_pred, sensitive_features=rows(), task=frame_task,
                            min_group_size=min_group_size)
    differences, ratios = {"binary": (BINARY_DIFFERENCES, BINARY_RATIOS),
                           "multiclass": (MULTICLASS_DIFFERENCES, MULTICLASS_RATIOS),
                           "regression": (REGRESSION_DIFFERENCES, ())}[frame_task]
    # Disparities rank only the groups with at least min_group_size rows (see _intervals).
    counts = _engine.cell_view(frame.cells, frame_task)["n"]
    ranked = _intervals.eligible(counts, min_group_size)
    small = tuple(g for g, n, ok in zip(frame.groups, counts, ranked, strict=True) if n > 0 and not ok)
    bases = list(dict.fromkeys(m for d in (*differences, *ratios) for m in _engine.DERIVED[d].base))
    values = _engine.compute(frame.cells, bases, frame_task)
    whole = {k: float(v) for k, v in _engine.compute(frame.cells.sum(axis=0), bases, frame_task).items()}
    extremes = {name: _intervals.extreme(name, values, whole, ranked) for name in (*differences, *ratios)}
    pairs = {name: e.groups(frame.groups) for name, e in extremes.items() if e is not None}
    intervals = (bootstrap_intervals(frame, n_boot=n_boot, confidence=confidence, seed=seed,
                                     derived=differences + ratios, eligible=ranked)
                 if n_boot and frame_task != "regression" else None)
    by_group, overall = dict(frame.by_group), dict(frame.overall)
    disparities = {name: math.nan if (e := extremes[name]) is None else e.value for name in differences}
    ratio_values = {name: math.nan if (e := extremes[name]) is None else e.value for name in ratios}
    present = [g for g, n in zip(frame.groups, counts, strict=True) if n > 0]
    eligible_groups = [g for g, ok in zip(frame.groups, ranked, strict=True) if ok]
    warnings = frame.warnings
    if len(present) < 2:
        # a disparity compares groups: with one group it is undefined, not 0 (JSON null; gates on it exit 2)
        warnings = (f"{frame.feature!r} has one group with rows ({', '.join(map(repr, present)) or 'none'}): "
                    "disparities are undefined (null) and the four-fifths rule does not apply", *warnings)
    elif len(eligible_groups) < 2:
        warnings = (f"{frame.feature!r} has {len(eligible_groups)} group{'s' if len(eligible_groups) != 1 else ''} "
                    f"with at least {min_group_size} rows: disparities are undefined (null) and the four-fifths "
                    "rule does not apply; lower min_group_size to rank smaller groups", *warnings)
    if small:
        shown = ", ".join(f"{g!r} ({int(counts[frame.groups.index(g)])})" for g in small[:5])
        more = f" and {len(small) - 5:,} more" if len(small) > 5 else ""
        warnings = (*warnings, f"{len(small):,} group{'s' if len(small) != 1 else ''} too small to rank "
                    f"(< {min_group_size} rows: {shown}{more}): shown, but left out of the disparities"
                    + (" and the four-fifths rule" if frame_task == "binary" else ""))
    group_iv = dict(intervals.by_group) if intervals else {}
    overall_iv = dict(intervals.overall) if intervals else {}
    disparity_iv = {k: v for k, v in intervals.derived.items() if all(map(math.isfinite, v))} if intervals else {}
    if frame_task == "binary" and (scores is not None or calibration is not None):
        if calibration is None:
            calibration = calibration_error(y_true=y_true, y_score=scores, sensitive_features=rows())
        assert calibration.groups == frame.groups  # the same coding of the same columns
        by_group["calibration_error"] = calibration.by_group
        overall["calibration_error"] = calibration.overall
        cal_values = {"calibration_error": np.array([calibration.by_group[g] for g in frame.groups])}
        cal_pair = _intervals.extreme("calibration_error_difference", cal_values,
                                      {"calibration_error": calibration.overall}, ranked, kind="difference")
        disparities["calibration_error_difference"] = math.nan if cal_pair is None else cal_pair.value
        if cal_pair is not None:
            pairs["calibration_error_difference"] = cal_pair.groups(frame.groups)
        if n_boot:
            group_iv["calibration_error"], overall_iv["calibration_error"], cal_iv = calibration.intervals(
                n_boot=n_boot, confidence=confidence, seed=seed, eligible=ranked)
            if all(map(math.isfinite, cal_iv)):
                disparity_iv["calibration_error_difference"] = cal_iv
    rule = None
    if len(present) < 2:
        disparities = dict.fromkeys(disparities, math.nan)
        ratio_values = dict.fromkeys(ratio_values, math.nan)
        disparity_iv, pairs = {}, {}
    elif frame_task == "binary" and len(eligible_groups) >= 2:
        try:
            rule = four_fifths(frame, groups=eligible_groups)
        except DataError as exc:  # no group selected: the rule is undefined, not failed
            warnings = (f"{exc}: it does not apply", *warnings)
    return GroupTable(
        feature=frame.feature,
        groups=frame.groups,
        by_group=by_group,
        overall=overall,
        disparities=disparities,
        ratios=ratio_values,
        four_fifths=rule,
        intervals=group_iv,
        overall_intervals=overall_iv,
        disparity_intervals=disparity_iv,
        n_boot=n_boot,
        confidence=confidence,
        min_group_size=min_group_size,
        warnings=warnings,
        small_groups=small,
        disparity_groups=pairs,
    )


@register_probe("group-metrics")
class GroupMetrics(Probe):
    """Per-group accuracy, selection rate, TPR, FPR (and calibration error), with DP and EO disparities.

    Numbers equal fairlearn's ``MetricFrame`` (https://fairlearn.org) and come from a
    table of counts per (group, label, prediction); bootstrap intervals come from
    multinomial draws of those counts (percentile for a group's rates; for disparities
    and calibration error, symmetric intervals that contain the estimate: see
    :mod:`xai.fairness._intervals`). Disparities and the four-fifths rule compare only
    groups of at least ``min_group_size`` rows; smaller ones are shown and flagged.
    For binary tasks the positive class is index 1 of the model's classes, whose softmax
    probability gives each group's expected calibration error (ECE, 10 equal-width bins).
    Options: ``n_boot`` (default 1000, 0 for none, at most 100,000), ``confidence``
    (0.95), ``min_group_size`` (30), ``max_groups`` (1000 per sensitive column and for
    their intersection). A feature with one group (or fewer than two groups of at least
    ``min_group_size`` rows) has undefined (NaN, JSON null) disparities and no
    four-fifths verdict.
    """

    class Options(ProbeOptions):
        """Group metrics' options."""

        #: Bootstrap resamples for the intervals (0: none).
        n_boot: int = Field(default=1000, ge=0, le=_engine.MAX_N_BOOT)
        #: Nominal coverage of the intervals.
        confidence: float = Field(default=0.95, gt=0, lt=1)
        #: Groups with fewer rows are flagged and left out of the disparities.
        min_group_size: int = Field(default=MIN_GROUP_SIZE, ge=0)
        #: Most groups per sensitive column (and for their intersection).
        max_groups: int = Field(default=MAX_GROUPS, ge=1)

    paper = "https://arxiv.org/abs/1610.02413"

    def probe(self, data: Dataset, *, sensitive: list[str], seed: int = 0) -> FairnessResult:
        """Predict ``data`` and tabulate each sensitive column of ``data.groups`` and their intersection."""
        if len(data) == 0:
            raise DataError("no rows to probe")
        if not sensitive:
            raise DataError(f"name at least one sensitive column; {data.name} has: "
                            f"{', '.join(data.groups.columns) or 'none'}")
        for column in sensitive:
            if column not in data.groups.columns:
                raise UnknownNameError("sensitive column", column, data.groups.columns)
        import torch

        start = time.perf_counter()
        outputs = self.handle.predict(data.x)
        y_pred = outputs.argmax(1).numpy()
        binary = self.handle.task == "binary-classification"
        scores = torch.softmax(outputs.double(), dim=1)[:, 1].numpy() if binary else None
        result = tabulate(data.y.numpy(), y_pred, data.groups[list(sensitive)], binary=binary, seed=seed,
                          scores=scores, **self.options)
        return FairnessResult(
            probe=self.name,
            model=self.handle.name,
            dataset=f"{data.name}:{data.split}",
            metric_names=BINARY_METRICS if binary else MULTICLASS_METRICS,
            tables=result[0],
            intersection=result[1],
            positive_class=self.handle.class_names[1] if binary else None,
            provenance=Provenance(
                model_sha256=self.handle.sha256,
                data_sha256=data.sha256,
                seed=seed,
                wall_seconds=round(time.perf_counter() - start, 4),
                device=str(self.handle.device),
            ),
        )


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer | float) or value != int(value):
        raise DataError(f"group-metrics option {name} must be a whole number, got {value!r}")
    return int(value)


def check_options(*, n_boot: Any = 1000, confidence: Any = 0.95, min_group_size: Any = MIN_GROUP_SIZE,
                  max_groups: Any = MAX_GROUPS) -> dict[str, Any]:
    """The probe's options checked (one-line :class:`~xai.errors.DataError` each) and typed."""
    n_boot, min_group_size, max_groups = (_integer(name, value) for name, value in (
        ("n_boot", n_boot), ("min_group_size", min_group_size), ("max_groups", max_groups)))
    _engine.check_n_boot(n_boot)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 < confidence < 1:
        raise DataError(f"--confidence must be a number strictly between 0 and 1, got {confidence!r}")
    if min_group_size < 0:
        raise DataError(f"--min-group-size must be at least 0, got {min_group_size}")
    if max_groups < 1:
        raise DataError(f"--max-groups must be at least 1, got {max_groups}")
    return {"n_boot": n_boot, "confidence": float(confidence), "min_group_size": min_group_size,
            "max_groups": max_groups}


def check_group_counts(groups: pd.DataFrame, *, max_groups: int, n_boot: int, task: str,
                       calibration: bool = False) -> None:
    """Refuse too many groups per column (or intersection) and a bootstrap too big for memory, before the work."""
    check_feature_sizes({str(c): int(groups[c].nunique(dropna=False)) for c in groups.columns},
                        max_groups=max_groups, n_boot=n_boot, task=task, calibration=calibration)


def check_feature_sizes(counts: dict[str, int], *, max_groups: int, n_boot: int, task: str,
                        calibration: bool = False) -> None:
    """:func:`check_group_counts` from the number of groups of each column (e.g. of a count table)."""
    for column, count in counts.items():
        if count > max_groups:
            raise DataError(f"sensitive column {column!r} has {count:,} groups (limit {max_groups:,}): "
                            "is it an ID or a continuous column? Raise the limit with --max-groups "
                            "(max_groups in a spec) if it is meant")
    features = dict(counts)
    if len(counts) >= 2:
        crossed = math.prod(counts.values())
        name = " x ".join(counts)
        if crossed > max_groups:
            raise DataError(f"the intersection {name!r} has {crossed:,} groups (limit {max_groups:,}): "
                            "name fewer sensitive columns or raise the limit with --max-groups")
        features[name] = crossed
    if task != "regression":
        bins = _CALIBRATION_BINS if calibration and task == "binary" else 0
        for name, count in features.items():
            _engine.check_bootstrap(name, count, n_boot, task, bins)


def tabulate(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.DataFrame, *, binary: bool, seed: int = 0,
             n_boot: int = 1000, confidence: float = 0.95, min_group_size: int = MIN_GROUP_SIZE,
             scores: np.ndarray | None = None, task: str | None = None,
             max_groups: int = MAX_GROUPS) -> tuple[tuple[GroupTable, ...], GroupTable | None]:
    """One :class:`GroupTable` per column of ``groups``, and their intersection when there are several.

    Options are checked and group counts bounded (``max_groups`` per column and for the
    intersection; the bootstrap's memory) before any metric is computed.
    """
    checked = check_options(n_boot=n_boot, confidence=confidence, min_group_size=min_group_size,
                            max_groups=max_groups)
    kind = task if task == "regression" else ("binary" if binary else "multiclass")
    columns = groups.astype(str)
    check_group_counts(columns, max_groups=checked["max_groups"], n_boot=checked["n_boot"], task=kind,
                       calibration=scores is not None)
    options = {"binary": binary, "n_boot": checked["n_boot"], "confidence": checked["confidence"], "seed": seed,
               "min_group_size": checked["min_group_size"], "scores": scores, "task": task}
    tables = tuple(group_table(y_true, y_pred, columns[c].to_numpy(), str(c), **options) for c in columns)
    intersection = group_table(y_true, y_pred, columns, **options) if columns.shape[1] >= 2 else None
    return tables, intersection
