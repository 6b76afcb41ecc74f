"""Small user models and a preprocess function, importable as ``tests.datasets._user_models:NAME``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn


def image_cnn(classes: int = 2) -> nn.Module:
    """A tiny CNN on RGB images of any size."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, classes))


def image_cnn3() -> nn.Module:
    """Three outputs (for data with two classes: a mismatch)."""
    return image_cnn(3)


def table_mlp() -> nn.Module:
    """Three numeric features, two classes."""
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))


CITIES = ("lyon", "paris", "rome")


def encode_city(frame: pd.DataFrame) -> np.ndarray:
    """``preprocess``: one-hot city plus the numeric ``age`` (three inputs)."""
    city = frame["city"].astype(str)
    return np.stack([(city == c).to_numpy(np.float32) for c in CITIES[:2]] + [frame["age"].to_numpy(np.float32)], 1)


class Tokenizer:
    """Lower-cased words to ids from a fixed vocabulary (0 pads, 1 is unknown)."""

    VOCAB = ("<pad>", "<unk>", "good", "bad", "film", "very", "not")

    def encode(self, texts: list[str]) -> torch.Tensor:
        index = {w: i for i, w in enumerate(self.VOCAB)}
        rows = [[index.get(w, 1) for w in t.lower().split()] for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row)
        return ids  # (B, T)


class BagOfWords(nn.Module):
    """Mean word embedding -> two classes; carries its tokenizer."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.embed = nn.Embedding(len(Tokenizer.VOCAB), 4, padding_idx=0)
        self.head = nn.Linear(4, 2)
        self.tokenizer = Tokenizer()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).float().unsqueeze(-1)  # (B, T, 1)
        mean = (self.embed(ids) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.head(mean)


def text_bag() -> nn.Module:
    return BagOfWords()
