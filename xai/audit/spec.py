"""Audit specs: TOML files validated with pydantic.

Example (``audits/lenet.toml``)::

    title = "LeNet-5 on digits"
    [model]
    name = "lenet"
    [data]
    sensitive = ["ink"]
    [[explain]]
    method = "integrated-gradients"
    samples = 8
    options = { steps = 32 }
    [[probe]]
    name = "group-metrics"

Leaving out ``explain`` (or ``probe``) runs every registered method that applies to
the model; an empty list runs none.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xai.errors import SpecError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """Which model: a zoo name or folder, a TorchScript file, or a factory plus weights."""

    name: str = Field(min_length=1)
    weights: str | None = None
    trust_pickle: bool = False


class DataSpec(_Strict):
    """Which data: a bundled dataset (default: the model's own), split and groups."""

    name: str | None = None
    split: Literal["train", "test", "all"] = "test"
    samples: int | None = Field(default=None, gt=0)
    sensitive: list[str] = Field(default_factory=list)


class ExplainSpec(_Strict):
    """One attribution method and how many samples it explains."""

    method: str = Field(min_length=1)
    samples: int = Field(default=8, gt=0)
    target: Literal["predicted", "label"] | int = "predicted"
    options: dict[str, Any] = Field(default_factory=dict)


class ProbeSpec(_Strict):
    """One bias probe; ``sensitive`` defaults to the data's sensitive columns."""

    name: str = Field(min_length=1)
    sensitive: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class AuditSpec(_Strict):
    """A whole audit: model, data, explainers and probes."""

    title: str = Field(min_length=1)
    model: ModelSpec
    data: DataSpec = Field(default_factory=DataSpec)
    explain: list[ExplainSpec] | None = None
    probe: list[ProbeSpec] | None = None
    seed: int = 0


def parse_spec(text: str, source: str = "<spec>") -> AuditSpec:
    """Validate TOML ``text``; errors name ``source``, the key and what was expected."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: invalid TOML: {exc}") from None
    try:
        return AuditSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise SpecError(f"{source}: {key}: {first['msg']}{more}") from None


def load_spec(path: str | Path) -> AuditSpec:
    """Read and validate a spec file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"audit spec not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read ({exc})") from None
    return parse_spec(text, str(path))


def collect_spec_paths(paths: list[str]) -> list[Path]:
    """Expand files and folders (their ``*.toml``) into a sorted list of spec files."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            specs = sorted(path.glob("*.toml"))
            if not specs:
                raise SpecError(f"{path}: folder holds no *.toml audit spec")
            found.extend(specs)
        elif path.is_file():
            found.append(path)
        else:
            raise SpecError(f"audit spec not found: {path}")
    return found


def default_specs() -> list[tuple[str, AuditSpec]]:
    """The bundled default audits ``(slug, spec)``: what ``xai audit`` runs with no argument."""
    folder = resources.files("xai.audit").joinpath("defaults")
    specs = []
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".toml"):
            specs.append((item.name.removesuffix(".toml"),
                          parse_spec(item.read_text(encoding="utf-8"), f"xai/audit/defaults/{item.name}")))
    return specs
