"""The generated date-conversion task (xai/datasets/_dates.py): seeded, held out, fields that match the text."""

from __future__ import annotations

import datetime as dt

import torch

from xai.datasets import load_dataset
from xai.datasets._dates import DATE_FORMATS, MONTHS, TARGET_FIELDS, date_tokenizer, generate_dates, source_fields


def test_sizes_seeding_and_held_out_sources():
    train, test = load_dataset("dates", "train"), load_dataset("dates", "test")
    assert (len(train), len(test)) == (12000, 1849) and test.x.shape == (1849, 10) and test.y.shape == (1849, 11)
    assert not set(train.groups["text"]) & set(test.groups["text"])
    assert generate_dates(50, 7).equals(generate_dates(50, 7))
    assert not generate_dates(50, 7).equals(generate_dates(50, 8))
    assert set(test.groups["format"]) == set(DATE_FORMATS)


def test_every_row_says_the_same_date_in_source_target_and_fields():
    tok = date_tokenizer()
    data = load_dataset("dates", "test")
    for i in range(0, len(data), 37):
        text, target = data.groups["text"][i], data.groups["target"][i]
        assert tok.decode(data.y[i]) == target and data.y[i, -1] == tok.eos_id
        date = dt.date.fromisoformat(target)
        tokens = tok.tokens(data.x[i])
        fields = data.annotations[i]["source_fields"]
        assert data.annotations[i]["target_fields"] == TARGET_FIELDS and len(fields) == len(tokens)
        by_field = {f: "".join(t for t, g in zip(tokens, fields, strict=True) if g == f) for f in set(fields)}
        assert int(by_field["year"]) == date.year and int(by_field["day"]) == date.day
        month = by_field["month"]
        assert (int(month) if month.isdigit() else [m[:3] for m in MONTHS].index(month[:3]) + 1) == date.month
        assert text.replace(" ", "").replace(",", "").replace(".", "") == "".join(t for t in tokens if t not in ",.")


def test_fields_from_tokens_alone():
    assert source_fields(["march", "7", ",", "2", "0", "2", "4"]) == ("month", "day", "sep") + ("year",) * 4
    assert source_fields(list("17.12.2024")) == ("day",) * 2 + ("sep",) + ("month",) * 2 + ("sep",) + ("year",) * 4
    assert torch.equal(date_tokenizer().encode("7 MARCH 2024"), date_tokenizer().encode("7 march 2024"))
