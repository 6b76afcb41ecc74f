"""The dataset object every explainer and probe consumes, and its registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from xai._provenance import sha256_array
from xai._typing import Modality
from xai.datasets._index import DATASETS

Split = Literal["train", "test", "all"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Model-ready inputs with labels and the attributes to group rows by.

    Attributes
    ----------
    x
        Model inputs, already preprocessed: ``(N, C, H, W)`` images or ``(N, F)`` rows.
    y
        Integer class labels ``(N,)``.
    groups
        One row per sample; columns are sensitive or grouping attributes (may be empty).
    feature_names
        Names of the input columns for tabular data (``x.shape[1]`` of them).
    feature_columns
        For each input column, the raw column it encodes (one-hot levels share one).
    annotations
        Optional per-row records beyond ``y`` (one per row, e.g. a scene's class mask,
        boxes and objects for segmentation and detection); ``subset`` keeps them aligned.
    """

    name: str
    split: str
    modality: Modality
    x: torch.Tensor
    y: torch.Tensor
    class_names: tuple[str, ...]
    groups: pd.DataFrame = field(default_factory=pd.DataFrame)
    feature_names: tuple[str, ...] = ()
    feature_columns: tuple[str, ...] = ()
    description: str = ""
    annotations: tuple[Any, ...] = ()

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def sha256(self) -> str:
        """Hash of inputs and labels: what a result was computed on."""
        return sha256_array(self.x, self.y)

    def subset(self, index: torch.Tensor) -> Dataset:
        """Rows ``index`` of this dataset (same metadata)."""
        idx = index.cpu().numpy()
        return Dataset(
            name=self.name,
            split=self.split,
            modality=self.modality,
            x=self.x[index],
            y=self.y[index],
            class_names=self.class_names,
            groups=self.groups.iloc[idx].reset_index(drop=True),
            feature_names=self.feature_names,
            feature_columns=self.feature_columns,
            description=self.description,
            annotations=(tuple(self.annotations[i] for i in np.arange(len(self))[idx])
                         if self.annotations else ()),
        )

    def head(self, n: int) -> Dataset:
        """The first ``n`` rows (the whole set when ``n`` exceeds it)."""
        return self.subset(torch.arange(min(n, len(self))))


DatasetLoader = Callable[[Split], Dataset]


def register_dataset(name: str) -> Callable[[DatasetLoader], DatasetLoader]:
    """Register a loader ``split -> Dataset`` under ``name``."""
    return DATASETS.register(name)


def list_datasets(pattern: str = "*") -> list[str]:
    """Names of the bundled and generated datasets."""
    return DATASETS.names(pattern)


def load_dataset(name: str, split: Split = "test") -> Dataset:
    """Load a registered dataset split (``train``, ``test`` or ``all``)."""
    return DATASETS.get(name)(split)
