"""Mitigation what-if: accuracy vs disparity before and after fairlearn's mitigators.

Two questions an auditor asks once a gap is found: *how much accuracy would it cost to
close it after the fact* (post-processing our model's scores with fairlearn's
``ThresholdOptimizer``, Hardt et al. 2016) and *would a model trained under a fairness
constraint do better* (``ExponentiatedGradient``, Agarwal et al. 2018, over a logistic
regression on the same encoded features, next to the same logistic regression without
the constraint). Mitigators are fitted on the dataset's train split and every row of the
table is measured on the audited rows, with the same metric engine as ``group-metrics``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from fairlearn.postprocessing import ThresholdOptimizer
from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient
from pydantic import Field
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from xai._method import Capabilities
from xai._provenance import Provenance
from xai.datasets import Dataset, load_dataset
from xai.errors import DataError, UnknownNameError
from xai.fairness._base import FairnessResult, GroupTable, Probe, ProbeOptions, register_probe
from xai.fairness.metrics import group_frame

#: Metrics of each strategy row (names are fairlearn's).
MITIGATION_METRICS = ("accuracy", "selection_rate", "demographic_parity_difference",
                      "equalized_odds_difference")
Strategy = Literal["threshold-optimizer", "exponentiated-gradient"]
Constraint = Literal["demographic_parity", "equalized_odds"]
#: Strategies the probe knows; ``strategies`` option picks a subset.
STRATEGIES: tuple[Strategy, ...] = ("threshold-optimizer", "exponentiated-gradient")
CONSTRAINTS: tuple[Constraint, ...] = ("demographic_parity", "equalized_odds")


class _PrefitScorer(ClassifierMixin, BaseEstimator):
    """Our model as a fitted scikit-learn classifier (``predict_proba`` from its softmax)."""

    def __init__(self, predict_proba: Callable[[np.ndarray], np.ndarray]) -> None:
        self.predict_proba_fn = predict_proba
        self.classes_ = np.array([0, 1])

    def fit(self, x: np.ndarray, y: np.ndarray) -> _PrefitScorer:  # noqa: D102  (prefit: nothing to learn)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:  # noqa: D102
        return self.predict_proba_fn(x)

    def predict(self, x: np.ndarray) -> np.ndarray:  # noqa: D102
        return self.predict_proba(x).argmax(1)


def strategy_metrics(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Accuracy, selection rate and the DP / EO differences of one set of decisions."""
    frame = group_frame(y_true=y_true, y_pred=y_pred, sensitive_features={"group": groups},
                        min_group_size=1)
    return {
        "accuracy": float(frame.overall["accuracy"]),
        "selection_rate": float(frame.overall["selection_rate"]),
        "demographic_parity_difference": float(frame.derived("demographic_parity_difference")),
        "equalized_odds_difference": float(frame.derived("equalized_odds_difference")),
    }


