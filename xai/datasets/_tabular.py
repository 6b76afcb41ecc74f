"""Shared machinery for the bundled tabular datasets (compact CSVs with a ``split`` column)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd
import torch

from xai.datasets._base import Dataset, Split
from xai.errors import DataError


def read_bundled_csv(filename: str) -> pd.DataFrame:
    """A gzipped CSV from ``xai/datasets/data/``."""
    with resources.files("xai.datasets.data").joinpath(filename).open("rb") as handle:
        return pd.read_csv(handle, compression="gzip")


@dataclass(frozen=True)
class TabularEncoder:
    """Raw columns -> float inputs: standardised numbers (optionally log1p), one-hot categories.

    Fitted on a train split, so it is a fixed function of the shipped file.
    """

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    log_scaled: tuple[str, ...]
    means: dict[str, float]
    stds: dict[str, float]
    categories: dict[str, tuple[str, ...]]

    @classmethod
    def fit(cls, frame: pd.DataFrame, *, numeric: tuple[str, ...], categorical: tuple[str, ...],
            log_scaled: tuple[str, ...] = ()) -> TabularEncoder:
        """Fit the statistics and category lists on ``frame``."""
        numbers = _numeric_block(frame, numeric, log_scaled)
        return cls(
            numeric=numeric,
            categorical=categorical,
            log_scaled=log_scaled,
            means={c: float(numbers[c].mean()) for c in numeric},
            stds={c: float(numbers[c].std(ddof=0)) or 1.0 for c in numeric},
            categories={c: tuple(sorted(frame[c].astype(str).unique())) for c in categorical},
        )

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Input column names: numbers first, then ``column=level`` one-hots."""
        names = list(self.numeric)
        for column in self.categorical:
            names += [f"{column}={level}" for level in self.categories[column]]
        return tuple(names)

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """Raw column behind each input column."""
        columns = list(self.numeric)
        for column in self.categorical:
            columns += [column] * len(self.categories[column])
        return tuple(columns)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode raw rows ``(N, F)``; unseen category levels encode as all zeros."""
        missing = [c for c in (*self.numeric, *self.categorical) if c not in frame.columns]
        if missing:
            raise DataError(f"rows lack column(s): {', '.join(missing)}")
        numbers = _numeric_block(frame, self.numeric, self.log_scaled)
        blocks = [((numbers[c] - self.means[c]) / self.stds[c]).to_numpy()[:, None]
                  for c in self.numeric]
        for column in self.categorical:
            values = frame[column].astype(str).to_numpy()[:, None]
            levels = np.asarray(self.categories[column], dtype=object)[None, :]
            blocks.append((values == levels).astype(np.float64))
        return np.concatenate(blocks, axis=1).astype(np.float32)


def _numeric_block(frame: pd.DataFrame, numeric: tuple[str, ...],
                   log_scaled: tuple[str, ...]) -> pd.DataFrame:
    numbers = frame[list(numeric)].astype(float).copy()
    for column in log_scaled:
        numbers[column] = np.log1p(numbers[column])
    return numbers


def tabular_dataset(
    name: str,
    frame: pd.DataFrame,
    split: Split,
    encoder: TabularEncoder,
    *,
    label: str,
    positive: str,
    class_names: tuple[str, str],
    sensitive: tuple[str, ...],
    description: str,
) -> Dataset:
    """A binary-label :class:`Dataset` from raw rows (class 1 is ``positive``)."""
    if split != "all":
        frame = frame[frame["split"] == split].reset_index(drop=True)
    return Dataset(
        name=name,
        split=split,
        modality="tabular",
        x=torch.from_numpy(encoder.transform(frame)),
        y=torch.from_numpy((frame[label].astype(str) == positive).to_numpy().astype(np.int64)),
        class_names=class_names,
        groups=frame[list(sensitive)].astype(str).reset_index(drop=True),
        feature_names=encoder.feature_names,
        feature_columns=encoder.feature_columns,
        description=description,
    )
