"""Prediction-only audits: group metrics of any system's outputs stored in a CSV or Parquet file."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from xai._io import read_table as _read_table
from xai._provenance import Provenance, sha256_file
from xai.errors import DataError, UnknownNameError
from xai.fairness._base import FairnessResult
from xai.fairness.group import MAX_GROUPS, check_options, tabulate
from xai.fairness.metrics import DEFAULT_METRICS, MIN_GROUP_SIZE
from xai.fairness.stream import CountTable, audit_counts

if TYPE_CHECKING:  # pandas is imported where a file is read whole: a streamed audit never needs it
    import pandas as pd

__all__ = ["Predictions", "audit_predictions", "load_predictions", "read_table"]

PredictionTask = Literal["binary", "multiclass", "regression"]
PREDICTION_TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Predictions:
    """Labels, binary predictions and sensitive columns read from one file."""

    path: Path
    y_true: np.ndarray
    y_pred: np.ndarray
    groups: pd.DataFrame
    source: str
    positive_label: str
    sha256: str
    #: Positive-class probabilities when a ``--score`` column in [0, 1] gave the predictions.
    scores: np.ndarray | None = None
    task: PredictionTask = "binary"
    #: Warnings about the input itself (a threshold with every row on one side), shown with every table.
    notes: tuple[str, ...] = ()

    # the facts an audit page shows, shared with a streamed :class:`~xai.fairness.stream.CountTable`
    @property
    def name(self) -> str:
        """The file's name."""
        return self.path.name

    @property
    def rows(self) -> int:
        """Rows read."""
        return len(self.y_true)

    @property
    def accuracy(self) -> float:
        """Share of rows whose prediction equals the label."""
        return float((self.y_true == self.y_pred).mean())

    @property
    def features(self) -> tuple[str, ...]:
        """The sensitive column names."""
        return tuple(map(str, self.groups.columns))


def read_table(path: str | Path) -> pd.DataFrame:
    """A ``.csv`` (optionally gzipped) or ``.parquet`` file as a DataFrame; clear errors otherwise."""
    return _read_table(Path(path), wrong_kind="--data takes a .csv or .parquet file, got {name}")


def _column(frame: pd.DataFrame, name: str, path: Path) -> pd.Series:
    if name not in frame.columns:
        raise UnknownNameError(f"column in {path.name}", name, map(str, frame.columns))
    column = frame[name]
    missing = column.isna().to_numpy()
    if missing.any():
        raise DataError(f"column {name!r} has {int(missing.sum())} missing values "
                        f"(first at data row {int(np.argmax(missing)) + 1})")
    return column


def _finite(column: pd.Series) -> pd.Series:
    """A label, prediction or score column without +-inf (NaN was refused as missing already)."""
    import pandas as pd

    if pd.api.types.is_float_dtype(column):
        infinite = np.isinf(column.to_numpy(np.float64))
        if infinite.any():
            raise DataError(f"column {column.name!r} has {int(infinite.sum())} infinite values "
                            f"(first at data row {int(np.argmax(infinite)) + 1})")
    return column


def _other_task(truth: pd.Series, pred: pd.Series, task: PredictionTask) -> tuple[np.ndarray, np.ndarray]:
    """Multiclass labels as shared integer codes, or regression targets as floats."""
    import pandas as pd

    if task == "regression":
        for column in (truth, pred):
            if not pd.api.types.is_numeric_dtype(column) or column.dtype == bool:
                raise DataError(f"column {column.name!r} must be numeric for a regression audit, got {column.dtype}")
        return truth.to_numpy(np.float64), pred.to_numpy(np.float64)
    text_true, text_pred = truth.astype(str), pred.astype(str)
    codes, _ = pd.factorize(pd.concat([text_true, text_pred], ignore_index=True), sort=True)
    return codes[: len(truth)].astype(np.int64), codes[len(truth):].astype(np.int64)


def _binary(column: pd.Series, pos_label: str | None) -> tuple[np.ndarray, str]:
    import pandas as pd

    values = pd.unique(column)
    shown = ", ".join(map(str, values[:6])) + (" ..." if len(values) > 6 else "")
    if pos_label is not None:
        text = column.astype(str)
        if len(values) > 2 or pos_label not in set(text):
            raise DataError(f"column {column.name!r} must hold two labels including --pos-label {pos_label!r} "
                            f"for binary metrics; found: {shown}")
        return (text == pos_label).to_numpy(np.int64), pos_label
    if column.dtype == bool:
        return column.to_numpy(np.int64), "True"
    if not pd.api.types.is_numeric_dtype(column) or not set(values) <= {0, 1}:
        raise DataError(f"column {column.name!r} must hold binary labels 0/1 for binary metrics "
                        f"(or name the positive one with --pos-label); found: {shown}")
    return column.to_numpy(np.int64), "1"


def check_prediction_arguments(*, y_pred: str | None, score: str | None, sensitive: Sequence[str],
                               threshold: float, pos_label: str | None, task: str) -> None:
    """Refuse a bad combination of prediction-file options before any row is read (in memory or streamed)."""
    if task not in PREDICTION_TASKS:
        raise UnknownNameError("task", task, PREDICTION_TASKS)
    if (y_pred is None) == (score is None):
        raise DataError("give exactly one of --y-pred COL or --score COL (with --threshold)")
    if task != "binary" and (score is not None or pos_label is not None):
        raise DataError(f"--score and --pos-label apply to binary tasks; a {task} audit takes --y-pred COL")
    if not sensitive:
        raise DataError("name at least one sensitive column with --sensitive")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise DataError(f"--threshold must be a finite number, got {threshold!r}")


