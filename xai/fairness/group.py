"""Group performance and disparities with bootstrap intervals, on the count-table engine."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from xai._provenance import Provenance
from xai.datasets import Dataset
from xai.errors import DataError, UnknownNameError
from xai.fairness._base import FairnessResult, GroupTable, Probe, register_probe
from xai.fairness.metrics import (
    DEFAULT_METRICS,
    MIN_GROUP_SIZE,
    bootstrap_intervals,
    calibration_error,
    four_fifths,
    group_frame,
)

#: The probe's metrics (the names are fairlearn's).
BINARY_METRICS = DEFAULT_METRICS["binary"]
MULTICLASS_METRICS = DEFAULT_METRICS["multiclass"]
#: Summary disparities: differences (larger is worse) and ratios (smaller is worse).
BINARY_DIFFERENCES = ("accuracy_difference", "demographic_parity_difference", "equalized_odds_difference")
BINARY_RATIOS = ("accuracy_ratio", "demographic_parity_ratio", "equalized_odds_ratio")
MULTICLASS_DIFFERENCES = ("accuracy_difference",)
MULTICLASS_RATIOS = ("accuracy_ratio",)
REGRESSION_DIFFERENCES = ("mean_absolute_error_difference", "mean_squared_error_difference")
#: Options of the probe (``[[probe]] options`` in a spec).
PROBE_OPTIONS = ("n_boot", "confidence", "min_group_size")


def group_table(y_true: np.ndarray, y_pred: np.ndarray, groups: Any, feature: str | None = None, *,
                binary: bool, n_boot: int = 0, confidence: float = 0.95, seed: int = 0,
                min_group_size: int = MIN_GROUP_SIZE, scores: np.ndarray | None = None,
                task: str | None = None) -> GroupTable:
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
    """
    task = task if task == "regression" else ("binary" if binary else "multiclass")
    sensitive = groups if isinstance(groups, pd.DataFrame) else {feature or "group": np.asarray(groups)}
    frame = group_frame(y_true=y_true, y_pred=y_pred, sensitive_features=sensitive, task=task,
                        min_group_size=min_group_size)
    differences, ratios = {"binary": (BINARY_DIFFERENCES, BINARY_RATIOS),
                           "multiclass": (MULTICLASS_DIFFERENCES, MULTICLASS_RATIOS),
                           "regression": (REGRESSION_DIFFERENCES, ())}[task]
    intervals = (bootstrap_intervals(frame, n_boot=n_boot, confidence=confidence, seed=seed,
                                     derived=differences + ratios) if n_boot and task != "regression" else None)
    by_group, overall = dict(frame.by_group), dict(frame.overall)
    disparities = {name: frame.derived(name) for name in differences}
    group_iv = dict(intervals.by_group) if intervals else {}
    overall_iv = dict(intervals.overall) if intervals else {}
    disparity_iv = dict(intervals.derived) if intervals else {}
    if task == "binary" and scores is not None:
        calibration = calibration_error(y_true=y_true, y_score=scores, sensitive_features=sensitive)
        by_group["calibration_error"] = calibration.by_group
        overall["calibration_error"] = calibration.overall
        disparities["calibration_error_difference"] = calibration.difference
        if n_boot:
            group_iv["calibration_error"], overall_iv["calibration_error"], disparity_iv[
                "calibration_error_difference"] = calibration.intervals(n_boot=n_boot, confidence=confidence,
                                                                        seed=seed)
    return GroupTable(
        feature=frame.feature,
        groups=frame.groups,
        by_group=by_group,
        overall=overall,
        disparities=disparities,
        ratios={name: frame.derived(name) for name in ratios},
        four_fifths=four_fifths(frame) if task == "binary" else None,
        intervals=group_iv,
        overall_intervals=overall_iv,
        disparity_intervals=disparity_iv,
        n_boot=n_boot,
        confidence=confidence,
        min_group_size=min_group_size,
        warnings=frame.warnings,
    )


@register_probe("group-metrics")
class GroupMetrics(Probe):
    """Per-group accuracy, selection rate, TPR, FPR (and calibration error), with DP and EO disparities.

    Numbers equal fairlearn's ``MetricFrame`` (https://fairlearn.org) and come from a
    table of counts per (group, label, prediction); percentile bootstrap intervals come
    from multinomial draws of those counts. For binary tasks the positive class is index
    1 of the model's classes, whose softmax probability gives each group's expected
    calibration error (ECE, 10 equal-width bins). Options: ``n_boot`` (default 1000, 0 for none),
    ``confidence`` (0.95), ``min_group_size`` (30).
    """

    paper = "https://arxiv.org/abs/1610.02413"

    def run(self, data: Dataset, *, sensitive: list[str], seed: int = 0) -> FairnessResult:
        """Predict ``data`` and tabulate each sensitive column of ``data.groups`` and their intersection."""
        if len(data) == 0:
            raise DataError("no rows to probe")
        if not sensitive:
            raise DataError(f"name at least one sensitive column; {data.name} has: "
                            f"{', '.join(data.groups.columns) or 'none'}")
        for column in sensitive:
            if column not in data.groups.columns:
                raise UnknownNameError("sensitive column", column, data.groups.columns)
        start = time.perf_counter()
        outputs = self.handle.predict(data.x)
        y_pred = outputs.argmax(1).numpy()
        binary = self.handle.task == "binary-classification"
        scores = torch.softmax(outputs.double(), dim=1)[:, 1].numpy() if binary else None
        unknown = set(self.options) - set(PROBE_OPTIONS)
        if unknown:
            raise UnknownNameError("group-metrics option", sorted(unknown)[0], PROBE_OPTIONS)
        result = tabulate(data.y.numpy(), y_pred, data.groups[list(sensitive)], binary=binary, seed=seed,
                          scores=scores, **self.options)
        return FairnessResult(
            probe=self.name,
            model=self.handle.name,
            dataset=f"{data.name}:{data.split}",
            metrics=BINARY_METRICS if binary else MULTICLASS_METRICS,
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


def tabulate(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.DataFrame, *, binary: bool, seed: int = 0,
             n_boot: int = 1000, confidence: float = 0.95, min_group_size: int = MIN_GROUP_SIZE,
             scores: np.ndarray | None = None,
             task: str | None = None) -> tuple[tuple[GroupTable, ...], GroupTable | None]:
    """One :class:`GroupTable` per column of ``groups``, and their intersection when there are several."""
    options = {"binary": binary, "n_boot": int(n_boot), "confidence": float(confidence), "seed": seed,
               "min_group_size": int(min_group_size), "scores": scores, "task": task}
    columns = groups.astype(str)
    tables = tuple(group_table(y_true, y_pred, columns[c].to_numpy(), str(c), **options) for c in columns)
    intersection = group_table(y_true, y_pred, columns, **options) if columns.shape[1] >= 2 else None
    return tables, intersection
