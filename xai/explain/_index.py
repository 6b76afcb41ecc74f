"""The explainer registry and its lazy table (torch-free: listing names imports no method).

``@register_explainer`` in each family module stays the definition; this table only says
which module registers which name (``tests/test_imports.py`` checks they agree).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xai._registry import Registry

if TYPE_CHECKING:
    from xai._method import Kind, Method
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

# The families that are one method each today (a kind = a registry = a spec section or CLI command).
DREAM_TABLE: dict[str, str] = {"activation-maximisation": "xai.explain.dream:Dream"}
INVERSION_TABLE: dict[str, str] = {"feature-inversion": "xai.explain.inversion:Invert"}
SANITY_TABLE: dict[str, str] = {"sanity-checks": "xai.explain.sanity:SanityChecks"}
DAAM_TABLE: dict[str, str] = {"daam": "xai.explain.daam:Daam"}
PROJECTION_TABLE: dict[str, str] = {"projection": "xai.explain.projection:Projection"}
TOKENS_TABLE: dict[str, str] = {"token-relevance": "xai.explain.tokens:TokenRelevanceMethod"}

DREAMS: Registry[type[Method]] = Registry("dream method", lazy=DREAM_TABLE)
INVERSIONS: Registry[type[Method]] = Registry("inversion method", lazy=INVERSION_TABLE)
SANITY_CHECKS: Registry[type[Method]] = Registry("sanity check", lazy=SANITY_TABLE)
DAAMS: Registry[type[Method]] = Registry("cross-attention method", lazy=DAAM_TABLE)
PROJECTIONS: Registry[type[Method]] = Registry("projection method", lazy=PROJECTION_TABLE)
TOKEN_METHODS: Registry[type[Method]] = Registry("token relevance method", lazy=TOKENS_TABLE)

#: One registry per kind of :class:`~xai._method.Method` ("probe" lives in :mod:`xai.fairness._index`).
METHODS: dict[Kind, Registry[type[Method]]] = {
    "explain": EXPLAINERS,  # type: ignore[dict-item]  # Explainer is a Method
    "sanity": SANITY_CHECKS,
    "dream": DREAMS,
    "invert": INVERSIONS,
    "daam": DAAMS,
    "project": PROJECTIONS,
    "tokens": TOKEN_METHODS,
}

#: The method a spec section (or CLI command) of each single-method kind runs.
DEFAULT_METHOD: dict[Kind, str] = {
    "sanity": "sanity-checks",
    "dream": "activation-maximisation",
    "invert": "feature-inversion",
    "daam": "daam",
    "project": "projection",
    "tokens": "token-relevance",
}


def method_registry(kind: Kind) -> Registry[type[Method]]:
    """The registry of ``kind`` (probes included: they live in the torch-free fairness index)."""
    if kind == "probe":
        from xai.fairness._index import PROBES

        return PROBES  # type: ignore[return-value]
    return METHODS[kind]
