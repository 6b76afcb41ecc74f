"""The probe registry and its lazy table (torch-free: listing names imports no probe).

``@register_probe`` in each probe module stays the definition; this table only says which
module registers which name (``tests/test_imports.py`` checks they agree).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xai._registry import Registry

if TYPE_CHECKING:
    from xai.fairness._base import Probe

#: name -> "module:class" of every built-in probe.
PROBE_TABLE: dict[str, str] = {
    "compression": "xai.fairness.compression:CompressionProbe",
    "counterfactual-flip": "xai.fairness.counterfactual:CounterfactualFlip",
    "direct-bias": "xai.fairness.embedding_probes:DirectBiasProbe",
    "group-metrics": "xai.fairness.group:GroupMetrics",
    "mitigation": "xai.fairness.mitigation:MitigationWhatIf",
    "proxy": "xai.fairness.proxy:ProxyDetection",
    "representation": "xai.fairness.representation:RepresentationProbe",
    "sample-distribution": "xai.fairness.generative:SampleDistribution",
    "shortcut": "xai.fairness.shortcut:ShortcutProbe",
    "template-bias": "xai.fairness.template:TemplateBias",
    "weat": "xai.fairness.embedding_probes:WeatProbe",
}

PROBES: Registry[type[Probe]] = Registry("probe", lazy=PROBE_TABLE)
