"""``xai init``: scaffold zoo/, audits/ (a sample spec, or one for your model or predictions), baselines, CI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from xai._io import atomic_write_text
from xai._text import safe_text
from xai.cli._common import (
    DeviceOpt,
    IdOpt,
    JsonOpt,
    LabelOpt,
    OwnDataOpt,
    SideOpt,
    TextOpt,
    TrustPickleOpt,
    WeightsOpt,
    ZooDirOpt,
    print_json,
    stdout_console,
)
from xai.errors import DataError

SAMPLE_SPEC = '''\
# An audit as code: `xai check audits/` runs it and fails the build when a gate fails.
# Reference: every metric name is listed by `xai check --json` (audits[].gates) and in
# reports/<audit>.json under "metrics"; a short name such as equalized_odds_difference
# stands for the worst value across the sensitive features.
title = "Adult income MLP (sample audit)"
seed = 0

[model]
name = "adult-mlp"              # a zoo name, a zoo/<name> folder, a TorchScript file, or pkg.mod:factory
# weights = "../zoo/my-model/weights.safetensors"   # relative paths: from this file's folder

[data]
name = "adult"                  # a bundled dataset
split = "test"
sensitive = ["sex", "race"]

[[explain]]
method = "integrated-gradients"
samples = 100
options = { steps = 32, baseline = "mean" }

[[probe]]
name = "group-metrics"

[[gate]]
metric = "accuracy"
op = ">="
value = 0.80

[[gate]]
metric = "fairness.group-metrics.sex.equalized_odds_difference"
op = "<="
value = 0.15

# Regression gates compare with reports/baselines/<audit>.json; write it on purpose with
#   xai check audits/ --update-baseline
# and commit it, then uncomment:
# [[gate]]
# metric = "equalized_odds_difference"
# op = "<="
# regression = true
# tolerance = 0.02
'''

WORKFLOW = '''\
# Written by `xai init`: runs the audits in audits/ and fails the build when a gate fails.
name: xai-audit

on:
  push:
  pull_request:

jobs:
  audit:
    runs-on: ubuntu-latest
    timeout-minutes: 30
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Install
        run: |
          python -m pip install --upgrade pip
          python -m pip install xai-audit
          if [ -f pyproject.toml ] || [ -f setup.py ]; then python -m pip install -e .; fi
      - name: xai check
        env:
          PYTHONPATH: ${{ github.workspace }}   # so that a pkg.mod:factory model in this repository imports
        run: xai check audits/ --out reports --junit reports/junit.xml --summary reports/summary.md
      - name: Upload the report
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: xai-audit-report
          path: reports/
'''

GITKEEP = ""

FILES: dict[str, str] = {
    "audits/sample.toml": SAMPLE_SPEC,
    ".github/workflows/xai-audit.yml": WORKFLOW,
    "zoo/.gitkeep": GITKEEP,
    "reports/baselines/.gitkeep": GITKEEP,
}


def init(
    directory: Annotated[Path, typer.Argument(help="Repository to scaffold.")] = Path("."),
    model: Annotated[str | None, typer.Option("--model", help="Your model (zoo name, TorchScript/.pt2 file or "
                                              "pkg.mod:factory): write a spec that audits it on --data.")] = None,
    weights: WeightsOpt = None,
    data: OwnDataOpt = None,
    label: LabelOpt = None,
    text: TextOpt = None,
    side: SideOpt = None,
    id_column: IdOpt = None,
    sensitive: Annotated[list[str] | None, typer.Option("--sensitive", "-s", help="Sensitive column; repeat or "
                                                        "comma-separate.")] = None,
    predictions: Annotated[str | None, typer.Option("--predictions", help="A .csv/.parquet of any system's "
                                                    "predictions: write a spec that gates them.")] = None,
    y_true: Annotated[str | None, typer.Option("--y-true", help="--predictions: column of labels.")] = None,
    y_pred: Annotated[str | None, typer.Option("--y-pred", help="--predictions: column of predictions.")] = None,
    score: Annotated[str | None, typer.Option("--score", help="--predictions: column of scores (>= --threshold "
                                              "is positive).")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Score threshold [default: 0.5].")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Audit name: audits/NAME.toml [default: the model's "
                                             "or the file's name].")] = None,
    margin: Annotated[float, typer.Option("--margin", min=0.0, max=1.0, help="Slack of the gates over today's "
                                          "values.")] = 0.05,
    device: DeviceOpt = "cpu",
    zoo_dir: ZooDirOpt = None,
    trust_pickle: TrustPickleOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that already exist.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Scaffold zoo/, audits/ (a sample spec), reports/baselines/ and a GitHub Actions workflow.

    With --model M --data D --sensitive S (or --predictions F --y-true ... --sensitive S) the
    spec audits your own model or predictions: it runs once now, and its gates are today's
    values plus --margin, with the baseline written beside it.
    """
    columns = [c.strip() for item in sensitive or [] for c in item.split(",") if c.strip()]
    files = dict(FILES)
    scaffold = None
    if model is not None or predictions is not None:
        scaffold = _scaffold(directory, model=model, weights=weights, data=data, label=label, text=text, side=side,
                             id_column=id_column, columns=columns, predictions=predictions, y_true=y_true,
                             y_pred=y_pred, score=score, threshold=threshold, name=name, margin=margin,
                             device=device, zoo_dir=zoo_dir, trust_pickle=trust_pickle)
        files = {rel: text for rel, text in FILES.items() if rel != "audits/sample.toml" and rel != "zoo/.gitkeep"}
        files[f"audits/{scaffold.slug}.toml"] = scaffold.spec_text
    elif any(v is not None for v in (weights, data, label, text, side, id_column, y_true, y_pred, score, threshold,
                                     name)) or columns:
        raise DataError("--data, --sensitive and the other audit flags go with --model or --predictions")
    # A folder that exists already needs no .gitkeep (and is not a conflict).
    targets = {directory / rel: text for rel, text in files.items()
               if not (rel.endswith(".gitkeep") and (directory / rel).parent.is_dir())}
    baseline = directory / "reports" / "baselines" / f"{scaffold.slug}.json" if scaffold is not None else None
    existing = [p for p in [*targets, *([baseline] if baseline else [])] if p.exists()]
    if existing and not force:
        raise DataError(f"refusing to overwrite {', '.join(str(p) for p in existing)} (pass --force)")
    for path in existing:
        if not path.is_file():
            raise DataError(f"{path} exists and is not a file")
    for path, content in targets.items():
        atomic_write_text(path, content)
    written = [str(p) for p in targets]
    if scaffold is not None:
        from xai.audit.gates import write_baseline

        written.append(str(write_baseline(scaffold.result, directory / "reports" / "baselines")))
    if json_out:
        print_json({"directory": str(directory), "written": written, "overwritten": [str(p) for p in existing],
                    **({"gates": [{"metric": m, "op": o, "value": v} for m, o, v in scaffold.gates]}
                       if scaffold is not None else {})})
        return
    console = stdout_console()
    for written_path in written:
        console.print(f"wrote {safe_text(written_path)}")
    if scaffold is not None:
        for metric, op, value in scaffold.gates:
            console.print(f"  gate {safe_text(metric)} {op} {value:g}")
        console.print(f"Next: cd {safe_text(directory)} && xai check audits/   "
                      "(then commit audits/, reports/baselines/ and .github/)")
        return
    console.print(f"Next: cd {safe_text(directory)} && xai check audits/ --update-baseline   "
                  "(then commit reports/baselines/)")


