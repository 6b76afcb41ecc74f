"""``[predictions]`` specs: xai check gates any system's outputs with baselines, bootstrap tolerance, JUnit, summary."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from typer.testing import CliRunner

from xai.audit import load_spec, parse_spec
from xai.cli import app
from xai.errors import SpecError

runner = CliRunner()

SPEC = """\
title = "Loan approvals (any system's predictions)"
seed = 0

[predictions]
path = "../data/loans.csv"      # relative to this spec's folder
y_true = "repaid"
score = "score"
threshold = 0.5
sensitive = ["sex", "age"]
n_boot = 200

[[gate]]
metric = "accuracy"
op = ">="
value = 0.6

[[gate]]
metric = "fairness.group-metrics.sex.demographic_parity_difference"
op = "<="
regression = true
tolerance = 0.02

[[gate]]
metric = "equalized_odds_difference"
op = "<="
regression = true
tolerance = 0.02
"""


def loans(seed: int = 0, n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "age": rng.choice(["<40", "40+"], n),
                          "repaid": rng.integers(0, 2, n)})
    frame["score"] = np.clip(0.35 * frame["repaid"] + 0.65 * rng.random(n), 0, 1).round(4)
    return frame


@pytest.fixture()
def project(tmp_path):
    (tmp_path / "audits").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "audits" / "loans.toml").write_text(SPEC)
    frame = loans()
    frame.to_csv(tmp_path / "data" / "loans.csv", index=False)
    return tmp_path, frame


def check(cwd: Path, *args: str):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(app, ["check", *args])
    finally:
        os.chdir(old)


def test_check_passes_on_its_baseline_and_fails_on_a_planted_regression(project):
    folder, frame = project
    written = check(folder, "audits", "--update-baseline", "--json")
    assert written.exit_code == 0, written.output
    baseline = json.loads((folder / "reports" / "baselines" / "loans.json").read_text())
    pred = (frame["score"] >= 0.5).astype(int)
    dp = demographic_parity_difference(frame["repaid"], pred, sensitive_features=frame["sex"])
    assert baseline["metrics"]["fairness.group-metrics.sex.demographic_parity_difference"] == pytest.approx(dp)
    for column in ("sex", "age"):
        eo = equalized_odds_difference(frame["repaid"], pred, sensitive_features=frame[column])
        assert baseline["metrics"][f"fairness.group-metrics.{column}.equalized_odds_difference"] == pytest.approx(eo)
    assert baseline["metrics"]["accuracy"] == pytest.approx(float((pred == frame["repaid"]).mean()))

    passed = check(folder, "audits", "--junit", "junit.xml", "--summary", "summary.md")
    assert passed.exit_code == 0, passed.output
    assert "PASS: 3 gates passed across 1 audit" in passed.stdout
    junit = (folder / "junit.xml").read_text()
    assert junit.count("<testcase") == 3 and "<failure" not in junit
    assert "Loan approvals" in (folder / "summary.md").read_text()

    # the system changes: women now need a higher score (a planted regression in the file, not the spec)
    worse = frame.copy()
    worse.loc[worse["sex"] == "F", "score"] = (worse.loc[worse["sex"] == "F", "score"] - 0.15).clip(0, 1)
    worse.to_csv(folder / "data" / "loans.csv", index=False)
    failed = check(folder, "audits", "--junit", "junit.xml", "--json")
    assert failed.exit_code == 1, failed.output
    document = json.loads(failed.stdout)
    failing = {g["metric"] for g in document["audits"][0]["gates"] if not g["passed"]}
    assert "fairness.group-metrics.sex.demographic_parity_difference" in failing
    assert "<failure" in (folder / "junit.xml").read_text()


def test_relative_paths_resolve_against_the_spec_folder(project, tmp_path):
    folder, _ = project
    spec = load_spec(folder / "audits" / "loans.toml")
    assert spec.predictions is not None and spec.model is None
    assert Path(spec.predictions.path).resolve() == (folder / "data" / "loans.csv").resolve()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = check(elsewhere, str(folder / "audits" / "loans.toml"), "--update-baseline", "-q")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("text", "said"), [
    ('title = "x"\n[model]\nname = "lenet"\n[predictions]\npath = "p.csv"\ny_true = "y"\ny_pred = "p"\n'
     'sensitive = ["s"]\n', "not both"),
    ('title = "x"\n', "give a [model] to audit, or [predictions]"),
    ('title = "x"\n[predictions]\npath = "p.csv"\ny_true = "y"\ny_pred = "p"\nscore = "s"\nsensitive = ["s"]\n',
     "exactly one of `y_pred` or `score`"),
    ('title = "x"\nexplain = []\n[predictions]\npath = "p.csv"\ny_true = "y"\ny_pred = "p"\nsensitive = ["s"]\n',
     "[explain] needs a model"),
    ('title = "x"\n[predictions]\npath = "p.csv"\ny_true = "y"\ny_pred = "p"\nsensitive = []\n', "sensitive"),
])
def test_bad_prediction_specs_are_one_line(text, said):
    with pytest.raises(SpecError, match=said.replace("[", r"\[").replace("]", r"\]")):
        parse_spec(text)


def test_a_missing_column_fails_with_exit_2_before_any_report(project):
    folder, _ = project
    (folder / "audits" / "loans.toml").write_text(SPEC.replace('y_true = "repaid"', 'y_true = "paid"'))
    result = check(folder, "audits", "--update-baseline")
    assert result.exit_code == 2
    assert "unknown column in loans.csv 'paid'; known: age, repaid, score, sex" in result.stderr
    assert not (folder / "reports" / "index.html").exists()


def test_check_refuses_a_missing_data_file_before_any_audit_runs(project):
    folder, _ = project
    (folder / "audits" / "a.toml").write_text('title = "a"\n[model]\nname = "adult-mlp"\n[data]\nname = "adult"\n')
    (folder / "audits" / "loans.toml").write_text(SPEC.replace("loans.csv", "loan.csv"))
    result = check(folder, "audits")
    assert result.exit_code == 2
    assert "loans.toml: [predictions] path: no such file or folder: audits/../data/loan.csv" in result.stderr
    assert not (folder / "reports").exists()  # the first spec's model never ran


@pytest.mark.parametrize(("text", "said"), [
    ('title = "x"\n[model]\nname = "lenet"\n[data]\nname = "digits"\npath = "p"\n', "not both"),
    ('title = "x"\n[model]\nname = "lenet"\n[data]\nlabel = "y"\n', "`label` applies to your own data: set `path`"),
    ('title = "x"\n[model]\nname = "lenet"\n[data]\npath = "p"\nsplit = "train"\n', "`split` applies to bundled"),
    ('title = "x"\n[model]\nname = "lenet"\n[data]\npath = "p"\nsize = 0\n', "`size` must be positive"),
    ('title = "x"\n[model]\nname = "lenet"\n[data]\npath = "p"\npreprocess = "os.system"\n', "preprocess"),
])
def test_bad_data_sections_are_one_line(text, said):
    with pytest.raises(SpecError, match=re.escape(said)):
        parse_spec(text)
