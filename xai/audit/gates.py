"""Gates and baselines: turn an audit's metrics into pass/fail verdicts.

A gate reads names from the audit's flat metric namespace (:mod:`xai.audit.metrics`),
so it works for any explainer or probe that adds names there. Absolute gates compare
with a threshold; regression gates compare with a committed baseline
(``reports/baselines/<slug>.json``) and fail only beyond ``tolerance`` plus the
half-width of the metric's bootstrap interval, so noise is not a regression.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import operator
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xai import __version__
from xai._io import atomic_write_text
from xai._results import to_jsonable
from xai.audit.metrics import half_width, resolve_metric, undefined_metrics
from xai.errors import DataError

if TYPE_CHECKING:  # annotations only: gates import no torch
    from xai.audit.result import AuditResult
    from xai.audit.spec import GateSpec

__all__ = [
    "Baseline",
    "GateResult",
    "baseline_path",
    "evaluate_gate",
    "evaluate_gates",
    "load_baseline",
    "write_baseline",
]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
}


@dataclass(frozen=True)
class Baseline:
    """The committed metrics of one audit, with where they came from."""

    slug: str
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    provenance: dict[str, Any]
    path: str = ""


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict on one audit.

    ``metric`` is what the spec asked for; ``key`` the metric name that decided it (the
    worst one when a short name stands for several). ``threshold`` is the bound the value
    was compared with: the spec's value, or the baseline moved by ``tolerance + noise``.
    """

    audit: str
    name: str
    metric: str
    op: str
    threshold: float | None
    value: float | None
    passed: bool
    message: str
    kind: Literal["absolute", "regression"] = "absolute"
    key: str = ""
    baseline: float | None = None
    tolerance: float | None = None
    noise: float | None = None

    @property
    def delta(self) -> float | None:
        """Value minus baseline (regression gates with a baseline)."""
        if self.value is None or self.baseline is None:
            return None
        return self.value - self.baseline

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = to_jsonable(self)
        out["delta"] = self.delta
        return out


def _lower_is_better(op: str) -> bool:
    return op in ("<=", "<")


def _worst(keys: list[str], metrics: Mapping[str, float], op: str) -> str:
    """The key whose value is closest to failing ``op`` (largest for <=, smallest for >=)."""
    pick = max if _lower_is_better(op) else min
    return pick(keys, key=lambda k: metrics[k])


class _Common(TypedDict):
    """The :class:`GateResult` fields every verdict of one gate shares."""

    audit: str
    name: str
    metric: str
    op: str
    key: str
    value: float


class _Regression(TypedDict):
    kind: Literal["regression"]
    tolerance: float | None


def evaluate_gate(gate: GateSpec, slug: str, metrics: Mapping[str, float],
                  intervals: Mapping[str, tuple[float, float]] | None = None,
                  baseline: Baseline | None = None, undefined: Collection[str] = ()) -> GateResult:
    """Judge one gate on an audit's ``metrics``.

    ``undefined`` names the audit's metrics that have no value (NaN: a disparity of a
    feature with one group, a ratio of rates that are all 0).

    Raises
    ------
    UnknownNameError
        When the gate's metric names nothing in ``metrics`` (the message lists them).
    DataError
        When the gate's metric (or one it stands for) is undefined: the gate cannot be
        judged, and skipping it would pass a bound nobody checked.
    """
    lost = [k for k in undefined if k == gate.metric or k.endswith(f".{gate.metric}")]
    if lost:
        more = f" (and {len(lost) - 1} more)" if len(lost) > 1 else ""
        raise DataError(f"gate {gate.label!r} of {slug}: {lost[0]}{more} is undefined (no value: e.g. a "
                        "disparity of a sensitive column with one group); see the audit's warnings")
    keys = resolve_metric(gate.metric, metrics)
    key = _worst(keys, metrics, gate.op)
    value = metrics[key]
    common: _Common = {"audit": slug, "name": gate.label, "metric": gate.metric, "op": gate.op,
              "key": key, "value": value}
    several = f" (worst of {len(keys)}: {key})" if len(keys) > 1 else ""
    if not gate.regression:
        assert gate.value is not None  # the spec validator guarantees it
        passed = _OPS[gate.op](value, gate.value)
        verb = "holds" if passed else "fails"
        message = f"{gate.metric} = {value:.4g}{several} {verb} {gate.op} {gate.value:g}"
        return GateResult(threshold=gate.value, passed=passed, message=message, **common)

    regression: _Regression = {"kind": "regression", "tolerance": gate.tolerance}
    if baseline is None:
        return GateResult(threshold=None, passed=False, **common, **regression,
                          message=f"no baseline for {slug}; write one with `xai check --update-baseline`")
    base_keys = [k for k in keys if k in baseline.metrics]
    if not base_keys:
        return GateResult(threshold=None, passed=False, **common, **regression,
                          message=f"{gate.metric} is not in the baseline {baseline.path or slug}; "
                                  "update it with `xai check --update-baseline`")
    base_key = _worst(base_keys, baseline.metrics, gate.op)
    base_value = baseline.metrics[base_key]
    # Noise: the current run's bootstrap interval, else the baseline's; none -> 0.
    interval = (intervals or {}).get(key) or baseline.intervals.get(base_key)
    noise = half_width(interval)
    slack = gate.tolerance + noise
    threshold = base_value + slack if _lower_is_better(gate.op) else base_value - slack
    passed = _OPS[gate.op](value, threshold)
    why = f"tolerance {gate.tolerance:g}" + (f" + interval half-width {noise:.4g}" if noise else "")
    verb = "within" if passed else "regressed beyond"
    message = (f"{gate.metric} = {value:.4g}{several} vs baseline {base_value:.4g} "
               f"(delta {value - base_value:+.4g}): {verb} {why} (bound {gate.op} {threshold:.4g})")
    return GateResult(threshold=threshold, passed=passed, message=message, baseline=base_value,
                      noise=noise, **common, **regression)


