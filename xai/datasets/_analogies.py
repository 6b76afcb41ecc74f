"""``googlenews-analogies``: the Google analogy questions as word ids of the shipped ``googlenews`` vectors.

Each row is one question ``a : b :: c : d`` of Mikolov et al. (2013)'s test set whose four
words are in the shipped subset (8,740 questions: the ``family`` and the eight syntactic
sections; the capital/currency/city sections need capitalised words the subset lacks).
``x`` holds the ids of ``(a, b, c)`` ``(N, 3)``, ``y`` the id of ``d``, and the ``section``
column of ``groups`` the question's section. A seeded 20% (``seed 0``) is the train split
(enough to fit a softmax temperature), the other 80% the held-out split.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import torch

from xai.datasets._base import Dataset, Split, register_dataset
from xai.datasets._words import load_word_vectors, read_analogies

__all__ = ["load_googlenews_analogies"]

TRAIN_SHARE = 0.2
DATA_SEED = 0


@lru_cache(maxsize=1)
def _rows() -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...], torch.Tensor]:
    index = load_word_vectors("googlenews").index
    questions, _ = read_analogies()
    ids = torch.tensor([[index[w] for w in words] for _, words in questions], dtype=torch.int64)  # (N, 4)
    sections = tuple(section for section, _ in questions)
    order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(DATA_SEED))
    train = torch.zeros(len(ids), dtype=torch.bool)
    train[order[: int(round(TRAIN_SHARE * len(ids)))]] = True
    return ids[:, :3].contiguous(), ids[:, 3].contiguous(), sections, train


@register_dataset("googlenews-analogies")
def load_googlenews_analogies(split: Split = "test") -> Dataset:
    """The analogy questions over the ``googlenews`` vocabulary (see the module docstring)."""
    x, y, sections, train = _rows()
    mask = {"train": train, "test": ~train, "all": torch.ones_like(train)}[split]
    picked = np.flatnonzero(mask.numpy())
    return Dataset(
        name="googlenews-analogies",
        split=split,
        modality="text",
        x=x[mask],
        y=y[mask],
        class_names=(),
        groups=pd.DataFrame({"section": [sections[i] for i in picked]}),
        description="Google analogy questions a : b :: c : d within the shipped GoogleNews subset; "
                    "x = ids of (a, b, c) (N, 3), y = id of d",
    )
