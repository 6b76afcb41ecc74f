"""Bias probes, one module per kind of probe, registered with ``@register_probe``."""

from xai.fairness import (  # noqa: F401  (importing registers the probes)
    compression,
    counterfactual,
    embedding,
    embedding_probes,
    generative,
    group,
    mitigation,
    proxy,
    representation,
    shortcut,
    template,
)
from xai.fairness._base import (
    PROBES,
    FairnessResult,
    GroupTable,
    Probe,
    create_probe,
    list_probes,
    register_probe,
)
from xai.fairness.compression import CompressionProbe, compression_table
from xai.fairness.counterfactual import CounterfactualFlip
from xai.fairness.embedding import WeatResult, read_word_vectors, weat
from xai.fairness.generative import SampleDistribution
from xai.fairness.group import GroupMetrics, group_table
from xai.fairness.mitigation import MitigationWhatIf
from xai.fairness.proxy import ProxyDetection
from xai.fairness.representation import RepresentationProbe
from xai.fairness.shortcut import ShortcutProbe
from xai.fairness.template import TemplateBias

__all__ = [
    "CompressionProbe",
    "compression_table",
    "CounterfactualFlip",
    "PROBES",
    "ProxyDetection",
    "RepresentationProbe",
    "ShortcutProbe",
    "TemplateBias",
    "SampleDistribution",
    "FairnessResult",
    "GroupMetrics",
    "GroupTable",
    "MitigationWhatIf",
    "Probe",
    "WeatResult",
    "create_probe",
    "group_table",
    "list_probes",
    "read_word_vectors",
    "register_probe",
    "weat",
]