def load_predictions(path: str | Path, *, y_true: str, sensitive: list[str], y_pred: str | None = None,
                     score: str | None = None, threshold: float = 0.5,
                     pos_label: str | None = None, task: PredictionTask = "binary") -> Predictions:
    """Read labels, predictions (given, or ``score >= threshold``) and sensitive columns.

    ``task`` ``binary`` wants 0/1 labels (or ``pos_label``); ``multiclass`` takes any
    labels (predictions are compared with them as text); ``regression`` takes numbers.

    Raises :class:`~xai.errors.DataError` for a missing or empty file, an unknown column
    (the message lists the file's columns), missing values in a used column, labels that
    do not fit the task, and for ``y_pred`` and ``score`` given together or neither.
    """
    import pandas as pd

    check_prediction_arguments(y_pred=y_pred, score=score, sensitive=sensitive, threshold=threshold,
                               pos_label=pos_label, task=task)
    path = Path(path)
    frame = read_table(path)
    if task != "binary":
        assert y_pred is not None
        truth, pred = _other_task(_finite(_column(frame, y_true, path)), _finite(_column(frame, y_pred, path)), task)
        groups = pd.DataFrame({c: _column(frame, c, path).astype(str) for c in sensitive})
        return Predictions(path=path, y_true=truth, y_pred=pred, groups=groups, source=y_pred,
                           positive_label="", sha256=sha256_file(path), task=task)
    truth, positive = _binary(_finite(_column(frame, y_true, path)), pos_label)
    probabilities = None
    notes: tuple[str, ...] = ()
    if y_pred is not None:
        pred, _ = _binary(_finite(_column(frame, y_pred, path)), pos_label)
        source = y_pred
    else:
        assert score is not None
        scores = _column(frame, score, path)
        if not pd.api.types.is_numeric_dtype(scores) or scores.dtype == bool:
            raise DataError(f"--score column {score!r} must be numeric, got {scores.dtype}")
        values = _finite(scores).to_numpy(np.float64)
        # scores that are probabilities also tell how well calibrated each group is
        probabilities = values if ((values >= 0) & (values <= 1)).all() else None
        if probabilities is not None and not 0 <= threshold <= 1:
            raise DataError(f"--threshold {threshold:g} is outside [0, 1], but the scores in {score!r} are "
                            "probabilities in [0, 1]")
        pred = (values >= threshold).astype(np.int64)
        source = f"{score} >= {threshold:g}"
        if pred.min() == pred.max():  # every row on one side: selection rates are all 0 or all 1
            side = "positive" if pred[0] else "negative"
            notes = (f"--threshold {threshold:g} predicts every row {side} (scores in {score!r} range "
                     f"{values.min():.4g} to {values.max():.4g}): selection rates are all {int(pred[0])}, "
                     "so a demographic parity difference of 0 says nothing about the model",)
    groups = pd.DataFrame({c: _column(frame, c, path).astype(str) for c in sensitive})
    return Predictions(path=path, y_true=truth, y_pred=pred, groups=groups, source=source,
                       positive_label=positive, sha256=sha256_file(path),
                       scores=probabilities, notes=notes)


def audit_predictions(data: Predictions | CountTable, *, seed: int = 0, n_boot: int = 1000,
                      confidence: float = 0.95, min_group_size: int = MIN_GROUP_SIZE,
                      max_groups: int = MAX_GROUPS) -> FairnessResult:
    """The ``group-metrics`` probe's result for predictions read by :func:`load_predictions`.

    Also takes a :class:`~xai.fairness.stream.CountTable` (streamed by
    :func:`~xai.fairness.stream.scan_predictions`, merged or loaded): the same numbers,
    without the rows. The input's own warnings (``data.notes``) lead every table's warnings.
    """
    if isinstance(data, CountTable):
        return audit_counts(data, seed=seed, n_boot=n_boot, confidence=confidence, min_group_size=min_group_size,
                            max_groups=max_groups)
    start = time.perf_counter()
    check_options(n_boot=n_boot, confidence=confidence, min_group_size=min_group_size, max_groups=max_groups)
    if data.task == "regression":
        n_boot = 0  # the multinomial bootstrap resamples count cells; regression cells are sums
    tables, intersection = tabulate(data.y_true, data.y_pred, data.groups, binary=data.task == "binary",
                                    seed=seed, n_boot=n_boot, confidence=confidence,
                                    min_group_size=min_group_size, scores=data.scores, task=data.task,
                                    max_groups=max_groups)
    if data.notes:
        tables = tuple(dataclasses.replace(t, warnings=(*data.notes, *t.warnings)) for t in tables)
        if intersection is not None:
            intersection = dataclasses.replace(intersection, warnings=(*data.notes, *intersection.warnings))
    return FairnessResult(
        probe="group-metrics",
        model=f"predictions ({data.source})",
        dataset=data.path.name,
        metric_names=DEFAULT_METRICS[data.task],
        tables=tables,
        intersection=intersection,
        positive_class=data.positive_label or None,
        notes=data.notes,
        provenance=Provenance(model_sha256="", data_sha256=data.sha256, seed=seed,
                              wall_seconds=round(time.perf_counter() - start, 4), device="cpu"),
    )
