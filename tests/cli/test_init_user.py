"""``xai init --model/--predictions``: a spec of the user's own audit, gated at today's values plus a margin."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from safetensors.torch import save_file
from typer.testing import CliRunner

from tests.datasets import _user_models as models
from xai.audit import load_spec
from xai.cli import app

runner = CliRunner()


def invoke(cwd: Path, *args: str):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(app, list(args))
    finally:
        os.chdir(old)


def up(value: float, margin: float) -> float:
    """Today's disparity plus the margin, rounded up to 3 decimals (what the gate allows)."""
    return math.ceil((value + margin) * 1000) / 1000


def gates_of(spec_path: Path) -> dict[str, tuple[str, float | None]]:
    spec = load_spec(spec_path)
    return {g.metric if not g.regression else f"{g.metric} (regression)": (g.op, g.value) for g in spec.gate}


def test_init_predictions_gates_today_plus_margin_and_check_passes(tmp_path):
    rng = np.random.default_rng(4)
    n = 800
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "y": rng.integers(0, 2, n)})
    frame["p"] = np.where(rng.random(n) < 0.8, frame["y"], 1 - frame["y"])
    frame.to_csv(tmp_path / "preds.csv", index=False)
    done = invoke(tmp_path, "init", "repo", "--predictions", "preds.csv", "--y-true", "y", "--y-pred", "p",
                  "--sensitive", "sex", "--margin", "0.03", "--json")
    assert done.exit_code == 0, done.output
    written = json.loads(done.stdout)["written"]
    assert any(w.endswith("audits/preds.toml") for w in written)
    assert any(w.endswith("reports/baselines/preds.json") for w in written)
    gates = gates_of(tmp_path / "repo" / "audits" / "preds.toml")
    accuracy = float((frame["y"] == frame["p"]).mean())
    dp = demographic_parity_difference(frame["y"], frame["p"], sensitive_features=frame["sex"])
    eo = equalized_odds_difference(frame["y"], frame["p"], sensitive_features=frame["sex"])
    assert gates["accuracy"] == (">=", math.floor((accuracy - 0.03) * 1000) / 1000)
    assert gates["fairness.group-metrics.sex.demographic_parity_difference"] == ("<=", up(dp, 0.03))
    assert gates["fairness.group-metrics.sex.equalized_odds_difference"] == ("<=", up(eo, 0.03))
    assert gates["equalized_odds_difference (regression)"] == ("<=", None)
    spec = load_spec(tmp_path / "repo" / "audits" / "preds.toml")
    assert Path(spec.predictions.path).resolve() == (tmp_path / "preds.csv").resolve()  # relative to audits/
    check = invoke(tmp_path / "repo", "check", "audits", "-q")
    assert check.exit_code == 0, check.output
    assert check.stdout.strip().startswith("PASS: 4 gates passed across 1 audit")


def test_init_model_on_a_feature_table(tmp_path):
    rng = np.random.default_rng(5)
    n = 200
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n),
                          "sex": rng.choice(["F", "M"], n), "label": rng.integers(0, 2, n)})
    frame.to_csv(tmp_path / "people.csv", index=False)
    save_file(models.table_mlp().state_dict(), str(tmp_path / "mlp.safetensors"))
    done = invoke(tmp_path, "init", ".", "--model", "tests.datasets._user_models:table_mlp", "--weights",
                  "mlp.safetensors", "--data", "people.csv", "-s", "sex", "--name", "my mlp")
    assert done.exit_code == 0, done.output
    spec = load_spec(tmp_path / "audits" / "my-mlp.toml")
    assert spec.data.path is not None and Path(spec.data.path).resolve() == (tmp_path / "people.csv").resolve()
    with torch.no_grad():
        pred = models.table_mlp()(torch.tensor(frame[["a", "b", "c"]].to_numpy(np.float32))).argmax(1).numpy()
    gates = gates_of(tmp_path / "audits" / "my-mlp.toml")
    accuracy = float((pred == frame["label"]).mean())
    assert gates["accuracy"] == (">=", max(0.0, math.floor((accuracy - 0.05) * 1000) / 1000))
    dp = demographic_parity_difference(frame["label"], pred, sensitive_features=frame["sex"])
    assert gates["fairness.group-metrics.sex.demographic_parity_difference"] == ("<=", up(dp, 0.05))
    assert not (tmp_path / "audits" / "sample.toml").exists()


@pytest.mark.parametrize(("args", "said"), [
    (["--data", "people.csv"], "go with --model or --predictions"),
    (["--model", "adult-mlp", "--data", "adult"], "--sensitive"),
    (["--model", "adult-mlp", "-s", "sex"], "--model needs --data"),
    (["--predictions", "nope.csv", "--y-true", "y", "--y-pred", "p", "-s", "sex"], "data file not found: nope.csv"),
    (["--predictions", "p.csv", "--y-true", "y", "-s", "sex"], "one of --y-pred COL or --score COL"),
])
def test_init_bad_input_is_one_line_and_writes_nothing(tmp_path, args, said):
    done = invoke(tmp_path, "init", "repo", *args)
    assert done.exit_code == 2, done.output
    assert said in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "repo").exists()
