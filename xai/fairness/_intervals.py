"""Disparities over the groups large enough to rank, and bootstrap intervals that contain their estimate.

Two problems of a headline "worst gap between groups", and what this module does about them.

**Small groups.** The largest gap over all groups is usually set by the smallest group
(7 rows give a selection rate of 0 by chance). A disparity is therefore computed over the
*eligible* groups only, those with at least ``min_group_size`` rows (:func:`eligible`);
smaller groups keep their own row and interval, are flagged, and are listed apart, but
never set a headline value. With fewer than two eligible groups a disparity is undefined
(NaN), as it is with one group.

**Intervals that exclude their own estimate.** A percentile bootstrap of a max - min over
groups (or of a min / max ratio) is biased: each resample picks its own extremes, so the
resampled gaps are larger than the observed one, and a 95 % interval can lie entirely above
it (compas-mlp's race accuracy difference 0.0746 had [0.079, 0.753]). Binned expected
calibration error has the same upward bias per group (Hispanic ECE 0.0346 had
[0.043, 0.138]). Bias-corrected intervals do not cure this: BCa's quantile levels
Phi(2 z0 + z_alpha) go to 0 and to below the estimate's own rank when almost every
resample exceeds the estimate (|z0| > 1.96), so the interval can still exclude it.

The construction used here, for every disparity and every calibration error:

1. **Fix the observed extreme pair** (:func:`extreme`). On the data, find the base metric
   and the two eligible groups that give the disparity (for equalized odds: TPR or FPR,
   whichever gap is larger); in every resample compute *that pair's* difference or ratio,
   not a new max - min. The pair's statistic is a smooth function of two groups' rates, so
   its bootstrap distribution is centred on the estimate instead of above it.
2. **Symmetric bootstrap interval** around the estimate (:func:`symmetric_interval`;
   Hall 1988, "On symmetric bootstrap confidence intervals", JRSS B 50(1); Hall 1992,
   *The Bootstrap and Edgeworth Expansion*, section 3.6): with ``h`` the ``confidence``
   quantile of |resample - estimate|, the interval is [estimate - h, estimate + h],
   clipped to the statistic's range (a gap is at least 0, a ratio or a rate lies in
   [0, 1]; clipping never removes a true value). It contains the estimate by
   construction, whatever the resamples do, and is as wide as the bootstrap spread,
   including any bias (an ECE interval is widened, not shifted away).

Coverage of the true disparity is near nominal when the true extreme pair is the observed
one (groups whose true rates differ by more than their noise); when two groups (or the
TPR and FPR parts of equalized odds) nearly tie for an extreme, the observed max - min is
itself biased upward and no interval centred on it covers at the nominal rate.
``tests/fairness/test_intervals.py`` simulates 400 seeded datasets of six groups (3 to
600 rows): every interval contains its estimate, and 95 % intervals cover the true
disparity in [0.88, 0.99] of them (measured 0.91-0.95; an exact tie of the two equalized
odds ratios gave 0.82, which is stated there, not asserted).

Per-group rates (accuracy, selection rate, TPR, FPR) keep their percentile intervals: a
rate's bootstrap distribution is centred on it, and those intervals contain it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from xai.errors import UnknownNameError
from xai.fairness import _engine

__all__ = ["Extreme", "disparity", "eligible", "extreme", "extreme_samples", "symmetric_interval",
           "symmetric_intervals"]

#: The range each kind of statistic lies in (clipping an interval to it never removes a true value).
RANGES: dict[str, tuple[float, float]] = {
    "difference": (0.0, np.inf),
    "ratio": (0.0, 1.0),
    "group_min": (-np.inf, np.inf),
    "group_max": (-np.inf, np.inf),
}


def eligible(counts: np.ndarray, min_group_size: int) -> np.ndarray:
    """``(G,)`` mask of the groups that may set a disparity: at least ``min_group_size`` rows (and one)."""
    return np.asarray(counts) >= max(1, int(min_group_size))


@dataclass(frozen=True)
class Extreme:
    """The observed extreme of a disparity: base ``metric``, the ``high`` and ``low`` group indices.

    ``None`` as an index stands for the overall value (``to_overall`` disparities);
    ``group_min`` and ``group_max`` use ``high`` only. ``sign`` orients a ``to_overall``
    difference (+1: the group is above overall); ``invert`` a ``to_overall`` ratio
    (True: the observed ratio was overall / group).
    """

    name: str
    kind: Literal["difference", "ratio", "group_min", "group_max"]
    metric: str
    high: int | None
    low: int | None
    value: float
    sign: float = 1.0
    invert: bool = False

    def groups(self, labels: tuple[str, ...]) -> tuple[str, str]:
        """The pair by name, ``(high, low)`` (``"overall"`` for the overall value)."""
        name = ["overall" if i is None else labels[i] for i in (self.high, self.low)]
        return name[0], name[1]


def _masked(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask & np.isfinite(values), values, np.nan)


def _one(metric: str, kind: str, values: np.ndarray, overall: float, method: _engine.Method, name: str
         ) -> Extreme | None:
    """The extreme of one base metric over the (masked: NaN = left out) ``values``."""
    finite = np.isfinite(values)
    if not finite.any():
        return None
    high = int(np.nanargmax(values))
    low = int(np.nanargmin(values))
    if high == low and finite.sum() >= 2:  # every group equal: compare two of them, not one with itself
        low = int(np.flatnonzero(finite & (np.arange(len(values)) != high))[0])
    if kind == "group_min":
        return Extreme(name, "group_min", metric, low, None, float(values[low]))
    if kind == "group_max":
        return Extreme(name, "group_max", metric, high, None, float(values[high]))
    if method == "between_groups":
        if finite.sum() < 2:
            return None
        if kind == "difference":
            return Extreme(name, "difference", metric, high, low, float(values[high] - values[low]))
        with np.errstate(divide="ignore", invalid="ignore"):
            value = float(np.float64(values[low]) / np.float64(values[high]))
        return None if not np.isfinite(value) else Extreme(name, "ratio", metric, high, low, value)
    if method == "to_overall":
        if kind == "difference":
            gaps = np.abs(values - overall)
            g = int(np.nanargmax(gaps))
            sign = 1.0 if values[g] >= overall else -1.0
            return Extreme(name, "difference", metric, g, None, float(gaps[g]), sign=sign)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = values / overall
            folded = np.where(r > 1, 1 / r, r)
        if not np.isfinite(folded).any():
            return None
        g = int(np.nanargmin(np.where(np.isfinite(folded), folded, np.nan)))
        return Extreme(name, "ratio", metric, g, None, float(folded[g]), invert=bool(r[g] > 1))
    raise UnknownNameError("method", str(method), ("between_groups", "to_overall"))


def extreme(name: str, by_group: Mapping[str, np.ndarray], overall: Mapping[str, float], mask: np.ndarray,
            method: _engine.Method = "between_groups", *,
            kind: Literal["difference", "ratio", "group_min", "group_max"] | None = None) -> Extreme | None:
    """The observed extreme of disparity ``name`` over the groups in ``mask``; ``None`` when undefined.

    With several base metrics (equalized odds) the one giving the worst value is kept
    (the largest difference, the smallest ratio), ties to the first, as
    :func:`xai.fairness._engine.derive` does. ``kind`` names a disparity that is not in
    :data:`~xai.fairness._engine.DERIVED` (calibration error): its base metrics are then
    the keys of ``by_group``.

    Examples
    --------
    >>> import numpy as np
    >>> rates = {"selection_rate": np.array([0.2, 0.5, 0.9])}
    >>> e = extreme("demographic_parity_difference", rates, {"selection_rate": 0.5},
    ...             np.array([True, True, False]))
    >>> e.groups(("a", "b", "c")), round(e.value, 3)
    (('b', 'a'), 0.3)
    """
    if kind is None:
        if name not in _engine.DERIVED:
            raise UnknownNameError("disparity", name, _engine.DERIVED)
        base, kind = _engine.DERIVED[name].base, _engine.DERIVED[name].kind
    else:
        base = tuple(by_group)
    found = []
    for metric in base:
        values = _masked(np.asarray(by_group[metric], dtype=np.float64), np.asarray(mask, dtype=bool))
        one = _one(metric, kind, values, float(overall[metric]), method, name)
        if one is not None:
            found.append(one)
    if not found:
        return None
    pick = min if kind in ("ratio", "group_min") else max
    best = pick(e.value for e in found)
    return next(e for e in found if e.value == best)


def disparity(name: str, by_group: Mapping[str, np.ndarray], overall: Mapping[str, float], mask: np.ndarray,
              method: _engine.Method = "between_groups", *,
              kind: Literal["difference", "ratio", "group_min", "group_max"] | None = None) -> float:
    """Disparity ``name`` over the groups in ``mask`` (NaN when fewer than two are defined)."""
    found = extreme(name, by_group, overall, mask, method, kind=kind)
    return float("nan") if found is None else found.value


def extreme_samples(ext: Extreme, by_group: Mapping[str, np.ndarray], overall: Mapping[str, np.ndarray]
                    ) -> np.ndarray:
    """The fixed pair's statistic in each resample: ``(R,)`` from ``{metric: (R, G)}`` and ``{metric: (R,)}``.

    NaN where a group of the pair is empty or a ratio divides by 0 (those resamples are
    left out of the interval).
    """
    values = np.asarray(by_group[ext.metric], dtype=np.float64)
    whole = np.asarray(overall[ext.metric], dtype=np.float64)

    def pick(index: int | None) -> np.ndarray:
        return whole if index is None else values[..., index]

    with np.errstate(divide="ignore", invalid="ignore"):
        if ext.kind in ("group_min", "group_max"):
            return pick(ext.high)
        if ext.kind == "difference":
            return ext.sign * (pick(ext.high) - pick(ext.low))
        if ext.low is None:  # to_overall ratio: group / overall, or its inverse as observed
            return whole / pick(ext.high) if ext.invert else pick(ext.high) / whole
        return pick(ext.low) / pick(ext.high)


def symmetric_interval(estimate: float, samples: np.ndarray, confidence: float,
                       bounds: tuple[float, float] = (-np.inf, np.inf)) -> tuple[float, float]:
    """[estimate - h, estimate + h] clipped to ``bounds``, ``h`` the ``confidence`` quantile of |samples - estimate|.

    Non-finite resamples are left out; with none left (or a non-finite estimate) the
    interval is ``(nan, nan)``: there is none. Otherwise it contains ``estimate``.

    Examples
    --------
    >>> symmetric_interval(0.3, np.array([0.1, 0.2, 0.3, 0.4, 0.5]), 0.8, bounds=(0.0, 1.0))
    (0.1, 0.5)
    """
    samples = np.asarray(samples, dtype=np.float64).reshape(-1)
    finite = samples[np.isfinite(samples)]
    if not np.isfinite(estimate) or finite.size == 0:
        return (float("nan"), float("nan"))
    half = float(np.quantile(np.abs(finite - estimate), confidence))
    low, high = max(estimate - half, bounds[0]), min(estimate + half, bounds[1])
    return (float(min(low, estimate)), float(max(high, estimate)))  # an estimate outside bounds stays inside


def symmetric_intervals(estimates: np.ndarray, samples: np.ndarray, confidence: float,
                        bounds: tuple[float, float] = (-np.inf, np.inf)) -> tuple[np.ndarray, np.ndarray]:
    """:func:`symmetric_interval` of each column: ``(G,)`` estimates, ``(R, G)`` samples -> ``(G,)`` lows, highs."""
    estimates = np.asarray(estimates, dtype=np.float64)
    deviation = np.abs(np.asarray(samples, dtype=np.float64) - estimates[None])  # (R, G)
    # the upper end of a central (2c - 1) percentile interval is the c quantile (NaN columns vectorised)
    half = _engine.percentile_interval(deviation, 2 * confidence - 1)[1]
    ok = np.isfinite(half) & np.isfinite(estimates)
    low = np.where(ok, np.minimum(np.maximum(estimates - half, bounds[0]), estimates), np.nan)
    high = np.where(ok, np.maximum(np.minimum(estimates + half, bounds[1]), estimates), np.nan)
    return low, high
