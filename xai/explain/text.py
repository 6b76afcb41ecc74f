"""Token attributions for text models: layer methods on the token embeddings (captum).

Token ids are integers, so no gradient reaches the input; these methods attribute to the
*output of a layer* instead, by default the model's token-embedding module (the first of
``handle.layers`` for text models), and sum over the embedding dimension to give one
score per token ``(B, T)``. Padding gets 0 (its embedding is the same in the input and the
baseline).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from captum.attr import LayerGradientXActivation as CaptumLayerGxA
from captum.attr import LayerIntegratedGradients as CaptumLIG
from pydantic import Field
from torch import nn

from xai._method import Capabilities
from xai.errors import DataError
from xai.explain._base import Explainer, ExplainerOptions, register_explainer
from xai.zoo.handle import ModelHandle

__all__ = ["LayerGradientXActivation", "LayerIntegratedGradients", "layer_output", "token_baseline",
           "token_scores"]

BASELINES = ("pad", "mask")


def token_baseline(ids: torch.Tensor, kind: str, tokenizer: Any = None) -> torch.Tensor:
    """Reference token ids ``(B, T)``: every word replaced by ``[PAD]`` (id 0) or ``[MASK]``.

    Padding and the first token (``[CLS]`` by the text-model convention) are kept, and so
    are ``[SEP]``/``[CLS]`` wherever the tokenizer names them (``sep_id``, ``cls_id``).
    ``mask`` needs ``tokenizer.mask_id``.
    """
    if kind == "pad":
        fill = 0
    elif kind == "mask":
        mask_id = getattr(tokenizer, "mask_id", None)
        if mask_id is None:
            raise DataError("baseline 'mask' needs a tokenizer with a mask_id; use baseline=pad")
        fill = mask_id
    else:
        raise DataError(f"baseline must be one of {', '.join(BASELINES)}, got {kind!r}")
    keep = ids == 0  # (B, T) padding
    keep[:, 0] = True  # [CLS]
    for name in ("cls_id", "sep_id"):
        special = getattr(tokenizer, name, None)
        if isinstance(special, int):
            keep |= ids == special
    return torch.where(keep, ids, torch.full_like(ids, int(fill)))


def token_scores(attr: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Layer attributions ``(B, T, ...)`` summed over everything after the token axis -> ``(B, T)``."""
    if attr.ndim < 2 or tuple(attr.shape[:2]) != tuple(ids.shape):
        raise DataError(f"the layer's output {tuple(attr.shape)} is not per token; expected (B, T, ...) "
                        f"for ids {tuple(ids.shape)}")
    return attr.reshape(*attr.shape[:2], -1).sum(-1)


