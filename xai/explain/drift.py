"""Explanation drift: whether an updated model still reads what its baseline read.

A model update can keep its accuracy and its group disparities while it moves what it
reads: a new shortcut, attribution mass moving onto a sensitive column. This method
explains the same rows with the same explainer on the model and on a baseline (another
model, or the baseline's attributions stored by :func:`save_baseline_attributions`) and
compares the two, sample by sample:

- ``spearman``: Spearman rank correlation of the two attribution magnitudes per sample
  (pixels summed over channels; tabular rows per raw column, one-hot levels added up);
- ``topk_overlap``: Jaccard overlap of the two top-``k`` sets of features or pixels;
- ``mass_share`` / ``baseline_mass_share`` / ``mass_moved``: the share of a sample's
  attribution magnitude on the named columns (say ``sex``) or inside a named image region
  (a dataset's spurious mark strip), for each model, and the model's share minus the
  baseline's (positive: mass moved onto the region).

Each statistic is the mean over samples, with a percentile bootstrap interval over
samples (resampling the rows; the mean of a resample lies between the per-sample extremes,
so the interval and the estimate agree up to bootstrap noise). In an audit the statistics
are ``drift.<explainer>.<statistic>``, e.g.::

    [drift]
    baseline_model = "lenet-marked"
    method = "integrated-gradients"
    [[gate]]
    metric = "drift.integrated-gradients.mass_moved"
    op = "<="
    value = 0.05

Examples
--------
>>> import numpy as np
>>> a = np.array([[3.0, 2.0, 1.0, 0.0]]); b = np.array([[0.0, 1.0, 2.0, 3.0]])
>>> float(spearman_rows(a, b)[0]), float(topk_overlap(a, a[:, ::-1], 2)[0])
(-1.0, 0.0)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from xai._method import ALL_TASKS, Capabilities, Kind, Method, Options
from xai._provenance import Provenance
from xai._results import to_jsonable
from xai.datasets import Dataset
from xai.errors import DataError
from xai.explain._index import DRIFTS, EXPLAINERS
from xai.zoo.handle import ModelHandle

if TYPE_CHECKING:
    from xai.explain._base import AttributionResult

__all__ = [
    "STATISTICS",
    "DriftResult",
    "ExplanationDrift",
    "bootstrap_mean",
    "drift_features",
    "mass_share",
    "save_baseline_attributions",
    "spearman_rows",
    "topk_overlap",
]

#: The statistics a gate can name (``drift.<explainer>.<statistic>``).
STATISTICS: tuple[str, ...] = ("spearman", "topk_overlap", "mass_share", "baseline_mass_share", "mass_moved")


# ---------------------------------------------------------------- the statistics (numpy only)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank), as Spearman defines them."""
    from scipy.stats import rankdata

    return rankdata(values, axis=-1, method="average")


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each row of ``a`` with the same row of ``b`` ``(N,)``.

    ``a`` and ``b`` are ``(N, F)``. A row that is constant in either array has no rank
    order: its correlation is NaN (as :func:`scipy.stats.spearmanr` gives).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise DataError(f"drift: attributions of shape {a.shape} and {b.shape} cannot be compared")
    ra, rb = _ranks(a), _ranks(b)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denominator = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (ra * rb).sum(axis=1) / denominator
    return np.where(denominator > 0, out, np.nan)


