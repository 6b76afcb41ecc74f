"""Vision shortcut probe: a subgroup gap plus attribution mass on a spurious region.

A model that learned a shortcut (a hospital's tag, a watermark, a corner patch) shows it
twice: it fails on the group whose images carry the spurious feature once the feature
stops predicting the label, and its explanations put their mass on the feature's region
instead of on the object (Geirhos et al. 2020, "Shortcut learning in deep neural
networks"). Either sign alone is weak evidence (a gap can have other causes; a salient
region can be harmless); the probe flags a shortcut when both agree.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from xai._method import Capabilities
from xai._provenance import Provenance
from xai.datasets import MARK_REGION, Dataset
from xai.errors import DataError, UnknownNameError
from xai.fairness._base import FairnessResult, GroupTable, Probe, ProbeOptions, register_probe
from xai.fairness.group import group_table

#: Datasets that know where their spurious feature is (``(top, bottom, left, right)``).
KNOWN_REGIONS: dict[str, tuple[int, int, int, int]] = {
    "digits-shortcut": MARK_REGION,
    "digits-marked": MARK_REGION,
}


def region_share(attributions: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    """Share of each sample's absolute attribution that falls inside ``region`` ``(N,)``.

    ``attributions`` is ``(N, C, H, W)``; channels are summed after taking magnitudes.
    """
    top, bottom, left, right = region
    magnitude = np.abs(attributions).sum(axis=1)  # (N, H, W)
    inside = magnitude[:, top:bottom, left:right].sum(axis=(1, 2))
    total = magnitude.sum(axis=(1, 2))
    return np.divide(inside, total, out=np.zeros_like(inside), where=total > 0)


@register_probe("shortcut")
class ShortcutProbe(Probe):
    """Flag a model whose worse group is also the one whose explanations sit on a spurious region.

    For each sensitive column: per-group accuracy (with the engine's bootstrap-free
    counts), and per group the mean share of ``method``'s absolute attribution inside
    ``region`` on ``samples`` seeded rows. ``region_mass_ratio`` divides the largest group
    share by the region's share of the image area (1: no more attention than its size
    deserves). A shortcut is flagged (``shortcut_detected`` = 1) when the accuracy gap is
    at least ``gap_threshold`` (0.10) and the ratio at least ``mass_ratio_threshold`` (2).
    Options: ``region`` ``[top, bottom, left, right]`` in pixels (known for the bundled
    marked digits), ``method`` (``integrated-gradients``: its mass sits where the input
    differs from the baseline, while plain gradients also spread over noise), ``samples`` (200).
    Paper: https://arxiv.org/abs/2004.07780.
    """

    class Options(ProbeOptions):
        """The shortcut probe's options."""

        #: ``[top, bottom, left, right]`` in pixels; ``None``: the region the dataset declares.
        region: tuple[int, int, int, int] | None = None
        #: Attribution method whose mass is measured inside the region.
        method: str = "integrated-gradients"
        #: Seeded rows explained.
        samples: int = Field(default=200, ge=1)
        #: Smallest accuracy gap between groups that counts as a sign.
        gap_threshold: float = Field(default=0.10, ge=0, le=1)
        #: Smallest region mass ratio that counts as a sign.
        mass_ratio_threshold: float = Field(default=2.0, ge=0)

    paper = "https://arxiv.org/abs/2004.07780"
    default = False  # needs a region to mean anything: named in a spec on purpose
    #: Image classifiers (a region is a rectangle of pixels) that give gradients (the attributions).
    capabilities: ClassVar[Capabilities] = dataclasses.replace(
        Probe.capabilities, modalities=frozenset({"image"}), needs_gradients=True)

    def _options(self, data: Dataset) -> dict[str, Any]:
        """The options with ``region`` filled from ``data`` and checked against its image size."""
        region = self.options["region"]
        if region is None:
            region = KNOWN_REGIONS.get(data.name)
        if region is None:
            raise DataError(f"the shortcut probe needs region = [top, bottom, left, right]; "
                            f"{data.name} does not declare one")
        height, width = data.x.shape[-2:]
        top, bottom, left, right = region
        if not (0 <= top < bottom <= height and 0 <= left < right <= width):
            raise DataError(f"region {list(region)} is not inside the {height}x{width} image "
                            f"(need 0 <= top < bottom <= {height}, 0 <= left < right <= {width})")
        return {**self.options, "region": (top, bottom, left, right)}

    def probe(self, data: Dataset, *, sensitive: list[str], seed: int = 0) -> FairnessResult:
        """Accuracy by group on every row; attribution mass on a seeded sample of rows."""
        from xai.explain import create_explainer  # the explainers import the probes' models

        if len(data) == 0:
            raise DataError("no rows to probe")
        if not sensitive:
            raise DataError(f"name at least one sensitive column; {data.name} has: "
                            f"{', '.join(data.groups.columns) or 'none'}")
        for column in sensitive:
            if column not in data.groups.columns:
                raise UnknownNameError("sensitive column", column, data.groups.columns)
        options = self._options(data)
        start = time.perf_counter()
        y_pred = self.handle.predict(data.x).argmax(1).numpy()
        rows = np.sort(np.random.default_rng(seed).permutation(len(data))[: options["samples"]])
        sample = data.subset(torch.from_numpy(rows))
        explained = create_explainer(options["method"], self.handle).explain(sample, seed=seed)
        shares = region_share(explained.attributions, options["region"])  # (S,)
        top, bottom, left, right = options["region"]
        area = (bottom - top) * (right - left) / float(data.x.shape[-2] * data.x.shape[-1])
        tables, notes = [], []
        for column in sensitive:
            table, note = self._table(data, y_pred, sample, shares, column, area, options, seed)
            tables.append(table)
            notes.append(note)
        return FairnessResult(
            probe=self.name,
            model=self.handle.name,
            dataset=f"{data.name}:{data.split}",
            metric_names=("accuracy", "region_share", "count"),
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

    @staticmethod
    def _table(data: Dataset, y_pred: np.ndarray, sample: Dataset, shares: np.ndarray, column: str,
               area: float, options: dict[str, Any], seed: int) -> tuple[GroupTable, str]:
        groups = data.groups[column].astype(str).to_numpy()
        base = group_table(data.y.numpy(), y_pred, groups, column, binary=False, seed=seed, min_group_size=1)
        sample_groups = sample.groups[column].astype(str).to_numpy()
        by_share = {g: float(shares[sample_groups == g].mean()) if (sample_groups == g).any() else float("nan")
                    for g in base.groups}
        finite = {g: v for g, v in by_share.items() if np.isfinite(v)}
        worst = max(finite, key=finite.__getitem__)
        gap = float(base.disparities["accuracy_difference"])
        ratio = finite[worst] / area
        detected = gap >= options["gap_threshold"] and ratio >= options["mass_ratio_threshold"]
        accuracy = base.by_group["accuracy"]
        table = dataclasses.replace(
            base,
            by_group={"accuracy": accuracy, "region_share": by_share, "count": base.by_group["count"]},
            overall={**base.overall, "region_share": float(shares.mean()), "region_area_share": area},
            disparities={"accuracy_difference": gap, "region_mass_ratio": ratio,
                         "shortcut_detected": float(detected)},
            ratios={},
        )
        verdict = "shortcut detected" if detected else "no shortcut detected"
        note = (f"{verdict} by {column}: accuracy gap {gap:.3f} (threshold {options['gap_threshold']:g}); "
                f"group {worst!r} puts {finite[worst]:.1%} of its {options['method']} mass on region "
                f"{list(options['region'])}, {ratio:.1f}x its {area:.1%} share of the image "
                f"(threshold {options['mass_ratio_threshold']:g}x); lowest accuracy: "
                f"{min(accuracy, key=accuracy.__getitem__)!r}")
        return table, note
