"""Helpers that turn frozen result dataclasses into plain JSON-ready values."""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def to_jsonable(value: Any) -> Any:
    """Recursively convert dataclasses, arrays, tensors and paths to JSON types.

    Non-finite floats become ``None`` (JSON has no NaN); float arrays become nested
    lists rounded to 6 significant digits so a report's JSON stays compact.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    torch = sys.modules.get("torch")  # no tensor can exist unless torch was imported (keeps this torch-free)
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return to_jsonable(round_significant(value).tolist())
        return value.tolist()
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def round_significant(array: np.ndarray, digits: int = 6) -> np.ndarray:
    """Round every element to ``digits`` significant digits (float64 copy)."""
    out = np.array(array, dtype=np.float64)
    mask = np.isfinite(out) & (out != 0)
    scale = 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(out[mask]))))
    out[mask] = np.round(out[mask] * scale) / scale
    return out


def null_non_finite(value: Any) -> Any:
    """NaN and +-inf -> ``None`` all through a JSON-ready value (JSON has no NaN: a missing number is null).

    Examples
    --------
    >>> null_non_finite({"d": float("nan"), "xs": [1.0, float("inf")]})
    {'d': None, 'xs': [1.0, None]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: null_non_finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [null_non_finite(v) for v in value]
    return value
