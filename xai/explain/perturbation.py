"""Perturbation attributions through captum: Occlusion.

A feature's attribution is how much the explained output drops when the feature is
replaced by a reference value; no gradients, so it works on any differentiable or
non-differentiable model.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from captum.attr import FeatureAblation
from captum.attr import Occlusion as CaptumOcclusion
from pydantic import Field

from xai.datasets import Dataset
from xai.errors import DataError
from xai.explain._base import Explainer, ExplainerOptions, data_baseline, register_explainer

__all__ = ["Occlusion", "default_window"]


def default_window(height: int, width: int) -> tuple[int, int]:
    """Occlusion patch side and stride for an image: an eighth of the short side, half-overlapping."""
    window = max(1, round(min(height, width) / 8))
    return window, max(1, window // 2)


@register_explainer("occlusion")
class Occlusion(Explainer):
    """Output drop when a patch (image) or a column (tabular) is replaced by a reference.

    Paper: Zeiler & Fergus 2014, https://arxiv.org/abs/1311.2901. captum's ``Occlusion``.

    Options
    -------
    window, stride
        Images: the square patch side and its stride in pixels (default
        :func:`default_window`: 4 and 2 on 32x32 inputs). Every channel is occluded at once.
        Other inputs ``(B, T, ...)`` (sequences): how many steps along the first axis are
        occluded at once, all their features together (default 1), and the step (default
        the window).
    group
        Tabular: ``column`` (default) occludes all inputs of one raw column together (a
        one-hot column's levels at once, captum's ``FeatureAblation`` with a feature mask);
        ``input`` occludes one encoded input at a time. With ``column`` each input of the
        column carries an equal share of the column's effect, so the shares add up to it.
    baseline
        The reference: ``zeros`` (images' default) or the ``mean`` of the explained rows
        (tabular default).
    perturbations_per_eval
        How many occluded copies go through the model in one forward pass (16; speed only).

    Examples
    --------
    >>> from xai.datasets import load_dataset
    >>> from xai.explain import create_explainer
    >>> from xai.zoo import load_model
    >>> lenet, digits = load_model("lenet"), load_dataset("digits")
    >>> create_explainer("occlusion", lenet, window=6, stride=3).explain(digits.head(2)).attributions.shape
    (2, 1, 32, 32)
    """

    class Options(ExplainerOptions):
        """Occlusion's options (``group`` for tabular rows, ``window``/``stride`` for the others)."""

        window: int | None = Field(default=None, ge=1)
        stride: int | None = Field(default=None, ge=1)
        group: Literal["column", "input"] | None = None
        #: ``None``: ``mean`` of the explained rows for tabular models, else ``zeros``.
        baseline: Literal["zeros", "mean"] | None = None
        perturbations_per_eval: int = Field(default=16, ge=1)

    paper = "https://arxiv.org/abs/1311.2901"
    input_grad = False

    def resolve(self, options: Any) -> dict[str, Any]:
        """Fill the modality's defaults; options of the other modality are errors."""
        tabular = self.handle.modality == "tabular"
        image = self.handle.modality == "image"
        given = options.model_fields_set
        foreign = given & ({"window", "stride"} if tabular else {"group"})
        if foreign:
            accepted = "group, baseline, perturbations_per_eval" if tabular else (
                "window, stride, baseline, perturbations_per_eval")
            raise DataError(f"occlusion on {self.handle.modality} inputs takes {accepted}, "
                            f"not {', '.join(sorted(foreign))}")
        baseline = options.baseline or ("mean" if tabular else "zeros")
        per_eval = options.perturbations_per_eval
        if tabular:
            return {"group": options.group or "column", "baseline": baseline, "perturbations_per_eval": per_eval}
        if image:
            height, width = self.handle.input_shape[-2:]
            window_default, stride_default = default_window(height, width)
            limit, size = min(height, width), f"{height}x{width}"
        else:  # steps along the first axis
            window_default = stride_default = 1
            limit, size = self.handle.input_shape[0], f"{self.handle.input_shape[0]}-step"
        window = options.window or window_default
        stride = options.stride or (window if not image and options.window is not None else stride_default)
        if window > limit:
            raise DataError(f"window {window} is larger than the {size} input")
        return {"window": window, "stride": stride, "baseline": baseline,
                "perturbations_per_eval": per_eval}

    def prepare(self, data: Dataset) -> None:
        """Fix the reference and, for tabular ``column`` grouping, the feature mask."""
        self._baseline = data_baseline(self.options["baseline"], data)
        self._mask: torch.Tensor | None = None
        if self.options.get("group") == "column" and data.feature_columns:
            names = list(dict.fromkeys(data.feature_columns))
            self._mask = torch.tensor([[names.index(c) for c in data.feature_columns]])  # (1, F)

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Occlusion attributions for one batch."""
        baseline = getattr(self, "_baseline", torch.zeros((1, *x.shape[1:]))).to(x.device)
        per_eval = self.options["perturbations_per_eval"]
        mask = getattr(self, "_mask", None)
        if mask is not None:  # tabular, one raw column at a time
            mask = mask.to(x.device)
            attr = FeatureAblation(self.handle.forward_target).attribute(
                x, baselines=baseline, feature_mask=mask, additional_forward_args=(target,),
                perturbations_per_eval=per_eval)  # (B, F), each input holds its column's effect
            sizes = torch.bincount(mask[0]).to(attr.dtype)[mask[0]]  # (F,) inputs in each column
            return attr / sizes
        if x.ndim == 2:  # tabular, one input at a time
            window: tuple[int, ...] = (1,)
            strides: tuple[int, ...] = (1,)
        elif self.handle.modality == "image":  # (B, C, H, W): every channel of a square patch
            side, step = self.options["window"], self.options["stride"]
            window = (x.shape[1], side, side)
            strides = (x.shape[1], step, step)
        else:  # (B, T, ...): `window` steps with all their features
            rest = tuple(x.shape[2:])
            window = (self.options["window"], *rest)
            strides = (self.options["stride"], *rest)
        return CaptumOcclusion(self.handle.forward_target).attribute(
            x, sliding_window_shapes=window, strides=strides, baselines=baseline,
            additional_forward_args=(target,), perturbations_per_eval=per_eval)
