"""The ethics half of a zoo model card, and the card with it (torch-free).

A trained entry's ``card.json`` records what training produced (architecture, metrics,
seed, weights hash) and is never rewritten here. Intended use, users, out-of-scope uses,
limitations, ethical considerations, trade-offs, training and evaluation data
(Mitchell et al. 2019) are data in ``xai/zoo/considerations.toml``: defaults, then the
entry's family, its dataset and the entry itself, merged field by field. Per-group results
come from the audits of the entry (``audits/*.toml`` whose ``[model] name`` is the entry)
and their committed baselines (``reports/baselines/<slug>.json``).

:func:`model_card` joins the three; :mod:`xai.report.model_card` renders it.
"""

from __future__ import annotations

import json
import math
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from xai.zoo._cards import read_card
from xai.zoo._index import entry_info

__all__ = ["CONSIDERATION_FIELDS", "considerations", "group_results", "model_card"]

#: The fields of the considerations, in the order a card shows them.
CONSIDERATION_FIELDS: tuple[str, ...] = (
    "intended_use", "users", "out_of_scope", "limitations", "ethical_considerations", "tradeoffs",
    "training_data", "evaluation_data",
)
#: List fields that a later layer can extend (``extra_<field>``) instead of replacing.
_EXTENDABLE = ("limitations", "out_of_scope")
_PREFIX = "fairness.group-metrics."


@cache
def _layers() -> dict[str, Any]:
    text = resources.files("xai.zoo").joinpath("considerations.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def considerations(name: str) -> dict[str, Any]:
    """The merged considerations of zoo entry ``name`` (every field of :data:`CONSIDERATION_FIELDS`).

    Examples
    --------
    >>> c = considerations("adult-mlp")
    >>> c["training_data"].startswith("UCI Adult")
    True
    >>> any("credit" in use for use in c["out_of_scope"])  # from the tabular family
    True
    """
    info = entry_info(name)  # unknown names list the known ones
    data = _layers()
    merged: dict[str, Any] = {field: [] for field in CONSIDERATION_FIELDS}
    merged["intended_use"] = merged["training_data"] = merged["evaluation_data"] = ""
    for layer in (data.get("default", {}), data.get("family", {}).get(info.family, {}),
                  data.get("dataset", {}).get(info.dataset, {}), data.get("entry", {}).get(name, {})):
        for key, value in layer.items():
            if key.startswith("extra_"):
                merged[key.removeprefix("extra_")] = [*merged[key.removeprefix("extra_")], *value]
            else:
                merged[key] = value
    return {field: merged[field] for field in CONSIDERATION_FIELDS}


def _audits_of(name: str, audits_dir: Path) -> list[str]:
    """Slugs (file stems) of the specs in ``audits_dir`` whose model is zoo entry ``name``."""
    if not audits_dir.is_dir():
        return []
    slugs = []
    for path in sorted(audits_dir.glob("*.toml")):
        try:
            spec = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue  # a broken spec is `xai check`'s to report, not the card's
        model = spec.get("model")
        if isinstance(model, dict) and model.get("name") == name and not model.get("weights"):
            slugs.append(path.stem)
    return slugs


def group_results(name: str, *, audits_dir: str | Path = "audits",
                  baselines_dir: str | Path = "reports/baselines") -> list[dict[str, Any]]:
    """Per-group results of ``name`` from its audits' committed baselines (empty when it has none).

    One row per audit and sensitive feature: ``{"audit", "feature", "groups": {group: {"count",
    metric: value}}, "disparities": {name: value}, "intervals": {name: [lo, hi]}}`` (interval
    names: ``<metric>.<group>`` or the disparity's name, where the baseline has one). Baselines
    are untrusted files: anything that is not a finite number is left out.
    """
    rows = []
    for slug in _audits_of(name, Path(audits_dir)):
        path = Path(baselines_dir) / f"{slug}.json"
        try:
            baseline = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        metrics = baseline.get("metrics") if isinstance(baseline, dict) else None
        intervals = baseline.get("intervals") if isinstance(baseline, dict) else None
        if not isinstance(metrics, dict):
            continue
        features: dict[str, dict[str, Any]] = {}
        for key, value in metrics.items():
            if not (isinstance(key, str) and key.startswith(_PREFIX)) or isinstance(value, bool):
                continue
            if not isinstance(value, int | float) or not math.isfinite(value):
                continue
            parts = key.removeprefix(_PREFIX).split(".")
            if len(parts) == 3 and parts[1] != "overall":  # <feature>.<metric>.<group>
                feature, metric, group = parts
                entry = features.setdefault(feature, {"groups": {}, "disparities": {}, "intervals": {}})
                entry["groups"].setdefault(group, {})[metric] = value
                label = f"{metric}.{group}"
            elif len(parts) == 2:  # <feature>.<disparity>
                feature, metric = parts
                entry = features.setdefault(feature, {"groups": {}, "disparities": {}, "intervals": {}})
                entry["disparities"][metric] = value
                label = metric
            else:
                continue
            pair = intervals.get(key) if isinstance(intervals, dict) else None
            if (isinstance(pair, list) and len(pair) == 2
                    and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in pair)):
                entry["intervals"][label] = [float(pair[0]), float(pair[1])]
        rows += [{"audit": slug, "feature": feature, **entry} for feature, entry in sorted(features.items())
                 if entry["groups"]]
    return rows


def model_card(name: str, zoo_dir: str | Path | None = None, *, audits_dir: str | Path = "audits",
               baselines_dir: str | Path = "reports/baselines") -> dict[str, Any]:
    """The full card of a trained entry: its ``card.json``, its considerations and its per-group results.

    ``card.json`` is read, never written: the weights hash it records stays what training wrote.
    """
    card = dict(read_card(name, zoo_dir))
    card["considerations"] = considerations(name)
    card["group_results"] = group_results(name, audits_dir=audits_dir, baselines_dir=baselines_dir)
    return card
