"""Date-format conversion, a seeded seq2seq task (generated, never stored).

A date written the way people write it (``7 march 2024``, ``march 7, 2024``,
``07 mar 2024``, ``7.3.2024``) is to be rewritten as ISO 8601 (``2024-03-07``). Source
tokens are words (month names), single digits and punctuation; the target is the 10
characters of the ISO date and ``[EOS]``. Every output character copies (or, for the
month number of a month name, looks up) exactly one *field* of the source, so the
dataset knows which source tokens each output token should read: each row's annotation
holds ``source_fields`` (``day``, ``month``, ``year`` or ``sep`` per source token) and
``target_fields`` (per target token; ``sep`` for the dashes and ``eos`` for the end),
what the cross-attention method's alignment score compares attention with.

Only unambiguous forms are generated: a numeric date is always day first (``d.m.yyyy``,
the European order), never ``m/d/yyyy``; years run from 1950 to 2049.

Examples
--------
>>> tok = date_tokenizer()
>>> tok.source_tokens("march 7, 2024")
['march', '7', ',', '2', '0', '2', '4']
>>> source_fields(tok.source_tokens("7.3.2024"))
('day', 'sep', 'month', 'sep', 'year', 'year', 'year', 'year')
>>> tok.decode(tok.encode_target(["2024-03-07"])[0])
'2024-03-07'
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache

import numpy as np
import pandas as pd
import torch

from xai.datasets._base import Dataset, Split, register_dataset

__all__ = [
    "DATE_FORMATS",
    "MONTHS",
    "SOURCE_LENGTH",
    "TARGET_FIELDS",
    "TARGET_LENGTH",
    "DateTokenizer",
    "date_tokenizer",
    "generate_dates",
    "load_dates",
    "source_fields",
]

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
#: Source formats, by name: how a date is written (``{d}`` day, ``{dd}`` zero-padded, ``{m}`` month number,
#: ``{month}`` its name, ``{mon}`` its 3-letter abbreviation, ``{yyyy}`` the year).
DATE_FORMATS = {
    "d-month-yyyy": "{d} {month} {yyyy}",
    "month-d-yyyy": "{month} {d}, {yyyy}",
    "dd-mon-yyyy": "{dd} {mon} {yyyy}",
    "d.m.yyyy": "{d}.{m}.{yyyy}",
}
#: Longest source (``september 17, 2024`` is 8 tokens, ``17.12.2024`` 10) and the target with ``[EOS]``.
SOURCE_LENGTH, TARGET_LENGTH = 10, 11
#: The field each target position copies: ``yyyy-mm-dd`` and ``[EOS]``.
TARGET_FIELDS = ("year",) * 4 + ("sep",) + ("month",) * 2 + ("sep",) + ("day",) * 2 + ("eos",)
#: The generator's seeds and sizes belong to the data, not to a training seed.
TRAIN_SEED, TEST_SEED = 0, 1
TRAIN_SIZE, TEST_SIZE = 12000, 2000
_FIRST, _LAST = dt.date(1950, 1, 1), dt.date(2049, 12, 31)


class DateTokenizer:
    """One vocabulary for sources and targets: specials, digits, punctuation, month names.

    ``[PAD]`` is 0, ``[BOS]`` 1, ``[EOS]`` 2, ``[UNK]`` 3. Sources are encoded without
    specials and padded with 0 to :data:`SOURCE_LENGTH`; targets as their characters
    and ``[EOS]``.
    """

    PAD, BOS, EOS, UNK = "[PAD]", "[BOS]", "[EOS]", "[UNK]"
    SPECIALS = (PAD, BOS, EOS, UNK)

    def __init__(self) -> None:
        words = [str(i) for i in range(10)] + ["-", ".", ","] + list(MONTHS) + sorted({m[:3] for m in MONTHS} -
                                                                                     set(MONTHS))
        self.vocab = list(self.SPECIALS) + words
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = 0, 1, 2, 3

    def __len__(self) -> int:
        return len(self.vocab)

    @staticmethod
    def source_tokens(text: str) -> list[str]:
        """Words, single digits and punctuation of a written date (lower-cased)."""
        return re.findall(r"[a-z]+|\d|[^\sa-z\d]", text.lower())

    def encode(self, texts: list[str] | tuple[str, ...] | str, length: int = SOURCE_LENGTH) -> torch.Tensor:
        """Source ids ``(B, length)``, padded with 0 (longer sources are cut)."""
        if isinstance(texts, str):
            texts = [texts]
        ids = torch.zeros((len(texts), length), dtype=torch.long)
        for i, text in enumerate(texts):
            row = [self.index.get(t, self.unk_id) for t in self.source_tokens(text)][:length]
            ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        return ids

    def encode_target(self, texts: list[str] | tuple[str, ...]) -> torch.Tensor:
        """Target ids ``(B, TARGET_LENGTH)``: the ISO date's characters and ``[EOS]``."""
        ids = torch.zeros((len(texts), TARGET_LENGTH), dtype=torch.long)
        for i, text in enumerate(texts):
            row = [self.index.get(c, self.unk_id) for c in text][:TARGET_LENGTH - 1] + [self.eos_id]
            ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        return ids

    def tokens(self, ids: torch.Tensor) -> list[str]:
        """Token strings of one row of ids, padding left out."""
        return [self.vocab[i] if 0 <= i < len(self.vocab) else self.UNK for i in ids.tolist() if i != self.pad_id]

    def decode(self, ids: torch.Tensor) -> str:
        """A generated row as text: the characters up to the first ``[EOS]`` (specials dropped)."""
        out = []
        for token in self.tokens(ids):
            if token == self.EOS:
                break
            if token not in self.SPECIALS:
                out.append(token)
        return "".join(out)


