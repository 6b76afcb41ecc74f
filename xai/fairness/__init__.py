"""Bias probes, one module per kind of probe, registered with ``@register_probe``."""

from xai.fairness import counterfactual, embedding, generative, group, proxy, representation  # noqa: F401  (importing registers the probes)
from xai.fairness._base import (
    PROBES,
    FairnessResult,
    GroupTable,
    Probe,
    create_probe,
    list_probes,
    register_probe,
)
from xai.fairness.counterfactual import CounterfactualFlip
from xai.fairness.embedding import WeatResult, read_word_vectors, weat
from xai.fairness.generative import SampleDistribution
from xai.fairness.group import GroupMetrics, group_table
from xai.fairness.proxy import ProxyDetection
from xai.fairness.representation import RepresentationProbe

__all__ = [
    "CounterfactualFlip",
    "PROBES",
    "ProxyDetection",
    "RepresentationProbe",
    "SampleDistribution",
    "FairnessResult",
    "GroupMetrics",
    "GroupTable",
    "Probe",
    "WeatResult",
    "create_probe",
    "group_table",
    "list_probes",
    "read_word_vectors",
    "register_probe",
    "weat",
]
