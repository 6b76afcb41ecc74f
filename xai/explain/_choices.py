"""Option choices the CLI's ``--help`` names, torch-free (the method modules import them from here)."""

from __future__ import annotations

#: ``xai dream --objective`` (xai.explain.dream).
OBJECTIVES: tuple[str, ...] = ("channel", "neuron", "layer", "class")
#: ``--param`` of ``xai dream`` and ``xai invert`` (xai.explain.dream).
PARAMETRISATIONS: tuple[str, ...] = ("pixel", "fourier")
#: ``xai project --method`` (xai.explain.projection).
PROJECTION_METHODS: tuple[str, ...] = ("pca", "tsne")
#: ``xai rollout --mode`` and ``--head-fusion`` (xai.explain.rollout).
ROLLOUT_MODES: tuple[str, ...] = ("rollout", "flow", "grad")
HEAD_FUSIONS: tuple[str, ...] = ("mean", "max", "min")