@lru_cache(maxsize=1)
def date_tokenizer() -> DateTokenizer:
    """The tokenizer of the dates task."""
    return DateTokenizer()


def source_fields(tokens: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The field of each source token (``day``, ``month``, ``year``, ``sep``), read from the tokens alone.

    A month name is the month; in the numeric form the digit runs are day, month and
    year in that order; otherwise the 4-digit run is the year and the other run the day.
    """
    runs: list[list[int]] = []
    for i, token in enumerate(tokens):
        if token.isdigit():
            if runs and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
    fields = ["sep"] * len(tokens)
    named = any(t.isalpha() for t in tokens)
    for i, token in enumerate(tokens):
        if token.isalpha():
            fields[i] = "month"
    order = iter(("day", "month", "year"))
    for run in runs:
        field = ("year" if len(run) == 4 else "day") if named else next(order, "sep")
        for i in run:
            fields[i] = field
    return tuple(fields)


def _write(date: dt.date, form: str) -> str:
    month = MONTHS[date.month - 1]
    return DATE_FORMATS[form].format(d=date.day, dd=f"{date.day:02d}", m=date.month, month=month, mon=month[:3],
                                     yyyy=f"{date.year:04d}")


def generate_dates(n: int, seed: int) -> pd.DataFrame:
    """``n`` seeded dates (uniform over 1950-2049 and the formats): ``text``, ``target``, ``format``, ``century``."""
    rng = np.random.default_rng(seed)
    span = (_LAST - _FIRST).days + 1
    forms = list(DATE_FORMATS)
    rows = []
    for offset, k in zip(rng.integers(span, size=n), rng.integers(len(forms), size=n), strict=True):
        date = _FIRST + dt.timedelta(days=int(offset))
        rows.append((_write(date, forms[k]), date.isoformat(), forms[k], f"{date.year // 100}xx"))
    return pd.DataFrame(rows, columns=["text", "target", "format", "century"])


@lru_cache(maxsize=3)
def _frame(split: str) -> pd.DataFrame:
    train = generate_dates(TRAIN_SIZE, TRAIN_SEED)
    if split == "train":
        return train
    test = generate_dates(TEST_SIZE, TEST_SEED)
    test = test[~test["text"].isin(set(train["text"]))].reset_index(drop=True)  # held out: unseen sources
    if split == "test":
        return test
    return pd.concat([train, test], ignore_index=True)


@register_dataset("dates")
def load_dates(split: Split = "test") -> Dataset:
    """Written dates as source ids ``x`` ``(N, 10)`` and their ISO forms as target ids ``y`` ``(N, 11)``.

    12,000 training rows (seed 0) and up to 2,000 test rows (seed 1, minus sources that
    also occur in training). ``groups`` holds ``format``, ``century``, ``text`` and
    ``target``; each annotation holds the row's ``source_fields`` and ``target_fields``.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"unknown split {split!r}")
    frame = _frame(split)
    tokenizer = date_tokenizer()
    texts = list(frame["text"])
    annotations = tuple({"source_fields": source_fields(tokenizer.source_tokens(t)), "target_fields": TARGET_FIELDS}
                        for t in texts)
    return Dataset(
        name="dates",
        split=split,
        modality="text",
        x=tokenizer.encode(texts),
        y=tokenizer.encode_target(list(frame["target"])),
        class_names=(),
        groups=frame[["format", "century", "text", "target"]].reset_index(drop=True),
        description="written dates (4 formats, 1950-2049) to ISO 8601; seeded, generated",
        annotations=annotations,
    )
