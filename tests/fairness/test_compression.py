"""The compression probe: per-group accuracy change between a model and its compressed variants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from fairlearn.metrics import MetricFrame
from sklearn.metrics import accuracy_score
from torch import nn

from xai.audit.metrics import result_metrics
from xai.datasets import Dataset
from xai.errors import DataError, NotApplicableError
from xai.fairness import create_probe, list_probes
from xai.fairness.compression import compression_table, default_variants, worst_hit
from xai.zoo import ModelHandle, load_model

from ..conftest import ZOO

N_PER_GROUP = 30


class Lookup(nn.Module):
    """Outputs a fixed prediction per row: ``x[:, 0]`` holds the row's index."""

    def __init__(self, predictions: np.ndarray, classes: int = 3) -> None:
        super().__init__()
        self.register_buffer("logits", nn.functional.one_hot(torch.as_tensor(predictions), classes).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[x[:, 0].long()]


def _handle(name: str, predictions: np.ndarray) -> ModelHandle:
    return ModelHandle(name=name, module=Lookup(predictions), task="classification", modality="tabular",
                       input_shape=(1,), class_names=("x", "y", "z"), source="test", sha256="0")


@pytest.fixture(scope="module")
def constructed():
    """90 rows in groups a, b, c; the original errs on 3 rows of a; the variant also flips 6 right rows of b."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 3 * N_PER_GROUP)
    groups = np.repeat(["a", "b", "c"], N_PER_GROUP)
    original = y.copy()
    original[[0, 1, 2]] = (y[[0, 1, 2]] + 1) % 3
    variant = original.copy()
    flipped = N_PER_GROUP + np.arange(6)
    variant[flipped] = (y[flipped] + 2) % 3
    data = Dataset(name="toy", split="test", modality="tabular", x=torch.arange(len(y)).float().unsqueeze(1),
                   y=torch.as_tensor(y), class_names=("x", "y", "z"), groups=pd.DataFrame({"g": groups}))
    return y, groups, original, variant, data


def test_a_variant_that_flips_one_group_shows_it_as_worst_hit_with_the_exact_drop(constructed):
    y, groups, original, variant, _ = constructed
    table = compression_table(y, original, {"flip": variant}, groups, "g", n_boot=0)
    assert table.by_group["flip_change"] == pytest.approx({"a": 0.0, "b": -6 / 30, "c": 0.0}, abs=1e-15)
    assert worst_hit(table, "flip") == ("b", pytest.approx(0.2, abs=1e-15))
    assert table.disparities["flip_worst_group_drop"] == pytest.approx(0.2, abs=1e-15)
    assert table.disparities["worst_group_drop"] == table.disparities["flip_worst_group_drop"]
    assert table.disparities["flip_drop_spread"] == pytest.approx(0.2, abs=1e-15)
    assert table.overall["flip_change"] == pytest.approx(-6 / 90, abs=1e-15)
    assert table.by_group["accuracy"] == {"a": 27 / 30, "b": 1.0, "c": 1.0}
    assert table.by_group["count"] == {"a": 30.0, "b": 30.0, "c": 30.0}


def test_group_accuracies_equal_fairlearn(constructed):
    y, groups, original, variant, _ = constructed
    other = np.where(groups == "c", (y + 1) % 3, original)  # a second variant that errs on all of c
    table = compression_table(y, original, {"flip": variant, "c-wrong": other}, groups, "g", n_boot=0)
    for name, preds in (("accuracy", original), ("flip_accuracy", variant), ("c-wrong_accuracy", other)):
        frame = MetricFrame(metrics=accuracy_score, y_true=y, y_pred=preds, sensitive_features=groups)
        assert table.by_group[name] == pytest.approx(frame.by_group.to_dict(), abs=1e-12)
    assert worst_hit(table, "c-wrong") == ("c", 1.0)
    assert table.disparities["worst_group_drop"] == 1.0  # the worse of the two variants


def test_paired_bootstrap_is_exact_where_the_models_agree(constructed):
    y, groups, original, variant, _ = constructed
    table = compression_table(y, original, {"flip": variant}, groups, "g", n_boot=500, seed=3)
    # on a and c the variant agrees with the original row by row: every resample changes nothing
    assert table.intervals["flip_change"]["a"] == (0.0, 0.0)
    assert table.intervals["flip_change"]["c"] == (0.0, 0.0)
    low, high = table.intervals["flip_change"]["b"]
    assert low < -0.05 and high <= 0.0  # the variant only ever loses rows in b
    assert table.intervals["accuracy"]["b"] == (1.0, 1.0)
    lo, hi = table.disparity_intervals["worst_group_drop"]
    assert 0.0 < lo <= 0.2 <= hi
    again = compression_table(y, original, {"flip": variant}, groups, "g", n_boot=500, seed=3)
    assert again.intervals == table.intervals  # seeded


def test_probe_on_handles_names_the_worst_hit_group_and_the_class_table(constructed):
    y, _, original, variant, data = constructed
    probe = create_probe("compression", _handle("orig", original), variants=[_handle("flip", variant)],
                         n_boot=50)
    result = probe.probe(data, sensitive=["g"])
    assert [t.feature for t in result.tables] == ["g", "class"]
    assert any(note.startswith("g: flip hits 'b' hardest: accuracy 1.000 -> 0.800 (-0.200") for note in result.notes)
    by_class = result.tables[1]
    for k, name in enumerate(("x", "y", "z")):
        rows = y == k
        assert by_class.by_group["flip_change"][name] == pytest.approx(
            (variant[rows] == k).mean() - (original[rows] == k).mean(), abs=1e-12)
    metrics = result_metrics(result)
    assert metrics["g.flip_worst_group_drop"] == pytest.approx(0.2, abs=1e-15)
    assert metrics["g.flip_change.b"] == pytest.approx(-0.2, abs=1e-15)


def test_probe_rejects_bad_options_and_mismatched_variants(constructed):
    _, _, original, variant, _ = constructed
    with pytest.raises(DataError, match="compression: unknown option 'variant'; it takes sensitive, variants"):
        create_probe("compression", _handle("orig", original), variant=["flip"])
    other = _handle("other", variant)
    other.class_names = ("p", "q", "r")
    with pytest.raises(DataError, match="does not classify like orig"):
        create_probe("compression", _handle("orig", original), variants=[other])
    with pytest.raises(NotApplicableError, match="no trained compressed variant of orig"):
        create_probe("compression", _handle("orig", original))
    assert "compression" not in list_probes(handle=_handle("orig", original))  # audits skip it by default


def test_lenet_and_its_pruned_variant_on_digits(lenet, digits_test):
    assert set(default_variants(lenet)) >= {"lenet-pruned50", "lenet-pruned80", "lenet-int8", "lenet-distilled"}
    assert "compression" in list_probes(handle=lenet)
    result = create_probe("compression", lenet, variants=["lenet-pruned80"], n_boot=0).probe(
        digits_test, sensitive=["ink"])
    ink = result.tables[0]
    pruned = load_model("lenet-pruned80", zoo_dir=ZOO)
    y = digits_test.y.numpy()
    ours, theirs = lenet.predict(digits_test.x).argmax(1).numpy(), pruned.predict(digits_test.x).argmax(1).numpy()
    for group in ("light", "medium", "heavy"):
        rows = (digits_test.groups["ink"] == group).to_numpy()
        expected = (theirs[rows] == y[rows]).mean() - (ours[rows] == y[rows]).mean()
        assert ink.by_group["lenet-pruned80_change"][group] == pytest.approx(expected, abs=1e-12)
    group, drop = worst_hit(ink, "lenet-pruned80")
    assert drop == pytest.approx(ink.disparities["lenet-pruned80_worst_group_drop"])
    assert ink.by_group["lenet-pruned80_change"][group] == pytest.approx(-drop)


def test_a_small_group_never_sets_the_worst_drop_and_intervals_contain_the_estimate(constructed):
    y, groups, original, variant, _ = constructed
    # append 4 rows of group "d" that the variant gets all wrong (a drop of 1.0 on 4 rows)
    y2 = np.r_[y, [0, 1, 2, 0]]
    groups2 = np.r_[groups, ["d"] * 4]
    original2 = np.r_[original, [0, 1, 2, 0]]
    variant2 = np.r_[variant, [1, 2, 0, 1]]
    table = compression_table(y2, original2, {"flip": variant2}, groups2, "g", n_boot=400, seed=1)
    assert table.by_group["flip_change"]["d"] == -1.0 and table.small_groups == ("d",)  # shown, flagged
    assert table.disparities["worst_group_drop"] == pytest.approx(0.2, abs=1e-15)  # b's drop, not d's 1.0
    assert table.disparities["flip_drop_spread"] == pytest.approx(0.2, abs=1e-15)
    assert any("'d' has 4 rows" in w and "left out of the worst drop" in w for w in table.warnings)
    for key, (lo, hi) in table.disparity_intervals.items():
        assert lo <= table.disparities[key] <= hi, key
    # the same rows ranked with min_group_size=4: d is the worst-hit group
    ranked = compression_table(y2, original2, {"flip": variant2}, groups2, "g", n_boot=0, min_group_size=4)
    assert ranked.disparities["worst_group_drop"] == 1.0 and ranked.small_groups == ()
