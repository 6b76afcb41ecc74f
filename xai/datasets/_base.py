"""The dataset object every explainer and probe consumes, and its registry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from xai._provenance import sha256_array
from xai._typing import Modality
from xai.datasets._index import DATASETS
from xai.errors import DataError

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

    @classmethod
    def from_arrays(
        cls,
        x: Any,
        y: Any,
        groups: pd.DataFrame | dict[str, Any] | Any | None = None,
        class_names: Sequence[str] | None = None,
        feature_names: Sequence[str] | None = None,
        name: str = "arrays",
        modality: Modality | None = None,
    ) -> Dataset:
        """Your own arrays (numpy, torch, lists) as a dataset every explainer and probe takes.

        Parameters
        ----------
        x
            Model-ready inputs ``(N, F)`` rows or ``(N, C, H, W)`` images (stored as float32).
        y
            Integer class labels ``(N,)`` starting at 0.
        groups
            Sensitive or grouping attributes, one row per sample: a DataFrame, a dict of
            columns, or one ``(N,)`` array (a column named ``group``).
        class_names
            Default: ``"0"``, ``"1"``, ... up to the largest label.
        modality
            Default: ``tabular`` for ``(N, F)`` and ``image`` for ``(N, C, H, W)`` inputs.

        Examples
        --------
        >>> data = Dataset.from_arrays([[0.0, 1.0], [1.0, 0.0]], [0, 1], groups={"sex": ["f", "m"]})
        >>> len(data), data.modality, data.class_names, list(data.groups.columns)
        (2, 'tabular', ('0', '1'), ['sex'])
        """
        x_t = torch.as_tensor(np.asarray(x, dtype=np.float32))
        y_np = np.asarray(y)
        if x_t.ndim < 2:
            raise DataError(f"{name}: x must be (N, features) or (N, C, H, W), got shape {tuple(x_t.shape)}")
        if y_np.ndim != 1 or len(y_np) != len(x_t):
            raise DataError(f"{name}: y must be one label per row of x ({len(x_t)}), got shape {y_np.shape}")
        integral = np.issubdtype(y_np.dtype, np.integer) or (
            np.issubdtype(y_np.dtype, np.floating) and bool(np.all(y_np == np.round(y_np))))
        if len(y_np) and (not integral or y_np.min() < 0):
            raise DataError(f"{name}: y must hold class indices 0, 1, ... (integers); map labels first")
        y_t = torch.as_tensor(y_np.astype(np.int64))
        n_classes = int(y_t.max()) + 1 if len(y_t) else 0
        names = tuple(str(c) for c in class_names) if class_names is not None else tuple(map(str, range(n_classes)))
        if len(names) < n_classes:
            raise DataError(f"{name}: labels go up to {n_classes - 1} but {len(names)} class names are given")
        if groups is None:
            frame = pd.DataFrame(index=range(len(x_t)))
        elif isinstance(groups, pd.DataFrame):
            frame = groups.reset_index(drop=True)
        elif isinstance(groups, dict):
            frame = pd.DataFrame(groups)
        else:
            frame = pd.DataFrame({"group": np.asarray(groups)})
        if len(frame) != len(x_t):
            raise DataError(f"{name}: groups has {len(frame)} rows, x has {len(x_t)}")
        modality = modality or {2: "tabular", 4: "image"}.get(x_t.ndim)  # type: ignore[assignment]
        if modality is None:
            raise DataError(f"{name}: say which modality inputs of shape {tuple(x_t.shape)} are")
        features = tuple(feature_names) if feature_names is not None else ()
        if features and (x_t.ndim != 2 or len(features) != x_t.shape[1]):
            raise DataError(f"{name}: {len(features)} feature names for inputs of shape {tuple(x_t.shape)}")
        return cls(name=name, split="all", modality=modality, x=x_t, y=y_t, class_names=names, groups=frame,
                   feature_names=features, feature_columns=features)

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
