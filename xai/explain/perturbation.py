"""Perturbation attributions through captum: Occlusion, Feature Ablation and Kernel SHAP.

A feature's attribution is how much the explained output drops when the feature is
replaced by a reference value (Kernel SHAP: its Shapley value, estimated from random
coalitions of features); no gradients, so they work on any model, ONNX files included
(their capabilities say ``needs_gradients=False``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from captum.attr import FeatureAblation
from captum.attr import KernelShap as CaptumKernelShap
from captum.attr import Occlusion as CaptumOcclusion
from pydantic import Field

from xai._method import Capabilities
from xai.datasets import Dataset
from xai.errors import DataError
from xai.explain._base import Explainer, ExplainerOptions, data_baseline, register_explainer

__all__ = ["FeatureAblationExplainer", "KernelShap", "Occlusion", "default_window", "feature_mask"]

#: Perturbation methods read outputs only: every model the explainers take, gradients or not.
PERTURBATION = Capabilities(tasks=Explainer.capabilities.tasks, modalities=Explainer.capabilities.modalities,
                            needs_gradients=False)


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
    capabilities: ClassVar[Capabilities] = PERTURBATION

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


def feature_mask(shape: tuple[int, ...], modality: str, window: int,
                 feature_columns: tuple[str, ...] = ()) -> torch.Tensor:
    """Feature ids ``(1, *shape)`` of one sample: image patches, raw columns or sequence steps.

    Images: non-overlapping ``window`` x ``window`` squares, every channel of a square one
    feature. Tabular: one feature per raw column (one-hot levels together). Sequences:
    ``window`` steps with all their features.

    Examples
    --------
    >>> feature_mask((1, 4, 4), "image", 2)[0, 0]
    tensor([[0, 0, 1, 1],
            [0, 0, 1, 1],
            [2, 2, 3, 3],
            [2, 2, 3, 3]])
    """
    if modality == "image" and len(shape) == 3:
        c, h, w = shape
        rows = torch.arange(h) // window
        cols = torch.arange(w) // window
        ids = rows[:, None] * ((w + window - 1) // window) + cols[None, :]  # (H, W)
        return ids.expand(c, h, w).unsqueeze(0).contiguous()
    if len(shape) == 1:
        if feature_columns and len(feature_columns) == shape[0]:
            names = list(dict.fromkeys(feature_columns))
            return torch.tensor([[names.index(col) for col in feature_columns]])
        return torch.arange(shape[0]).unsqueeze(0)
    steps = torch.arange(shape[0]) // window  # (T,)
    return steps.view(-1, *([1] * (len(shape) - 1))).expand(*shape).unsqueeze(0).contiguous()


class _MaskedPerturbation(Explainer):
    """Shared options and mask of the methods that perturb groups of features (patches, columns, steps)."""

    class Options(ExplainerOptions):
        """Options of a masked perturbation method."""

        #: Images: the square patch side (default :func:`default_window`'s); sequences: steps per feature.
        window: int | None = Field(default=None, ge=1)
        #: ``None``: ``mean`` of the explained rows for tabular models, else ``zeros``.
        baseline: Literal["zeros", "mean"] | None = None
        perturbations_per_eval: int = Field(default=16, ge=1)

    capabilities: ClassVar[Capabilities] = PERTURBATION
    input_grad = False

    def resolve(self, options: Any) -> dict[str, Any]:
        """Fill the window and baseline defaults of the model's modality."""
        shape = self.handle.input_shape
        image = self.handle.modality == "image" and len(shape) == 3
        if self.handle.modality == "tabular" or len(shape) == 1:
            if "window" in options.model_fields_set:
                raise DataError(f"{self.name} on tabular inputs ablates one raw column at a time; it takes no window")
            window = 1
        else:
            window = options.window or (default_window(*shape[-2:])[0] if image else 1)
            limit = min(shape[-2:]) if image else shape[0]
            if window > limit:
                raise DataError(f"window {window} is larger than the {limit}-wide input")
        baseline = options.baseline or ("mean" if self.handle.modality == "tabular" else "zeros")
        extra = options.model_dump(exclude={"target", "window", "baseline", "perturbations_per_eval"})
        return {"window": window, "baseline": baseline, "perturbations_per_eval": options.perturbations_per_eval,
                **extra}

    def prepare(self, data: Dataset) -> None:
        """Fix the reference and the feature mask."""
        self._baseline = data_baseline(self.options["baseline"], data)
        self._mask = feature_mask(tuple(data.x.shape[1:]), self.handle.modality, self.options["window"],
                                  data.feature_columns)

    def _reference(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        baseline = getattr(self, "_baseline", None)
        mask = getattr(self, "_mask", None)
        if baseline is None or mask is None:
            baseline = torch.zeros((1, *x.shape[1:]))
            mask = feature_mask(tuple(x.shape[1:]), self.handle.modality, self.options["window"])
        return baseline.to(x.device), mask.to(x.device)


@register_explainer("feature-ablation")
class FeatureAblationExplainer(_MaskedPerturbation):
    """Output drop when one group of features (an image patch, a raw column, a step) is set to a reference.

    captum's ``FeatureAblation`` with a feature mask: every input of a group carries the
    group's whole effect. Options: ``window`` (image patch side; sequence steps),
    ``baseline`` (``zeros`` or ``mean``), ``perturbations_per_eval``.

    Examples
    --------
    >>> from xai.datasets import load_dataset
    >>> from xai.explain import create_explainer
    >>> from xai.zoo import load_model
    >>> lenet, digits = load_model("lenet"), load_dataset("digits")
    >>> create_explainer("feature-ablation", lenet, window=8).explain(digits.head(2)).attributions.shape
    (2, 1, 32, 32)
    """

    paper = "https://arxiv.org/abs/1311.2901"

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Feature-ablation attributions for one batch, same shape as ``x``."""
        baseline, mask = self._reference(x)
        return FeatureAblation(self.handle.forward_target).attribute(
            x, baselines=baseline, feature_mask=mask, additional_forward_args=(target,),
            perturbations_per_eval=self.options["perturbations_per_eval"])


@register_explainer("kernel-shap")
class KernelShap(_MaskedPerturbation):
    """Shapley values of feature groups estimated by Kernel SHAP (Lundberg & Lee 2017).

    Paper: https://arxiv.org/abs/1705.07874. captum's ``KernelShap`` on the same feature
    groups as feature ablation (image patches, raw columns, steps), one sample at a time:
    ``n_samples`` random coalitions weighted by the Shapley kernel, a weighted linear fit.
    The group's value is spread over its inputs (each input carries it). Options: ``window``,
    ``baseline``, ``n_samples`` (default 64), ``perturbations_per_eval``.
    """

    class Options(_MaskedPerturbation.Options):
        """Kernel SHAP's options."""

        n_samples: int = Field(default=64, ge=2)

    paper = "https://arxiv.org/abs/1705.07874"

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Kernel SHAP attributions for one batch, same shape as ``x`` (one sample per fit)."""
        baseline, mask = self._reference(x)
        method = CaptumKernelShap(self.handle.forward_target)
        rows = [method.attribute(x[i:i + 1], baselines=baseline, feature_mask=mask,
                                 additional_forward_args=(target[i:i + 1],), n_samples=self.options["n_samples"],
                                 perturbations_per_eval=self.options["perturbations_per_eval"])
                for i in range(len(x))]
        return torch.cat(rows)
