"""Representation views: PCA and t-SNE of one layer's activations, coloured by any column.

What a layer has learned to separate shows in a 2-D map of its activations: points
coloured by class should form clusters in late layers, and points coloured by a
sensitive attribute should *not*, unless the layer encodes it (which the representation
probe then measures). The map is scikit-learn's PCA or t-SNE (van der Maaten & Hinton
2008) of the flattened activations; each colouring gets a silhouette score in the
*original* activation space (how well that column's groups separate there, -1 to 1) so
the picture is backed by a number that does not depend on the 2-D layout.

Example
-------
>>> from xai.datasets import load_dataset
>>> from xai.zoo import load_model
>>> view = project(load_model("lenet"), load_dataset("digits"), layer="fc1", samples=100)
>>> view.coords.shape
(100, 2)
>>> view.separation["class"] > 0.2 > view.separation["ink"]  # fc1 separates the digits, not the ink groups
True

``method="tsne"`` draws the t-SNE map instead (slower; the silhouette scores are the same).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE, trustworthiness
from sklearn.metrics import silhouette_score

from xai._method import Capabilities, Kind, Options
from xai._method import Method as MethodBase
from xai._provenance import Provenance
from xai._results import to_jsonable
from xai.datasets import Dataset
from xai.errors import DataError, UnknownNameError
from xai.explain import _choices
from xai.explain._index import PROJECTIONS
from xai.explain.dream import LayerCapture
from xai.zoo.handle import ModelHandle, eval_mode

Method = Literal["pca", "tsne"]
METHODS: tuple[str, ...] = _choices.PROJECTION_METHODS  # kept torch-free in _choices for the CLI's --help


@dataclass(frozen=True)
class ProjectionResult:
    """2-D coordinates of each sample's activations and how each colouring separates.

    Attributes
    ----------
    coords
        ``(N, 2)`` PCA or t-SNE coordinates.
    colours
        ``{column: (N,) labels}``: ``class`` (the true class) and each grouping column.
    separation
        ``{column: silhouette score}`` of that column's groups in the activation space.
    explained_variance
        PCA: share of variance of the two components; t-SNE: empty.
    trust
        scikit-learn's trustworthiness of the 2-D map (1: neighbourhoods preserved).
    """

    model: str
    layer: str
    method: str
    coords: np.ndarray
    colours: dict[str, np.ndarray]
    separation: dict[str, float]
    explained_variance: tuple[float, ...]
    trust: float
    features: int
    provenance: Provenance
    options: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Gateable numbers: ``separation.<column>``, ``trustworthiness``."""
        out = {f"separation.{k}": v for k, v in self.separation.items()}
        out["trustworthiness"] = self.trust
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return to_jsonable(self)


@torch.no_grad()
def layer_activations(handle: ModelHandle, x: torch.Tensor, layer: str, batch_size: int = 256) -> np.ndarray:
    """Flattened outputs of ``layer`` for every row of ``x`` ``(N, features)``, in batches."""
    module = handle.get_layer(layer)
    device = handle.device
    rows = []
    with eval_mode(handle.module), LayerCapture(module) as capture:
        for start in range(0, len(x), batch_size):
            handle.module(x[start:start + batch_size].to(device))
            assert capture.output is not None
            rows.append(capture.output.detach().float().flatten(1).cpu())
    return torch.cat(rows).numpy()