def _scaffold(directory: Path, *, model: str | None, weights: Path | None, data: str | None, label: str | None,
              text: str | None, side: Path | None, id_column: str | None, columns: list[str],
              predictions: str | None, y_true: str | None, y_pred: str | None, score: str | None,
              threshold: float | None, name: str | None, margin: float, device: str, zoo_dir: Path | None,
              trust_pickle: bool) -> Any:
    """Build and run the user's audit (the core: :func:`xai.audit.scaffold.scaffold_audit`)."""
    from xai._device import resolve_device
    from xai.audit import ModelSpec, PredictionsSpec
    from xai.audit.scaffold import scaffold_audit
    from xai.cli._common import check_device, data_spec

    if model is not None and predictions is not None:
        raise DataError("give --model (with --data) or --predictions, not both")
    if not columns:
        raise DataError("name the sensitive column(s) to gate with --sensitive")
    folder = directory / "audits"
    torch_device = resolve_device(check_device(device))
    if predictions is not None:
        if y_true is None or (y_pred is None) == (score is None):
            raise DataError("--predictions needs --y-true COL and one of --y-pred COL or --score COL")
        spec = PredictionsSpec(path=predictions, y_true=y_true, y_pred=y_pred, score=score, threshold=threshold,
                               sensitive=columns)
        return scaffold_audit(folder, name=name or Path(predictions).stem, predictions=spec, margin=margin,
                              device=torch_device)
    assert model is not None
    if data is None:
        raise DataError("--model needs --data: a bundled dataset's name, an image folder or a table")
    data_section = data_spec(data, sensitive=columns, label=label, text=text, side=side, id_column=id_column)
    # pkg.models:build -> models; a file -> its stem; a zoo name as it is
    model_name = model.split(":", 1)[0].rsplit(".", 1)[-1] if ":" in model else Path(model).stem
    return scaffold_audit(folder, name=name or model_name, margin=margin, device=torch_device, zoo_dir=zoo_dir,
                          trust_pickle=trust_pickle, data=data_section,
                          model=ModelSpec(name=model, weights=str(weights) if weights else None))
