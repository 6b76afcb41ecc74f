"""The metric namespace: every audit result as a flat dict of named scalars.

Gates and baselines address numbers by name, never by a hand-written list, so a new
explainer or probe adds names here without touching the gate code:

- ``accuracy`` (and any other key of ``AuditResult.performance``) at the top level;
- ``explain.<method>.<name>``: a result's own ``metrics()`` when it has one, otherwise its
  numeric scalar fields, ``<field>.<key>`` of numeric dict fields and
  ``mean_abs_<field>`` / ``max_abs_<field>`` of 1-D float array fields (so Integrated
  Gradients gives ``explain.integrated-gradients.mean_abs_convergence_delta``);
- ``fairness.<probe>.<feature>.<disparity>`` (``..sex.equalized_odds_difference``),
  ``fairness.<probe>.<feature>.overall.<metric>`` and
  ``fairness.<probe>.<feature>.<metric>.<group>`` for results made of group tables;
  other probe results give their ``metrics()`` or their numeric fields as above.

A *short name* (no exact key) stands for every key that ends with ``.<name>``; a gate
checks the worst of them in its own direction (the largest for ``<=``, the smallest for
``>=``), so ``equalized_odds_difference <= 0.1`` holds for every sensitive feature.

Bootstrap intervals, where a result carries them (``GroupTable.intervals``, or a result's
``metric_intervals()``), map the same names to ``(low, high)``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from xai._results import to_jsonable
from xai.errors import UnknownNameError

if TYPE_CHECKING:
    from xai.audit.runner import AuditResult

__all__ = [
    "audit_intervals",
    "audit_metrics",
    "half_width",
    "resolve_metric",
    "result_metrics",
    "short_names",
    "undefined_metrics",
]

#: Fields that describe how a result was made, not what it found (``image_channels``: where a
#: packed multimodal input's image ends).
_SKIP_FIELDS = frozenset({"provenance", "options", "intervals", "image_channels"})
#: Keys of a list item that name it (so list entries get a readable path, not an index).
_NAME_KEYS = ("feature", "name", "method", "probe", "test", "metric")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    return None


def _flatten(value: Any, prefix: str, out: dict[str, float]) -> None:
    """Numeric leaves of a JSON-ready value under dotted names (lists of numbers are arrays: skipped)."""
    number = _number(value)
    if number is not None:
        out[prefix] = number
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if str(key) not in _SKIP_FIELDS:
                _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list | tuple) and value and all(isinstance(v, Mapping) for v in value):
        for i, item in enumerate(value):
            label = next((str(item[k]) for k in _NAME_KEYS if isinstance(item.get(k), str)), str(i))
            _flatten(item, f"{prefix}.{label}" if prefix else label, out)


def result_metrics(result: Any) -> dict[str, float]:
    """Named scalars of one explainer or probe result (see the module docstring)."""
    own = getattr(result, "metrics", None)
    if callable(own):
        return {str(k): float(v) for k, v in own().items() if _number(v) is not None}
    tables = getattr(result, "tables", None)
    if isinstance(tables, tuple | list) and tables and all(hasattr(t, "disparities") for t in tables):
        out: dict[str, float] = {}
        for table in tables:
            base = str(table.feature)
            for name, value in table.disparities.items():
                out[f"{base}.{name}"] = float(value)
            for name, value in table.overall.items():
                out[f"{base}.overall.{name}"] = float(value)
            for name, groups in table.by_group.items():
                for group, value in groups.items():
                    out[f"{base}.{name}.{group}"] = float(value)
        return out
    out = {}
    if not dataclasses.is_dataclass(result):
        return out
    for field in dataclasses.fields(result):
        if field.name in _SKIP_FIELDS:
            continue
        value = getattr(result, field.name)
        if isinstance(value, np.ndarray):
            if value.ndim == 1 and value.dtype.kind == "f" and value.size:
                out[f"mean_abs_{field.name}"] = float(np.abs(value).mean())
                out[f"max_abs_{field.name}"] = float(np.abs(value).max())
            continue
        _flatten(to_jsonable(value), field.name, out)
    return out


def _unique(prefix: str, seen: dict[str, int]) -> str:
    """``prefix`` the first time, ``prefix-2``, ``prefix-3`` ... when a method runs twice."""
    seen[prefix] = seen.get(prefix, 0) + 1
    return prefix if seen[prefix] == 1 else f"{prefix}-{seen[prefix]}"


def _sections(audit: AuditResult) -> Iterable[tuple[str, Any]]:
    seen: dict[str, int] = {}
    for result in audit.explanations:
        yield _unique(f"explain.{getattr(result, 'method', type(result).__name__)}", seen), result
    for probe_result in audit.fairness:
        yield _unique(f"fairness.{getattr(probe_result, 'probe', type(probe_result).__name__)}", seen), probe_result
    for result in getattr(audit, "sanity", ()):
        yield _unique(f"sanity.{result.method}", seen), result
    for result in getattr(audit, "dreams", ()):
        yield "", result  # DreamResult.metrics() names itself: dream.<unit>.*
    for result in getattr(audit, "inversions", ()):
        yield "", result  # InversionResult.metrics() names itself: invert.<layer>.relative_error


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


def _pair(value: Any) -> tuple[float, float] | None:
    """``(low, high)`` from ``[lo, hi]`` or ``{"low"|"lower"|"lo": .., "high"|"upper"|"hi": ..}``."""
    if isinstance(value, list | tuple | np.ndarray) and len(value) == 2:
        low, high = _number(value[0]), _number(value[1])
    elif isinstance(value, Mapping):
        low = next((_number(value[k]) for k in ("low", "lower", "lo") if k in value), None)
        high = next((_number(value[k]) for k in ("high", "upper", "hi") if k in value), None)
    else:
        return None
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return None
    return (low, high)


def _interval_leaves(value: Any, prefix: str, out: dict[str, tuple[float, float]]) -> None:
    pair = _pair(value)
    if pair is not None:
        out[prefix] = pair
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _interval_leaves(to_jsonable(item), f"{prefix}.{key}" if prefix else str(key), out)


def audit_intervals(audit: AuditResult, metrics: Mapping[str, float] | None = None
                    ) -> dict[str, tuple[float, float]]:
    """Bootstrap intervals of the audit's metrics, by the same names, where results carry them.

    Reads a result's ``metric_intervals()`` when it has one, otherwise the ``intervals``
    mapping of each group table (``{name: (lo, hi)}`` or ``{metric: {group: (lo, hi)}}``,
    optionally under ``by_group`` / ``disparities`` / ``overall``). Absent intervals are
    simply absent: gates then use their tolerance alone.
    """
    metrics = audit_metrics(audit) if metrics is None else metrics
    found: dict[str, tuple[float, float]] = {}
    for prefix, result in _sections(audit):
        raw: dict[str, tuple[float, float]] = {}
        own = getattr(result, "metric_intervals", None)
        if callable(own):
            _interval_leaves(to_jsonable(own()), "", raw)
        for table in getattr(result, "tables", None) or ():
            intervals = getattr(table, "intervals", None)
            if intervals:
                _interval_leaves(to_jsonable(intervals), str(table.feature), raw)
        for path, pair in raw.items():
            head, _, rest = path.partition(".")
            candidates = [path]
            for wrapper in ("by_group.", "disparities."):
                if rest.startswith(wrapper):
                    candidates.append(f"{head}.{rest.removeprefix(wrapper)}")
            for candidate in candidates:
                if f"{prefix}.{candidate}" in metrics:
                    found[f"{prefix}.{candidate}"] = pair
                    break
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
