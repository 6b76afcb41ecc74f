"""Attribution methods, one module per family, registered with ``@register_explainer``."""

from xai.explain import cam, gradient, perturbation, rollout, text  # noqa: F401  (importing registers the methods)
from xai.explain._base import (
    EXPLAINERS,
    AttributionResult,
    Explainer,
    TargetModule,
    create_explainer,
    list_explainers,
    register_explainer,
)
from xai.explain.cam import GradCam, GuidedGradCam, conv_layers
from xai.explain.daam import CrossAttentionMaps, DaamResult, daam
from xai.explain.dream import DreamResult, LayerCapture, dream
from xai.explain.gradient import DeepLift, GradientShap, IntegratedGradients, Saliency, SmoothGrad
from xai.explain.perturbation import Occlusion
from xai.explain.rollout import AttentionRecorder, AttentionRollout
from xai.explain.text import LayerGradientXActivation, LayerIntegratedGradients
from xai.explain.tokens import TokenRelevance, token_relevance

__all__ = [
    "EXPLAINERS",
    "AttentionRecorder",
    "AttentionRollout",
    "AttributionResult",
    "CrossAttentionMaps",
    "DaamResult",
    "DeepLift",
    "DreamResult",
    "Explainer",
    "GradCam",
    "GradientShap",
    "GuidedGradCam",
    "IntegratedGradients",
    "LayerGradientXActivation",
    "LayerIntegratedGradients",
    "Occlusion",
    "LayerCapture",
    "Saliency",
    "SmoothGrad",
    "TargetModule",
    "TokenRelevance",
    "conv_layers",
    "create_explainer",
    "daam",
    "dream",
    "list_explainers",
    "register_explainer",
    "token_relevance",
]
