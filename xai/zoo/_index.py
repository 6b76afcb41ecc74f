"""Zoo metadata without torch: the model registry's lazy table and one row per entry.

The entries themselves (``register_model(ZooEntry(...))`` next to each architecture) stay
the one source of truth. ``xai/zoo/_table.py`` is generated from them by
``python -m xai.zoo._index`` and holds what listing the zoo needs (name, family, task,
data, headline metric and floor, parameter count, the module that registers the entry),
so ``xai zoo list``, CLI choices and ``--help`` never build a model or import torch.
``tests/test_imports.py`` regenerates the rows and compares them with the file.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xai._registry import Registry
from xai.errors import UnknownNameError
from xai.zoo._table import ENTRY_TABLE

if TYPE_CHECKING:
    from xai.zoo._entry import ZooEntry

#: The modules that register the built-in entries (the generator imports each).
FAMILY_MODULES: tuple[str, ...] = tuple(f"xai.zoo.{m}" for m in (
    "bert", "cnn", "decoder", "detection", "diffusion", "generative", "multimodal", "protonet", "rl", "rnn",
    "segmentation", "seq2seq", "shortcut", "tabular", "text", "tinyml", "transformer", "vilt", "vision", "word2vec",
))

MODELS: Registry[ZooEntry] = Registry("model", lazy={n: row["module"] for n, row in ENTRY_TABLE.items()})

#: entry name -> the module whose import registered it (filled by ``register_model``).
REGISTERED_BY: dict[str, str] = {}


@dataclass(frozen=True)
class EntryInfo:
    """What the tool can say about a zoo entry without building it (a row of the table)."""

    name: str
    module: str
    family: str
    task: str
    modality: str
    dataset: str
    metric: str
    floor: float
    higher_is_better: bool
    description: str
    params: int
    uses: tuple[str, ...]
    pretrained_available: str | None
    """``"module:function"`` telling whether a pretrained entry's package is installed (torch-free)."""

    def meets_floor(self, value: float) -> bool:
        """Whether a headline value reaches this entry's floor."""
        return value >= self.floor if self.higher_is_better else value <= self.floor


def list_models(pattern: str = "*") -> list[str]:
    """Zoo entry names matching a shell-style pattern (``"cnn*"``), without importing any entry."""
    return MODELS.names(pattern)


def entry_info(name: str) -> EntryInfo:
    """The row of entry ``name``: from the table, or from the entry when it is registered only at run time."""
    row = ENTRY_TABLE.get(name)
    if row is not None:
        return EntryInfo(name=name, **{**row, "uses": tuple(row["uses"])})
    entry = MODELS.registered().get(name)
    if entry is None:
        raise UnknownNameError("model", name, MODELS.names())
    return EntryInfo(name=name, **info_row(entry))


def pretrained_check(name: str) -> Callable[[], bool] | None:
    """``available()`` of a pretrained entry, ``None`` for an entry trained here; imports no torch for the table's."""
    entry = MODELS.registered().get(name)
    if entry is not None:  # already built: ask it
        return entry.pretrained.available if entry.pretrained is not None else None
    row = ENTRY_TABLE.get(name)
    if row is None or row["pretrained_available"] is None:
        return None
    module, _, attr = row["pretrained_available"].partition(":")
    check: Callable[[], bool] = getattr(importlib.import_module(module), attr)
    return check


def info_row(entry: ZooEntry) -> dict[str, Any]:
    """The table row of a registered entry (builds the module once to count its parameters)."""
    available = entry.pretrained.available if entry.pretrained is not None else None
    return {
        "module": REGISTERED_BY.get(entry.name, ""),
        "family": entry.family,
        "task": entry.task,
        "modality": entry.modality,
        "dataset": entry.dataset,
        "metric": entry.metric,
        "floor": entry.floor,
        "higher_is_better": entry.higher_is_better,
        "description": entry.description,
        "params": sum(p.numel() for p in entry.build().parameters()),
        "uses": list(entry.uses),
        "pretrained_available": f"{available.__module__}:{available.__qualname__}" if available else None,
    }


def build_table() -> dict[str, dict[str, Any]]:
    """Rows of every built-in entry, recomputed from the registrations (imports torch)."""
    for module in FAMILY_MODULES:
        importlib.import_module(module)
    entries = MODELS.registered()
    return {name: info_row(entries[name]) for name in sorted(entries) if REGISTERED_BY.get(name) in FAMILY_MODULES}


def _literal(value: Any, indent: int) -> str:
    """A Python literal for a table value; long strings wrap into implicit concatenation."""
    if isinstance(value, str):
        if len(value) + indent <= 100:
            return json.dumps(value)
        chunks = textwrap.wrap(value, 100 - indent, drop_whitespace=False)
        pad = " " * (indent + 4)
        return "(\n" + "\n".join(pad + json.dumps(c) for c in chunks) + "\n" + " " * indent + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v, indent) for v in value) + "]"
    return repr(value)


def render_table(rows: dict[str, dict[str, Any]]) -> str:
    """The source of ``xai/zoo/_table.py`` for ``rows`` (one field per line, fields sorted)."""
    lines = ['"""Generated by ``python -m xai.zoo._index`` from the zoo registrations; do not edit."""', "",
             "from typing import Any", "", "ENTRY_TABLE: dict[str, dict[str, Any]] = {"]
    for name in sorted(rows):
        lines.append(f"    {json.dumps(name)}: {{")
        lines += [f"        {json.dumps(k)}: {_literal(v, 8)}," for k, v in sorted(rows[name].items())]
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Regenerate ``xai/zoo/_table.py`` (``--check``: exit 1 when it is stale)."""
    # run as __main__, this file is a second copy of the module: use the one the entries register into
    index = importlib.import_module("xai.zoo._index")
    assert index.__file__ is not None  # a source module, not a namespace package
    path = Path(index.__file__).with_name("_table.py")
    text = index.render_table(index.build_table())
    if "--check" in sys.argv[1:]:
        stale = path.read_text(encoding="utf-8") != text
        print(f"{path}: {'stale; run python -m xai.zoo._index' if stale else 'up to date'}")
        raise SystemExit(1 if stale else 0)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({text.count(chr(10))} lines)")


if __name__ == "__main__":
    main()
