"""Attribution methods, one module per family, registered with ``@register_explainer``."""

from typing import TYPE_CHECKING

from xai._lazy import attach, make_callable

if TYPE_CHECKING:
    from xai.explain._base import (
        AttributionResult,
        Explainer,
        TargetModule,
        create_explainer,
        list_explainers,
        register_explainer,
    )
    from xai.explain._index import EXPLAINERS
    from xai.explain.cam import GradCam, GuidedGradCam, conv_layers
    from xai.explain.daam import CrossAttentionMaps, DaamResult, daam
    from xai.explain.dream import DreamResult, LayerCapture, dream
    from xai.explain.gradient import DeepLift, GradientShap, IntegratedGradients, Saliency, SmoothGrad
    from xai.explain.perturbation import Occlusion
    from xai.explain.rollout import AttentionRecorder, AttentionRollout
    from xai.explain.text import LayerGradientXActivation, LayerIntegratedGradients
    from xai.explain.tokens import TokenRelevance, token_relevance

# name -> the module that defines it, imported on first use (importing this package is free)
_EXPORTS: dict[str, str] = {
    "AttributionResult": "xai.explain._base",
    "Explainer": "xai.explain._base",
    "TargetModule": "xai.explain._base",
    "create_explainer": "xai.explain._base",
    "list_explainers": "xai.explain._base",
    "register_explainer": "xai.explain._base",
    "EXPLAINERS": "xai.explain._index",
    "GradCam": "xai.explain.cam",
    "GuidedGradCam": "xai.explain.cam",
    "conv_layers": "xai.explain.cam",
    "CrossAttentionMaps": "xai.explain.daam",
    "DaamResult": "xai.explain.daam",
    "daam": "xai.explain.daam",
    "DreamResult": "xai.explain.dream",
    "LayerCapture": "xai.explain.dream",
    "dream": "xai.explain.dream",
    "DeepLift": "xai.explain.gradient",
    "GradientShap": "xai.explain.gradient",
    "IntegratedGradients": "xai.explain.gradient",
    "Saliency": "xai.explain.gradient",
    "SmoothGrad": "xai.explain.gradient",
    "Occlusion": "xai.explain.perturbation",
    "AttentionRecorder": "xai.explain.rollout",
    "AttentionRollout": "xai.explain.rollout",
    "LayerGradientXActivation": "xai.explain.text",
    "LayerIntegratedGradients": "xai.explain.text",
    "TokenRelevance": "xai.explain.tokens",
    "token_relevance": "xai.explain.tokens",
}
__getattr__, __dir__ = attach(__name__, _EXPORTS)
make_callable(__name__, "xai.api:explain")  # xai.explain(...) is the front door (xai/api.py)

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
