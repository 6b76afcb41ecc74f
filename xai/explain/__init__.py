"""Attribution methods, one module per family, registered with ``@register_explainer``."""

from xai.explain import gradient  # noqa: F401  (importing registers the methods)
from xai.explain._base import (
    EXPLAINERS,
    AttributionResult,
    Explainer,
    create_explainer,
    list_explainers,
    register_explainer,
)
from xai.explain.dream import DreamResult, LayerCapture, dream
from xai.explain.gradient import IntegratedGradients, Saliency

__all__ = [
    "EXPLAINERS",
    "AttributionResult",
    "DreamResult",
    "Explainer",
    "IntegratedGradients",
    "LayerCapture",
    "Saliency",
    "create_explainer",
    "dream",
    "list_explainers",
    "register_explainer",
]
