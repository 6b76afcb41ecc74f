"""The explainer registry and its lazy table (torch-free: listing names imports no method).

``@register_explainer`` in each family module is the definition; the table of which module
registers which name is read from those lines (``tests/test_imports.py`` checks that importing
the modules registers exactly these names).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xai._registry import Registry, scan_registrations

if TYPE_CHECKING:
    from xai.explain._base import Explainer

#: name -> "module:class" of every built-in explainer, read from the ``@register_explainer`` lines of
#: the family modules (a new method is its decorated class: no table to edit).
EXPLAINER_TABLE: dict[str, str] = scan_registrations("xai.explain", "register_explainer")

EXPLAINERS: Registry[type[Explainer]] = Registry("explainer", lazy=EXPLAINER_TABLE)