@register_probe("mitigation")
class MitigationWhatIf(Probe):
    """Accuracy and disparities of the model before and after fairlearn's mitigators.

    Rows: ``original`` (the model's arg-max decisions); ``threshold-optimizer:<constraint>``
    (group-specific, randomised thresholds on the model's positive-class probability,
    fitted on the train split); ``logistic-regression`` and
    ``exponentiated-gradient:<constraint>`` (a logistic regression retrained on
    ``fit_rows`` train rows without and with the constraint). Options: ``strategies``
    (default both), ``constraints`` (``demographic_parity``, ``equalized_odds``),
    ``fit_rows`` (4000), ``max_iter`` (exponentiated-gradient iterations, 20).
    Binary tabular classifiers only. Papers: https://arxiv.org/abs/1610.02413,
    https://arxiv.org/abs/1803.02453.
    """

    class Options(ProbeOptions):
        """The mitigation probe's options."""

        #: Mitigation strategies compared with the original model.
        strategies: tuple[Strategy, ...] = STRATEGIES
        #: Fairness constraints each strategy is fitted under.
        constraints: tuple[Constraint, ...] = CONSTRAINTS
        #: Train rows the retrained logistic regressions see (a seeded sample).
        fit_rows: int = Field(default=4000, ge=100)
        #: Exponentiated-gradient iterations.
        max_iter: int = Field(default=20, ge=1)

    paper = "https://arxiv.org/abs/1803.02453"
    default = False  # refits models for seconds: named in a spec on purpose
    #: Binary classifiers of tabular rows (mitigators refit on the encoded columns).
    capabilities: ClassVar[Capabilities] = replace(
        Probe.capabilities, tasks=frozenset({"binary-classification"}), modalities=frozenset({"tabular"}))

    def _proba(self, x: np.ndarray) -> np.ndarray:
        logits = self.handle.predict(torch.as_tensor(x, dtype=torch.float32))
        return torch.softmax(logits, dim=1).double().numpy()  # (N, 2); fairlearn wants float64

    def probe(self, data: Dataset, *, sensitive: list[str], seed: int = 0) -> FairnessResult:
        """Fit the mitigators on ``data``'s train split; measure every strategy on ``data``."""
        if len(data) == 0:
            raise DataError("no rows to probe")
        if not sensitive:
            raise DataError(f"name at least one sensitive column; {data.name} has: "
                            f"{', '.join(data.groups.columns) or 'none'}")
        for column in sensitive:
            if column not in data.groups.columns:
                raise UnknownNameError("sensitive column", column, data.groups.columns)
        options = self.options
        start = time.perf_counter()
        train = load_dataset(data.name, "train")
        rng = np.random.default_rng(seed)
        fit_index = rng.choice(len(train), size=min(options["fit_rows"], len(train)), replace=False)
        with warnings.catch_warnings():  # fairlearn's own pandas deprecation noise, not the user's
            warnings.filterwarnings("ignore", module=r"fairlearn\..*")
            tables = tuple(self._table(train, fit_index, data, column, options, seed) for column in sensitive)
        return FairnessResult(
            probe=self.name,
            model=self.handle.name,
            dataset=f"{data.name}:{data.split}",
            metric_names=MITIGATION_METRICS,
            tables=tables,
            positive_class=self.handle.class_names[1],
            notes=(f"mitigators fitted on {data.name}:train ({len(train)} rows; the retrained "
                   f"models on {len(fit_index)} of them), measured on {data.name}:{data.split}",),
            provenance=Provenance(
                model_sha256=self.handle.sha256,
                data_sha256=data.sha256,
                seed=seed,
                wall_seconds=round(time.perf_counter() - start, 4),
                device=str(self.handle.device),
            ),
        )

    def _table(self, train: Dataset, fit_index: np.ndarray, data: Dataset, column: str,
               options: dict[str, Any], seed: int) -> GroupTable:
        x_fit, y_fit = train.x.numpy(), train.y.numpy()
        a_fit = train.groups[column].astype(str).to_numpy()
        x, y = data.x.numpy(), data.y.numpy()
        a = data.groups[column].astype(str).to_numpy()
        rows: dict[str, dict[str, float]] = {
            "original": strategy_metrics(y, self._proba(x).argmax(1), a)}
        if "threshold-optimizer" in options["strategies"]:
            scorer = _PrefitScorer(self._proba)
            for constraint in options["constraints"]:
                mitigator = ThresholdOptimizer(estimator=scorer, constraints=constraint, prefit=True,
                                               predict_method="predict_proba")
                mitigator.fit(x_fit, y_fit, sensitive_features=a_fit)
                decisions = mitigator.predict(x, sensitive_features=a, random_state=seed)
                rows[f"threshold-optimizer:{constraint}"] = strategy_metrics(y, np.asarray(decisions), a)
        if "exponentiated-gradient" in options["strategies"]:
            xs, ys, as_ = x_fit[fit_index], y_fit[fit_index], a_fit[fit_index]
            base = LogisticRegression(max_iter=500)
            rows["logistic-regression"] = strategy_metrics(y, base.fit(xs, ys).predict(x), a)
            for constraint in options["constraints"]:
                moment = DemographicParity() if constraint == "demographic_parity" else EqualizedOdds()
                mitigator = ExponentiatedGradient(LogisticRegression(max_iter=500), constraints=moment,
                                                  max_iter=options["max_iter"])
                mitigator.fit(xs, ys, sensitive_features=as_)
                decisions = mitigator.predict(x, random_state=seed)
                rows[f"exponentiated-gradient:{constraint}"] = strategy_metrics(y, np.asarray(decisions), a)
        strategies = tuple(rows)
        by_group = {m: {s: rows[s][m] for s in strategies} for m in MITIGATION_METRICS}
        original = rows["original"]
        disparities = {}
        for metric in ("demographic_parity_difference", "equalized_odds_difference"):
            # the mitigated row with the smallest gap (ties: the more accurate one)
            def gap_then_accuracy(s: str, m: str = metric) -> tuple[float, float]:
                return (rows[s][m], -rows[s]["accuracy"])

            best = min(strategies[1:] or strategies, key=gap_then_accuracy)
            short = metric.removesuffix("_difference")
            disparities[f"original_{metric}"] = original[metric]
            disparities[f"best_{metric}"] = rows[best][metric]
            disparities[f"accuracy_cost_of_best_{short}"] = original["accuracy"] - rows[best]["accuracy"]
        return GroupTable(
            feature=column,
            groups=strategies,
            by_group=by_group,
            overall=dict(original),
            disparities=disparities,
            kind="strategy",
        )
