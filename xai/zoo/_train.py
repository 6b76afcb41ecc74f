"""Seeded training loops with rich progress bars, shared by the zoo recipes."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from xai.datasets import Dataset

if TYPE_CHECKING:
    from xai.zoo._entry import ZooEntry


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch generator for batch order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass
class TrainContext:
    """What a recipe gets: data, seed, device and where to show progress."""

    train: Dataset
    test: Dataset
    seed: int
    device: torch.device
    console: Console | None = None

    def progress(self) -> Progress:
        """A progress display on stderr (disabled when there is no console)."""
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=self.console is None,
            transient=True,
        )


@torch.no_grad()
def predict_logits(module: nn.Module, x: torch.Tensor, device: torch.device,
                   batch_size: int = 512) -> torch.Tensor:
    """Logits for ``x`` in eval mode, computed in batches; returned on the CPU."""
    was_training = module.training
    module.eval()
    try:
        outs = [module(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    finally:
        module.train(was_training)
    return torch.cat(outs)


def accuracy(module: nn.Module, data: Dataset, device: torch.device) -> float:
    """Share of rows whose arg-max logit equals the label."""
    logits = predict_logits(module, data.x, device)
    return float((logits.argmax(1) == data.y).float().mean())


def evaluate_entry(entry: ZooEntry, module: nn.Module, data: Dataset,
                   device: torch.device) -> dict[str, float]:
    """Held-out metrics of ``module`` on ``data`` as the entry defines them (default accuracy)."""
    if entry.evaluate is not None:
        return entry.evaluate(module, data, device)
    return {"accuracy": accuracy(module, data, device)}


def training_loss(entry: ZooEntry, module: nn.Module, batch: Dataset) -> torch.Tensor:
    """The entry's training loss on ``batch`` (default cross-entropy on the labels)."""
    if entry.loss is not None:
        return entry.loss(module, batch)
    return nn.functional.cross_entropy(module(batch.x), batch.y)


def fit_classifier(
    module: nn.Module,
    ctx: TrainContext,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    weight_decay: float = 0.0,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    label: str = "train",
    channels_last: bool = False,
) -> dict[str, float]:
    """Train with Adam and cross-entropy; return held-out accuracy and final loss.

    ``channels_last`` trains with NHWC convolutions (faster on CPU for the VQA models'
    conv stems, see BENCHMARKS.md); the module is evaluated and saved in the usual layout.
    """
    generator = seed_everything(ctx.seed)
    module.to(ctx.device).train()
    if channels_last:
        module.to(memory_format=torch.channels_last)
    optimiser = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    x_all, y_all = ctx.train.x, ctx.train.y
    running = float("nan")
    with ctx.progress() as progress:
        task = progress.add_task(label, total=epochs, status="")
        for _ in range(epochs):
            order = torch.randperm(len(x_all), generator=generator)
            total, count = 0.0, 0
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                xb, yb = x_all[idx], y_all[idx]
                if augment is not None:
                    xb = augment(xb, generator)
                if channels_last and xb.ndim == 4:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                optimiser.zero_grad(set_to_none=True)
                loss = loss_fn(module(xb.to(ctx.device)), yb.to(ctx.device))
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            scheduler.step()
            running = total / count
            progress.update(task, advance=1, status=f"loss {running:.4f}")
    if channels_last:
        module.to(memory_format=torch.contiguous_format)  # evaluate as a loaded checkpoint would
    module.eval()
    return {"accuracy": accuracy(module, ctx.test, ctx.device), "train_loss": running}
