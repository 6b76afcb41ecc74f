"""agent-compare: the same states explained on the value-based, policy-based and actor-critic CartPole agents."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, Saliency
from scipy.stats import spearmanr

from xai.audit.metrics import audit_metrics
from xai.audit.runner import run_audit, sample_rows
from xai.audit.spec import parse_spec
from xai.datasets import load_dataset
from xai.errors import DataError, NotApplicableError, SpecError
from xai.explain import create_explainer
from xai.explain.agents import AgentCompare, rank_agreement
from xai.report.agents import render_html
from xai.report.html import render_audit_page
from xai.zoo import load_model

from ..conftest import ZOO

AGENTS = ("cartpole-dqn", "cartpole-ac", "cartpole-reinforce")


@pytest.fixture(scope="module")
def handles():
    return {name: load_model(name, zoo_dir=ZOO) for name in AGENTS}


@pytest.fixture(scope="module")
def states():
    return load_dataset("cartpole-states", "test")


@pytest.mark.parametrize("column", [0, 1, 2])
def test_integrated_gradients_of_the_q_head_equal_captum_called_directly(handles, states, column):
    dqn = handles["cartpole-dqn"]
    rows = states.head(8)
    ours = create_explainer("integrated-gradients", dqn, steps=32).explain(rows, target=column)
    module = dqn.module.eval()
    theirs = IntegratedGradients(lambda x: module(x)[:, column]).attribute(
        rows.x, baselines=torch.zeros(1, 4), n_steps=32)
    np.testing.assert_allclose(ours.attributions, theirs.detach().numpy(), rtol=1e-4, atol=1e-6)
    # column 2 is max_a Q(s, a): its gradient is the greedy action's Q-value gradient
    if column == 2:
        q = module.q_values(rows.x)
        torch.testing.assert_close(module(rows.x)[:, 2], q.max(1).values)


def test_saliency_of_the_greedy_q_value_equals_captum_called_directly(handles, states):
    dqn = handles["cartpole-dqn"]
    rows = states.head(8)
    ours = create_explainer("saliency", dqn, abs=False).explain(rows, target="predicted")
    module = dqn.module.eval()
    greedy = module.q_values(rows.x).argmax(1)
    theirs = Saliency(lambda x: module.q_values(x)).attribute(rows.x.clone().requires_grad_(), target=greedy,
                                                         abs=False)
    np.testing.assert_allclose(ours.attributions, theirs.numpy(), rtol=1e-5, atol=1e-7)
    assert ours.targets.tolist() == greedy.tolist()


def test_comparison_equals_a_hand_computation_from_each_agents_attributions(handles, states):
    options = {"agents": ["cartpole-ac", "cartpole-reinforce"], "samples": 24, "options": {"steps": 32}}
    result = AgentCompare.run(handles["cartpole-dqn"], states, options, seed=3)
    assert result.agents == AGENTS and result.feature_names == states.feature_names
    rows = sample_rows(states, 24, 3)
    assert result.samples == 24
    for kind, target in (("action", "predicted"), ("value", 2)):
        per_state = []
        for name in AGENTS:
            attribution = create_explainer("integrated-gradients", handles[name], steps=32).explain(
                rows, target=target, seed=3)
            per_state.append(np.abs(attribution.attributions))  # state variables are the columns
        importance = np.stack([m.mean(0) for m in per_state])  # (agents, features)
        np.testing.assert_allclose(result.importance[kind], importance, rtol=1e-6)
        np.testing.assert_allclose(result.shares(kind), importance / importance.sum(1, keepdims=True), rtol=1e-6)
        for i, j in itertools.combinations(range(3), 2):
            expected = spearmanr(importance[i], importance[j]).statistic
            assert result.spearman[kind][i, j] == pytest.approx(expected, abs=1e-9)
            by_state = [spearmanr(a, b).statistic for a, b in zip(per_state[i], per_state[j], strict=True)]
            assert result.state_spearman[kind][i, j] == pytest.approx(np.nanmean(by_state), abs=1e-9)
            metrics = result.metrics()
            assert metrics[f"{kind}.spearman.{AGENTS[i]}.{AGENTS[j]}"] == pytest.approx(expected, abs=1e-9)
        pairs = [result.spearman[kind][i, j] for i, j in itertools.combinations(range(3), 2)]
        assert result.metrics()[f"{kind}.min_spearman"] == pytest.approx(min(pairs))
    with torch.no_grad():
        greedy = [handles[n].module.eval()(rows.x)[:, :2].argmax(1).numpy() for n in AGENTS]
    for i, j in itertools.combinations(range(3), 2):
        agree = float((greedy[i] == greedy[j]).mean())
        assert result.metrics()[f"action_agreement.{AGENTS[i]}.{AGENTS[j]}"] == pytest.approx(agree)
    share = result.metrics()["value.cartpole-dqn.share.pole_angle"]
    assert share == pytest.approx(result.shares("value")[0, 2])


def test_rank_agreement_on_hand_made_importances():
    importance = np.array([[4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 1.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
    table = rank_agreement(importance)
    assert table[0, 1] == pytest.approx(-1.0) and table[0, 2] == pytest.approx(0.8)
    assert np.isnan(table[0, 3]) and np.isnan(table[3, 3])  # constant importances have no ranking


def test_bad_options_are_one_line_errors(handles, states):
    with pytest.raises(DataError, match="list only the others"):
        AgentCompare.run(handles["cartpole-dqn"], states, {"agents": ["cartpole-dqn"]})
    with pytest.raises(DataError, match="unknown explainer 'nope'"):
        AgentCompare.parse_options({"agents": ["cartpole-ac"], "method": "nope"})
    with pytest.raises(DataError, match="agents"):
        AgentCompare.parse_options({})
    with pytest.raises(DataError, match="not an agent"):
        AgentCompare.run(handles["cartpole-dqn"], states, {"agents": ["adult-mlp"], "samples": 4})
    with pytest.raises(NotApplicableError, match="agent-compare does not apply to lenet"):
        AgentCompare.run(load_model("lenet", zoo_dir=ZOO), states, {"agents": ["cartpole-ac"]})


SPEC = '''title = "agents"
probe = []
explain = []
[model]
name = "cartpole-dqn"
[data]
samples = 40
[[agents]]
agents = ["cartpole-ac", "cartpole-reinforce"]
samples = 16
options = { steps = 16 }
'''


def test_agents_section_runs_and_reaches_metrics_json_and_page():
    with pytest.raises(SpecError, match=r"agents\.0\.samples"):
        parse_spec(SPEC.replace("samples = 16", "samples = 1"), "a.toml")
    audit = run_audit(parse_spec(SPEC), slug="agents")
    (result,) = audit.section("agents")
    assert result.agents == AGENTS
    metrics = audit_metrics(audit)
    assert {"agents.action.min_spearman", "agents.value.min_state_spearman", "agents.min_action_agreement",
            "agents.action.cartpole-ac.share.pole_angle"} <= set(metrics)
    doc = audit.to_dict()
    assert doc["agents"][0]["agents"] == list(AGENTS) and len(doc["agents"][0]["shares"]["value"]) == 3
    page = render_audit_page(audit)
    assert 'id="agents"' in page and page.count('class="agents"') == 1


def test_renderer_escapes_names(handles, states):
    result = AgentCompare.run(handles["cartpole-dqn"], states.head(8),
                              {"agents": ["cartpole-ac"], "options": {"steps": 8}, "targets": ["value"]})
    import dataclasses

    hostile = dataclasses.replace(result, agents=("<script>x</script>", "cartpole-ac"))
    html = render_html(hostile)
    assert "<script>x" not in html and "&lt;script&gt;" in html
