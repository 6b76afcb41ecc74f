"""Attribution methods, one module per family, registered with ``@register_explainer``."""

from xai.explain import gradient, rollout  # noqa: F401  (importing registers the methods)
from xai.explain._base import (
    EXPLAINERS,
    AttributionResult,
    Explainer,
    create_explainer,
    list_explainers,
    register_explainer,
)
from xai.explain.gradient import IntegratedGradients, Saliency
from xai.explain.rollout import AttentionRecorder, AttentionRollout

__all__ = [
    "EXPLAINERS",
    "AttentionRecorder",
    "AttentionRollout",
    "AttributionResult",
    "Explainer",
    "IntegratedGradients",
    "Saliency",
    "create_explainer",
    "list_explainers",
    "register_explainer",
]
