from __future__ import annotations

import gzip
import hashlib
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from xai.datasets import (
    adult_encoder,
    list_datasets,
    load_dataset,
    read_adult_frame,
    read_compas_frame,
    read_german_frame,
)
from xai.datasets._pydoc import TOKEN_PATTERN, TOPICS_FILE, pydoc_corpus, topic_tokens
from xai.errors import UnknownNameError


def test_digits_split_sizes_and_range():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert len(train) + len(test) == 1797
    assert len(test) == 360
    assert test.x.shape[1:] == (1, 32, 32)
    assert float(test.x.min()) >= 0.0 and float(test.x.max()) <= 1.0
    assert set(test.groups["ink"]) == {"light", "medium", "heavy"}


def test_digits_upsampling_preserves_the_image():
    # Pooling each 32x32 image back to 8x8 lands nearest to its own original among all
    # 1,797 digits (a handful of near-twins aside, always of the same label): no image
    # was scrambled, reordered or paired with another's label.
    every = load_dataset("digits", "all")
    bunch = load_digits()
    original = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).flatten(1)
    pooled = torch.nn.functional.avg_pool2d(every.x, 4).flatten(1)
    nearest = torch.cdist(pooled, original).argmin(1)
    assert (nearest == torch.arange(len(original))).float().mean() > 0.995
    assert np.array_equal(bunch.target[nearest.numpy()], bunch.target)
    assert torch.equal(every.y, torch.from_numpy(bunch.target))


def test_adult_shipped_file_matches_datasets_md_and_row_counts():
    data = resources.files("xai.datasets.data").joinpath("adult.csv.gz").read_bytes()
    datasets_md = Path(__file__).resolve().parents[2] / "DATASETS.md"
    digest = hashlib.sha256(data).hexdigest()
    assert digest in datasets_md.read_text(encoding="utf-8")
    assert len(gzip.decompress(data).splitlines()) == 48842 + 1
    frame = read_adult_frame()
    assert len(frame) == 45222  # the usual count once rows with "?" are dropped
    assert (frame["split"] == "train").sum() == 30162


def test_adult_encoding_is_one_hot_and_standardised():
    train = load_dataset("adult", "train")
    encoder = adult_encoder()
    assert train.x.shape[1] == len(encoder.feature_names) == len(encoder.feature_columns)
    numbers = train.x[:, :5]
    assert torch.allclose(numbers.mean(0), torch.zeros(5), atol=1e-4)
    assert torch.allclose(numbers.std(0, unbiased=False), torch.ones(5), atol=1e-4)
    for column in ("sex", "race", "workclass"):
        cols = [i for i, c in enumerate(encoder.feature_columns) if c == column]
        assert torch.all(train.x[:, cols].sum(1) == 1)  # exactly one level per row
    assert set(train.groups.columns) == {"sex", "race"}


def test_unknown_dataset_lists_known():
    with pytest.raises(UnknownNameError, match="adult"):
        load_dataset("mnist")
    assert {"adult", "digits"} <= set(list_datasets())


@pytest.mark.parametrize(
    ("name", "rows", "train_rows", "sensitive"),
    [("compas", 6172, 4320, {"race", "sex"}), ("german", 1000, 700, {"sex", "age_group"})],
)
def test_compas_and_german_ship_as_documented(name, rows, train_rows, sensitive):
    data = resources.files("xai.datasets.data").joinpath(f"{name}.csv.gz").read_bytes()
    datasets_md = Path(__file__).resolve().parents[2] / "DATASETS.md"
    assert hashlib.sha256(data).hexdigest() in datasets_md.read_text(encoding="utf-8")
    every, train = load_dataset(name, "all"), load_dataset(name, "train")
    assert len(every) == rows and len(train) == train_rows
    assert set(every.groups.columns) == sensitive
    # one-hot blocks hold exactly one level per row; numbers are standardised on train
    for column in set(train.feature_columns):
        cols = [i for i, c in enumerate(train.feature_columns) if c == column]
        if len(cols) > 1:
            assert torch.all(train.x[:, cols].sum(1) == 1), column
        else:
            assert abs(float(train.x[:, cols[0]].mean())) < 1e-4, column


def test_compas_rows_and_label_match_propublica():
    frame = read_compas_frame()
    assert len(frame) == 6172  # ProPublica's count after their filter
    assert set(frame["c_charge_degree"]) == {"F", "M"}
    every = load_dataset("compas", "all")
    assert float(every.y.float().mean()) == pytest.approx(frame["two_year_recid"].mean())
    assert every.class_names[1] == "recidivism"


def test_german_sex_comes_from_personal_status():
    frame = read_german_frame()
    female = frame["personal_status"].str.startswith("female")
    assert (frame.loc[female, "sex"] == "female").all() and (frame.loc[~female, "sex"] == "male").all()
    assert (frame["age_group"] == "under 25").sum() == (frame["age"] < 25).sum()


def test_digit_rows_are_the_original_scans_with_the_digits_split_and_groups():
    bunch = load_digits()
    for split in ("train", "test"):
        rows, images = load_dataset("digits-rows", split), load_dataset("digits", split)
        assert rows.modality == "sequence" and rows.x.shape[1:] == (8, 8)
        assert torch.equal(rows.y, images.y)
        assert rows.groups.equals(images.groups)
        # each row sequence is one original 8x8 scan (pixel / 16) with its own label
        flat = torch.from_numpy(bunch.images.reshape(len(bunch.images), -1) / 16.0).float()
        match = torch.cdist(rows.x.flatten(1), flat).argmin(1)
        assert torch.equal(rows.x, flat[match].view(-1, 8, 8))
        assert np.array_equal(bunch.target[match.numpy()], rows.y.numpy())
    assert len(load_dataset("digits-rows", "all")) == 1797
    assert "digits-rows" in list_datasets()


def test_pydoc_snapshot_matches_datasets_md_and_gives_the_documented_corpus():
    data = resources.files("xai.datasets.data").joinpath(TOPICS_FILE).read_bytes()
    datasets_md = Path(__file__).resolve().parents[2] / "DATASETS.md"
    assert hashlib.sha256(data).hexdigest() in datasets_md.read_text(encoding="utf-8")
    tokens = topic_tokens()
    assert len(tokens) == 79 and sum(map(len, tokens)) == 63637
    assert len(pydoc_corpus().words) == 1355  # the vocabulary the zoo's cbow/skipgram weights fit


@pytest.mark.skipif(sys.version_info[:3] != (3, 11, 7), reason="the snapshot is CPython 3.11.7's help topics")
def test_pydoc_snapshot_equals_the_interpreter_that_wrote_it():
    from pydoc_data.topics import topics

    assert topic_tokens() == [TOKEN_PATTERN.findall(topics[k].lower()) for k in sorted(topics)]
