"""``xai init``: scaffold zoo/, audits/ (a sample spec), reports/baselines/ and a CI workflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xai._io import atomic_write_text
from xai._text import safe_text
from xai.cli._common import JsonOpt, print_json, stdout_console
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
# weights = "zoo/my-model/weights.safetensors"

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
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that already exist.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Scaffold zoo/, audits/ (a sample spec), reports/baselines/ and a GitHub Actions workflow."""
    # A folder that exists already needs no .gitkeep (and is not a conflict).
    targets = {directory / rel: text for rel, text in FILES.items()
               if not (rel.endswith(".gitkeep") and (directory / rel).parent.is_dir())}
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise DataError(f"refusing to overwrite {', '.join(str(p) for p in existing)} (pass --force)")
    for path in existing:
        if not path.is_file():
            raise DataError(f"{path} exists and is not a file")
    for path, text in targets.items():
        atomic_write_text(path, text)
    written = [str(p) for p in targets]
    if json_out:
        print_json({"directory": str(directory), "written": written, "overwritten": [str(p) for p in existing]})
        return
    console = stdout_console()
    for written_path in written:
        console.print(f"wrote {safe_text(written_path)}")
    console.print(f"Next: cd {safe_text(directory)} && xai check audits/ --update-baseline   "
                  "(then commit reports/baselines/)")
