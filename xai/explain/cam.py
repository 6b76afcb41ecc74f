"""Class activation maps through captum: Grad-CAM and Guided Grad-CAM.

Both explain a convolutional layer: its feature maps weighted by the spatially averaged
gradient of the target, kept positive and upsampled to the input. The layer is an
option (``layer``), by default the last convolutional layer among the model's layers
worth explaining (``handle.layers``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

import torch
from captum.attr import GuidedGradCam as CaptumGuidedGradCam
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn
from torch.nn.modules.conv import _ConvNd

from xai._method import Capabilities
from xai.errors import DataError
from xai.explain._base import (
    Explainer,
    ExplainerOptions,
    TargetModule,
    quiet_hook_warnings,
    register_explainer,
)
from xai.zoo.handle import ModelHandle, TokenGrid

__all__ = ["GradCam", "GuidedGradCam", "conv_layers"]


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, _ConvNd) for m in module.modules())


def conv_layers(handle: ModelHandle) -> list[str]:
    """Names among ``handle.layers`` that are, or contain, a convolution (in order)."""
    modules = dict(handle.module.named_modules())
    return [name for name in handle.layers if name in modules and _has_conv(modules[name])]


def _default_layer(handle: ModelHandle) -> str | None:
    """The handle's own CAM layer, else the last convolutional one among its layers."""
    if handle.cam_layer is not None:
        return handle.cam_layer
    convs = conv_layers(handle)
    return convs[-1] if convs else None


@contextmanager
def grid_view(layer: nn.Module, grid: TokenGrid | None) -> Iterator[nn.Module]:
    """The module CAM reads: ``layer`` itself, or for a token layer a grid proxy on its output.

    A token layer's output ``(B, T, D)`` is passed through an identity module as a
    ``(B, D, h, w)`` grid and mapped back (class tokens untouched), so the model computes
    exactly what it did and captum sees a spatial layer. The hook is removed on exit.
    """
    if grid is None:
        yield layer
        return
    proxy = nn.Identity()
    hook = layer.register_forward_hook(lambda _m, _i, out: grid.from_grid(proxy(grid.to_grid(out)), out))
    try:
        yield proxy
    finally:
        hook.remove()


class CamOptions(ExplainerOptions):
    """Options of every CAM method."""

    #: The convolutional layer to explain; ``None``: the last one among the model's layers.
    layer: str | None = None


class _CamBase(Explainer):
    """Shared capability check and ``layer`` option of the CAM methods."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        tasks=Explainer.capabilities.tasks, modalities=frozenset({"image"}), needs_layer=True)
    Options = CamOptions

    @classmethod
    def why_not(cls, handle: ModelHandle) -> str | None:
        """Also needs a convolutional layer among ``handle.layers`` (said first: the most useful reason)."""
        if handle.task in cls.capabilities.tasks and _default_layer(handle) is None:
            named = ", ".join(handle.layers) or "none"
            return (f"{cls.name} needs a convolutional layer; {handle.name} has none "
                    f"among its layers ({named})")
        return super().why_not(handle)

    def resolve(self, options: Any) -> dict[str, Any]:
        """Check ``layer`` (an unknown name lists the valid ones) and keep the method's own options."""
        name = options.layer or _default_layer(self.handle)
        assert name is not None  # why_not refused a handle without one
        layer = self.handle.get_layer(name)  # an unknown name lists the valid ones
        self._grid = self.handle.layer_reshapes.get(name)
        if self._grid is None and not _has_conv(layer):
            convs = [n for n, m in self.handle.module.named_modules() if isinstance(m, _ConvNd)]
            raise DataError(f"{self.name} needs a convolutional layer; {name} "
                            f"({type(layer).__name__}) has no convolution; convolutional layers: "
                            f"{', '.join(convs)}")
        self._layer = layer
        return {**options.model_dump(exclude={"target"}), "layer": name}


@register_explainer("grad-cam")
class GradCam(_CamBase):
    """Gradient-weighted class activation map (Selvaraju et al. 2017), upsampled to the input.

    Paper: https://arxiv.org/abs/1610.02391. captum's ``LayerGradCam`` with ReLU on the
    map, then ``LayerAttribution.interpolate`` to the input's height and width. Options:
    ``layer``, ``interpolate`` (``bilinear`` default, or ``nearest``). Every input channel
    carries the same map, so the result has the input's shape.

    Examples
    --------
    >>> from xai.datasets import load_dataset
    >>> from xai.explain import create_explainer
    >>> from xai.zoo import load_model
    >>> lenet, digits = load_model("lenet"), load_dataset("digits")
    >>> create_explainer("grad-cam", lenet, layer="conv2").explain(digits.head(4)).attributions.shape
    (4, 1, 32, 32)
    """

    class Options(CamOptions):
        """Grad-CAM's options."""

        #: How the layer's map is upsampled to the input.
        interpolate: Literal["bilinear", "nearest"] = "bilinear"

    paper = "https://arxiv.org/abs/1610.02391"

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Grad-CAM maps for one batch, ``(B, C, H, W)`` like ``x``."""
        with grid_view(self._layer, self._grid) as layer:
            method = LayerGradCam(self.handle.forward_target, layer)
            cam = method.attribute(x, additional_forward_args=(target,), relu_attributions=True)  # (B, 1, h, w)
        up = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), self.options["interpolate"])  # (B, 1, H, W)
        return up.expand_as(x)


@register_explainer("guided-grad-cam")
class GuidedGradCam(_CamBase):
    """Guided backpropagation times the Grad-CAM map (Selvaraju et al. 2017).

    Paper: https://arxiv.org/abs/1610.02391. captum's ``GuidedGradCam`` (nearest
    upsampling of the layer map); guided backprop hooks the model's ReLU modules for the
    call only. Options: ``layer``.
    """

    paper = "https://arxiv.org/abs/1610.02391"

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Guided Grad-CAM attributions for one batch, same shape as ``x``."""
        with grid_view(self._layer, self._grid) as layer, quiet_hook_warnings():
            method = CaptumGuidedGradCam(TargetModule(self.handle), layer)
            return method.attribute(x, additional_forward_args=(target,))
