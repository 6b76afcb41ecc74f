"""Generative probe: whether a model's samples cover the classes of its training data.

A generator that under-produces some classes (mode dropping) or collapses onto a few
(mode collapse) hands downstream users a skewed picture of the data: the generative
counterpart of a classifier's disparity between groups.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any, ClassVar, Literal, Protocol, cast

import numpy as np
import torch
from pydantic import Field, InstanceOf
from scipy.stats import chisquare

from xai._method import Capabilities
from xai._provenance import Provenance
from xai.datasets import Dataset, load_dataset
from xai.errors import DataError
from xai.fairness._base import FairnessResult, GroupTable, Probe, ProbeOptions, register_probe
from xai.zoo._frechet import classify, confident_share
from xai.zoo.handle import ModelHandle, eval_mode

__all__ = ["SampleDistribution", "class_distribution_table", "mean_pairwise_distance"]


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean Euclidean distance between distinct rows of ``x`` flattened ``(N, D)``; N >= 2."""
    flat = x.flatten(1).double()
    if len(flat) < 2:
        raise DataError("a mean pairwise distance needs at least 2 rows")
    dist = torch.cdist(flat, flat)  # (N, N), zero diagonal
    n = len(flat)
    return float(dist.sum() / (n * (n - 1)))


def class_distribution_table(counts: np.ndarray, expected_share: np.ndarray, class_names: tuple[str, ...], *,
                             collapse_ratio: float = 0.25) -> GroupTable:
    """Per-class shares of the samples against the expected shares, and the summary tests.

    ``overall`` holds ``count`` (samples), ``chi2`` and ``p_value`` (scipy's
    ``chisquare`` of the counts against ``expected_share * count``, over the classes the
    reference has), ``normalised_entropy`` (entropy of the sample shares over
    ``log(classes)``: 1 is uniform, 0 is a single class) and ``collapsed_classes``
    (classes whose share is below ``collapse_ratio`` times the expected one).
    ``disparities`` holds ``total_variation`` (half the L1 distance of the two
    distributions, larger is worse); ``ratios`` holds ``min_share_ratio`` (the smallest
    share over expected share, smaller is worse).
    """
    counts = np.asarray(counts, dtype=np.float64)
    expected_share = np.asarray(expected_share, dtype=np.float64)
    total = counts.sum()
    if total <= 0 or len(counts) != len(expected_share) or len(counts) != len(class_names):
        raise DataError("a class distribution needs as many counts as expected shares and class names, "
                        "and at least one sample")
    expected_share = expected_share / expected_share.sum()
    share = counts / total
    present = expected_share > 0
    stat, p_value = chisquare(counts[present], f_exp=expected_share[present] * counts[present].sum())
    nonzero = share[share > 0]
    entropy = float(-(nonzero * np.log(nonzero)).sum() / math.log(len(share))) if len(share) > 1 else 1.0
    ratio = np.divide(share, expected_share, out=np.full_like(share, np.nan), where=present)
    collapsed = present & (share < collapse_ratio * expected_share)
    groups = tuple(class_names)
    warnings = tuple(f"class {class_names[i]} is collapsed: share {share[i]:.4f}, expected "
                     f"{expected_share[i]:.4f}" for i in np.flatnonzero(collapsed))
    return GroupTable(
        feature="class",
        groups=groups,
        by_group={
            "count": dict(zip(groups, counts.tolist(), strict=True)),
            "share": dict(zip(groups, share.tolist(), strict=True)),
            "expected_share": dict(zip(groups, expected_share.tolist(), strict=True)),
            "share_ratio": dict(zip(groups, ratio.tolist(), strict=True)),
        },
        overall={
            "count": float(total),
            "chi2": float(stat),
            "p_value": float(p_value),
            "normalised_entropy": entropy,
            "collapsed_classes": float(collapsed.sum()),
        },
        disparities={"total_variation": float(0.5 * np.abs(share - expected_share).sum())},
        ratios={"min_share_ratio": float(np.nanmin(ratio))},
        warnings=warnings,
    )


class _Sampler(Protocol):
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...


