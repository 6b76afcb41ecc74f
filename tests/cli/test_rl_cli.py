from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from xai.cli import app
from xai.datasets._control import CARTPOLE_FEATURES

runner = CliRunner()


def test_explain_cartpole_policy_names_state_variables_and_reports_returns(tmp_path):
    result = runner.invoke(app, ["explain", "cartpole-ac", "-m", "integrated-gradients", "-n", "4",
                                 "--option", "steps=32", "--device", "cpu", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "mean |attribution| per column" in result.stdout
    assert all(name in result.stdout for name in CARTPOLE_FEATURES)
    document = json.loads((tmp_path / "explain-integrated-gradients.json").read_text())
    explanation = document["explanations"][0]
    attributions = np.array(explanation["attributions"])
    assert attributions.shape == (4, 4) and np.isfinite(attributions).all()
    assert explanation["class_names"] == ["push left", "push right", "value"]
    assert set(explanation["predictions"]) <= {0, 1}  # the greedy action, never the value
    # the page shows the policy's own performance (no accuracy) and the named variables
    page = (tmp_path / "explain-integrated-gradients.html").read_text(encoding="utf-8")
    assert "Mean return" in page and "pole angular velocity" in page


@pytest.mark.parametrize("name", ["cartpole-ac", "cartpole-dqn", "cartpole-reinforce"])
def test_explain_cartpole_value_head_by_target_index(name):
    # the value column of every agent type: V(s) of a critic or baseline, max Q of the Q-network
    result = runner.invoke(app, ["explain", name, "-m", "saliency", "-n", "3", "--target", "2",
                                 "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["targets"] == [2, 2, 2]
    assert len(document["column_importance"]) == 4


def test_audit_of_a_policy_without_accuracy_renders(tmp_path):
    spec = tmp_path / "policy.toml"
    spec.write_text('title = "policy"\n[model]\nname = "cartpole-ac"\n'
                    '[[explain]]\nmethod = "saliency"\nsamples = 2\n'
                    '[[gate]]\nmetric = "mean_return"\nop = ">="\nvalue = 450\n')
    result = runner.invoke(app, ["audit", str(spec), "--device", "cpu", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / "policy.html").read_text(encoding="utf-8")
    assert "Mean return" in page and "Fall rate" in page
