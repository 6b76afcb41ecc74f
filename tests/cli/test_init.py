from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from xai.audit import load_spec
from xai.cli import app

from ..conftest import ZOO

runner = CliRunner()


def test_init_scaffolds_and_refuses_to_overwrite(tmp_path):
    repo = tmp_path / "repo"
    first = runner.invoke(app, ["init", str(repo)])
    assert first.exit_code == 0, first.output
    for rel in ("audits/sample.toml", ".github/workflows/xai-audit.yml", "zoo/.gitkeep",
                "reports/baselines/.gitkeep"):
        assert (repo / rel).is_file(), rel
    spec = load_spec(repo / "audits" / "sample.toml")
    assert spec.gate and spec.model.name == "adult-mlp"
    workflow = yaml.safe_load((repo / ".github/workflows/xai-audit.yml").read_text())
    steps = workflow["jobs"]["audit"]["steps"]
    runs = " ".join(s.get("run", "") for s in steps)
    assert "pip install" in runs and "xai check audits/" in runs and "--junit" in runs and "--summary" in runs
    upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload and upload[0]["with"]["path"] == "reports/" and upload[0]["if"] == "always()"

    (repo / "audits" / "sample.toml").write_text("# mine\n")
    again = runner.invoke(app, ["init", str(repo)])
    assert again.exit_code == 2 and "refusing to overwrite" in again.stderr
    assert (repo / "audits" / "sample.toml").read_text() == "# mine\n"
    forced = runner.invoke(app, ["init", str(repo), "--force", "--json"])
    assert forced.exit_code == 0
    assert str(repo / "audits" / "sample.toml") in json.loads(forced.stdout)["overwritten"]
    assert load_spec(repo / "audits" / "sample.toml").gate


@pytest.mark.slow
def test_scaffolded_repo_passes_xai_check(tmp_path):
    runner.invoke(app, ["init", str(tmp_path)])
    done = subprocess.run([sys.executable, "-m", "xai", "check", "-q", "--device", "cpu", "--zoo-dir", str(ZOO)],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("PASS: 2 gates passed across 1 audit")
    assert (tmp_path / "reports" / "index.html").is_file()
