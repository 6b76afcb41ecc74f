"""Hand-made text classifiers with a known bias, for the template-bias probe's tests."""

from __future__ import annotations

import torch
from torch import nn

from xai.datasets import sentiment_tokenizer
from xai.datasets._text import EMOTIONS


class NameBiased(nn.Module):
    """Two-class logits ``[0, s]``: ``s`` = +2 per positive and -2 per negative emotion word,
    plus ``bias`` when the token ``name`` appears. Its log-odds of "positive" are exactly ``s``."""

    def __init__(self, name: str = "jamel", bias: float = 1.0) -> None:
        super().__init__()
        self.tokenizer = sentiment_tokenizer()
        polarity = torch.zeros(len(self.tokenizer))
        for word, positive in EMOTIONS.items():
            polarity[self.tokenizer.index[word]] = 2.0 if positive else -2.0
        self.register_buffer("polarity", polarity)
        self.bias = nn.Parameter(torch.tensor(float(bias)))
        self.name_id = self.tokenizer.index[name]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        s = self.polarity[ids].sum(1) + self.bias * (ids == self.name_id).any(1).float()  # (B,)
        return torch.stack([torch.zeros_like(s), s], dim=1)  # (B, 2)


def name_biased() -> NameBiased:
    """Factory for ``xai bias eec tests.fairness._text_models:name_biased --weights ...``."""
    return NameBiased()