def _top_sets(values: np.ndarray, k: int) -> np.ndarray:
    """Boolean ``(N, F)`` masks of each row's ``k`` largest values (ties: the lower index first)."""
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    mask = np.zeros(values.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def topk_overlap(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Jaccard overlap ``|A ∩ B| / |A ∪ B|`` of each row's top-``k`` features in ``a`` and ``b`` ``(N,)``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise DataError(f"drift: attributions of shape {a.shape} and {b.shape} cannot be compared")
    if not 0 < k <= a.shape[1]:
        raise DataError(f"drift: top_k must be between 1 and the {a.shape[1]} features, got {k}")
    top_a, top_b = _top_sets(a, k), _top_sets(b, k)
    return (top_a & top_b).sum(axis=1) / (top_a | top_b).sum(axis=1)


def mass_share(magnitude: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Share of each row's total ``magnitude`` ``(N, F)`` that lies on the features in ``mask`` ``(F,)``.

    A row with no mass at all has share 0.
    """
    magnitude = np.abs(np.asarray(magnitude, dtype=np.float64))
    inside = magnitude[:, np.asarray(mask, dtype=bool)].sum(axis=1)
    total = magnitude.sum(axis=1)
    return np.divide(inside, total, out=np.zeros_like(inside), where=total > 0)


def bootstrap_mean(values: np.ndarray, *, resamples: int = 1000, level: float = 0.95,
                   seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` over resampled samples (NaNs left out)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, values.size, size=(resamples, values.size))
    means = values[draws].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return (float(low), float(high))


def _mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


# ---------------------------------------------------------------- attributions -> comparable features


def drift_features(result: AttributionResult) -> tuple[np.ndarray, tuple[str, ...], tuple[int, ...]]:
    """Attribution magnitudes ``(N, F)`` that drift compares, the feature names, and the map shape.

    Tabular (and named state variables): ``|attribution|`` per raw column (one-hot levels
    summed first, ``column_attributions``). Images: ``|attribution|`` summed over channels,
    one feature per pixel (names empty, shape ``(H, W)``). Anything else: ``|attribution|``
    flattened.
    """
    if result.column_attributions is not None and result.column_names:
        return np.abs(result.column_attributions), tuple(result.column_names), (len(result.column_names),)
    attr = np.asarray(result.attributions)
    if attr.ndim == 4:  # (N, C, H, W)
        magnitude = np.abs(attr).sum(axis=1)  # (N, H, W)
        return magnitude.reshape(len(attr), -1), (), tuple(magnitude.shape[1:])
    return np.abs(attr).reshape(len(attr), -1), (), (int(np.prod(attr.shape[1:])),)


def save_baseline_attributions(result: AttributionResult, path: str | Path) -> Path:
    """Store a baseline model's attributions for later drift checks (``baseline_attributions``).

    An ``.npz`` of plain arrays (read back with ``allow_pickle=False``): the compared
    magnitudes, their feature names, the explained rows' sha256, the explainer and the model.
    """
    from xai._io import atomic_write_bytes

    features, names, shape = drift_features(result)
    import io

    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, features=features.astype(np.float32), feature_names=np.array(names, dtype=np.str_),
        map_shape=np.array(shape, dtype=np.int64), data_sha256=np.array(result.provenance.data_sha256),
        method=np.array(result.method), model=np.array(result.model))
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _load_baseline_attributions(path: str | Path, method: str, data_sha256: str
                                ) -> tuple[np.ndarray, tuple[str, ...], str]:
    """Stored baseline magnitudes, names and model; the file is untrusted (no pickle, checked)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {k: stored[k] for k in stored.files}
    except FileNotFoundError:
        raise DataError(f"drift: baseline attributions not found: {path}") from None
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"drift: {path} is not a readable .npz of attributions ({exc})") from None
    missing = {"features", "feature_names", "data_sha256", "method", "model"} - arrays.keys()
    if missing:
        raise DataError(f"drift: {path} lacks {', '.join(sorted(missing))}")
    features = arrays["features"]
    if features.ndim != 2 or features.dtype.kind != "f" or not np.all(np.isfinite(features)):
        raise DataError(f"drift: {path}: features must be a finite 2-D float array")
    if str(arrays["method"]) != method:
        raise DataError(f"drift: {path} holds {str(arrays['method'])!r} attributions, not {method!r}")
    if str(arrays["data_sha256"]) != data_sha256:
        raise DataError(f"drift: {path} was computed on other rows (data sha256 differs); "
                        "store it again from the same spec's samples")
    names = tuple(str(n) for n in arrays["feature_names"].tolist())
    return features.astype(np.float64), names, str(arrays["model"])


# ---------------------------------------------------------------- the result


@dataclass(frozen=True, eq=False)
class DriftResult:
    """How far a model's explanations moved from a baseline's on the same rows.

    Attributes
    ----------
    method
        The explainer both sides were explained with.
    model, baseline
        The model checked and the baseline (a model name, or ``stored:<path>``).
    statistics, intervals
        Mean over samples of each statistic in :data:`STATISTICS`, and its bootstrap interval.
    per_sample
        Each statistic per sample ``(N,)``.
    top_k
        Size of the top sets compared.
    region
        What the mass statistics measure: ``columns: sex`` or ``pixels [top, bottom, left, right]``
        (empty: no region named; the mass statistics are then absent).
    mean_magnitude, baseline_mean_magnitude
        Mean attribution magnitude per feature on each side, in the map's shape ``(H, W)``
        or ``(columns,)`` (for the report).
    feature_names
        Raw column names (tabular), else empty.
    """

    method: str
    model: str
    baseline: str
    samples: int
    top_k: int
    region: str
    statistics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    per_sample: dict[str, np.ndarray]
    mean_magnitude: np.ndarray
    baseline_mean_magnitude: np.ndarray
    options: dict[str, Any]
    provenance: Provenance
    feature_names: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def metrics(self) -> dict[str, float]:
        """The statistics, relative to the audit's ``drift.<method>`` section."""
        return {k: v for k, v in self.statistics.items() if math.isfinite(v)}

    def metric_intervals(self) -> dict[str, tuple[float, float]]:
        """Bootstrap intervals by the same names as :meth:`metrics`."""
        return {k: v for k, v in self.intervals.items() if all(math.isfinite(x) for x in v)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as nested lists)."""
        return to_jsonable(self)


# ---------------------------------------------------------------- the method


@DRIFTS.register("explanation-drift")
class ExplanationDrift(Method):
    """Explanation drift against a baseline: rank correlation, top-k overlap and mass moved."""

    name: ClassVar[str] = "explanation-drift"
    kind: ClassVar[Kind] = "drift"
    result_type: ClassVar[str] = "xai.explain.drift:DriftResult"
    paper: ClassVar[str] = ("Adebayo et al. 2018, Sanity Checks for Saliency Maps (rank correlation and "
                            "top-k intersection of attribution maps)")
    capabilities: ClassVar[Capabilities] = Capabilities(
        tasks=ALL_TASKS - {"embedding"}, modalities=frozenset({"image", "tabular", "sequence", "state"}))

    class Options(Options):
        """Which explainer, which baseline, which region; the ``[drift]`` section's keys."""

        #: Explainer that both models are explained with.
        method: str = Field(default="integrated-gradients", min_length=1)
        #: The explainer's own options (as in ``[[explain]] options``).
        options: dict[str, Any] = Field(default_factory=dict)
        #: Rows explained (a seeded subset of the audit's rows).
        samples: int = Field(default=32, gt=1)
        #: Which output to explain; ``label``: the same class on both sides.
        target: Literal["predicted", "label"] | int = "label"
        #: A zoo name (or folder) of the baseline model, read from the audited model's zoo.
        baseline_model: str | None = Field(default=None, min_length=1)
        #: Or a ``.npz`` written by :func:`save_baseline_attributions` from the same rows.
        baseline_attributions: str | None = Field(default=None, min_length=1)
        #: Size of the compared top sets; ``None``: a quarter of the columns (tabular), a tenth of the pixels.
        top_k: int | None = Field(default=None, gt=0)
        #: Tabular: raw columns whose attribution share is tracked (e.g. ``["sex"]``).
        columns: list[str] = Field(default_factory=list)
        #: Images: ``[top, bottom, left, right]`` pixels whose share is tracked; ``None``: the
        #: dataset's known spurious region when it has one.
        region: tuple[int, int, int, int] | None = None
        #: Bootstrap resamples of the samples, and the interval's level.
        bootstrap: int = Field(default=1000, ge=100)
        level: float = Field(default=0.95, gt=0, lt=1)

        @field_validator("method")
        @classmethod
        def _known_explainer(cls, value: str) -> str:
            if value not in EXPLAINERS:  # the lazy table: no explainer module is imported
                raise ValueError(f"unknown explainer {value!r}; known: {', '.join(EXPLAINERS.names())}")
            return value

        @model_validator(mode="after")
        def _one_baseline(self) -> ExplanationDrift.Options:
            if (self.baseline_model is None) == (self.baseline_attributions is None):
                raise ValueError("name one baseline: baseline_model (a zoo name) or baseline_attributions "
                                 "(a .npz of stored attributions)")
            if self.region is not None and not (0 <= self.region[0] < self.region[1]
                                                and 0 <= self.region[2] < self.region[3]):
                raise ValueError(f"region must be [top, bottom, left, right] with top < bottom and "
                                 f"left < right, got {list(self.region)}")
            return self

    @classmethod
    def run(cls, handle: ModelHandle, data: Dataset | None, options: Any, seed: int = 0) -> DriftResult:
        """Explain ``options.samples`` seeded rows of ``data`` on the model and the baseline; compare."""
        from xai.audit.runner import sample_rows  # the audit's row sampler (imported on use: no cycle)
        from xai.explain import create_explainer

        opts = cls.parse_options(options)
        assert isinstance(opts, ExplanationDrift.Options)
        if data is None:
            raise DataError(f"{cls.name} needs data to explain")
        cls.check_applies(handle)
        start = time.perf_counter()
        rows = sample_rows(data, opts.samples, seed)
        if len(rows) < 2:
            raise DataError(f"{cls.name}: needs at least 2 rows to compare, got {len(rows)}")
        baseline_handle = _baseline_handle(handle, opts.baseline_model, data) if opts.baseline_model else None
        current = create_explainer(opts.method, handle, **opts.options).explain(rows, target=opts.target, seed=seed)
        ours, names, shape = drift_features(current)
        if baseline_handle is not None:
            base_result = create_explainer(opts.method, baseline_handle, **opts.options).explain(
                rows, target=opts.target, seed=seed)
            theirs, base_names, _ = drift_features(base_result)
            baseline_name = baseline_handle.name
        else:
            assert opts.baseline_attributions is not None
            theirs, base_names, stored_model = _load_baseline_attributions(
                opts.baseline_attributions, opts.method, rows.sha256)
            baseline_name = f"stored:{stored_model}"
        if base_names != names or theirs.shape != ours.shape:
            raise DataError(f"drift: the baseline's attributions ({theirs.shape[1]} features) do not match the "
                            f"model's ({ours.shape[1]}); compare models with the same inputs")
        k = opts.top_k or max(1, math.ceil(ours.shape[1] * (0.25 if names else 0.1)))
        mask, region = _region_mask(opts, data, names, shape)
        per_sample = {"spearman": spearman_rows(ours, theirs), "topk_overlap": topk_overlap(ours, theirs, k)}
        if mask is not None:
            per_sample["mass_share"] = mass_share(ours, mask)
            per_sample["baseline_mass_share"] = mass_share(theirs, mask)
            per_sample["mass_moved"] = per_sample["mass_share"] - per_sample["baseline_mass_share"]
        notes = []
        undefined = int(np.isnan(per_sample["spearman"]).sum())
        if undefined:
            notes.append(f"{undefined} sample(s) with constant attributions have no rank correlation (left out)")
        statistics = {name: _mean(values) for name, values in per_sample.items()}
        intervals = {name: bootstrap_mean(values, resamples=opts.bootstrap, level=opts.level, seed=seed)
                     for name, values in per_sample.items()}
        return DriftResult(
            method=opts.method, model=handle.name, baseline=baseline_name, samples=len(rows), top_k=k,
            region=region, statistics=statistics, intervals=intervals, per_sample=per_sample,
            mean_magnitude=ours.mean(axis=0).reshape(shape), baseline_mean_magnitude=theirs.mean(axis=0).reshape(shape),
            options=opts.model_dump(), feature_names=names, notes=tuple(notes),
            provenance=Provenance(model_sha256=handle.sha256, data_sha256=rows.sha256, seed=seed,
                                  wall_seconds=round(time.perf_counter() - start, 4), device=str(handle.device)),
        )


def _baseline_handle(handle: ModelHandle, name: str, data: Dataset) -> ModelHandle:
    """The baseline model, read from the audited model's zoo folder (no pickle: a spec grants no trust)."""
    from xai.zoo import check_model_on_data, load_model

    source = str(getattr(handle, "source", ""))
    zoo_dir = Path(source.removeprefix("zoo:")).parent if source.startswith("zoo:") else None
    baseline = load_model(name, data=data.name, zoo_dir=zoo_dir, trust_pickle=False)
    baseline.to(handle.device)
    check_model_on_data(baseline, data)  # a baseline for other inputs is one line, not a traceback
    try:  # entries with their own evaluate are not run by that check: one forward on two rows
        import torch

        with torch.no_grad():
            baseline.module.eval()(data.x[:2].to(baseline.device))
    except Exception as exc:  # any failure of the baseline's code on these rows
        raise DataError(f"drift: baseline {name!r} cannot run on {data.name} inputs of shape "
                        f"{tuple(data.x.shape[1:])} ({type(exc).__name__}); compare models with the same inputs"
                        ) from None
    return baseline


def _region_mask(opts: ExplanationDrift.Options, data: Dataset, names: tuple[str, ...],
                 shape: tuple[int, ...]) -> tuple[np.ndarray | None, str]:
    """The features whose mass share is tracked, and a description; ``None`` when none is named."""
    if names:
        if opts.region is not None:
            raise DataError("drift: region is for images; name tabular columns with columns = [...]")
        unknown = [c for c in opts.columns if c not in names]
        if unknown:
            raise DataError(f"drift: unknown column(s) {', '.join(map(repr, unknown))}; "
                            f"the data has {', '.join(names)}")
        if not opts.columns:
            return None, ""
        return np.isin(np.array(names), opts.columns), "columns: " + ", ".join(opts.columns)
    if opts.columns:
        raise DataError("drift: columns are for tabular data; name an image region with region = [...]")
    region = opts.region
    if region is None:
        from xai.datasets import MARK_REGION

        region = MARK_REGION if data.name in ("digits-shortcut", "digits-marked") else None
    if region is None:
        return None, ""
    if len(shape) != 2:
        raise DataError(f"drift: region needs image attributions, got maps of shape {shape}")
    top, bottom, left, right = region
    if bottom > shape[0] or right > shape[1]:
        raise DataError(f"drift: region {list(region)} lies outside the {shape[0]}x{shape[1]} image")
    mask = np.zeros(shape, dtype=bool)
    mask[top:bottom, left:right] = True
    return mask.reshape(-1), f"pixels [{top}, {bottom}, {left}, {right}]"
