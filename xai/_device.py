"""Device selection shared by every command (``--device auto|cpu|cuda``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xai._typing import DeviceName
from xai.errors import XaiError

if TYPE_CHECKING:
    import torch


def resolve_device(name: DeviceName | str = "auto") -> torch.device:
    """Turn ``auto``/``cpu``/``cuda`` into a :class:`torch.device`.

    ``auto`` picks CUDA when available; asking for ``cuda`` without one is an error.
    """
    import torch  # here, not at module level: the CLI imports this module for --help

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise XaiError("--device cuda was asked for but no CUDA device is available")
        return torch.device("cuda")
    raise XaiError(f"unknown device {name!r}; use auto, cpu or cuda")
