"""Two LeNets on marked digits: one that takes a planted shortcut and one that cannot.

They are the known-answer pair of the vision shortcut probe (``xai.fairness.shortcut``):
``lenet-shortcut`` trains on ``digits-shortcut``, whose train-split mark encodes the
label; ``lenet-marked`` trains on ``digits-marked``, whose marks are random. Both are
audited on the same held-out rows (random marks), where the shortcut model fails on
the marked group and attends to the mark strip.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from xai.datasets import Dataset
from xai.datasets._digits import DIGIT_CLASSES
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, fit_classifier, predict_logits, seed_everything
from xai.zoo.cnn import LeNet5

_RECIPE: dict[str, Any] = {"epochs": 20, "lr": 2e-3, "batch_size": 64, "weight_decay": 1e-4}


def marked_accuracy(module: nn.Module, data: Dataset, device: torch.device) -> dict[str, float]:
    """Accuracy overall and on the marked and unmarked rows."""
    right = predict_logits(module, data.x, device).argmax(1) == data.y
    marked = torch.from_numpy((data.groups["marked"] == "marked").to_numpy(copy=True))
    return {"accuracy": float(right.float().mean()),
            "accuracy_marked": float(right[marked].float().mean()),
            "accuracy_unmarked": float(right[~marked].float().mean())}


def _train(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    metrics = fit_classifier(module, ctx, label=ctx.train.name, **_RECIPE)
    return {**marked_accuracy(module, ctx.test, ctx.device), "train_loss": metrics["train_loss"]}


def _train_reseeded(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    # lenet-marked's recipe from the next seed (initial weights and batch order): the drift gate's negative control
    seed_everything(ctx.seed + 1)
    module.load_state_dict(LeNet5().state_dict())
    return _train(module, dataclasses.replace(ctx, seed=ctx.seed + 1))


for _name, _dataset, _metric, _about, _fit, _recipe in (
    ("lenet-shortcut", "digits-shortcut", "accuracy_unmarked",
     "LeNet-5 that learned a planted shortcut (train marks encode the label); deliberately unfair", _train, _RECIPE),
    ("lenet-marked", "digits-marked", "accuracy",
     "LeNet-5 on the same marked digits with random marks (the shortcut probe's clean control)", _train, _RECIPE),
    ("lenet-marked-reseed", "digits-marked", "accuracy",
     "lenet-marked's recipe retrained from the next seed (the explanation-drift gate's negative control)",
     _train_reseeded, {**_RECIPE, "seed_offset": 1}),
):
    register_model(
        ZooEntry(
            name=_name,
            family="cnn",
            task="classification",
            modality="image",
            dataset=_dataset,
            build=LeNet5,
            train=_fit,
            input_shape=(1, 32, 32),
            class_names=DIGIT_CLASSES,
            layers=("conv1", "conv2", "fc1"),
            metric=_metric,
            floor=0.92,
            paper="https://arxiv.org/abs/2004.07780",
            description=_about,
            recipe=dict(_recipe),
            evaluate=marked_accuracy,
        )
    )
