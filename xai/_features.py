"""Tensor helpers shared by the zoo's recipes and the explain methods (style transfer and inversion).

They live below both packages so neither imports the other's private modules; this module
imports torch, so import it only from code that runs a model.
"""

from __future__ import annotations

import torch


def _flat_positions(activation: torch.Tensor) -> torch.Tensor:
    """``(B, C, *positions)`` -> ``(B, C, P)``; tokens ``(B, T, D)`` -> ``(B, D, T)``; ``(B, F)`` -> ``(B, F, 1)``."""
    if activation.ndim == 2:
        return activation.unsqueeze(-1)
    if activation.ndim == 3:
        return activation.transpose(1, 2)
    return activation.flatten(2)


def gram_matrix(activation: torch.Tensor) -> torch.Tensor:
    """Gram matrix of a layer's activation: ``G[c, d] = sum_p F[c, p] F[d, p] / P`` -> ``(B, C, C)``.

    ``F`` is the activation with its positions flattened (``P = H W`` for conv maps).

    Examples
    --------
    >>> gram_matrix(torch.ones(1, 2, 3, 3))
    tensor([[[1., 1.],
             [1., 1.]]])
    """
    feats = _flat_positions(activation)  # (B, C, P)
    return feats @ feats.transpose(1, 2) / feats.shape[-1]  # (B, C, C)
