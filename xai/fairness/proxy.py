"""Proxy detection: how well the other inputs reveal a sensitive attribute, and which carry it."""

from __future__ import annotations

import time
import warnings
from dataclasses import replace
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, normalized_mutual_info_score, recall_score
from sklearn.model_selection import train_test_split

from xai._method import Capabilities
from xai._provenance import Provenance
from xai.datasets import Dataset
from xai.errors import DataError, UnknownNameError
from xai.fairness._base import FairnessResult, GroupTable, Probe, ProbeOptions, register_probe

#: Numeric columns are cut into this many quantile bins for mutual information.
NUMERIC_BINS = 10
#: Rows used to fit the linear probe (a seeded sample): enough for a stable estimate.
MAX_ROWS = 5000


@register_probe("proxy")
class ProxyDetection(Probe):
    """Predict the sensitive attribute from the model's other inputs (a linear probe).

    Dropping a sensitive column does not remove its information when other columns
    encode it (Pedreschi et al. 2008; Feldman et al. 2015). The probe fits a logistic
    regression from every input except the attribute's own to the attribute, on a
    seeded 70/30 split (of at most ``max_rows`` rows, option), with balanced class
    weights so a rare group counts as much as a common one, and reports its balanced accuracy against chance and
    ``proxy_strength = (balanced accuracy - chance) / (1 - chance)`` (0: no proxy,
    1: perfect proxy). ``rankings`` orders the raw columns by normalised mutual
    information with the attribute: which features carry it.
    Paper: https://arxiv.org/abs/1412.3756.
    """

    class Options(ProbeOptions):
        """The proxy probe's options."""

        #: Rows used to fit the linear probe (a seeded sample when the data has more).
        max_rows: int = Field(default=MAX_ROWS, ge=10)

    paper = "https://arxiv.org/abs/1412.3756"
    #: Tabular models only: the probe reads the encoded input columns.
    capabilities: ClassVar[Capabilities] = replace(Probe.capabilities, modalities=frozenset({"tabular"}))

    def probe(self, data: Dataset, *, sensitive: list[str], seed: int = 0) -> FairnessResult:
        """Probe each sensitive column of ``data.groups``."""
        if len(data) < 10:
            raise DataError("the proxy probe needs at least 10 rows")
        if not sensitive:
            raise DataError("name at least one sensitive column")
        start = time.perf_counter()
        tables, rankings, notes = [], {}, []
        for column in sensitive:
            if column not in data.groups.columns:
                raise UnknownNameError("sensitive column", column, data.groups.columns)
            labels = data.groups[column].astype(str).to_numpy()
            if len(set(labels)) < 2:
                notes.append(f"{column} has a single value in this data; nothing to predict")
                continue
            table, ranking = _probe_column(data, column, labels, seed, self.options["max_rows"])
            tables.append(table)
            rankings[column] = ranking
        return FairnessResult(
            probe=self.name,
            model=self.handle.name,
            dataset=f"{data.name}:{data.split}",
            metric_names=("recall", "count"),
            tables=tuple(tables),
            notes=tuple(notes),
            rankings=rankings,
            provenance=Provenance(
                model_sha256=self.handle.sha256,
                data_sha256=data.sha256,
                seed=seed,
                wall_seconds=round(time.perf_counter() - start, 4),
                device=str(self.handle.device),
            ),
        )


def _probe_column(data: Dataset, column: str, labels: np.ndarray, seed: int,
                  max_rows: int) -> tuple[GroupTable, dict[str, float]]:
    keep = [j for j, c in enumerate(data.feature_columns) if c != column]
    x = data.x[:, keep].numpy().astype(np.float64)
    ranking = _mutual_information(data, column, labels)  # cheap: uses every row
    return linear_probe(column, x, labels, seed=seed, max_rows=max_rows, prefix="proxy"), ranking


def linear_probe(feature: str, x: np.ndarray, labels: np.ndarray, *, seed: int, max_rows: int,
                 prefix: str) -> GroupTable:
    """Fit a balanced logistic regression ``x -> labels`` on a seeded 70/30 split; tabulate it.

    ``x`` is ``(N, D)``. The table's disparities are ``<prefix>_balanced_accuracy`` and
    ``<prefix>_strength = (balanced accuracy - chance) / (1 - chance)``, floored at 0.
    """
    if len(x) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(x), max_rows, replace=False))
        x, labels = x[rows], labels[rows]
    levels = tuple(sorted(set(labels)))
    counts = pd.Series(labels).value_counts()
    stratify = labels if counts.min() >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(x, labels, test_size=0.3, random_state=seed,
                                                        stratify=stratify)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on separable toy data
        model = LogisticRegression(max_iter=2000, class_weight="balanced").fit(x_train, y_train)
    predicted = model.predict(x_test)
    balanced = float(balanced_accuracy_score(y_test, predicted))
    chance = 1.0 / len(levels)
    recall = recall_score(y_test, predicted, labels=list(levels), average=None, zero_division=0.0)
    return GroupTable(
        feature=feature,
        groups=levels,
        by_group={"recall": {g: float(r) for g, r in zip(levels, recall, strict=True)},
                  "count": {g: float((y_test == g).sum()) for g in levels}},
        overall={"balanced_accuracy": balanced, "chance": chance, "roc_auc": _auc(model, x_test, y_test),
                 "count": float(len(y_test))},
        disparities={f"{prefix}_balanced_accuracy": balanced,
                     f"{prefix}_strength": max(0.0, (balanced - chance) / (1.0 - chance))},
    )


def _auc(model: LogisticRegression, x: np.ndarray, y: np.ndarray) -> float:
    """One-vs-rest macro ROC AUC of the probe (the binary AUC for two classes).

    Computed from ranks (the Mann-Whitney identity: AUC = P(score_pos > score_neg), ties
    counting one half), which equals scikit-learn's ``roc_auc_score`` and never trips on a
    curve that float round-off makes non-monotonic.
    """
    present = set(y)
    if len(present) < 2 or present != set(model.classes_):
        return float("nan")
    scores = model.predict_proba(x)
    classes = model.classes_[1:] if len(model.classes_) == 2 else model.classes_
    aucs = []
    for c in classes:
        column = scores[:, list(model.classes_).index(c)]
        positive = y == c
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        ranks = rankdata(column)
        aucs.append((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(aucs))


def _mutual_information(data: Dataset, column: str, labels: np.ndarray) -> dict[str, float]:
    """Normalised mutual information of each other raw column with the attribute, largest first."""
    scores: dict[str, float] = {}
    x = data.x.numpy()
    for raw in dict.fromkeys(data.feature_columns):
        if raw == column:
            continue
        inputs = [j for j, c in enumerate(data.feature_columns) if c == raw]
        if len(inputs) > 1:
            values = x[:, inputs].argmax(1)  # the one-hot level
        else:
            values = pd.qcut(x[:, inputs[0]], NUMERIC_BINS, labels=False, duplicates="drop")
        scores[raw] = float(normalized_mutual_info_score(labels, values))
    return dict(sorted(scores.items(), key=lambda item: -item[1]))
