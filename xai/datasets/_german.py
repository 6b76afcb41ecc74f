"""Statlog German credit (1,000 applicants), decoded with the attribute names of the UCI docs.

``sex`` is derived from the personal-status attribute (A91/A93/A94 male, A92/A95 female);
``age_group`` splits at 25 years as in Kamiran & Calders (2009). Fixed stratified 70/30
split (``random_state=0``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from xai.datasets._base import Dataset, Split, register_dataset
from xai.datasets._tabular import TabularEncoder, read_bundled_csv, tabular_dataset

NUMERIC = ("duration", "credit_amount", "installment_rate", "present_residence_since", "age",
           "number_of_existing_credits", "number_of_people_liable_for")
CATEGORICAL = ("status", "credit_history", "purpose", "savings", "present_employment", "other_debtors",
               "property", "installment_plans", "housing", "job", "telephone", "foreign_worker", "sex")
SENSITIVE = ("sex", "age_group")
GERMAN_CLASSES = ("bad", "good")


@lru_cache(maxsize=1)
def read_german_frame() -> pd.DataFrame:
    """The shipped German credit rows (1,000) with ``age_group`` added."""
    frame = read_bundled_csv("german.csv.gz")
    frame["age_group"] = np.where(frame["age"] < 25, "under 25", "25 and over")
    return frame


@lru_cache(maxsize=1)
def german_encoder() -> TabularEncoder:
    """Encoder fitted on the train split (credit amount log-scaled)."""
    frame = read_german_frame()
    return TabularEncoder.fit(frame[frame["split"] == "train"], numeric=NUMERIC, categorical=CATEGORICAL,
                              log_scaled=("credit_amount",))


@register_dataset("german")
def load_german(split: Split = "test") -> Dataset:
    """German credit: predict a good credit risk (class 1); ``groups`` holds sex and age group."""
    return tabular_dataset(
        "german", read_german_frame(), split, german_encoder(), label="credit", positive="good",
        class_names=GERMAN_CLASSES, sensitive=SENSITIVE,
        description="Statlog German credit (Hofmann 1994), decoded attribute values",
    )
