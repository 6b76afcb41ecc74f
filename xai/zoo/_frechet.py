"""Sample quality against a classifier: Frechet distance of its features, confident share.

The Frechet distance between two Gaussians fitted to feature sets (Heusel et al. 2017,
https://arxiv.org/abs/1706.08500, the "FID" when the features are Inception's) is

    d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)).

Here the features come from a small classifier of the same data (the zoo ``lenet``'s
penultimate layer), so the number compares models of the digits with each other, not
with published FIDs.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch
from torch import nn

from xai.errors import DataError
from xai.zoo.handle import eval_mode

__all__ = ["classify", "confident_share", "frechet_distance", "gaussian_frechet_distance",
           "layer_features"]


def gaussian_frechet_distance(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray,
                              cov_b: np.ndarray, eps: float = 1e-6) -> float:
    """Squared Frechet (2-Wasserstein) distance between ``N(mu_a, cov_a)`` and ``N(mu_b, cov_b)``.

    The matrix square root is scipy's ``sqrtm``; when the product is near singular (fewer
    samples than dimensions) both covariances get ``eps`` on their diagonal first, as
    pytorch-fid does, and a round-off imaginary part is dropped.

    Examples
    --------
    >>> gaussian_frechet_distance(np.array([0.0]), np.array([[1.0]]), np.array([2.0]), np.array([[4.0]]))
    5.0
    """
    mu_a, mu_b = np.atleast_1d(np.asarray(mu_a, np.float64)), np.atleast_1d(np.asarray(mu_b, np.float64))
    cov_a, cov_b = np.atleast_2d(np.asarray(cov_a, np.float64)), np.atleast_2d(np.asarray(cov_b, np.float64))
    if mu_a.shape != mu_b.shape or cov_a.shape != cov_b.shape or cov_a.shape != (len(mu_a),) * 2:
        raise DataError(f"Frechet distance needs matching means and covariances, got {mu_a.shape}, "
                        f"{cov_a.shape} and {mu_b.shape}, {cov_b.shape}")
    diff = mu_a - mu_b
    # Dimensions constant in both sets (dead ReLUs) add nothing to the trace term: drop them
    # there, which is exact and keeps the product away from needless singularity.
    keep = (np.diagonal(cov_a) > 0) | (np.diagonal(cov_b) > 0)
    cov_a, cov_b = cov_a[np.ix_(keep, keep)], cov_b[np.ix_(keep, keep)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)  # singular: handled below
        covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(cov_a)) * eps
            covmean = scipy.linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise DataError(f"Frechet distance: the covariance square root has an imaginary part "
                            f"{np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    value = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))
    return max(value, 0.0)  # round-off can leave -1e-12 for identical sets


def frechet_distance(features_a: np.ndarray | torch.Tensor, features_b: np.ndarray | torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets ``(N, D)`` and ``(M, D)``.

    Means and unbiased covariances (``np.cov``) of each set, then
    :func:`gaussian_frechet_distance`. Identical sets give 0.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise DataError(f"Frechet distance needs two (N, D) feature sets with N >= 2, got "
                        f"{a.shape} and {b.shape}")
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    return gaussian_frechet_distance(a.mean(0), cov_a, b.mean(0), cov_b)


@torch.no_grad()
def classify(classifier: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Softmax probabilities ``(N, classes)`` of ``classifier`` in eval mode (on the CPU)."""
    device = next(classifier.parameters()).device
    with eval_mode(classifier):
        out = [torch.softmax(classifier(x[i:i + batch_size].to(device)).float(), 1).cpu()
               for i in range(0, len(x), batch_size)]
    return torch.cat(out)


def confident_share(probabilities: torch.Tensor, threshold: float = 0.9) -> float:
    """Share of rows whose top class probability is at least ``threshold``."""
    return float((probabilities.max(1).values >= threshold).double().mean())


@torch.no_grad()
def layer_features(classifier: nn.Module, layer: str, x: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Flattened outputs of submodule ``layer`` of ``classifier`` for ``x``: ``(N, D)`` float64."""
    modules = dict(classifier.named_modules())
    if layer not in modules or not layer:
        raise DataError(f"{type(classifier).__name__} has no layer {layer!r}")
    device = next(classifier.parameters()).device
    seen: list[torch.Tensor] = []
    hook = modules[layer].register_forward_hook(lambda _m, _i, out: seen.append(out.detach().flatten(1).cpu()))
    try:
        with eval_mode(classifier):
            for i in range(0, len(x), batch_size):
                classifier(x[i:i + batch_size].to(device))
    finally:
        hook.remove()
    return torch.cat(seen).double().numpy()
