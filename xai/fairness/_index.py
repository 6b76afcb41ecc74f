"""The probe registry and its lazy table (torch-free: listing names imports no probe).

``@register_probe`` in each probe module is the definition; the table of which module registers
which name is read from those lines (``tests/test_imports.py`` checks they agree).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xai._registry import Registry, scan_registrations

if TYPE_CHECKING:
    from xai.fairness._base import Probe

#: name -> "module:class" of every built-in probe, read from the ``@register_probe`` lines of the
#: probe modules (a new probe is its decorated class: no table to edit).
PROBE_TABLE: dict[str, str] = scan_registrations("xai.fairness", "register_probe")

PROBES: Registry[type[Probe]] = Registry("probe", lazy=PROBE_TABLE)
