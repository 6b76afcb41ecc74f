"""Provenance carried by every result: hashes, seed, versions and wall time."""

from __future__ import annotations

import hashlib
import platform
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

_TRACKED_PACKAGES = ("xai-audit", "torch", "torchvision", "captum", "fairlearn", "numpy")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_array(*arrays: np.ndarray | torch.Tensor) -> str:
    """Hex sha256 over the dtype, shape and bytes of one or more arrays."""
    digest = hashlib.sha256()
    for array in arrays:
        torch = sys.modules.get("torch")  # a tensor implies torch is loaded; never import it here
        if torch is not None and isinstance(array, torch.Tensor):
            array = array.detach().cpu().numpy()
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def sha256_state_dict(module: torch.nn.Module) -> str:
    """Hex sha256 of a module's parameters and buffers, in name order."""
    import torch
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        array = tensor.detach().cpu().contiguous()
        if array.dtype == torch.bfloat16:
            array = array.float()
        digest.update(array.numpy().tobytes())
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape a result, plus Python's."""
    versions = {"python": platform.python_version()}
    for name in _TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass(frozen=True)
class Provenance:
    """Where a result comes from."""

    model_sha256: str
    data_sha256: str
    seed: int
    wall_seconds: float
    device: str
    versions: dict[str, str] = field(default_factory=package_versions)
    command: str = field(default_factory=lambda: " ".join(Path(a).name if i == 0 else a
                                                          for i, a in enumerate(sys.argv)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)
