"""scikit-learn's 8x8 digits upsampled to 32x32 (ships in the scikit-learn wheel)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from xai.datasets._base import Dataset, Split, register_dataset

DIGIT_CLASSES = tuple(str(d) for d in range(10))
#: The held-out split is fixed (it belongs to the data, not to a training seed).
SPLIT_SEED = 0
TEST_FRACTION = 0.2
INK_LEVELS = ("light", "medium", "heavy")


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0  # (N, 8, 8) in [0, 1]
    labels = bunch.target.astype(np.int64)
    # "Ink" tercile: a data-derived grouping (faint vs bold writing) for subgroup probes.
    ink = images.reshape(len(images), -1).sum(axis=1)
    cuts = np.quantile(ink, [1 / 3, 2 / 3])
    ink_level = np.digitize(ink, cuts)
    index = np.arange(len(labels))
    train_idx, test_idx = train_test_split(
        index, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels
    )
    return images, labels, ink_level, np.sort(test_idx)


def upsample_digits(images: np.ndarray, size: int = 32) -> torch.Tensor:
    """``(N, 8, 8)`` in [0, 1] -> ``(N, 1, size, size)`` by bilinear interpolation."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).unsqueeze(1)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)


def _split_mask(split: Split, n: int, test_idx: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``split`` (the fixed stratified 80/20 split)."""
    mask = np.zeros(n, dtype=bool)
    mask[test_idx] = True
    if split == "test":
        return mask
    if split == "train":
        return ~mask
    return np.ones_like(mask)


@register_dataset("digits")
def load_digits32(split: Split = "test") -> Dataset:
    """Digits 0-9 as ``(N, 1, 32, 32)`` images in [0, 1]; 80/20 stratified split.

    ``groups`` holds ``ink``: the tercile of total ink (light/medium/heavy strokes).
    """
    images, labels, ink_level, test_idx = _digits_arrays()
    keep = _split_mask(split, len(labels), test_idx)
    groups = pd.DataFrame({"ink": [INK_LEVELS[i] for i in ink_level[keep]]})
    return Dataset(
        name="digits",
        split=split,
        modality="image",
        x=upsample_digits(images[keep]),
        y=torch.from_numpy(labels[keep]),
        class_names=DIGIT_CLASSES,
        groups=groups,
        description="scikit-learn digits (UCI optdigits), 8x8 upsampled to 32x32",
    )


@register_dataset("digits-rows")
def load_digit_rows(split: Split = "test") -> Dataset:
    """The same digits as a sequence: ``(N, 8, 8)``, 8 time steps of one 8-pixel row each.

    Same rows, split and ``ink`` groups as ``digits`` (the original 8x8 pixels in [0, 1],
    not upsampled), for the recurrent entries that read a digit top to bottom.
    """
    images, labels, ink_level, test_idx = _digits_arrays()
    keep = _split_mask(split, len(labels), test_idx)
    groups = pd.DataFrame({"ink": [INK_LEVELS[i] for i in ink_level[keep]]})
    return Dataset(
        name="digits-rows",
        split=split,
        modality="sequence",
        x=torch.from_numpy(np.ascontiguousarray(images[keep])),  # (N, T=8, F=8)
        y=torch.from_numpy(labels[keep]),
        class_names=DIGIT_CLASSES,
        groups=groups,
        description="scikit-learn digits (UCI optdigits) read row by row: 8 steps of 8 pixels",
    )
