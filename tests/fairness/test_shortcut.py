from __future__ import annotations

import numpy as np
import pytest
import torch

from xai.datasets import MARK_REGION, load_dataset
from xai.errors import DataError, NotApplicableError
from xai.fairness import create_probe
from xai.fairness.shortcut import region_share
from xai.zoo import load_model


def test_region_share_by_hand():
    attr = np.zeros((2, 2, 4, 4), dtype=np.float32)
    attr[0, 0, 0, 0] = 3.0   # inside rows 0-1, cols 0-1
    attr[0, 1, 3, 3] = -1.0  # outside; magnitudes count and channels add
    attr[1, 0, 2, 2] = 5.0   # all outside
    np.testing.assert_allclose(region_share(attr, (0, 2, 0, 2)), [0.75, 0.0])
    assert region_share(np.zeros((1, 1, 4, 4)), (0, 2, 0, 2))[0] == 0.0  # no mass: share 0, no NaN


def test_marked_digits_plant_the_shortcut_only_in_the_train_split():
    top, bottom, _, _ = MARK_REGION
    for split, encodes_label in (("train", True), ("test", False)):
        data = load_dataset("digits-shortcut", split)
        marked = (data.groups["marked"] == "marked").to_numpy(copy=True)
        assert 0.45 < marked.mean() < 0.55
        strip = data.x[:, 0, top:bottom]  # (N, 3, 32) the mark's rows
        rows = torch.from_numpy(marked)
        assert (strip[~rows] == 0).all()  # unmarked rows: an empty strip
        # the mark is the only 3x3 block of ones in the strip; its column is where it starts
        full = (strip[rows] == 1.0).all(dim=1)  # (M, 32) columns fully covered
        start = full.float().argmax(dim=1).numpy()
        labels = data.y.numpy()[marked]
        agreement = (start == 1 + 3 * labels).mean()
        assert agreement == 1.0 if encodes_label else agreement < 0.3
    clean = load_dataset("digits-marked", "test")
    torch.testing.assert_close(clean.x, load_dataset("digits-shortcut", "test").x)  # same held-out rows


@pytest.mark.parametrize(("name", "flagged"), [("lenet-shortcut", True), ("lenet-marked", False)])
def test_probe_flags_the_shortcut_model_and_not_the_clean_one(name, flagged):
    data = load_dataset("digits-shortcut", "test")
    result = create_probe("shortcut", load_model(name), samples=60).probe(data, sensitive=["marked"])
    table = result.tables[0]
    gap = table.disparities["accuracy_difference"]
    ratio = table.disparities["region_mass_ratio"]
    assert table.disparities["shortcut_detected"] == float(flagged)
    predicted = load_model(name).predict(data.x).argmax(1).numpy()
    right = predicted == data.y.numpy()
    marked = (data.groups["marked"] == "marked").to_numpy()
    assert table.by_group["accuracy"]["marked"] == pytest.approx(right[marked].mean(), abs=1e-12)
    assert gap == pytest.approx(abs(right[marked].mean() - right[~marked].mean()), abs=1e-12)
    if flagged:  # both signals agree: the marked group fails and its attributions sit on the mark
        assert gap > 0.3 and ratio > 2 and table.by_group["region_share"]["unmarked"] < 0.01
    else:
        assert gap < 0.1 and ratio < 1
    assert ("shortcut detected" if flagged else "no shortcut detected") in result.notes[0]


def test_bad_regions_and_models_are_clear_errors(lenet, adult_mlp):
    data = load_dataset("digits-shortcut", "test").head(10)
    with pytest.raises(DataError, match="not inside the 32x32 image"):
        create_probe("shortcut", lenet, region=[0, 40, 0, 8]).probe(data, sensitive=["marked"])
    with pytest.raises(DataError, match="needs region"):
        create_probe("shortcut", lenet).probe(load_dataset("digits", "test").head(10), sensitive=["ink"])
    with pytest.raises(NotApplicableError, match="it takes image inputs, not tabular"):
        create_probe("shortcut", adult_mlp)
