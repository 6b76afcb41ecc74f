"""Zero-configuration layer choices: what a user would pick by hand for the common architectures.

- CAM layer: the last convolutional stage (timm's ``feature_info``; torchvision's last
  feature block); for ViT / DeiT the last block's first norm read as a patch grid (class and
  distillation tokens dropped), for Swin the last block's norm (already a grid, channels last).
- Attention modules for rollout: modules whose output is the attention probabilities
  ``(B, heads, T, T)``. timm's ViT attention is switched from the fused kernel to the explicit
  softmax (same numbers) so its ``attn_drop`` module outputs them.
- The token-embedding layer first among a text model's layers (layer IG reads it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn
from torch.nn.modules.conv import _ConvNd

from xai.zoo.handle import TokenGrid


@dataclass(frozen=True)
class Layers:
    """The layers chosen for one model."""

    layers: tuple[str, ...]
    cam_layer: str | None = None
    attention: tuple[str, ...] = ()
    reshapes: dict[str, TokenGrid] = field(default_factory=dict)


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, _ConvNd) for m in module.modules())


def _name_of(model: nn.Module, target: nn.Module) -> str | None:
    return next((n for n, m in model.named_modules() if m is target and n), None)


def last_conv_stage(model: nn.Module) -> str | None:
    """The last top-level (or ``features`` / ``trunk_output``) child that holds a convolution."""
    containers = [model]
    for attr in ("features", "trunk_output", "encoder"):
        child = getattr(model, attr, None)
        if isinstance(child, nn.Module):
            containers.append(child)
    best: str | None = None
    for container in containers:
        prefix = _name_of(model, container)
        for name, child in container.named_children():
            if _has_conv(child):
                best = f"{prefix}.{name}" if prefix else name
    if best is None:
        convs = [n for n, m in model.named_modules() if isinstance(m, _ConvNd)]
        best = convs[-1] if convs else None
    return best


def timm_layers(model: Any) -> Layers:
    """Layers of a timm model: stages from ``feature_info``; ViT/DeiT/Swin token layers as grids."""
    cam: str | None
    stages = tuple(str(f["module"]) for f in getattr(model, "feature_info", []) if f.get("module"))
    blocks = getattr(model, "blocks", None)
    if getattr(model, "patch_embed", None) is not None and isinstance(blocks, nn.Sequential) and len(blocks):
        if hasattr(model, "num_prefix_tokens"):  # ViT, DeiT, ... (B, T, D) tokens
            last = len(blocks) - 1
            cam = f"blocks.{last}.norm1"
            attention: list[str] = []
            for i, block in enumerate(blocks):
                attn = getattr(block, "attn", None)
                if attn is not None and hasattr(attn, "fused_attn") and isinstance(getattr(attn, "attn_drop", None),
                                                                                     nn.Module):
                    attn.fused_attn = False  # the explicit softmax: its attn_drop outputs the probabilities
                    attention.append(f"blocks.{i}.attn.attn_drop")
            prefix = int(model.num_prefix_tokens)
            # rollout reads the tokens after one CLS token as the patch grid
            keep = tuple(attention) if prefix == 1 and len(attention) == len(blocks) else ()
            return Layers(layers=(*stages, cam), cam_layer=cam, attention=keep,
                          reshapes={cam: TokenGrid(prefix=prefix)})
    if type(model).__name__.startswith("SwinTransformer") and hasattr(model, "layers"):
        stage = model.layers[-1]
        cam = f"layers.{len(model.layers) - 1}.blocks.{len(stage.blocks) - 1}.norm1"
        return Layers(layers=(*stages, cam), cam_layer=cam, reshapes={cam: TokenGrid(prefix=0, channels_last=True)})
    cam = stages[-1] if stages and _has_conv(dict(model.named_modules())[stages[-1]]) else last_conv_stage(model)
    layers = stages if cam in stages else (*stages, *(c for c in (cam,) if c))
    return Layers(layers=layers, cam_layer=cam)


def torchvision_layers(model: Any) -> Layers:
    """Layers of a torchvision classifier (ResNet's ``layer4``, ``features``, ViT and Swin grids)."""
    kind = type(model).__name__
    cam: str | None
    if kind == "VisionTransformer":
        blocks = list(model.encoder.layers.named_children())
        cam = f"encoder.layers.{blocks[-1][0]}.ln_1"
        return Layers(layers=(cam,), cam_layer=cam, reshapes={cam: TokenGrid(prefix=1)})
    if kind == "SwinTransformer":
        stage = len(model.features) - 1
        cam = f"features.{stage}.{len(model.features[stage]) - 1}.norm1"
        return Layers(layers=(cam,), cam_layer=cam, reshapes={cam: TokenGrid(prefix=0, channels_last=True)})
    stages = tuple(n for n in ("layer1", "layer2", "layer3", "layer4") if hasattr(model, n))
    cam = stages[-1] if stages else last_conv_stage(model)
    return Layers(layers=stages or ((cam,) if cam else ()), cam_layer=cam)
