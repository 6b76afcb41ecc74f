"""The probe protocol, its registry, and the shared fairness result objects."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel

from xai._method import Capabilities, Kind, Method, Options
from xai._provenance import Provenance
from xai._results import to_jsonable
from xai.fairness._index import PROBES
from xai.fairness.metrics import FourFifths

if TYPE_CHECKING:  # annotations only: fairness results and the count engine never import torch
    from xai.datasets import Dataset
    from xai.zoo.handle import ModelHandle

#: Rows a terminal table shows before it says "... and K more groups" (the JSON has them all).
MAX_TABLE_ROWS = 50


@dataclass(frozen=True)
class GroupTable:
    """Metrics of each group of one sensitive feature.

    Attributes
    ----------
    by_group
        ``{metric: {group: value}}``; ``count`` is among the metrics.
    overall
        ``{metric: value}`` over all rows.
    disparities
        Named summary disparities (``demographic_parity_difference`` ...), largest gap
        between groups: larger is worse. Only groups of at least ``min_group_size`` rows
        are compared (``small_groups`` lists the others).
    ratios
        Named ratio disparities (``demographic_parity_ratio`` ...), smallest ratio
        between groups: smaller is worse.
    four_fifths
        The four-fifths rule on the selection rates (binary tasks).
    intervals
        ``{metric: {group: (low, high)}}`` bootstrap intervals (percentile; symmetric
        around the estimate for calibration error).
    overall_intervals
        ``{metric: (low, high)}``.
    disparity_intervals
        ``{disparity or ratio: (low, high)}``: the symmetric bootstrap interval of the
        observed extreme pair, which contains the disparity (see
        :mod:`xai.fairness._intervals`).
    n_boot, confidence
        Bootstrap resamples (0: no intervals) and nominal coverage.
    min_group_size
        Groups with fewer rows are named in ``warnings`` and left out of the disparities.
    warnings
        Small or empty groups and undefined rates, one sentence each.
    kind
        What the rows are: ``group`` (levels of the feature) or ``strategy`` (mitigation
        strategies compared over the feature).
    small_groups
        Groups with rows but fewer than ``min_group_size``: shown per group, too small to
        rank (no disparity, four-fifths verdict or headline rests on them).
    disparity_groups
        ``{disparity or ratio: (group, group)}``: the two groups that set it (the higher
        and the lower value of its base metric; ``"overall"`` for a gap to overall).
    """

    feature: str
    groups: tuple[str, ...]
    by_group: dict[str, dict[str, float]]
    overall: dict[str, float]
    disparities: dict[str, float]
    ratios: dict[str, float] = field(default_factory=dict)
    four_fifths: FourFifths | None = None
    intervals: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    overall_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    disparity_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    n_boot: int = 0
    confidence: float = 0.95
    min_group_size: int = 30
    warnings: tuple[str, ...] = ()
    kind: str = "group"
    small_groups: tuple[str, ...] = ()
    disparity_groups: dict[str, tuple[str, str]] = field(default_factory=dict)

    def worst_groups(self, limit: int = MAX_TABLE_ROWS) -> tuple[tuple[str, ...], int]:
        """The ``limit`` groups farthest from overall in any metric (table order) and how many are left out.

        Terminal tables show these; the JSON keeps every group.
        """
        if len(self.groups) <= limit:
            return self.groups, 0
        gaps = np.full(len(self.groups), -1.0)  # empty groups (NaN everywhere) come last
        for metric, values in self.by_group.items():
            if metric == "count" or metric not in self.overall:
                continue
            column = np.array([values.get(g, np.nan) for g in self.groups], dtype=np.float64)
            gap = np.abs(column - float(self.overall[metric]))
            gaps = np.where(np.isfinite(gap), np.maximum(gaps, gap), gaps)
        keep = np.sort(np.argsort(-gaps, kind="stable")[:limit])
        return tuple(self.groups[i] for i in keep), len(self.groups) - limit


@dataclass(frozen=True)
class FairnessResult:
    """A probe's verdict on one model and dataset, one table per sensitive feature.

    ``intersection`` crosses all the sensitive features (``"sex x race"``) when there are
    two or more.
    """

    probe: str
    model: str
    dataset: str
    #: The per-group metrics each table holds (``accuracy``, ``selection_rate``, ...).
    metric_names: tuple[str, ...]
    tables: tuple[GroupTable, ...]
    provenance: Provenance
    positive_class: str | None = None
    intersection: GroupTable | None = None
    notes: tuple[str, ...] = ()
    #: Per sensitive feature, named scores of other columns, largest first (e.g. proxies).
    rankings: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return to_jsonable(self)

    def metrics(self) -> dict[str, float]:
        """The gate names of every table, relative to the probe (``fairness.<probe>.`` is the audit's).

        ``<feature>.<disparity>`` (``sex.equalized_odds_difference``, ``sex.demographic_parity_ratio``),
        ``<feature>.overall.<metric>``
        and ``<feature>.<metric>.<group>``; the intersection table, when there is one, is not gated.
        """
        out: dict[str, float] = {}
        for table in self.tables:
            base = str(table.feature)
            for name, value in (*table.disparities.items(), *table.ratios.items()):
                out[f"{base}.{name}"] = float(value)
            for name, value in table.overall.items():
                out[f"{base}.overall.{name}"] = float(value)
            for name, groups in table.by_group.items():
                for group, value in groups.items():
                    out[f"{base}.{name}.{group}"] = float(value)
        return out

    def metric_intervals(self) -> dict[str, tuple[float, float]]:
        """Bootstrap intervals by the names of :meth:`metrics`: per group, overall and of each disparity.

        A regression gate widens its bound by the half-width of the current run's interval
        (:func:`xai.audit.gates.evaluate_gate`); an undefined (non-finite) bound is no interval.
        """
        pairs: dict[str, tuple[float, float]] = {}
        for table in self.tables:
            base = str(table.feature)
            for name, groups in table.intervals.items():
                pairs.update({f"{base}.{name}.{group}": pair for group, pair in groups.items()})
            pairs.update({f"{base}.overall.{name}": pair for name, pair in table.overall_intervals.items()})
            pairs.update({f"{base}.{name}": pair for name, pair in table.disparity_intervals.items()})
        return {k: (float(lo), float(hi)) for k, (lo, hi) in pairs.items() if np.isfinite(lo) and np.isfinite(hi)}


class ProbeOptions(Options):
    """Options every probe takes: which columns to group by."""

    #: Sensitive columns to group by; ``None``: the audit's ``[data] sensitive`` columns.
    sensitive: list[str] | None = None


class Probe(Method):
    """One bias probe bound to one model.

    Subclasses declare their capabilities and ``Options``, fill model-dependent option
    defaults in :meth:`resolve`, and implement :meth:`probe`; :meth:`run` is the protocol
    call the runner and the CLI use.
    """

    kind: ClassVar[Kind] = "probe"
    result_type: ClassVar[str] = "xai.fairness._base:FairnessResult"
    #: Whether an audit that names no probes runs this one (off for probes that need
    #: options to mean anything, or that cost much more than a table of counts).
    default: ClassVar[bool] = True
    capabilities: ClassVar[Capabilities] = Capabilities(
        tasks=frozenset({"classification", "binary-classification"}), needs_gradients=False, needs_sensitive=True)
    Options: ClassVar[type[Options]] = ProbeOptions

    def __init__(self, handle: ModelHandle, options: BaseModel | Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        parsed = self.parse_options(options, **kwargs)
        self.check_applies_given(handle, parsed)
        self.handle = handle
        self.sensitive: list[str] | None = getattr(parsed, "sensitive", None)
        #: The resolved options, as the probe reads them (without ``sensitive``).
        self.options: dict[str, Any] = self.resolve(parsed)

    @classmethod
    def check_applies_given(cls, handle: ModelHandle, options: Any) -> None:
        """:meth:`check_applies` for a probe built with the parsed ``options``.

        A probe whose reach depends on its options (``compression`` with explicit
        ``variants``) overrides this; :meth:`why_not` stays the check without options.
        """
        cls.check_applies(handle)

    def resolve(self, options: Any) -> dict[str, Any]:
        """Fill defaults that depend on the model and check combinations; return a plain dict."""
        return options.model_dump(exclude={"sensitive"})

    @classmethod
    def run(cls, handle: ModelHandle, data: Dataset | None, options: Any = None, seed: int = 0) -> Any:
        """Probe ``handle`` on ``data`` grouped by the options' ``sensitive`` columns (the protocol entry point)."""
        probe = cls(handle, options)
        # data may be None: probes that read no data (embedding tests) are run without it
        return probe.probe(data, sensitive=list(probe.sensitive or []), seed=seed)  # type: ignore[arg-type]

    @abstractmethod
    def probe(self, data: Dataset, *, sensitive: list[str], seed: int = 0) -> Any:
        """Probe the model on ``data`` grouped by each of the ``sensitive`` columns."""


def register_probe(name: str) -> Callable[[type[Probe]], type[Probe]]:
    """Class decorator: register a :class:`Probe` under ``name``."""

    def decorator(cls: type[Probe]) -> type[Probe]:
        cls.name = name
        return PROBES.register(name)(cls)

    return decorator


def list_probes(pattern: str = "*", handle: ModelHandle | None = None, *, default_only: bool = False) -> list[str]:
    """Registered probe names; with ``handle``, only those that apply to it.

    ``default_only`` keeps the probes an audit runs when its spec names none.
    """
    names = [n for n in PROBES.names(pattern) if PROBES.get(n).default or not default_only]
    if handle is None:
        return names
    return [n for n in names if PROBES.get(n).why_not(handle) is None]


def create_probe(name: str, handle: ModelHandle, **options: Any) -> Probe:
    """Build probe ``name`` for ``handle`` (a bad option value is a :class:`DataError` naming it)."""
    return PROBES.get(name)(handle, **options)
