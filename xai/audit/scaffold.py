"""``xai init --model/--predictions``: a spec that audits the user's own model or predictions, gated at today's values.

The audit runs once now; its gates are today's numbers plus a margin (accuracy may drop by
``margin``, each disparity may grow by ``margin``), and a regression gate compares every
later run with the baseline written now. ``xai check audits/`` then passes on the day it is
scaffolded and fails when the model, the data or the predictions get worse.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xai.audit.spec import AuditSpec, DataSpec, ModelSpec, PredictionsSpec, parse_spec, safe_slug

if TYPE_CHECKING:
    import torch

    from xai.audit.runner import AuditResult

__all__ = ["Scaffold", "scaffold_audit"]

#: Disparities gated per sensitive column (``<=`` today's value plus the margin), when the audit has them.
GATED_DISPARITIES = ("demographic_parity_difference", "equalized_odds_difference")


@dataclass(frozen=True)
class Scaffold:
    """The spec's text (validated), where it goes, and the audit that set its gates."""

    slug: str
    spec_text: str
    result: AuditResult
    gates: tuple[tuple[str, str, float], ...]


def _relative(path: str, folder: Path) -> str:
    """``path`` (as the user typed it, from the working directory) as seen from ``folder`` (the spec's)."""
    return Path(os.path.relpath(Path(path).absolute(), folder.absolute())).as_posix()


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def _table(name: str, keys: dict[str, Any]) -> str:
    lines = [f"[{name}]"] + [f"{k} = {_toml(v)}" for k, v in keys.items() if v is not None and v != []]
    return "\n".join(lines) + "\n"


def scaffold_audit(folder: Path, *, name: str, model: ModelSpec | None = None, data: DataSpec | None = None,
                   predictions: PredictionsSpec | None = None, margin: float = 0.05, seed: int = 0,
                   device: torch.device | None = None, zoo_dir: str | Path | None = None,
                   trust_pickle: bool = False) -> Scaffold:
    """Run the user's audit once and write its spec for ``folder`` (``<repo>/audits``), gated at today's values.

    Paths given relative to the working directory are rewritten relative to ``folder``, as
    a spec's paths are read. Raises what the audit raises (bad input: one line, exit 2)
    before anything is written.
    """
    from xai.audit.runner import run_audit

    slug = safe_slug(name)
    sections: list[str] = []
    if predictions is not None:
        p = predictions.model_copy(update={"path": _relative(predictions.path, folder)})
        sections.append(_table("predictions", p.model_dump(exclude_defaults=True) | {"path": p.path}))
        spec = AuditSpec(title=name, predictions=predictions, seed=seed)  # run from here: the paths as typed
    else:
        assert model is not None and data is not None
        m = model if model.weights is None else model.model_copy(update={"weights": _relative(model.weights, folder)})
        d = data
        if data.path is not None:
            d = data.model_copy(update={"path": _relative(data.path, folder),
                                        "side": _relative(data.side, folder) if data.side else None})
        sections.append(_table("model", m.model_dump(exclude_none=True)))
        sections.append(_table("data", d.model_dump(exclude_defaults=True)))
        spec = AuditSpec(title=name, model=model, data=data, explain=[],
                         probe=[{"name": "group-metrics"}], seed=seed)  # type: ignore[list-item]
    result = run_audit(spec, slug=slug, spec_path=str(folder / f"{slug}.toml"), device=device,
                       zoo_dir=zoo_dir, trust_pickle=trust_pickle)
    if model is not None and result.model.modality in ("image", "tabular"):
        sections.append('[[explain]]\nmethod = "integrated-gradients"\nsamples = 8\n')
    if model is not None:
        sections.append('[[probe]]\nname = "group-metrics"\n')
    gates = _gates(result.metrics(), margin)
    text = _render(name, seed, sections, gates, margin)
    parse_spec(text, f"{folder / slug}.toml")  # what is written must load
    return Scaffold(slug=slug, spec_text=text, result=result, gates=tuple(gates))


def _gates(metrics: dict[str, float], margin: float) -> list[tuple[str, str, float]]:
    gates: list[tuple[str, str, float]] = []
    accuracy = metrics.get("accuracy")
    if accuracy is not None and math.isfinite(accuracy):
        gates.append(("accuracy", ">=", max(0.0, math.floor((accuracy - margin) * 1000) / 1000)))
    for key in sorted(metrics):
        if key.startswith("fairness.group-metrics.") and key.rsplit(".", 1)[-1] in GATED_DISPARITIES:
            value = metrics[key]
            if math.isfinite(value) and " x " not in key:
                gates.append((key, "<=", math.ceil((value + margin) * 1000) / 1000))
    return gates


def _render(title: str, seed: int, sections: list[str], gates: list[tuple[str, str, float]], margin: float) -> str:
    what = "predictions" if sections[0].startswith("[predictions") else "model and data"
    head = (f"# Written by `xai init`: an audit of your own {what}.\n"
            "# `xai check audits/` runs it and fails the build when a gate fails. The gates are the values\n"
            f"# measured when it was written, plus a margin of {margin:g}; the regression gate compares with\n"
            "# reports/baselines/<this file's name>.json (rewrite it on purpose: xai check --update-baseline).\n"
            "# Relative paths are relative to this file's folder.\n")
    body = [f"title = {_toml(title)}\nseed = {seed}\n", *sections]
    for metric, op, value in gates:
        body.append(f"[[gate]]\nmetric = {_toml(metric)}\nop = {_toml(op)}\nvalue = {value!r}\n")
    if any(m.endswith("equalized_odds_difference") for m, _, _ in gates):
        body.append('[[gate]]\nmetric = "equalized_odds_difference"\nop = "<="\nregression = true\n'
                    f"tolerance = {margin!r}\n")
    return head + "\n" + "\n".join(body)
