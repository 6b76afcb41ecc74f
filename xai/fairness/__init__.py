"""Bias probes, one module per kind of probe, registered with ``@register_probe``."""

from typing import TYPE_CHECKING

from xai._lazy import attach

if TYPE_CHECKING:
    from xai.fairness._base import FairnessResult, GroupTable, Probe, create_probe, list_probes, register_probe
    from xai.fairness._index import PROBES
    from xai.fairness.compression import CompressionProbe, compression_table
    from xai.fairness.counterfactual import CounterfactualFlip
    from xai.fairness.embedding import WeatResult, read_word_vectors, weat
    from xai.fairness.generative import SampleDistribution
    from xai.fairness.group import GroupMetrics, group_table
    from xai.fairness.metrics import (
        GroupFrame,
        bootstrap_intervals,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        four_fifths_rule,
        group_frame,
    )
    from xai.fairness.mitigation import MitigationWhatIf
    from xai.fairness.proxy import ProxyDetection
    from xai.fairness.representation import RepresentationProbe
    from xai.fairness.shortcut import ShortcutProbe
    from xai.fairness.template import TemplateBias

# name -> the module that defines it, imported on first use (importing this package is free)
_EXPORTS: dict[str, str] = {
    "FairnessResult": "xai.fairness._base",
    "GroupTable": "xai.fairness._base",
    "Probe": "xai.fairness._base",
    "create_probe": "xai.fairness._base",
    "list_probes": "xai.fairness._base",
    "register_probe": "xai.fairness._base",
    "PROBES": "xai.fairness._index",
    "CompressionProbe": "xai.fairness.compression",
    "compression_table": "xai.fairness.compression",
    "CounterfactualFlip": "xai.fairness.counterfactual",
    "WeatResult": "xai.fairness.embedding",
    "read_word_vectors": "xai.fairness.embedding",
    "weat": "xai.fairness.embedding",
    "SampleDistribution": "xai.fairness.generative",
    "GroupMetrics": "xai.fairness.group",
    "group_table": "xai.fairness.group",
    "GroupFrame": "xai.fairness.metrics",
    "bootstrap_intervals": "xai.fairness.metrics",
    "demographic_parity_difference": "xai.fairness.metrics",
    "demographic_parity_ratio": "xai.fairness.metrics",
    "equalized_odds_difference": "xai.fairness.metrics",
    "four_fifths_rule": "xai.fairness.metrics",
    "group_frame": "xai.fairness.metrics",
    "MitigationWhatIf": "xai.fairness.mitigation",
    "ProxyDetection": "xai.fairness.proxy",
    "RepresentationProbe": "xai.fairness.representation",
    "ShortcutProbe": "xai.fairness.shortcut",
    "TemplateBias": "xai.fairness.template",
}
__getattr__, __dir__ = attach(__name__, _EXPORTS)

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
    "GroupFrame",
    "GroupMetrics",
    "GroupTable",
    "MitigationWhatIf",
    "Probe",
    "WeatResult",
    "bootstrap_intervals",
    "create_probe",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "four_fifths_rule",
    "group_frame",
    "group_table",
    "list_probes",
    "read_word_vectors",
    "register_probe",
    "weat",
]
