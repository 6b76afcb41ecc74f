"""``xai check`` end to end: unfair vs fair models, JUnit, Markdown, baselines, exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import torch
from fairlearn.metrics import demographic_parity_difference
from torch import nn
from typer.testing import CliRunner

from xai.cli import app
from xai.datasets import load_dataset

runner = CliRunner()
ROWS = 3000


class SexRule(nn.Module):
    """Predicts '>50K' exactly when the row's one-hot ``sex=Male`` column is set: unfair by design."""

    def __init__(self, male: int) -> None:
        super().__init__()
        self.male = male

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, F) -> (B, 2)
        score = 4.0 * (x[:, self.male] - 0.5)
        return torch.stack([-score, score], dim=1)


class Constant(nn.Module):
    """Predicts '<=50K' for everyone: identical selection rate, TPR and FPR (all 0) in every group."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, F) -> (B, 2)
        return torch.stack([torch.ones(len(x)), torch.zeros(len(x))], dim=1) + 0 * x[:, :1]


def _save(module: nn.Module, path):
    torch.jit.script(module).save(str(path))
    return path


def _spec(path, model, gates: str, title: str = "t", samples: int = ROWS) -> None:
    path.write_text(f'title = "{title}"\nexplain = []\n[model]\nname = "{model}"\n'
                    f'[data]\nname = "adult"\nsamples = {samples}\nsensitive = ["sex", "race"]\n'
                    f'[[probe]]\nname = "group-metrics"\n' + gates)


DP_GATE = '[[gate]]\nmetric = "fairness.group-metrics.sex.demographic_parity_difference"\nop = "<="\nvalue = 0.1\n'
EO_GATE = '[[gate]]\nmetric = "equalized_odds_difference"\nop = "<="\nvalue = 0.1\n'


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    male = load_dataset("adult", "test").feature_names.index("sex=Male")
    return {"unfair": _save(SexRule(male), folder / "unfair.pt"), "fair": _save(Constant(), folder / "fair.pt")}


def check(*args: str):
    return runner.invoke(app, ["check", "--device", "cpu", *args])


def test_unfair_model_fails_its_gate_and_fair_one_passes(tmp_path, models):
    audits = tmp_path / "audits"
    audits.mkdir()
    _spec(audits / "unfair.toml", models["unfair"], DP_GATE + EO_GATE)
    _spec(audits / "fair.toml", models["fair"], DP_GATE + EO_GATE)
    out = tmp_path / "reports"
    result = check(str(audits / "unfair.toml"), "-o", str(out), "--json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    dp, eo = doc["audits"][0]["gates"]
    # SexRule's selection rate is 1 for men and 0 for women: DP difference exactly 1, as fairlearn says
    assert dp["value"] == pytest.approx(1.0) and not dp["passed"]
    assert not eo["passed"] and eo["value"] == pytest.approx(1.0)
    assert doc["passed"] is False and doc["verdict"].startswith("FAIL: 2 of 2 gates failed")

    fair = check(str(audits / "fair.toml"), "-o", str(out), "--json")
    assert fair.exit_code == 0, fair.output
    gates = json.loads(fair.stdout)["audits"][0]["gates"]
    assert [g["passed"] for g in gates] == [True, True]
    assert [g["value"] for g in gates] == [0.0, 0.0]


def test_gate_value_equals_fairlearn(tmp_path, models):
    from xai.audit import load_spec, run_audit

    _spec(tmp_path / "u.toml", models["unfair"], DP_GATE)
    result = run_audit(load_spec(tmp_path / "u.toml"), slug="u")
    data = load_dataset("adult", "test")
    from xai.audit import sample_rows

    data = sample_rows(data, ROWS, 0)
    y_pred = (data.x[:, data.feature_names.index("sex=Male")] > 0.5).long().numpy()
    expected = demographic_parity_difference(data.y.numpy(), y_pred, sensitive_features=data.groups["race"])
    assert result.metrics()["fairness.group-metrics.race.demographic_parity_difference"] == pytest.approx(expected)


def test_folder_junit_summary_and_verdict(tmp_path, models, monkeypatch):
    audits = tmp_path / "audits"
    audits.mkdir()
    _spec(audits / "a-unfair.toml", models["unfair"], DP_GATE + EO_GATE, samples=500)
    _spec(audits / "b-fair.toml", models["fair"], DP_GATE, samples=500)
    step = tmp_path / "step.md"
    step.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
    result = check(str(audits), "-o", str(tmp_path / "r"), "--junit", str(junit), "--summary", str(summary))
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines()[-1].startswith("FAIL: 2 of 3 gates failed across 2 audits")

    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 3 and root.get("tests") == "3" and root.get("failures") == "2"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"a-unfair", "b-fair"}
    failures = suites["a-unfair"].findall("testcase/failure")
    assert len(failures) == 2 and all("fails <= 0.1" in f.get("message") for f in failures)
    assert suites["b-fair"].find("testcase/failure") is None

    text = summary.read_text()
    assert text.count("| ❌ FAIL |") == 2 and text.count("| ✅ pass |") == 1
    assert step.read_text().startswith("earlier step\n") and "## xai check" in step.read_text()

    index = (tmp_path / "r" / "index.html").read_text()
    assert "✗ FAIL" in index and "✓ pass" in index
    page = (tmp_path / "r" / "a-unfair.html").read_text()
    assert 'class="gates"' in page
    saved = json.loads((tmp_path / "r" / "a-unfair.json").read_text())
    assert len(saved["gates"]) == 2 and "metrics" in saved


def test_update_baseline_then_regression(tmp_path, models):
    regress = '[[gate]]\nmetric = "demographic_parity_difference"\nop = "<="\nregression = true\ntolerance = 0.01\n'
    spec = tmp_path / "audits" / "m.toml"
    spec.parent.mkdir()
    _spec(spec, models["fair"], regress, samples=500)
    base = tmp_path / "baselines"
    args = (str(spec), "-o", str(tmp_path / "r"), "--baselines", str(base), "-q")
    missing = check(*args)
    assert missing.exit_code == 1 and not base.exists()  # nothing writes a baseline unasked
    written = check(*args, "--update-baseline")
    assert written.exit_code == 0, written.output
    stored = json.loads((base / "m.json").read_text())
    assert stored["metrics"]["fairness.group-metrics.sex.demographic_parity_difference"] == 0.0
    assert check(*args).exit_code == 0
    # the model gets unfairer: swap in the sex rule under the same baseline
    _spec(spec, models["unfair"], regress, samples=500)
    regressed = check(*args)
    assert regressed.exit_code == 1
    assert regressed.stdout.strip().startswith("FAIL: 1 of 1 gates failed")


def test_input_errors_exit_2(tmp_path, models):
    spec = tmp_path / "bad.toml"
    _spec(spec, models["fair"], '[[gate]]\nmetric = "no_such_metric"\nop = "<="\nvalue = 1\n', samples=200)
    unknown = check(str(spec), "-o", str(tmp_path / "r"))
    assert unknown.exit_code == 2
    assert "unknown metric 'no_such_metric'" in unknown.stderr and "accuracy" in unknown.stderr
    spec.write_text('title = "t"\n[model]\nname = "lenet"\n[[gate]]\nmetric = "accuracy"\nop = "~"\nvalue = 1\n')
    bad = check(str(spec))
    assert bad.exit_code == 2 and f"{spec}: gate.0.op:" in bad.stderr and "(line 6)" in bad.stderr
    assert check(str(tmp_path / "missing.toml")).exit_code == 2


def test_help_and_missing_default_folder(tmp_path, monkeypatch):
    for command in ("check", "init"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.stdout
    monkeypatch.chdir(tmp_path)
    result = check()
    assert result.exit_code == 2 and "no audits/ folder here" in result.stderr
