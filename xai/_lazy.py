"""Lazy package exports (PEP 562): ``from xai.zoo import load_model`` imports only what it names.

A package ``__init__`` lists ``name -> module`` and binds ``__getattr__``/``__dir__`` from
:func:`attach`; importing the package (or any of its submodules, which runs the package
first) then costs nothing, so ``import xai.fairness.metrics`` does not load every probe
and torch with them.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any


def attach(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` that import ``exports[name]`` on first use.

    A name that is not exported but is a submodule (``xai.zoo.tinyml``) is imported as well,
    as it would have been by the eager ``__init__`` this replaces.
    """

    def __getattr__(name: str) -> Any:
        module_name = exports.get(name)
        if module_name is None:
            if not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
                return importlib.import_module(f"{package}.{name}")
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_name), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__


def make_callable(package: str, target: str) -> None:
    """Make the module ``package`` callable as ``"module:function"`` (imported on the first call).

    ``xai.explain`` and ``xai.audit`` are both subpackages and the library's front-door
    functions: importing a subpackage rebinds the parent's attribute to the module, so the
    module itself forwards calls (``xai.explain(model, data)``) to :mod:`xai.api`, and
    ``xai.explain.EXPLAINERS`` keeps working.
    """
    module_name, _, attr = target.partition(":")

    class CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return getattr(importlib.import_module(module_name), attr)(*args, **kwargs)

    CallableModule.__call__.__doc__ = f"Call :func:`{module_name}.{attr}` (see its documentation)."
    sys.modules[package].__class__ = CallableModule
