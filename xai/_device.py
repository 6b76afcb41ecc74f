"""Device selection shared by every command (``--device auto|cpu|cuda``) and the CPU thread count.

Torch-free at import (the CLI imports this module for ``--help``); torch is imported where used.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def single_cpu_thread() -> Iterator[None]:
    """Run torch's CPU ops on one thread, then restore the previous count.

    The zoo's networks are small: their many small ops gain little from intra-op threads,
    and on a shared 2-core machine OpenMP's spinning threads slowed training 5-20x. One
    thread also keeps a seeded CPU training independent of the machine's core count.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
