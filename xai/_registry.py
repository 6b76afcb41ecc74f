"""A small generic registry used for models, explainers, probes and datasets (timm-style, lazy).

A registry knows every name up front from a table ``name -> "module"`` or
``name -> "module:attr"`` and imports the module that registers a name only when the
item is asked for (``get``). Listing names, CLI choices and ``--help`` text therefore
import nothing heavy; the items themselves are still registered by their decorators,
which stay the one place an item is defined (``tests/test_imports.py`` checks that the
tables match the registrations).
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Generic, TypeVar

from xai.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> item mapping filled by a decorator, with names known before their modules load.

    Parameters
    ----------
    kind
        What the items are, used in error messages ("model", "explainer", ...).
    lazy
        ``name -> "module"`` or ``name -> "module:attr"``: the module whose import registers
        ``name`` (and the attribute the item is bound to there, when it has one).
    """

    def __init__(self, kind: str, lazy: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = dict(lazy or {})

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers ``item`` under ``name`` (names are unique)."""

        def decorator(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = item
            return item

        return decorator

    def get(self, name: str) -> T:
        """Return the item registered as ``name`` (importing its module) or raise :class:`UnknownNameError`."""
        if name not in self._items and name in self._lazy:
            self._load(name)
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def _load(self, name: str) -> None:
        module = self._lazy[name].partition(":")[0]
        importlib.import_module(module)
        if name not in self._items:  # a stale table is a bug in the package, not the user's error
            raise RuntimeError(f"importing {module} did not register {self.kind} {name!r}")

    def load_all(self) -> None:
        """Import every module of the lazy table (registers everything)."""
        for name in self._lazy:
            if name not in self._items:
                self._load(name)

    @property
    def lazy_table(self) -> dict[str, str]:
        """A copy of the ``name -> "module[:attr]"`` table."""
        return dict(self._lazy)

    def registered(self) -> dict[str, T]:
        """The items registered so far (no import), by name."""
        return dict(self._items)

    def names(self, pattern: str = "*") -> list[str]:
        """Known names (registered or in the lazy table) matching a shell-style ``pattern``, sorted."""
        return sorted(n for n in {*self._items, *self._lazy} if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len({*self._items, *self._lazy})


def scan_registrations(package: str, decorator: str) -> dict[str, str]:
    """``name -> "module:Class"`` for every ``@decorator("name")`` class in ``package``'s modules.

    Reads the source text of the package's own modules (no import, a few milliseconds), so
    a new method is one decorated class in its module: no table to edit by hand. The
    decorator must stand directly above a top-level ``class`` statement with a literal name,
    as every built-in registration does (``tests/test_imports.py`` checks that importing the
    modules registers exactly these names).

    Examples
    --------
    >>> table = scan_registrations("xai.explain", "register_explainer")
    >>> table["saliency"]
    'xai.explain.gradient:Saliency'
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{package} is not a package")
    pattern = re.compile(rf'^@{re.escape(decorator)}\(\s*"([^"]+)"\s*\)\s*\n(?:@.*\n)*class\s+(\w+)', re.M)
    table: dict[str, str] = {}
    for folder in spec.submodule_search_locations:
        for path in sorted(Path(folder).glob("*.py")):
            text = path.read_text(encoding="utf-8")
            for name, cls in pattern.findall(text):
                if name in table:
                    raise ValueError(f"{name!r} is registered twice ({table[name]} and {path.stem}:{cls})")
                table[name] = f"{package}.{path.stem}:{cls}"
    return dict(sorted(table.items()))
