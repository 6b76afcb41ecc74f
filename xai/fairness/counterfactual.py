"""Counterfactual flip test: change only the sensitive attribute, count changed decisions."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from xai._method import Capabilities
from xai._provenance import Provenance
from xai.datasets import Dataset
from xai.errors import DataError, UnknownNameError
from xai.fairness._base import FairnessResult, GroupTable, Probe, ProbeOptions, register_probe
from xai.fairness.metrics import MIN_GROUP_SIZE


@register_probe("counterfactual-flip")
class CounterfactualFlip(Probe):
    """Swap each row's sensitive attribute for every other level; report how many decisions change.

    A decision that flips when only sex (or race) changes depends on that attribute
    directly (Kusner et al. 2017 call the absence of such flips counterfactual fairness
    at the level of the input; this test does not follow causal paths through proxies).
    Works on tabular models whose sensitive attribute is a one-hot input block.
    ``flip_rate`` is the share of rows whose decision changes for at least one
    alternative level; ``flip_rate_difference`` compares only the groups of at least
    ``min_group_size`` rows (default 30; smaller ones are shown and flagged).
    Paper: https://arxiv.org/abs/1703.06856.
    """

    class Options(ProbeOptions):
        """Counterfactual flip's options."""

        #: Groups with fewer rows are flagged and left out of ``flip_rate_difference``.
        min_group_size: int = Field(default=MIN_GROUP_SIZE, ge=0)

    paper = "https://arxiv.org/abs/1703.06856"
    #: Tabular classifiers only: the attribute must be an input column to swap.
    capabilities: ClassVar[Capabilities] = replace(Probe.capabilities, modalities=frozenset({"tabular"}))

    def probe(self, data: Dataset, *, sensitive: list[str], seed: int = 0) -> FairnessResult:
        """Flip each sensitive column of ``data`` that is a one-hot input block."""
        if len(data) == 0:
            raise DataError("no rows to probe")
        if not sensitive:
            raise DataError("name at least one sensitive column")
        start = time.perf_counter()
        decisions = self.handle.predict(data.x).argmax(1)
        tables, notes = [], []
        for column in sensitive:
            if column not in data.groups.columns and column not in data.feature_columns:
                raise UnknownNameError("sensitive column", column, data.groups.columns)
            inputs = [j for j, c in enumerate(data.feature_columns) if c == column]
            if len(inputs) < 2:
                notes.append(f"{column} is not a one-hot model input, so no decision can flip on it directly")
                continue
            tables.append(self._flip_table(data, column, inputs, decisions))
        return FairnessResult(
            probe=self.name,
            model=self.handle.name,
            dataset=f"{data.name}:{data.split}",
            metric_names=("flip_rate", "count"),
            tables=tuple(tables),
            notes=tuple(notes),
            provenance=Provenance(
                model_sha256=self.handle.sha256,
                data_sha256=data.sha256,
                seed=seed,
                wall_seconds=round(time.perf_counter() - start, 4),
                device=str(self.handle.device),
            ),
        )

    def _flip_table(self, data: Dataset, column: str, inputs: list[int],
                    decisions: torch.Tensor) -> GroupTable:
        levels = [data.feature_names[j].split("=", 1)[1] for j in inputs]
        current = data.x[:, inputs].argmax(1)  # (N,) index of the row's level
        flipped = torch.zeros(len(data), dtype=torch.bool)
        for k, j in enumerate(inputs):
            swapped = data.x.clone()
            swapped[:, inputs] = 0.0
            swapped[:, j] = 1.0
            changed = self.handle.predict(swapped).argmax(1) != decisions
            flipped |= changed & (current != k)
        group_of_row = np.asarray(levels, dtype=object)[current.numpy()]
        groups = tuple(g for g in levels if (group_of_row == g).any())
        flips = flipped.numpy()
        by_group = {
            "flip_rate": {g: float(flips[group_of_row == g].mean()) for g in groups},
            "count": {g: float((group_of_row == g).sum()) for g in groups},
        }
        # the gap ranks only groups large enough to rank (a 4-row group's 0.5 is noise, not a finding)
        minimum = int(self.options.get("min_group_size", MIN_GROUP_SIZE))
        ranked = {g: r for g, r in by_group["flip_rate"].items() if by_group["count"][g] >= max(1, minimum)}
        small = tuple(g for g in groups if g not in ranked)
        warnings: tuple[str, ...] = ()
        if small:
            shown = ", ".join(f"{g!r} ({int(by_group['count'][g])})" for g in small[:5])
            more = f" and {len(small) - 5:,} more" if len(small) > 5 else ""
            warnings = (f"{len(small):,} group{'s' if len(small) != 1 else ''} too small to rank (< {minimum} rows: "
                        f"{shown}{more}): shown, but left out of flip_rate_difference",)
        high = max(ranked, key=ranked.__getitem__) if len(ranked) >= 2 else None
        low = min(ranked, key=ranked.__getitem__) if len(ranked) >= 2 else None
        difference = ranked[high] - ranked[low] if high is not None and low is not None else float("nan")
        return GroupTable(
            feature=column,
            groups=groups,
            by_group=by_group,
            overall={"flip_rate": float(flips.mean()), "count": float(len(flips))},
            disparities={"counterfactual_flip_rate": float(flips.mean()),
                         "flip_rate_difference": difference},
            min_group_size=minimum,
            warnings=warnings,
            small_groups=small,
            disparity_groups={} if high is None or low is None else {"flip_rate_difference": (high, low)},
        )