def layer_output(handle: ModelHandle, layer: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """The output of ``layer`` when the model runs on ``ids`` (no gradient)."""
    seen: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        with torch.no_grad():
            handle.module(ids)
    finally:
        hook.remove()
    if not seen or not isinstance(seen[0], torch.Tensor):
        raise DataError("the explained layer must output one tensor (B, T, ...)")
    return seen[0]


def forward_with_layer_output(handle: ModelHandle, layer: nn.Module, ids: torch.Tensor,
                              output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``handle.forward_target(ids, target)`` with ``layer``'s output replaced by ``output`` ``(B,)``."""
    hook = layer.register_forward_hook(lambda _m, _i, _out: output)
    try:
        with torch.no_grad():
            return handle.forward_target(ids, target)
    finally:
        hook.remove()


class _TokenLayerExplainer(Explainer):
    """Shared option handling: ``layer`` defaults to the model's first layer (the embeddings)."""

    class Options(ExplainerOptions):
        """Options of a token-layer method."""

        #: The layer whose output is attributed; ``None``: the model's first layer (the token embedding).
        layer: str | None = None

    capabilities: ClassVar[Capabilities] = Capabilities(
        tasks=Explainer.capabilities.tasks, modalities=frozenset({"text"}), needs_layer=True)
    input_grad = False  # integer ids cannot require grad

    def resolve(self, options: Any) -> dict[str, Any]:
        """Check ``layer`` (an unknown name lists the valid ones)."""
        layer = options.layer or self.handle.layers[0]
        self.handle.get_layer(layer)
        return {**options.model_dump(exclude={"target"}), "layer": layer}

    def _layer(self) -> nn.Module:
        return self.handle.get_layer(self.options["layer"])


@register_explainer("layer-integrated-gradients")
class LayerIntegratedGradients(_TokenLayerExplainer):
    """Integrated Gradients in the embedding space of a text model (Sundararajan et al. 2017).

    Paper: https://arxiv.org/abs/1703.01365. captum's ``LayerIntegratedGradients`` on
    ``layer`` (default: the token embedding), from the embeddings of a baseline sentence
    (``baseline``: ``pad``, every word replaced by ``[PAD]``, or ``mask``, by ``[MASK]``;
    ``[CLS]`` and padding kept) to those of the input, with ``steps`` (50) points; the
    attributions are summed over the embedding dimension to one score per token ``(B, T)``.
    Completeness: a sentence's scores add up to ``F(x) - F(baseline)``, both computed with
    the input's ids and padding mask and the layer's output set to the input's or the
    baseline's; the gap is kept as ``convergence_delta``.

    Examples
    --------
    >>> from xai.datasets import load_dataset
    >>> from xai.explain import create_explainer
    >>> from xai.zoo import load_model
    >>> explainer = create_explainer("layer-integrated-gradients", load_model("bert-mini"), steps=16)
    >>> result = explainer.explain(load_dataset("sentiment-text").head(4))
    >>> result.attributions.shape  # one score per token position (padded)
    (4, 16)
    >>> result.tokens[0][:6]
    ('[CLS]', 'tanisha', 'made', 'me', 'feel', 'glad')
    """

    class Options(_TokenLayerExplainer.Options):
        """Layer Integrated Gradients' options."""

        #: Every word replaced by ``[PAD]`` or by ``[MASK]`` (``[CLS]`` and padding kept).
        baseline: Literal["pad", "mask"] = "pad"
        steps: int = Field(default=50, ge=2)
        internal_batch_size: int | None = Field(default=None, gt=0)

    paper = "https://arxiv.org/abs/1703.01365"
    _last_delta: torch.Tensor | None = None

    def resolve(self, options: Any) -> dict[str, Any]:
        """Also: ``mask`` needs a tokenizer with a mask id."""
        if options.baseline == "mask" and getattr(getattr(self.handle.module, "tokenizer", None),
                                                  "mask_id", None) is None:
            raise DataError(f"baseline 'mask' needs {self.handle.name}.tokenizer.mask_id; use baseline=pad")
        return super().resolve(options)

    def baseline(self, ids: torch.Tensor) -> torch.Tensor:
        """The baseline ids of a batch ``(B, T)``."""
        return token_baseline(ids, self.options["baseline"], getattr(self.handle.module, "tokenizer", None))

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """One score per token ``(B, T)``; also records the completeness gap."""
        layer = self._layer()
        baseline = self.baseline(x)
        method = CaptumLIG(self.handle.forward_target, layer)
        attr = method.attribute(x, baselines=baseline, additional_forward_args=(target,),
                                n_steps=self.options["steps"],
                                internal_batch_size=self.options["internal_batch_size"])
        scores = token_scores(attr, x)  # (B, T)
        with torch.no_grad():
            f_x = self.handle.forward_target(x, target)  # (B,)
            start = layer_output(self.handle, layer, baseline)
            f_base = forward_with_layer_output(self.handle, layer, x, start, target)  # (B,)
        self._last_delta = scores.sum(1).detach() - (f_x - f_base)
        return scores

    def convergence(self) -> torch.Tensor | None:
        """Completeness gap of the last batch ``(B,)``."""
        return self._last_delta


@register_explainer("layer-gradient-x-activation")
class LayerGradientXActivation(_TokenLayerExplainer):
    """Gradient times activation at a layer of a text model, summed per token.

    Paper: https://arxiv.org/abs/1605.01713 (gradient x input, Shrikumar et al. 2016),
    through captum's ``LayerGradientXActivation`` on ``layer`` (default: the token
    embedding). One backward pass; the first-order term of the path that IG integrates.
    """

    paper = "https://arxiv.org/abs/1605.01713"

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """One score per token ``(B, T)``."""
        method = CaptumLayerGxA(self.handle.forward_target, self._layer())
        attr = method.attribute(x, additional_forward_args=(target,))
        return token_scores(attr, x)
