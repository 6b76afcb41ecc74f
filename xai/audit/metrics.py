"""The metric namespace: every audit result as a flat dict of named scalars.

Gates and baselines address numbers by name, never by a hand-written list. Each result
names its own numbers (``Result.metrics()``); this module puts them under the prefix of
the result's section (:data:`xai._results.RESULT_SECTIONS`), so a new method adds names
without touching the gate code:

- ``accuracy`` (and any other key of ``AuditResult.performance``) at the top level;
- ``explain.<method>.<name>`` (``explain.integrated-gradients.mean_abs_convergence_delta``,
  and ``.sensitive_share`` for tabular attributions, added here);
- ``fairness.<probe>.<feature>.<disparity>`` (``..sex.equalized_odds_difference``),
  ``fairness.<probe>.<feature>.overall.<metric>`` and ``fairness.<probe>.<feature>.<metric>.<group>``;
- ``drift.<explainer>.<statistic>``: explanation drift against a baseline
  (:mod:`xai.explain.drift`: ``spearman``, ``topk_overlap``, ``mass_moved`` ...);
- ``sanity.<method>.<name>``; dreams and inversions name themselves (``dream.<unit>.*``,
  ``invert.<layer>.relative_error``).

A method that runs twice gets ``-2``, ``-3`` ... after its prefix. A *short name* (no exact
key) stands for every key that ends with ``.<name>``; a gate checks the worst of them in
its own direction (the largest for ``<=``, the smallest for ``>=``), so
``equalized_odds_difference <= 0.1`` holds for every sensitive feature.

Bootstrap intervals, where a result carries them (``metric_intervals()``), map the same
names to ``(low, high)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from xai._results import metric_prefix
from xai.errors import UnknownNameError

if TYPE_CHECKING:
    from xai.audit.result import AuditResult

__all__ = [
    "audit_intervals",
    "audit_metrics",
    "half_width",
    "resolve_metric",
    "result_metrics",
    "short_names",
    "undefined_metrics",
]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    return None


def _unique(prefix: str, seen: dict[str, int]) -> str:
    """``prefix`` the first time, ``prefix-2``, ``prefix-3`` ... when a method runs twice."""
    seen[prefix] = seen.get(prefix, 0) + 1
    return prefix if seen[prefix] == 1 else f"{prefix}-{seen[prefix]}"


def result_metrics(result: Any) -> dict[str, float]:
    """Named scalars of one result: its ``metrics()``, numbers only (relative to its section's prefix)."""
    return {str(k): float(v) for k, v in result.metrics().items() if _number(v) is not None}


def _sections(audit: AuditResult) -> Iterable[tuple[str, Any]]:
    """Each result with its gate-name prefix (:func:`xai._results.metric_prefix`), a repeat numbered."""
    seen: dict[str, int] = {}
    for result in audit.results:
        prefix = metric_prefix(result)
        yield (_unique(prefix, seen) if prefix else ""), result


def audit_metrics(audit: AuditResult) -> dict[str, float]:
    """The flat metric namespace of one audit (non-finite values are left out)."""
    return {k: v for k, v in _all_metrics(audit).items() if math.isfinite(v)}


def undefined_metrics(audit: AuditResult) -> list[str]:
    """Names whose value is undefined (NaN or infinite), e.g. a disparity of a feature with one group.

    They are left out of :func:`audit_metrics`; a gate that names one fails loudly instead
    of checking the rest (see :func:`xai.audit.gates.evaluate_gate`).
    """
    return sorted(k for k, v in _all_metrics(audit).items() if not math.isfinite(v))


def _all_metrics(audit: AuditResult) -> dict[str, float]:
    out = {str(k): float(v) for k, v in audit.performance.items()}
    for prefix, result in _sections(audit):
        for name, value in result_metrics(result).items():
            out[f"{prefix}.{name}" if prefix else name] = value
        share = sensitive_share(result, audit.data.sensitive)
        if share is not None:
            out[f"{prefix}.sensitive_share"] = share
    return out


def sensitive_share(result: Any, sensitive: Iterable[str]) -> float | None:
    """Share of a tabular explanation's mean |attribution| that lands on sensitive columns.

    ``None`` for results without per-column attributions or audits without sensitive
    columns among them. A gate such as ``explain.integrated-gradients.sensitive_share <= 0.1``
    fails a model that leans on sex or race directly.
    """
    importance = getattr(result, "column_importance", None)
    if importance is None:
        return None
    scores = importance()
    present = [c for c in sensitive if c in scores]
    total = sum(scores.values())
    if not present or total <= 0:
        return None
    return float(sum(scores[c] for c in present) / total)


def audit_intervals(audit: AuditResult, metrics: Mapping[str, float] | None = None
                    ) -> dict[str, tuple[float, float]]:
    """Bootstrap intervals of the audit's metrics, by the same names, where results carry them.

    Reads each result's ``metric_intervals()`` (names relative to its prefix, as in
    ``metrics()``). Absent intervals are simply absent: gates then use their tolerance alone.
    """
    metrics = audit_metrics(audit) if metrics is None else metrics
    found: dict[str, tuple[float, float]] = {}
    for prefix, result in _sections(audit):
        own = getattr(result, "metric_intervals", None)  # optional in the Result protocol
        for name, (low, high) in (own() if callable(own) else {}).items():
            key = f"{prefix}.{name}" if prefix else name
            if key in metrics and math.isfinite(low) and math.isfinite(high):
                found[key] = (float(low), float(high))
    return found


def half_width(interval: tuple[float, float] | None) -> float:
    """Half the width of an interval (0 when there is none)."""
    return 0.0 if interval is None else abs(interval[1] - interval[0]) / 2


def short_names(metrics: Iterable[str]) -> list[str]:
    """Last components that can be used as short names (each shared by one key or more)."""
    return sorted({k.rsplit(".", 1)[-1] for k in metrics})


def resolve_metric(name: str, metrics: Mapping[str, float]) -> list[str]:
    """The keys a gate's ``metric`` stands for: the exact key, else every key ending ``.name``.

    Raises
    ------
    UnknownNameError
        When nothing matches; the message lists the available names.
    """
    if name in metrics:
        return [name]
    matches = sorted(k for k in metrics if k.endswith(f".{name}"))
    if not matches:
        raise UnknownNameError("metric", name, list(metrics))
    return matches
