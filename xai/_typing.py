"""Shared type aliases."""

from __future__ import annotations

from typing import Literal

DeviceName = Literal["auto", "cpu", "cuda"]
#: Seeds are what numpy accepts everywhere: 0 .. 2**32 - 1.
SEED_MAX = 2**32 - 1
Task = Literal[
    "classification",
    "binary-classification",
    "segmentation",
    "detection",
    "generation",
    "regression",
    "policy",
    "embedding",
]
Modality = Literal["image", "tabular", "text", "sequence", "multimodal", "state"]
