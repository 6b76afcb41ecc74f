"""The trained zoo's layout on disk (``<zoo>/<name>/weights.safetensors`` + ``card.json``), torch-free.

``xai zoo list`` and ``xai zoo card`` read cards through these without importing torch;
training and loading weights live in :mod:`xai.zoo._store`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from xai.errors import ModelLoadError
from xai.zoo._index import pretrained_check

WEIGHTS_FILE = "weights.safetensors"
CARD_FILE = "card.json"
ZOO_ENV = "XAI_ZOO_DIR"


def zoo_root(zoo_dir: str | Path | None = None) -> Path:
    """Where trained entries live: ``zoo_dir`` > ``$XAI_ZOO_DIR`` > ``./zoo``."""
    return Path(zoo_dir or os.environ.get(ZOO_ENV) or "zoo")


def entry_dir(name: str, zoo_dir: str | Path | None = None) -> Path:
    """Folder of one trained entry."""
    return zoo_root(zoo_dir) / name


def is_trained(name: str, zoo_dir: str | Path | None = None) -> bool:
    """Whether weights and a card exist for ``name`` (pretrained entries: whether their package is installed)."""
    available = pretrained_check(name)  # from the lazy table: no model module is imported
    if available is not None:
        return available()
    folder = entry_dir(name, zoo_dir)
    return (folder / WEIGHTS_FILE).is_file() and (folder / CARD_FILE).is_file()


def read_card(name: str, zoo_dir: str | Path | None = None) -> dict[str, Any]:
    """The model card of a trained entry."""
    path = entry_dir(name, zoo_dir) / CARD_FILE
    if not path.is_file():
        root = zoo_root(zoo_dir)  # the hint trains into the folder that was searched
        where = "" if root == Path("zoo") else f" --zoo-dir {root}"
        raise ModelLoadError(f"zoo entry {name!r} has no card at {path}; train it with `xai zoo train {name}{where}`")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path} is not valid JSON: {exc}") from None
