"""ProPublica COMPAS two-year recidivism (Broward County, 2013-2014).

Rows filtered as in ProPublica's analysis (screening within 30 days of arrest, known
recidivism, no ordinary traffic offences, a COMPAS score): 6,172 rows. The shipped
file keeps the defendant's attributes, the COMPAS decile score and the two-year outcome,
plus a fixed stratified 70/30 split (``random_state=0``).
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from xai.datasets._base import Dataset, Split, register_dataset
from xai.datasets._tabular import TabularEncoder, read_bundled_csv, tabular_dataset

NUMERIC = ("age", "juv_fel_count", "juv_misd_count", "juv_other_count", "priors_count")
CATEGORICAL = ("sex", "race", "c_charge_degree")
SENSITIVE = ("race", "sex")
COMPAS_CLASSES = ("no-recidivism", "recidivism")


@lru_cache(maxsize=1)
def read_compas_frame() -> pd.DataFrame:
    """The shipped COMPAS rows (6,172)."""
    return read_bundled_csv("compas.csv.gz")


@lru_cache(maxsize=1)
def compas_encoder() -> TabularEncoder:
    """Encoder fitted on the train split (counts log-scaled). The COMPAS score is not an input."""
    frame = read_compas_frame()
    return TabularEncoder.fit(frame[frame["split"] == "train"], numeric=NUMERIC, categorical=CATEGORICAL,
                              log_scaled=NUMERIC[1:])


@register_dataset("compas")
def load_compas(split: Split = "test") -> Dataset:
    """COMPAS: predict two-year recidivism (class 1); ``groups`` holds race and sex."""
    return tabular_dataset(
        "compas", read_compas_frame(), split, compas_encoder(), label="two_year_recid", positive="1",
        class_names=COMPAS_CLASSES, sensitive=SENSITIVE,
        description="ProPublica COMPAS two-year recidivism, filtered as in ProPublica's analysis",
    )