def evaluate_gates(audit: AuditResult, gates: list[GateSpec], baseline: Baseline | None = None
                   ) -> list[GateResult]:
    """Judge every gate of a spec on one audit result."""
    metrics = audit.metrics()
    intervals = audit.metric_intervals() if any(g.regression for g in gates) else {}
    undefined = undefined_metrics(audit) if gates else []
    return [evaluate_gate(g, audit.slug, metrics, intervals, baseline, undefined) for g in gates]


def baseline_path(baselines_dir: str | Path, slug: str) -> Path:
    """Where the baseline of audit ``slug`` lives."""
    return Path(baselines_dir) / f"{slug}.json"


_Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # JSON ints count; bools, strings, NaN do not


class _BaselineFile(BaseModel):
    """The schema of a baseline file (it comes from a pull request: untrusted)."""

    model_config = ConfigDict(extra="allow")  # slug, title, written ... are for people

    metrics: dict[str, _Number | None]
    intervals: dict[str, tuple[_Number, _Number]] | None = None
    provenance: dict[str, Any] | None = None


def _validation_message(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "document"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def load_baseline(baselines_dir: str | Path, slug: str) -> Baseline | None:
    """Read ``<baselines_dir>/<slug>.json``; ``None`` when there is none yet.

    Raises
    ------
    DataError
        When the file is not a baseline: not JSON, ``metrics`` not an object of finite
        numbers (a string, a list, NaN, infinity ...), intervals not pairs of them.
    """
    path = baseline_path(baselines_dir, slug)
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
        raise DataError(f"{path}: not a baseline file ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: not a baseline file (a JSON object with metrics is expected, "
                        f"got {type(raw).__name__})")
    try:
        document = _BaselineFile.model_validate(raw)
    except ValidationError as exc:
        raise DataError(f"{path}: not a baseline file ({_validation_message(exc)})") from None
    metrics = {k: v for k, v in document.metrics.items() if v is not None}
    return Baseline(slug=slug, metrics=metrics, intervals=dict(document.intervals or {}),
                    provenance=document.provenance or {}, path=str(path))


def write_baseline(audit: AuditResult, baselines_dir: str | Path) -> Path:
    """Write the audit's metrics as its baseline (atomically); return the path."""
    metrics = audit.metrics()
    document = {
        "slug": audit.slug,
        "title": audit.title,
        "spec": audit.spec_path,
        "written": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "xai_version": __version__,
        "metrics": {k: v for k, v in sorted(metrics.items()) if math.isfinite(v)},
        "intervals": {k: list(v) for k, v in sorted(audit.metric_intervals().items())},
        "provenance": {
            "model": audit.model.name,
            "model_sha256": audit.provenance.model_sha256,
            "data": f"{audit.data.name}:{audit.data.split}",
            "data_rows": audit.data.rows,
            "data_sha256": audit.provenance.data_sha256,
            "seed": audit.provenance.seed,
            "device": audit.provenance.device,
            "versions": audit.provenance.versions,
        },
    }
    return atomic_write_text(baseline_path(baselines_dir, audit.slug),
                             json.dumps(to_jsonable(document), indent=2, allow_nan=False) + "\n")
