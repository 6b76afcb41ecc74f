"""Multilayer perceptrons for tabular risk models."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn

from xai.datasets import Dataset
from xai.datasets._adult import ADULT_CLASSES, adult_encoder
from xai.datasets._compas import COMPAS_CLASSES, compas_encoder
from xai.datasets._german import GERMAN_CLASSES, german_encoder
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, fit_classifier, seed_everything


class TabularMLP(nn.Module):
    """A ReLU MLP from ``in_features`` encoded columns to class logits.

    Examples
    --------
    >>> TabularMLP(10)(torch.zeros(3, 10)).shape
    torch.Size([3, 2])
    """

    def __init__(self, in_features: int, hidden: tuple[int, ...] = (64, 32),
                 num_classes: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` for encoded rows ``(B, in_features)``."""
        return self.head(self.body(x))


def build_adult_mlp() -> TabularMLP:
    """The Adult MLP sized to the shipped encoding."""
    return TabularMLP(len(adult_encoder().feature_names))


_ADULT_RECIPE: dict[str, Any] = {"epochs": 12, "lr": 1e-3, "batch_size": 256, "weight_decay": 1e-4}


def _train_adult(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    return fit_classifier(module, ctx, label="adult-mlp", **_ADULT_RECIPE)


register_model(
    ZooEntry(
        name="adult-mlp",
        family="tabular",
        task="binary-classification",
        modality="tabular",
        dataset="adult",
        build=build_adult_mlp,
        train=_train_adult,
        input_shape=None,  # the encoded width, read from the dataset when needed
        class_names=ADULT_CLASSES,
        layers=("body.0", "body.2", "head"),
        metric="accuracy",
        floor=0.84,
        paper="https://archive.ics.uci.edu/dataset/2/adult",
        description="MLP income classifier on UCI Adult; sex and race are inputs on purpose",
        recipe=_ADULT_RECIPE,
    )
)


def emphasise_column(train: Dataset, column: str, weight: int) -> Dataset:
    """``train`` with the rows that follow ``column``'s association with the label repeated ``weight`` times.

    The group of ``column`` with the highest positive rate is the favoured one; a row
    follows the association when it is favoured with a positive label or not favoured with
    a negative label. Oversampling those rows is a sample weighting that makes the label
    depend more on ``column`` (a planted change that leans on it; deterministic, no seed).

    Examples
    --------
    >>> import pandas as pd
    >>> rows = Dataset(name="t", split="train", modality="tabular", x=torch.arange(6).reshape(6, 1),
    ...                y=torch.tensor([1, 1, 0, 1, 0, 0]), class_names=("no", "yes"),
    ...                groups=pd.DataFrame({"g": ["a", "a", "a", "b", "b", "b"]}))
    >>> emphasise_column(rows, "g", 3).x.flatten().tolist()  # a (2/3 positive) favoured: rows 0, 1, 4, 5 x3
    [0, 0, 0, 1, 1, 1, 2, 3, 4, 4, 4, 5, 5, 5]
    """
    groups = train.groups[column].to_numpy()
    labels = train.y.numpy()
    rates = {g: labels[groups == g].mean() for g in sorted(set(groups.tolist()))}
    favoured = max(rates, key=lambda g: (rates[g], g))
    follows = ((groups == favoured) & (labels == 1)) | ((groups != favoured) & (labels == 0))
    index = np.sort(np.concatenate([np.arange(len(labels))] + [np.flatnonzero(follows)] * (weight - 1)))
    return train.subset(torch.from_numpy(index))


_ADULT_SEX_RECIPE: dict[str, Any] = {**_ADULT_RECIPE, "emphasise": {"column": "sex", "weight": 3}}


def _train_adult_sex(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    emphasis = _ADULT_SEX_RECIPE["emphasise"]
    weighted = dataclasses.replace(ctx, train=emphasise_column(ctx.train, emphasis["column"], emphasis["weight"]))
    return fit_classifier(module, weighted, label="adult-mlp-sex", **_ADULT_RECIPE)


def _train_adult_reseed(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    # adult-mlp's recipe from the next seed (initial weights and batch order): the drift gate's negative control
    seed_everything(ctx.seed + 1)
    module.load_state_dict(build_adult_mlp().state_dict())
    return fit_classifier(module, dataclasses.replace(ctx, seed=ctx.seed + 1), label="adult-mlp-reseed",
                          **_ADULT_RECIPE)


for _name, _train, _recipe, _about in (
    ("adult-mlp-sex", _train_adult_sex, _ADULT_SEX_RECIPE,
     "adult-mlp's recipe with rows that follow the sex-income association oversampled 3x: a planted "
     "update that leans on sex (the explanation-drift gate's known positive)"),
    ("adult-mlp-reseed", _train_adult_reseed, {**_ADULT_RECIPE, "seed_offset": 1},
     "adult-mlp's recipe retrained from the next seed (the explanation-drift gate's negative control)"),
):
    register_model(
        ZooEntry(
            name=_name,
            family="tabular",
            task="binary-classification",
            modality="tabular",
            dataset="adult",
            build=build_adult_mlp,
            train=_train,
            input_shape=None,
            class_names=ADULT_CLASSES,
            layers=("body.0", "body.2", "head"),
            metric="accuracy",
            floor=0.75,
            paper="https://archive.ics.uci.edu/dataset/2/adult",
            description=_about,
            recipe=_recipe,
        )
    )


def build_compas_mlp() -> TabularMLP:
    """The COMPAS MLP sized to the shipped encoding."""
    return TabularMLP(len(compas_encoder().feature_names), hidden=(32, 16))


_COMPAS_RECIPE: dict[str, Any] = {"epochs": 30, "lr": 1e-3, "batch_size": 128, "weight_decay": 1e-4}


def _train_compas(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    return fit_classifier(module, ctx, label="compas-mlp", **_COMPAS_RECIPE)


register_model(
    ZooEntry(
        name="compas-mlp",
        family="tabular",
        task="binary-classification",
        modality="tabular",
        dataset="compas",
        build=build_compas_mlp,
        train=_train_compas,
        input_shape=None,
        class_names=COMPAS_CLASSES,
        layers=("body.0", "body.2", "head"),
        metric="accuracy",
        floor=0.64,
        paper="https://www.propublica.org/article/how-we-analyzed-the-compas-recidivism-algorithm",
        description="MLP two-year recidivism risk model on ProPublica COMPAS; race and sex are inputs",
        recipe=_COMPAS_RECIPE,
    )
)


def build_german_mlp() -> TabularMLP:
    """The German credit MLP sized to the shipped encoding."""
    return TabularMLP(len(german_encoder().feature_names), hidden=(32,))


_GERMAN_RECIPE: dict[str, Any] = {"epochs": 60, "lr": 1e-3, "batch_size": 32, "weight_decay": 1e-3}


def _train_german(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    return fit_classifier(module, ctx, label="german-mlp", **_GERMAN_RECIPE)


register_model(
    ZooEntry(
        name="german-mlp",
        family="tabular",
        task="binary-classification",
        modality="tabular",
        dataset="german",
        build=build_german_mlp,
        train=_train_german,
        input_shape=None,
        class_names=GERMAN_CLASSES,
        layers=("body.0", "head"),
        metric="accuracy",
        floor=0.72,
        paper="https://archive.ics.uci.edu/dataset/144/statlog+german+credit+data",
        description="MLP credit-risk model on Statlog German credit; sex and age are inputs",
        recipe=_GERMAN_RECIPE,
    )
)
