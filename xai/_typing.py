"""Shared type aliases."""

from __future__ import annotations

from typing import Literal

DeviceName = Literal["auto", "cpu", "cuda"]
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