def project(handle: ModelHandle, data: Dataset, *, layer: str | None = None, method: str = "pca",
            samples: int = 500, color_by: list[str] | None = None, perplexity: float = 30.0,
            seed: int = 0) -> ProjectionResult:
    """PCA or t-SNE of ``layer``'s activations on ``samples`` seeded rows of ``data``.

    Parameters
    ----------
    layer
        Module name; default the last of the model's layers worth explaining.
    color_by
        Grouping columns of ``data.groups`` to colour by, besides the class (default all).
    perplexity
        t-SNE's perplexity (capped below the number of samples).
    """
    if method not in METHODS:
        raise UnknownNameError("projection method", method, METHODS)
    if layer is None:
        if not handle.layers:
            raise DataError(f"name a --layer; {handle.name} declares no layers worth explaining")
        layer = handle.layers[-1]
    columns = list(data.groups.columns) if color_by is None else color_by
    for column in columns:
        if column not in data.groups.columns:
            raise UnknownNameError("grouping column", column, data.groups.columns)
    if len(data) < 5:
        raise DataError(f"a projection needs at least 5 samples, got {len(data)}")
    start = time.perf_counter()
    rows = np.sort(np.random.default_rng(seed).permutation(len(data))[:samples])
    subset = data.subset(torch.from_numpy(rows))
    activations = layer_activations(handle, subset.x, layer)  # (N, F)
    if method == "pca":
        model = PCA(n_components=2, random_state=seed)
        coords = model.fit_transform(activations)
        explained = tuple(float(v) for v in model.explained_variance_ratio_)
    else:
        perplexity = min(perplexity, (len(subset) - 1) / 3)
        coords = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
            activations)
        explained = ()
    colours = {"class": np.asarray([subset.class_names[i] for i in subset.y.numpy()], dtype=object)}
    colours.update({c: subset.groups[c].astype(str).to_numpy(dtype=object) for c in columns})
    separation = {name: _silhouette(activations, labels, seed) for name, labels in colours.items()}
    return ProjectionResult(
        model=handle.name,
        layer=layer,
        method=method,
        coords=coords.astype(np.float32),
        colours=colours,
        separation=separation,
        explained_variance=explained,
        trust=float(trustworthiness(activations, coords, n_neighbors=min(5, len(subset) // 2 - 1))),
        features=int(activations.shape[1]),
        provenance=Provenance(model_sha256=handle.sha256, data_sha256=subset.sha256, seed=seed,
                              wall_seconds=round(time.perf_counter() - start, 4), device=str(handle.device)),
        options={"samples": len(subset), "perplexity": perplexity if method == "tsne" else None},
    )


def _silhouette(activations: np.ndarray, labels: np.ndarray, seed: int) -> float:
    """Silhouette of ``labels`` in activation space; NaN when there is a single group."""
    if len(set(labels)) < 2 or len(set(labels)) >= len(labels):
        return float("nan")
    return float(silhouette_score(activations, labels, random_state=seed))


@PROJECTIONS.register("projection")
class Projection(MethodBase):
    """PCA or t-SNE of one layer's activations, with how well classes and groups separate."""

    name: ClassVar[str] = "projection"
    kind: ClassVar[Kind] = "project"
    result_type: ClassVar[str] = "xai.explain.projection:ProjectionResult"
    paper: ClassVar[str] = "van der Maaten & Hinton 2008, Visualizing Data using t-SNE"
    capabilities: ClassVar[Capabilities] = Capabilities(needs_gradients=False)

    class Options(Options):
        """The one source of :func:`project`'s defaults (``xai project``'s options)."""

        layer: str | None = Field(default=None, min_length=1, description="default: the model's last named layer")
        method: Literal["pca", "tsne"] = "pca"
        samples: int = Field(default=500, ge=5)
        color_by: tuple[str, ...] | None = Field(default=None, description="grouping columns (default: all)")
        perplexity: float = Field(default=30.0, gt=0)

    @classmethod
    def run(cls, handle: ModelHandle, data: Dataset | None, options: Any, seed: int = 0) -> ProjectionResult:
        """:func:`project` of ``data`` with validated options."""
        opts = cls.parse_options(options)
        assert isinstance(opts, Projection.Options)
        if data is None:
            raise DataError(f"{cls.name} needs data whose activations to map")
        return project(handle, data, layer=opts.layer, method=opts.method, samples=opts.samples,
                       color_by=None if opts.color_by is None else list(opts.color_by),
                       perplexity=opts.perplexity, seed=seed)
