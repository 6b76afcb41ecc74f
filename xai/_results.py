"""Helpers that turn frozen result dataclasses into plain JSON-ready values."""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def to_jsonable(value: Any) -> Any:
    """Recursively convert dataclasses, arrays, tensors and paths to JSON types.

    Non-finite floats become ``None`` (JSON has no NaN); float arrays become nested
    lists rounded to 6 significant digits so a report's JSON stays compact.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    torch = sys.modules.get("torch")  # no tensor can exist unless torch was imported (keeps this torch-free)
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return to_jsonable(round_significant(value).tolist())
        return value.tolist()
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def round_significant(array: np.ndarray, digits: int = 6) -> np.ndarray:
    """Round every element to ``digits`` significant digits (float64 copy)."""
    out = np.array(array, dtype=np.float64)
    mask = np.isfinite(out) & (out != 0)
    scale = 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(out[mask]))))
    out[mask] = np.round(out[mask] * scale) / scale
    return out


def null_non_finite(value: Any) -> Any:
    """NaN and +-inf -> ``None`` all through a JSON-ready value (JSON has no NaN: a missing number is null).

    Examples
    --------
    >>> null_non_finite({"d": float("nan"), "xs": [1.0, float("inf")]})
    {'d': None, 'xs': [1.0, None]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: null_non_finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [null_non_finite(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class ResultSection:
    """Where results of one type go: their audit-page section, JSON key and gate namespace.

    ``types`` name the result classes as ``"module:Class"`` strings, so this table (and
    everything that reads it: the runner, the metric namespace, the renderers) needs no
    import of the modules that define them.
    """

    key: str
    title: str
    types: tuple[str, ...]
    #: Gate-name prefix of each result's ``metrics()``: ``"explain.{method}"`` is formatted
    #: with the result's ``method``, ``probe`` or ``layer``; ``""`` when its metrics name themselves.
    metric_prefix: str


#: Every result type an audit can hold, in page order. A new result type adds one row here
#: (and a renderer in :mod:`xai.report._renderers`); ``tests/test_methods_protocol.py``
#: checks that every registered method's ``result_type`` has both.
RESULT_SECTIONS: tuple[ResultSection, ...] = (
    ResultSection("explanations", "Explanations", ("xai.explain._base:AttributionResult",), "explain.{method}"),
    ResultSection("sanity", "Sanity checks", ("xai.explain.sanity:SanityResult",), "sanity.{method}"),
    ResultSection("dreams", "Activation maximisation", ("xai.explain.dream:DreamResult",), ""),
    ResultSection("inversions", "Feature inversion", ("xai.explain.inversion:InversionResult",), ""),
    ResultSection("projections", "Representation maps", ("xai.explain.projection:ProjectionResult",),
                  "project.{layer}"),
    ResultSection("tokens", "Token relevance", ("xai.explain.tokens:TokenRelevance",), "tokens"),
    ResultSection("daam", "Cross-attention maps", ("xai.explain.daam:DaamResult",), ""),
    ResultSection("drift", "Explanation drift", ("xai.explain.drift:DriftResult",), "drift.{method}"),
    ResultSection("recurrent", "Recurrent internals", ("xai.explain.recurrent:RecurrentResult",), "recurrent"),
    ResultSection("heads", "Attention heads", ("xai.explain.heads:HeadsResult",), "heads"),
    ResultSection("agents", "Agent comparison", ("xai.explain.agents:AgentComparison",), "agents"),
    ResultSection("seq2seq", "Encoder-decoder attention", ("xai.explain.cross_attention:CrossAttentionResult",),
                  "seq2seq"),
    ResultSection("llm", "Generation attribution", ("xai.explain.llm:GenerationAttributionResult",), "llm"),
    ResultSection("training", "Training diagnostics", ("xai.explain.training:GanTrainingResult",), "training"),
    ResultSection("weat", "Word embedding associations",
                  ("xai.fairness.embedding:WeatResult", "xai.fairness.seat:SeatResult"), ""),
    ResultSection("fairness", "Fairness",
                  ("xai.fairness._base:FairnessResult", "xai.fairness.embedding_probes:EmbeddingBiasResult"),
                  "fairness.{probe}"),
    ResultSection("slices", "Slice discovery", ("xai.fairness.slices:SliceResult",), "fairness.{probe}"),
)


def type_name(cls: type) -> str:
    """``"module:Qualname"`` of a class (how the tables here name result types)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def section_of(result: Any) -> ResultSection:
    """The section of a result (or result class), by its type or the nearest base listed.

    Raises
    ------
    TypeError
        For a type no section lists (a method whose result has no place in an audit yet).

    Examples
    --------
    >>> section_of(type("AttributionResult", (), {"__module__": "xai.explain._base"})).key
    'explanations'
    """
    cls = result if isinstance(result, type) else type(result)
    names = {type_name(base) for base in cls.__mro__}
    for section in RESULT_SECTIONS:
        if names.intersection(section.types):
            return section
    raise TypeError(f"no audit section takes {type_name(cls)}: add it to xai._results.RESULT_SECTIONS")


def metric_prefix(result: Any) -> str:
    """The gate-name prefix of one result's metrics (``explain.saliency``, ``fairness.group``, ``""``)."""
    template = section_of(result).metric_prefix
    fields = {name: getattr(result, name) for name in ("method", "probe", "layer") if hasattr(result, name)}
    return template.format(**fields)
