"""Repository-wide pytest settings: what the doctest run over ``xai/`` leaves out, and its zoo.

pyproject.toml runs ``--doctest-modules`` over ``tests`` and ``xai``, which imports every
module under ``xai/`` to read its docstrings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.doctest import DoctestItem

REPO = Path(__file__).resolve().parent

# xai/__main__.py runs the CLI when imported (``python -m xai``); it has no docstring examples.
collect_ignore = ["xai/__main__.py"]


@pytest.fixture(autouse=True)
def _doctests_read_the_committed_zoo(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Examples that call ``load_model("lenet")`` read the committed zoo, whatever $XAI_ZOO_DIR or the cwd."""
    if isinstance(request.node, DoctestItem):
        monkeypatch.setenv("XAI_ZOO_DIR", str(REPO / "zoo"))
