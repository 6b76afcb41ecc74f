"""Group performance and disparities, computed with fairlearn's MetricFrame."""

from __future__ import annotations

import time
import warnings

import numpy as np
from fairlearn.metrics import (
    MetricFrame,
    count,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

from xai._provenance import Provenance
from xai.datasets import Dataset
from xai.errors import DataError, UnknownNameError
from xai.fairness._base import FairnessResult, GroupTable, Probe, register_probe

BINARY_METRICS = {
    "accuracy": accuracy_score,
    "selection_rate": selection_rate,
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
    "count": count,
}
MULTICLASS_METRICS = {"accuracy": accuracy_score, "count": count}


def group_table(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, feature: str,
                *, binary: bool) -> GroupTable:
    """Per-group metrics and disparities for one sensitive feature.

    Binary tasks get accuracy, selection rate, TPR and FPR with demographic parity and
    equalized odds differences; multiclass tasks get accuracy and its gap. The
    differences are fairlearn's (largest minus smallest group value; equalized odds takes
    the larger of the TPR and FPR gaps), read off the one MetricFrame instead of the
    two extra frames ``demographic_parity_difference`` and ``equalized_odds_difference``
    would build.
    """
    metrics = BINARY_METRICS if binary else MULTICLASS_METRICS
    with warnings.catch_warnings():
        # A group with no positives has an undefined TPR; fairlearn warns and returns 0.
        warnings.simplefilter("ignore")
        frame = MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred,
                            sensitive_features=groups)
        by_group = {m: {str(g): float(v) for g, v in frame.by_group[m].items()} for m in metrics}
        overall = {m: float(frame.overall[m]) for m in metrics}
        gaps = frame.difference(method="between_groups")
        disparities = {"accuracy_difference": float(gaps["accuracy"])}
        if binary:
            disparities["demographic_parity_difference"] = float(gaps["selection_rate"])
            disparities["equalized_odds_difference"] = float(
                max(gaps["true_positive_rate"], gaps["false_positive_rate"]))
    return GroupTable(
        feature=feature,
        groups=tuple(by_group["count"]),
        by_group=by_group,
        overall=overall,
        disparities=disparities,
    )


@register_probe("group-metrics")
class GroupMetrics(Probe):
    """Per-group accuracy, selection rate, TPR and FPR, with DP and EO differences.

    Uses fairlearn's ``MetricFrame`` (https://fairlearn.org). For binary tasks the
    positive class is index 1 of the model's classes.
    """

    paper = "https://arxiv.org/abs/1610.02413"

    def run(self, data: Dataset, *, sensitive: list[str], seed: int = 0) -> FairnessResult:
        """Predict ``data`` and tabulate each sensitive column of ``data.groups``."""
        if len(data) == 0:
            raise DataError("no rows to probe")
        if not sensitive:
            raise DataError(f"name at least one sensitive column; {data.name} has: "
                            f"{', '.join(data.groups.columns) or 'none'}")
        for column in sensitive:
            if column not in data.groups.columns:
                raise UnknownNameError("sensitive column", column, data.groups.columns)
        start = time.perf_counter()
        y_pred = self.handle.predict(data.x).argmax(1).numpy()
        y_true = data.y.numpy()
        binary = self.handle.task == "binary-classification"
        tables = tuple(
            group_table(y_true, y_pred, data.groups[c].astype(str).to_numpy(), c, binary=binary)
            for c in sensitive
        )
        return FairnessResult(
            probe=self.name,
            model=self.handle.name,
            dataset=f"{data.name}:{data.split}",
            metrics=tuple(BINARY_METRICS if binary else MULTICLASS_METRICS),
            tables=tables,
            positive_class=self.handle.class_names[1] if binary else None,
            provenance=Provenance(
                model_sha256=self.handle.sha256,
                data_sha256=data.sha256,
                seed=seed,
                wall_seconds=round(time.perf_counter() - start, 4),
                device=str(self.handle.device),
            ),
        )
