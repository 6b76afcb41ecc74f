"""The explainer registry and its lazy table (torch-free: listing names imports no method).

``@register_explainer`` in each family module is the definition; the table of which module
registers which name is read from those lines (``tests/test_imports.py`` checks that importing
the modules registers exactly these names).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xai._registry import Registry, scan_registrations

if TYPE_CHECKING:
    from xai._method import Kind, Method
    from xai.explain._base import Explainer

#: name -> "module:class" of every built-in explainer, read from the ``@register_explainer`` lines of
#: the family modules (a new method is its decorated class: no table to edit).
EXPLAINER_TABLE: dict[str, str] = scan_registrations("xai.explain", "register_explainer")

EXPLAINERS: Registry[type[Explainer]] = Registry("explainer", lazy=EXPLAINER_TABLE)

# The families that are one method each today (a kind = a registry = a spec section or CLI command).
DREAM_TABLE: dict[str, str] = {"activation-maximisation": "xai.explain.dream:Dream"}
INVERSION_TABLE: dict[str, str] = {"feature-inversion": "xai.explain.inversion:Invert"}
SANITY_TABLE: dict[str, str] = {"sanity-checks": "xai.explain.sanity:SanityChecks"}
DAAM_TABLE: dict[str, str] = {"daam": "xai.explain.daam:Daam"}
PROJECTION_TABLE: dict[str, str] = {"projection": "xai.explain.projection:Projection"}
TOKENS_TABLE: dict[str, str] = {"token-relevance": "xai.explain.tokens:TokenRelevanceMethod"}
DRIFT_TABLE: dict[str, str] = {"explanation-drift": "xai.explain.drift:ExplanationDrift"}
RECURRENT_TABLE: dict[str, str] = {"recurrent-gates": "xai.explain.recurrent:RecurrentInternals"}
HEADS_TABLE: dict[str, str] = {"attention-heads": "xai.explain.heads:AttentionHeads"}
AGENTS_TABLE: dict[str, str] = {"agent-compare": "xai.explain.agents:AgentCompare"}
SEQ2SEQ_TABLE: dict[str, str] = {"cross-attention": "xai.explain.cross_attention:CrossAttention"}
LLM_TABLE: dict[str, str] = {"llm-attribution": "xai.explain.llm:GenerationAttribution"}
TRAINING_TABLE: dict[str, str] = {"gan-training": "xai.explain.training:GanTraining"}

DREAMS: Registry[type[Method]] = Registry("dream method", lazy=DREAM_TABLE)
INVERSIONS: Registry[type[Method]] = Registry("inversion method", lazy=INVERSION_TABLE)
SANITY_CHECKS: Registry[type[Method]] = Registry("sanity check", lazy=SANITY_TABLE)
DAAMS: Registry[type[Method]] = Registry("cross-attention method", lazy=DAAM_TABLE)
PROJECTIONS: Registry[type[Method]] = Registry("projection method", lazy=PROJECTION_TABLE)
TOKEN_METHODS: Registry[type[Method]] = Registry("token relevance method", lazy=TOKENS_TABLE)
DRIFTS: Registry[type[Method]] = Registry("drift method", lazy=DRIFT_TABLE)
RECURRENT_METHODS: Registry[type[Method]] = Registry("recurrent internals method", lazy=RECURRENT_TABLE)
HEAD_METHODS: Registry[type[Method]] = Registry("attention head method", lazy=HEADS_TABLE)
AGENT_METHODS: Registry[type[Method]] = Registry("agent comparison method", lazy=AGENTS_TABLE)
SEQ2SEQ_METHODS: Registry[type[Method]] = Registry("encoder-decoder method", lazy=SEQ2SEQ_TABLE)
LLM_METHODS: Registry[type[Method]] = Registry("generation attribution method", lazy=LLM_TABLE)
TRAINING_METHODS: Registry[type[Method]] = Registry("training diagnostics method", lazy=TRAINING_TABLE)

#: One registry per kind of :class:`~xai._method.Method` ("probe" lives in :mod:`xai.fairness._index`).
METHODS: dict[Kind, Registry[type[Method]]] = {
    "explain": EXPLAINERS,  # type: ignore[dict-item]  # Explainer is a Method
    "sanity": SANITY_CHECKS,
    "dream": DREAMS,
    "invert": INVERSIONS,
    "daam": DAAMS,
    "project": PROJECTIONS,
    "tokens": TOKEN_METHODS,
    "drift": DRIFTS,
    "recurrent": RECURRENT_METHODS,
    "heads": HEAD_METHODS,
    "agents": AGENT_METHODS,
    "seq2seq": SEQ2SEQ_METHODS,
    "llm": LLM_METHODS,
    "training": TRAINING_METHODS,
}

#: The method a spec section (or CLI command) of each single-method kind runs.
DEFAULT_METHOD: dict[Kind, str] = {
    "sanity": "sanity-checks",
    "dream": "activation-maximisation",
    "invert": "feature-inversion",
    "daam": "daam",
    "project": "projection",
    "tokens": "token-relevance",
    "drift": "explanation-drift",
    "recurrent": "recurrent-gates",
    "heads": "attention-heads",
    "agents": "agent-compare",
    "seq2seq": "cross-attention",
    "llm": "llm-attribution",
    "training": "gan-training",
}


def method_registry(kind: Kind) -> Registry[type[Method]]:
    """The registry of ``kind`` (probes included: they live in the torch-free fairness index)."""
    if kind == "probe":
        from xai.fairness._index import PROBES

        return PROBES  # type: ignore[return-value]
    return METHODS[kind]
