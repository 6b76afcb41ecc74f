"""A planted slice-discovery benchmark: predictions whose error rate departs in known slices.

Used by ``tests/fairness/test_slices.py`` and ``benchmarks/bench_slices.py``. Every row has a
known probability of a wrong prediction (``error_prob``): a base rate, plus or minus ``gap``
in each planted slice it falls in. Attributes are categorical (2 to 6 levels of unequal
frequency, stored as pandas categoricals) and every fourth one numeric (uniform, sliced by its
quartile bins, the same bins :func:`xai.fairness.slices.encode_columns` cuts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xai.fairness.slices import CodedColumn, SliceResult, encode_columns

__all__ = ["Planted", "planted_slices", "score_findings"]


@dataclass(frozen=True)
class Planted:
    """Labels, predictions, attribute columns and the planted slices (as finding conditions)."""

    y_true: np.ndarray
    y_pred: np.ndarray
    columns: dict[str, Any]
    #: Conditions of each planted slice, ``((column, level label), ...)`` in column order.
    slices: tuple[tuple[tuple[str, str], ...], ...]
    #: Planted error-rate change of each slice (``+gap`` or ``-gap``).
    gaps: tuple[float, ...]
    #: Share of rows in each planted slice.
    shares: tuple[float, ...]
    #: ``(N,)`` probability that the row's prediction is wrong.
    error_prob: np.ndarray
    coded: tuple[CodedColumn, ...]


def planted_slices(n_rows: int, *, n_attributes: int = 20, n_planted: int = 10, gap: float = 0.05,
                   base_error: float = 0.2, min_share: float = 0.005, max_share: float = 0.03,
                   n_bins: int = 4, seed: int = 0) -> Planted:
    """Seeded predictions with ``n_planted`` slices (orders 1 to 3, shares in [min_share, max_share]).

    ``n_planted=0`` gives null data: every row has the same error probability.
    """
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    probabilities: list[np.ndarray] = []
    for i in range(n_attributes):
        name = f"a{i:02d}"
        if i % 4 == 3:
            columns[name] = rng.random(n_rows)
            probabilities.append(np.full(n_bins, 1.0 / n_bins))
        else:
            levels = 2 + i % 5
            p = rng.dirichlet(np.full(levels, 2.0))
            p = np.maximum(p, 0.04)
            p /= p.sum()
            codes = np.searchsorted(np.cumsum(p)[:-1], rng.random(n_rows)).astype(np.int8)
            columns[name] = pd.Categorical.from_codes(codes, categories=[f"v{j}" for j in range(levels)])
            probabilities.append(p)
    coded = tuple(encode_columns(columns, n_bins=n_bins))
    error_prob = np.full(n_rows, base_error)
    chosen: list[tuple[tuple[int, int], ...]] = []
    gaps: list[float] = []
    used: set[tuple[int, ...]] = set()
    while len(chosen) < n_planted:
        order = int(rng.integers(1, 4))
        combo = tuple(sorted(int(c) for c in rng.choice(n_attributes, size=order, replace=False)))
        level_ids = tuple(int(rng.integers(len(probabilities[c]))) for c in combo)
        share = float(np.prod([probabilities[c][lv] for c, lv in zip(combo, level_ids, strict=True)]))
        if combo in used or not min_share <= share <= max_share:
            continue
        used.add(combo)
        chosen.append(tuple(zip(combo, level_ids, strict=True)))
        gaps.append(gap if rng.random() < 0.5 else -gap)
    shares = []
    for conditions, change in zip(chosen, gaps, strict=True):
        mask = _mask(coded, conditions)
        error_prob[mask] += change
        shares.append(float(mask.mean()))
    error_prob = np.clip(error_prob, 0.0, 1.0)
    y_true = (rng.random(n_rows) < 0.3).astype(np.int8)
    wrong = rng.random(n_rows) < error_prob
    y_pred = np.where(wrong, 1 - y_true, y_true).astype(np.int8)
    slices = tuple(tuple((coded[c].name, coded[c].levels[lv]) for c, lv in conditions) for conditions in chosen)
    return Planted(y_true=y_true, y_pred=y_pred, columns=columns, slices=slices, gaps=tuple(gaps),
                   shares=tuple(shares), error_prob=error_prob, coded=coded)


def _mask(coded: tuple[CodedColumn, ...], conditions: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Rows in the slice given by ``(column index, level index)`` conditions."""
    mask = np.ones(coded[0].codes.shape[0], dtype=bool)
    for column, level in conditions:
        mask &= coded[column].codes == level
    return mask


def score_findings(result: SliceResult, planted: Planted) -> dict[str, float]:
    """Recall of the planted slices and the false-discovery proportion of ``result``'s error-rate findings.

    A finding is false when its population gap (mean ``error_prob`` in the slice minus in the
    rest, on these rows) is at most the result's ``min_gap``: exactly the test's null
    hypothesis. ``result`` must list every finding (``max_findings`` at least the count).
    """
    findings = [f for f in result.findings if f.metric == "error_rate"]
    if len(findings) < result.n_significant.get("error_rate", 0):
        raise ValueError("score_findings needs every finding: raise max_findings")
    found = {f.conditions for f in findings}
    recall = (sum(s in found for s in planted.slices) / len(planted.slices)) if planted.slices else 1.0
    index = {c.name: i for i, c in enumerate(planted.coded)}
    total = float(planted.error_prob.sum())
    n = planted.error_prob.shape[0]
    # one weighted count per combination of columns among the findings (not one mask per finding)
    by_combo: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for finding in findings:
        combo = tuple(index[col] for col, _ in finding.conditions)
        levels = tuple(planted.coded[c].levels.index(level) for c, (_, level) in zip(combo, finding.conditions,
                                                                                   strict=True))
        by_combo.setdefault(combo, []).append(levels)
    false = 0
    for combo, wanted in by_combo.items():
        shape = [len(planted.coded[c].levels) for c in combo]
        code = np.zeros(n, dtype=np.int64)
        for c in combo:
            code = code * len(planted.coded[c].levels) + planted.coded[c].codes
        size = np.bincount(code, minlength=int(np.prod(shape)))
        inside = np.bincount(code, weights=planted.error_prob, minlength=int(np.prod(shape)))
        for levels in wanted:
            cell = int(np.ravel_multi_index(levels, shape))
            gap = inside[cell] / size[cell] - (total - inside[cell]) / (n - size[cell])
            false += abs(gap) <= result.min_gap + 1e-12  # float sums of a constant rate are not exactly equal
    fdp = false / len(findings) if findings else 0.0
    return {"recall": recall, "fdp": fdp, "discoveries": float(len(findings)), "false": float(false)}


def planted_orders(planted: Planted) -> dict[int, int]:
    """How many planted slices have 1, 2 and 3 conditions."""
    return {r: sum(len(s) == r for s in planted.slices) for r in (1, 2, 3)}
