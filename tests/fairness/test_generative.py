from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import chi2
from torch import nn

from xai.datasets import load_dataset
from xai.errors import NotApplicableError
from xai.fairness import create_probe, list_probes
from xai.fairness.generative import class_distribution_table, mean_pairwise_distance
from xai.zoo import ModelHandle


class FakeSampler(nn.Module):
    """``sample(n, generator)`` draws training digits (optionally of one class, or one image)."""

    def __init__(self, only_class: int | None = None, one_image: bool = False) -> None:
        super().__init__()
        train = load_dataset("digits", "train")
        keep = train.y == only_class if only_class is not None else torch.ones_like(train.y, dtype=torch.bool)
        self.pool = train.x[keep][:1] if one_image else train.x[keep]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).sum(1, keepdim=True)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.pool[torch.randint(len(self.pool), (n,), generator=generator)]


def _handle(module: nn.Module, name: str = "fake") -> ModelHandle:
    return ModelHandle(name=name, module=module, task="generation", modality="image", input_shape=(1, 32, 32),
                       class_names=("real",), source="test", sha256="0" * 64, dataset="digits")


def _table(module: nn.Module, lenet, **options):
    probe = create_probe("sample-distribution", _handle(module), classifier=lenet, **options)
    return probe.probe(load_dataset("digits", "test"), seed=0)


def test_hand_worked_class_distribution():
    table = class_distribution_table(np.array([30, 10]), np.array([1.0, 1.0]), ("a", "b"))
    # chi2 = (30-20)^2/20 + (10-20)^2/20 = 10 with 1 degree of freedom
    assert table.overall["chi2"] == pytest.approx(10.0)
    assert table.overall["p_value"] == pytest.approx(chi2.sf(10.0, 1))
    assert table.overall["normalised_entropy"] == pytest.approx(
        -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2))
    assert table.disparities["total_variation"] == pytest.approx(0.25)
    assert table.ratios["min_share_ratio"] == pytest.approx(0.5)
    assert table.by_group["share"] == {"a": 0.75, "b": 0.25}
    assert table.overall["collapsed_classes"] == 0  # 0.25 >= 0.25 * 0.5
    strict = class_distribution_table(np.array([30, 10]), np.array([1.0, 1.0]), ("a", "b"), collapse_ratio=0.6)
    assert strict.overall["collapsed_classes"] == 1 and "class b is collapsed" in strict.warnings[0]


def test_mean_pairwise_distance_of_a_hand_worked_set():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])  # distances 5, 0, 5 (each pair twice)
    assert mean_pairwise_distance(x) == pytest.approx(10 / 3)


def test_a_sampler_of_one_class_is_flagged_as_collapsed(lenet):
    result = _table(FakeSampler(only_class=3), lenet)
    table = result.tables[0]
    assert table.overall["p_value"] < 0.01
    assert table.overall["collapsed_classes"] == 9
    assert table.by_group["share"]["3"] > 0.95
    assert table.overall["normalised_entropy"] < 0.1
    assert any("mode collapse" in note for note in result.notes)


def test_a_sampler_of_the_training_distribution_is_not_flagged(lenet):
    table = _table(FakeSampler(), lenet).tables[0]
    assert table.overall["p_value"] > 0.01
    assert table.overall["collapsed_classes"] == 0
    assert table.overall["normalised_entropy"] > 0.99
    assert 0.9 < table.overall["diversity_ratio"] < 1.1
    assert table.overall["confident_share"] > 0.9
    expected = load_dataset("digits", "train").y.bincount(minlength=10).double()
    assert table.by_group["expected_share"]["0"] == pytest.approx(float(expected[0] / expected.sum()))


def test_a_sampler_repeating_one_image_has_no_diversity(lenet):
    table = _table(FakeSampler(only_class=5, one_image=True), lenet, samples=200, diversity_rows=50).tables[0]
    assert table.overall["diversity_ratio"] == 0.0
    assert table.overall["count"] == 200


def test_models_without_sample_are_refused(lenet):
    assert "sample-distribution" not in list_probes(handle=lenet)
    with pytest.raises(NotApplicableError, match="sample"):
        create_probe("sample-distribution", lenet)
    assert "sample-distribution" in list_probes(handle=_handle(FakeSampler()))


def test_cli_runs_the_probe_without_a_sensitive_column():
    from typer.testing import CliRunner

    from xai.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["fairness", "dcgan", "--probe", "sample-distribution", "--option", "samples=300",
                                 "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    table = document["tables"][0]
    assert document["probe"] == "sample-distribution" and table["feature"] == "class"
    assert table["overall"]["count"] == 300 and sum(table["by_group"]["count"].values()) == 300
    assert sum(table["by_group"]["share"].values()) == pytest.approx(1.0)
    # group metrics still needs a sensitive column, and says so
    refused = runner.invoke(app, ["fairness", "lenet"])
    assert refused.exit_code == 2 and "--sensitive" in refused.output


def test_audit_spec_gates_the_probe_by_name():
    from xai.audit import parse_spec
    from xai.audit.runner import run_audit

    spec = parse_spec("""
title = "vae samples"
explain = []
[model]
name = "vae"
[[probe]]
name = "sample-distribution"
options = { samples = 200 }
""")
    audit = run_audit(spec, slug="vae-samples")
    metrics = audit.metrics()
    p_value = metrics["fairness.sample-distribution.class.overall.p_value"]
    assert 0.0 <= p_value <= 1.0
    assert metrics["fairness.sample-distribution.class.total_variation"] >= 0.0
    assert "elbo_per_pixel" in metrics  # the VAE's own evaluation is the audit's performance
    assert not any("skipped" in note for note in audit.notes)
