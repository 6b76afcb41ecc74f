from __future__ import annotations

from pathlib import Path

import pytest

from xai.datasets import load_dataset
from xai.zoo import load_model

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "zoo"


@pytest.fixture(autouse=True)
def _committed_zoo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees the committed zoo, whatever the working directory."""
    monkeypatch.setenv("XAI_ZOO_DIR", str(ZOO))


@pytest.fixture(scope="session")
def lenet():
    return load_model("lenet", zoo_dir=ZOO)


@pytest.fixture(scope="session")
def adult_mlp():
    return load_model("adult-mlp", zoo_dir=ZOO)


@pytest.fixture(scope="session")
def digits_test():
    return load_dataset("digits", "test")


@pytest.fixture(scope="session")
def adult_test():
    return load_dataset("adult", "test")
