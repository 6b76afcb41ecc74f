"""The explainer registry and its lazy table (torch-free: listing names imports no method).

``@register_explainer`` in each family module stays the definition; this table only says
which module registers which name (``tests/test_imports.py`` checks they agree).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xai._registry import Registry

if TYPE_CHECKING:
    from xai.explain._base import Explainer

#: name -> "module:class" of every built-in explainer.
EXPLAINER_TABLE: dict[str, str] = {
    "attention-rollout": "xai.explain.rollout:AttentionRollout",
    "deeplift": "xai.explain.gradient:DeepLift",
    "grad-cam": "xai.explain.cam:GradCam",
    "gradient-shap": "xai.explain.gradient:GradientShap",
    "guided-grad-cam": "xai.explain.cam:GuidedGradCam",
    "integrated-gradients": "xai.explain.gradient:IntegratedGradients",
    "layer-gradient-x-activation": "xai.explain.text:LayerGradientXActivation",
    "layer-integrated-gradients": "xai.explain.text:LayerIntegratedGradients",
    "occlusion": "xai.explain.perturbation:Occlusion",
    "saliency": "xai.explain.gradient:Saliency",
    "smoothgrad": "xai.explain.gradient:SmoothGrad",
}

EXPLAINERS: Registry[type[Explainer]] = Registry("explainer", lazy=EXPLAINER_TABLE)
