"""Gradient attributions through captum: Saliency and Integrated Gradients."""

from __future__ import annotations

from typing import Any

import torch
from captum.attr import IntegratedGradients as CaptumIG
from captum.attr import Saliency as CaptumSaliency

from xai.datasets import Dataset
from xai.errors import DataError
from xai.explain._base import Explainer, register_explainer


@register_explainer("saliency")
class Saliency(Explainer):
    """Vanilla gradient of the target w.r.t. the input (Simonyan et al. 2014).

    Paper: https://arxiv.org/abs/1312.6034. Options: ``abs`` (default ``True``).
    On one-hot tabular inputs a raw column's score is the gradient at the row's level.

    Examples
    --------
    >>> result = create_explainer("saliency", handle).explain(data.head(4))  # doctest: +SKIP
    """

    paper = "https://arxiv.org/abs/1312.6034"
    column_reduce = "active"

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Accept ``abs``."""
        unknown = set(options) - {"abs"}
        if unknown:
            raise DataError(f"saliency takes option abs, not {', '.join(sorted(unknown))}")
        return {"abs": bool(options.get("abs", True))}

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``|d target / d x|`` (or the signed gradient with ``abs=False``)."""
        method = CaptumSaliency(self.handle.forward_target)
        return method.attribute(x, additional_forward_args=(target,),
                                abs=self.options["abs"])


@register_explainer("integrated-gradients")
class IntegratedGradients(Explainer):
    """Path integral of gradients from a baseline to the input (Sundararajan et al. 2017).

    Paper: https://arxiv.org/abs/1703.01365. Options: ``steps`` (50), ``baseline``
    (``zeros``, or ``mean`` of the explained data; default ``zeros`` for images and
    ``mean`` for tabular rows), ``internal_batch_size``. Completeness: the attributions
    of a sample add up to ``f(x) - f(baseline)``; the gap is kept as ``convergence_delta``.
    """

    paper = "https://arxiv.org/abs/1703.01365"
    _last_delta: torch.Tensor | None = None

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Accept ``steps``, ``baseline`` and ``internal_batch_size``."""
        unknown = set(options) - {"steps", "baseline", "internal_batch_size"}
        if unknown:
            raise DataError("integrated-gradients takes options steps, baseline, "
                            f"internal_batch_size, not {', '.join(sorted(unknown))}")
        default_baseline = "mean" if self.handle.modality == "tabular" else "zeros"
        baseline = options.get("baseline", default_baseline)
        if baseline not in ("zeros", "mean"):
            raise DataError(f"baseline must be 'zeros' or 'mean', got {baseline!r}")
        steps = int(options.get("steps", 50))
        if steps < 2:
            raise DataError(f"steps must be at least 2, got {steps}")
        internal = options.get("internal_batch_size")
        return {"steps": steps, "baseline": baseline,
                "internal_batch_size": int(internal) if internal else None}

    def prepare(self, data: Dataset) -> None:
        """Fix the baseline on the whole explained set (so batching cannot change it)."""
        if self.options["baseline"] == "mean":
            self._baseline = data.x.float().mean(0, keepdim=True)
        else:
            self._baseline = torch.zeros((1, *data.x.shape[1:]))

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """IG attributions for one batch; also records the completeness gap."""
        if not hasattr(self, "_baseline"):
            self._baseline = torch.zeros((1, *x.shape[1:]))
        baseline = self._baseline.to(x.device).expand_as(x)
        method = CaptumIG(self.handle.forward_target)
        attr, delta = method.attribute(
            x,
            baselines=baseline,
            additional_forward_args=(target,),
            n_steps=self.options["steps"],
            internal_batch_size=self.options["internal_batch_size"],
            return_convergence_delta=True,
        )
        self._last_delta = delta
        return attr

    def convergence(self) -> torch.Tensor | None:
        """Completeness gap of the last batch."""
        return self._last_delta
