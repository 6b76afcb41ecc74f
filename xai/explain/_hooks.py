"""Forward hooks on named submodules, registered on entry and always removed on exit."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import torch
from torch import nn

from xai.errors import DataError


class NamedForwardHooks:
    """Context manager base: ``self._hook`` on every module in ``names`` while inside the block.

    Subclasses implement ``_hook(module, inputs, output)`` and may override :meth:`_reset`
    (called on entry, before the hooks go in). The hooks are removed on exit, also when the
    block (or registering a later hook) raises.
    """

    what = "attention"  # the kind of module, for the error message

    def __init__(self, module: nn.Module, names: Sequence[str]) -> None:
        modules = dict(module.named_modules())
        missing = [n for n in names if n not in modules or n == ""]
        if missing:
            raise DataError(f"no {self.what} module named {', '.join(missing)} in the model")
        self._modules = [modules[n] for n in names]
        self.names = tuple(names)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        raise NotImplementedError

    def _reset(self) -> None:
        """Clear what the previous block recorded."""

    def __enter__(self) -> NamedForwardHooks:
        self._reset()
        try:
            for m in self._modules:
                self._handles.append(m.register_forward_hook(self._hook))
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._remove()

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
