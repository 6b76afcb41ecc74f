"""Digits with a spurious mark: the data of the vision shortcut probe (generated, never stored).

The digit is drawn 24x24 in the lower part of a 32x32 frame, leaving an empty strip at
the top. Half the digits (a fixed, seeded choice) carry a small bright square in that
strip, and their digits are faint and noisy (as if from a worse scanner that also stamps
its scans); the ``marked`` group column says which. In ``digits-shortcut``'s train
split the mark's position encodes the label (the square sits at column ``3 * label``),
a shortcut a network learns instead of the digit's shape; in every other split the
mark sits at a random position, unrelated to the label. A model that took the shortcut
fails on the marked rows of the held-out split and looks at the top strip; a model
trained on ``digits-marked`` (random marks) does neither.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from xai.datasets._base import Dataset, Split, register_dataset
from xai.datasets._digits import DIGIT_CLASSES, load_digits32

#: Rows of empty strip above the digit.
STRIP_ROWS = 8
MARK_SIZE = 3
#: The rows the mark can occupy, as ``(top, bottom, left, right)`` pixel bounds.
MARK_REGION = (3, 3 + MARK_SIZE, 0, 32)
MARK_SEED = 1234
#: Contrast and noise of the marked group's digits.
FAINT, NOISE = 0.35, 0.15


def _marks(n: int, seed: int) -> np.ndarray:
    """Which rows carry a mark (half of them, seeded)."""
    marked = np.zeros(n, dtype=bool)
    marked[np.random.default_rng(seed).permutation(n)[: n // 2]] = True
    return marked


def draw_marks(x: torch.Tensor, columns: np.ndarray, marked: np.ndarray, seed: int) -> torch.Tensor:
    """Copy of ``x`` ``(N, 1, 32, 32)``: marked rows faint and noisy, with a square at ``columns[i]``."""
    out = x.clone()
    rows = torch.from_numpy(np.flatnonzero(marked))
    noise = torch.randn(out[rows].shape, generator=torch.Generator().manual_seed(seed))
    out[rows] = (FAINT * out[rows] + NOISE * noise).clamp(0, 1)
    top = MARK_REGION[0]
    for i in np.flatnonzero(marked):
        left = int(columns[i])
        out[i, :, top:top + MARK_SIZE, left:left + MARK_SIZE] = 1.0
    return out


def _framed(x: torch.Tensor) -> torch.Tensor:
    """``(N, 1, 32, 32)`` digits shrunk to 24x24 and placed below an empty 8-row strip."""
    small = F.interpolate(x, size=(24, 24), mode="bilinear", antialias=True, align_corners=False)
    out = torch.zeros_like(x)
    out[:, :, STRIP_ROWS:, 4:28] = small.clamp(0, 1)
    return out


def _marked_digits(name: str, split: Split, shortcut: bool) -> Dataset:
    base = load_digits32(split)
    n = len(base)
    salt = {"train": 0, "test": 1, "all": 2}[split]
    marked = _marks(n, MARK_SEED + salt)
    labels = base.y.numpy()
    if shortcut and split == "train":
        columns = 1 + 3 * labels  # the label, written as a position
    else:
        columns = np.random.default_rng(MARK_SEED + 10 + salt).integers(1, 29, size=n)
    groups = base.groups.copy()
    groups["marked"] = np.where(marked, "marked", "unmarked")
    how = "at the label's position" if shortcut and split == "train" else "at a random position"
    return Dataset(
        name=name,
        split=split,
        modality="image",
        x=draw_marks(_framed(base.x), columns, marked, MARK_SEED + 20 + salt),
        y=base.y.clone(),
        class_names=DIGIT_CLASSES,
        groups=pd.DataFrame(groups),
        description=f"digits 24x24 in a 32x32 frame, half of them with a 3x3 mark in the empty top strip {how}",
    )


@register_dataset("digits-shortcut")
def load_digits_shortcut(split: Split = "test") -> Dataset:
    """Digits whose train-split mark encodes the label (a planted shortcut); random marks elsewhere."""
    return _marked_digits("digits-shortcut", split, shortcut=True)


@register_dataset("digits-marked")
def load_digits_marked(split: Split = "test") -> Dataset:
    """The same digits and marks, at random positions in every split (no shortcut to learn)."""
    return _marked_digits("digits-marked", split, shortcut=False)