@register_probe("sample-distribution")
class SampleDistribution(Probe):
    """Classify seeded samples of a generative model and compare their classes with the data's.

    Draws ``samples`` images with the model's ``sample(n, generator)`` (seeded), labels
    them with a classifier of the same data (default the zoo ``lenet``), and tests the
    class counts against the class shares of the reference labels with a chi-square
    goodness-of-fit test (scipy.stats.chisquare). Mode collapse shows as classes whose
    share falls below ``collapse_ratio`` of the expected one, as a low normalised
    entropy, and as a low ``diversity_ratio``: the mean pairwise distance between
    samples over that between as many reference images (about 1 for a generator as
    varied as the data, near 0 when it repeats one image). ``confident_share`` is the
    share of samples the classifier labels with probability >= ``confidence``.

    Applies to any model whose module has ``sample(n, generator)``; it needs no
    sensitive column (the groups are the classifier's classes).

    Options: ``classifier`` (zoo name or a loaded :class:`ModelHandle`; ``"lenet"``),
    ``samples`` (1000), ``collapse_ratio`` (0.25), ``confidence`` (0.9), ``reference``
    (``"train"``: labels of the training split of the audited dataset; ``"data"``: the
    audited rows themselves), ``diversity_rows`` (500).
    Paper (mode collapse and its measurement): https://arxiv.org/abs/1606.03498.
    """

    class Options(ProbeOptions):
        """The sample-distribution probe's options."""

        #: Zoo name (or a loaded model handle) of the classifier that labels the samples.
        classifier: str | InstanceOf[ModelHandle] = "lenet"
        #: Samples drawn (seeded).
        samples: int = Field(default=1000, ge=2)
        #: A class whose share is below this fraction of its expected share is collapsed.
        collapse_ratio: float = Field(default=0.25, ge=0)
        #: Smallest classifier probability that counts as a confident label.
        confidence: float = Field(default=0.9, ge=0, le=1)
        #: ``train``: labels of the audited dataset's training split; ``data``: the audited rows.
        reference: Literal["train", "data"] = "train"
        #: Samples (and as many reference rows) whose mean pairwise distance is compared.
        diversity_rows: int = Field(default=500, ge=2)

    paper = "https://arxiv.org/abs/1606.03498"
    #: Any model whose module has ``sample(n, generator)``; the groups are the classifier's classes.
    capabilities: ClassVar[Capabilities] = Capabilities(needs_sampler=True, needs_gradients=False,
                                                        needs_sensitive=False)

    def resolve(self, options: Any) -> dict[str, Any]:
        """The options, with the classifier kept aside and recorded by name."""
        self.classifier = options.classifier
        return {**options.model_dump(exclude={"sensitive"}),
                "classifier": getattr(self.classifier, "name", self.classifier)}

    def _judge(self) -> ModelHandle:
        if isinstance(self.classifier, ModelHandle):
            return self.classifier
        from xai.zoo.loaders import load_model  # late: keeps the probe registry import-light

        return load_model(str(self.classifier))

    def probe(self, data: Dataset, *, sensitive: list[str] | None = None, seed: int = 0) -> FairnessResult:
        """Sample, classify and compare with the reference classes (``sensitive`` is ignored)."""
        del sensitive  # the groups are the classifier's classes
        start = time.perf_counter()
        judge = self._judge()
        reference = data if self.options["reference"] == "data" else load_dataset(data.name, "train")
        if len(reference) < 2:
            raise DataError("sample-distribution needs at least 2 reference rows")
        with eval_mode(self.handle.module), torch.no_grad():
            generator = torch.Generator().manual_seed(seed)
            sampler = cast(_Sampler, self.handle.module)  # needs_sampler: the module has sample()
            samples = sampler.sample(self.options["samples"], generator).float().cpu()
        if samples.shape[1:] != reference.x.shape[1:]:
            raise DataError(f"{self.handle.name} samples {tuple(samples.shape[1:])}, the reference data is "
                            f"{tuple(reference.x.shape[1:])}")
        probs = classify(judge.module, samples)  # (N, classes)
        classes = judge.class_names
        counts = np.bincount(probs.argmax(1).numpy(), minlength=len(classes))
        expected = np.bincount(reference.y.numpy(), minlength=len(classes)).astype(np.float64)
        if len(expected) != len(classes):
            raise DataError(f"the reference labels go beyond the {len(classes)} classes of {judge.name}")
        table = class_distribution_table(counts, expected, classes, collapse_ratio=self.options["collapse_ratio"])
        rows = min(self.options["diversity_rows"], len(samples), len(reference))
        pick = torch.randperm(len(reference), generator=torch.Generator().manual_seed(seed))[:rows]
        diversity = mean_pairwise_distance(samples[:rows]) / mean_pairwise_distance(reference.x[pick])
        overall = {**table.overall, "diversity_ratio": diversity,
                   "confident_share": confident_share(probs, self.options["confidence"])}
        table = replace(table, overall=overall)
        collapsed = int(overall["collapsed_classes"])
        notes = [f"{self.options['samples']} samples (seed {seed}) classified by {judge.name}; reference: "
                 f"{reference.name}:{reference.split} labels; chi-square p = {overall['p_value']:.3g}"]
        if collapsed:
            notes.append(f"mode collapse: {collapsed} class(es) below {self.options['collapse_ratio']:g} of their "
                         "expected share")
        return FairnessResult(
            probe=self.name,
            model=self.handle.name,
            dataset=f"{reference.name}:{reference.split}",
            metric_names=tuple(table.by_group),
            tables=(table,),
            notes=tuple(notes),
            provenance=Provenance(
                model_sha256=self.handle.sha256,
                data_sha256=reference.sha256,
                seed=seed,
                wall_seconds=round(time.perf_counter() - start, 4),
                device=str(self.handle.device),
            ),
        )
