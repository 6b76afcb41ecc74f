"""Plain forward-hook helpers the explainer tests use as an independent reference."""

from __future__ import annotations

import torch


def hooked_output(module: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's output for ``x``, with a plain forward hook (independent of the code under test)."""
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
    try:
        with torch.no_grad():
            module.eval()
            module(x)
    finally:
        handle.remove()
    return seen[0]


def no_hooks(module: torch.nn.Module) -> bool:
    """Whether no forward, forward-pre or backward hook is left on any submodule."""
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
               for m in module.modules())
