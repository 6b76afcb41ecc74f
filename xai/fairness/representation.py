"""Representation probe: how linearly decodable a sensitive attribute is from a layer's activations."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from xai._method import Capabilities
from xai._provenance import Provenance
from xai.datasets import Dataset
from xai.errors import DataError, UnknownNameError
from xai.explain.dream import LayerCapture
from xai.fairness._base import FairnessResult, Probe, ProbeOptions, register_probe
from xai.fairness.proxy import MAX_ROWS, linear_probe
from xai.zoo.handle import eval_mode


@register_probe("representation")
class RepresentationProbe(Probe):
    """Fit a linear probe from one layer's activations to the sensitive attribute.

    A model can encode a sensitive attribute in its hidden features even when its
    decisions look balanced; a linear probe (Alain & Bengio 2016) measures how much of
    it a downstream user of those features could recover. Reports the probe's balanced
    accuracy against chance and ``representation_strength`` (0: not decodable, 1: fully).
    Options: ``layer`` (default: the last of the model's layers worth explaining),
    ``max_rows``. Paper: https://arxiv.org/abs/1610.01644.
    """

    class Options(ProbeOptions):
        """The representation probe's options."""

        #: The layer whose activations are probed; ``None``: the last of the model's layers.
        layer: str | None = None
        #: Rows used to fit the linear probe (a seeded sample when the data has more).
        max_rows: int = Field(default=MAX_ROWS, ge=10)

    paper = "https://arxiv.org/abs/1610.01644"
    #: Needs a layer to read (the model's named layers give the default).
    capabilities: ClassVar[Capabilities] = replace(Probe.capabilities, needs_layer=True)

    def resolve(self, options: Any) -> dict[str, Any]:
        """Fill ``layer`` with the model's last layer; an unknown name lists the valid ones."""
        layer = options.layer or self.handle.layers[-1]
        self.handle.get_layer(layer)  # an unknown layer lists the valid ones
        return {"layer": layer, "max_rows": options.max_rows}

    def activations(self, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Flattened activations of the probed layer ``(N, D)`` in eval mode."""
        module = self.handle.module
        out = []
        with eval_mode(module), torch.no_grad(), LayerCapture(self.handle.get_layer(self.options["layer"])) as capture:
            for start in range(0, len(x), batch_size):
                module(x[start:start + batch_size].to(self.handle.device))
                assert capture.output is not None  # the layer ran in the forward pass above
                out.append(capture.output.detach().flatten(1).float().cpu())
        return torch.cat(out).numpy()

    def probe(self, data: Dataset, *, sensitive: list[str], seed: int = 0) -> FairnessResult:
        """Probe each sensitive column of ``data.groups`` from the layer's activations."""
        if len(data) < 10:
            raise DataError("the representation probe needs at least 10 rows")
        if not sensitive:
            raise DataError("name at least one sensitive column")
        for column in sensitive:
            if column not in data.groups.columns:
                raise UnknownNameError("sensitive column", column, data.groups.columns)
        start = time.perf_counter()
        features = self.activations(data.x).astype(np.float64)
        # standardise so the regularised probe treats every unit alike
        features = (features - features.mean(0)) / (features.std(0) + 1e-8)
        tables, notes = [], [f"probed layer {self.options['layer']} ({features.shape[1]} units)"]
        for column in sensitive:
            labels = data.groups[column].astype(str).to_numpy()
            if len(set(labels)) < 2:
                notes.append(f"{column} has a single value in this data; nothing to predict")
                continue
            tables.append(linear_probe(column, features, labels, seed=seed, max_rows=self.options["max_rows"],
                                       prefix="representation"))
        return FairnessResult(
            probe=self.name,
            model=self.handle.name,
            dataset=f"{data.name}:{data.split}",
            metric_names=("recall", "count"),
            tables=tuple(tables),
            notes=tuple(notes),
            provenance=Provenance(
                model_sha256=self.handle.sha256,
                data_sha256=data.sha256,
                seed=seed,
                wall_seconds=round(time.perf_counter() - start, 4),
                device=str(self.handle.device),
            ),
        )
