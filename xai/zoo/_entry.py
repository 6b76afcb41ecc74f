"""Zoo metadata (one frozen dataclass per entry, like timm's pretrained cfg) and its registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

from xai._registry import Registry
from xai._typing import Modality, Task

if TYPE_CHECKING:
    from xai.zoo._train import TrainContext


@dataclass(frozen=True)
class ZooEntry:
    """Everything the tool knows about a zoo architecture before it is trained.

    Attributes
    ----------
    build
        Zero-argument factory returning the untrained ``nn.Module``.
    train
        Recipe: trains a freshly built module in a :class:`TrainContext` and returns
        the held-out metrics for the card.
    input_shape
        Shape of one sample; ``None`` when it depends on the data (tabular encodings).
    layers
        Module names worth explaining (Grad-CAM, activation maximisation, ...).
    metric, floor
        The headline held-out metric and the floor it must reach.
    attention
        Names of the modules whose output is one layer's attention probabilities
        ``(B, heads, T, T)``, first layer first (hook them for attention rollout).
    """

    name: str
    family: str
    task: Task
    modality: Modality
    dataset: str
    build: Callable[[], nn.Module]
    train: Callable[[nn.Module, TrainContext], dict[str, float]]
    input_shape: tuple[int, ...] | None
    class_names: tuple[str, ...]
    layers: tuple[str, ...]
    metric: str
    floor: float
    paper: str = ""
    description: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)
    attention: tuple[str, ...] = ()


MODELS: Registry[ZooEntry] = Registry("model")


def register_model(entry: ZooEntry) -> ZooEntry:
    """Register a zoo entry (use at module level next to the architecture)."""
    return MODELS.register(entry.name)(entry)


def list_models(pattern: str = "*") -> list[str]:
    """Registered zoo entry names matching a shell-style pattern (``"cnn*"``)."""
    return MODELS.names(pattern)


def get_entry(name: str) -> ZooEntry:
    """The :class:`ZooEntry` registered as ``name`` (unknown names list the known ones)."""
    return MODELS.get(name)


def create_model(name: str) -> nn.Module:
    """A freshly built, untrained module of zoo entry ``name``."""
    return get_entry(name).build()
