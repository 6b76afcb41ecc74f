from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from xai.datasets import load_dataset
from xai.datasets._control import CARTPOLE_FEATURES
from xai.errors import DataError
from xai.explain import create_explainer
from xai.zoo import get_entry, load_model
from xai.zoo.rl import (
    CARTPOLE,
    EVAL_SEEDS,
    ActorCritic,
    CuriosityModule,
    QNetwork,
    _gae,
    build_mountaincar_icm,
    discounted_returns,
    evaluate_cartpole,
    greedy_action,
    policy_target,
    run_episodes,
)

from ..conftest import ZOO


@pytest.fixture(scope="module")
def cartpole():
    return load_model("cartpole-ac", zoo_dir=ZOO)


@pytest.fixture(scope="module")
def states():
    return load_dataset("cartpole-states", "test").head(6)


def test_adapter_picks_the_action_or_the_value_column_of_a_hand_made_output():
    output = torch.tensor([[-0.1, -2.3, 7.0],
                           [-1.6, -0.2, -4.0],
                           [-0.7, -0.7, 0.5]])
    torch.testing.assert_close(policy_target(output, torch.tensor([0, 1, 2])),
                               torch.tensor([-0.1, -0.2, 0.5]))
    torch.testing.assert_close(policy_target(output, torch.tensor([2, 2, 0])),
                               torch.tensor([7.0, -4.0, -0.7]))
    # the value column is never an action, even where it is the largest entry
    assert greedy_action(output).tolist() == [0, 1, 0]
    with pytest.raises(DataError, match="0..2"):
        policy_target(output, torch.tensor([0, 3, 1]))


def test_entry_declares_actions_then_value(cartpole):
    entry = get_entry("cartpole-ac")
    assert entry.target_names == ("push left", "push right", "value")
    assert cartpole.target_names == entry.target_names and cartpole.task == "policy"


def test_forward_is_action_log_probabilities_then_the_value_head(cartpole, states):
    module = cartpole.module
    out = module(states.x)
    assert out.shape == (6, 3)
    torch.testing.assert_close(out[:, :2].exp().sum(1), torch.ones(6))
    z = (states.x - module.shift) / module.scale
    torch.testing.assert_close(out[:, :2], F.log_softmax(module.policy(z), 1))
    torch.testing.assert_close(out[:, 2], module.value(z).squeeze(1))


@pytest.mark.parametrize("target", [0, 1, 2])
def test_integrated_gradients_is_complete_on_the_policy(cartpole, states, target):
    result = create_explainer("integrated-gradients", cartpole, steps=200).explain(states, target=target)
    assert result.attributions.shape == (6, 4) and np.isfinite(result.attributions).all()
    with torch.no_grad():
        f_x = cartpole.module(states.x)[:, target]
        f_0 = cartpole.module(torch.zeros(1, 4))[:, target]  # the zero baseline: upright, centred
    np.testing.assert_allclose(result.attributions.sum(1), (f_x - f_0).numpy(), atol=2e-3)


def test_saliency_is_the_input_gradient_of_the_chosen_column(cartpole, states):
    result = create_explainer("saliency", cartpole, abs=False).explain(states, target="predicted")
    x = states.x.clone().requires_grad_()
    out = cartpole.module(x)
    chosen = out[:, :2].argmax(1)
    out.gather(1, chosen.view(-1, 1)).sum().backward()
    np.testing.assert_allclose(result.attributions, x.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert result.targets.tolist() == chosen.tolist()
    # named state variables, summed per column like tabular features
    assert result.feature_names == CARTPOLE_FEATURES
    assert set(result.column_importance()) == set(CARTPOLE_FEATURES)
    np.testing.assert_allclose(result.column_attributions, result.attributions)


class _Linear(nn.Module):
    """A hand-made policy: action 1 (push right) where ``w . s > 0``; constant value."""

    def __init__(self, w: tuple[float, ...]) -> None:
        super().__init__()
        self.w = torch.tensor(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = x @ self.w  # (B,)
        return torch.stack([-score, score, torch.zeros_like(score)], 1)


def _plain_gym_return(policy, seed: int) -> float:
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        total += reward
        done = terminated or truncated
    return total


def test_run_episodes_matches_a_plain_gymnasium_loop():
    seeds = EVAL_SEEDS[:4]
    always_left = run_episodes(_Linear((0.0, 0.0, 0.0, 0.0)), CARTPOLE, seeds)  # ties -> action 0
    expected = [_plain_gym_return(lambda _obs: 0, s) for s in seeds]
    assert always_left["mean_return"] == pytest.approx(np.mean(expected))
    assert always_left["terminated_rate"] == 1.0 and always_left["mean_return"] < 20
    gains = (0.1, 0.3, 3.0, 1.0)  # the dataset's reference controller balances to the limit
    balanced = run_episodes(_Linear(gains), CARTPOLE, seeds)
    assert balanced == {"mean_return": 500.0, "std_return": 0.0, "terminated_rate": 0.0,
                        "mean_steps": 500.0}


def test_gae_on_a_hand_worked_rollout():
    # one env, three steps, the episode ends after step 1; gamma 0.5, lambda 0.5
    rewards = torch.tensor([[1.0], [2.0], [4.0]])
    values = torch.tensor([[0.5], [1.0], [2.0]])
    dones = torch.tensor([[0.0], [1.0], [0.0]])
    last = torch.tensor([8.0])
    adv = _gae(rewards, values, dones, last, gamma=0.5, lam=0.5)
    d2 = 4.0 + 0.5 * 8.0 - 2.0  # 6
    d1 = 2.0 - 1.0  # 1 (episode end: no bootstrap, no carry)
    d0 = 1.0 + 0.5 * 1.0 - 0.5  # 1
    torch.testing.assert_close(adv, torch.tensor([[d0 + 0.25 * d1], [d1], [d2]]))


def test_curiosity_reward_is_the_forward_models_error():
    torch.manual_seed(0)
    icm = CuriosityModule(obs_dim=2, n_actions=3, features=5, hidden=7)
    z, z_next = torch.randn(4, 2), torch.randn(4, 2)
    action = torch.tensor([0, 2, 1, 2])
    f, f_next = icm.phi(z), icm.phi(z_next)
    predicted = icm.forward_model(torch.cat([f, F.one_hot(action, 3).float()], 1))
    torch.testing.assert_close(icm(z, z_next, action), 0.5 * ((predicted - f_next) ** 2).sum(1))
    inverse, _ = icm.losses(z, z_next, action)
    logits = icm.inverse(torch.cat([f, f_next], 1))
    torch.testing.assert_close(inverse, -logits.log_softmax(1)[torch.arange(4), action])


def test_curious_agent_keeps_the_policy_forward_and_saves_its_curiosity_module():
    module = build_mountaincar_icm()
    plain = ActorCritic(2, 3, shift=(-0.3, 0.0), scale=(0.9, 0.07))
    plain.load_state_dict({k: v for k, v in module.state_dict().items() if not k.startswith("icm.")})
    x = torch.tensor([[-0.5, 0.01], [0.2, -0.03]])
    torch.testing.assert_close(module(x), plain(x))
    assert any(k.startswith("icm.forward_model.") for k in module.state_dict())


# --- the value-based and policy-based CartPole agents -----------------------------------------


@pytest.mark.parametrize("name", ["cartpole-dqn", "cartpole-reinforce"])
def test_dqn_and_reinforce_reach_their_floors(name):
    # the committed agents, re-evaluated from their weights on the 20 held-out seeded episodes
    handle = load_model(name, zoo_dir=ZOO)
    entry = get_entry(name)
    metrics = evaluate_cartpole(handle.module, load_dataset("cartpole-states", "test"), torch.device("cpu"))
    assert entry.metric == "mean_return" and entry.floor >= 450.0
    assert metrics["mean_return"] >= entry.floor and metrics["fall_rate"] <= 0.1
    # the same task, evaluation and states as the actor-critic: comparable side by side
    assert entry.dataset == get_entry("cartpole-ac").dataset
    assert entry.target_names == get_entry("cartpole-ac").target_names == ("push left", "push right", "value")


def test_q_network_outputs_q_values_then_their_maximum(states):
    dqn = load_model("cartpole-dqn", zoo_dir=ZOO).module
    out = dqn(states.x)
    assert out.shape == (6, 3)
    z = (states.x - dqn.shift) / dqn.scale
    q = dqn.q(z)
    torch.testing.assert_close(out[:, :2], q)
    torch.testing.assert_close(out[:, 2], q.max(1).values)
    # the greedy action is the arg-max Q-value; the value column is explained through the adapter
    assert greedy_action(out).tolist() == q.argmax(1).tolist()
    torch.testing.assert_close(policy_target(out, torch.full((6,), 2)), q.max(1).values)


def test_q_network_value_column_on_hand_made_weights():
    net = QNetwork(2, 2, shift=(1.0, 0.0), scale=(2.0, 1.0), hidden=2)
    with torch.no_grad():
        for layer in (net.q[0], net.q[2], net.q[4]):
            layer.weight.copy_(torch.eye(2))
            layer.bias.zero_()
    x = torch.tensor([[5.0, 1.0], [1.0, -3.0]])  # normalised: [2, 1] and [0, -3]; relu twice
    expected_q = torch.tensor([[2.0, 1.0], [0.0, 0.0]])
    torch.testing.assert_close(net(x), torch.cat([expected_q, torch.tensor([[2.0], [0.0]])], 1))


def test_discounted_returns_by_hand():
    returns = discounted_returns(np.array([1.0, 0.0, 2.0]), 0.9)
    np.testing.assert_allclose(returns, [1.0 + 0.81 * 2.0, 0.9 * 2.0, 2.0])


def test_reinforce_agent_is_log_probabilities_then_its_baseline(states):
    module = load_model("cartpole-reinforce", zoo_dir=ZOO).module
    assert isinstance(module, ActorCritic)
    out = module(states.x)
    torch.testing.assert_close(out[:, :2].exp().sum(1), torch.ones(6))


def test_dqn_update_bootstraps_from_the_target_network_except_after_a_fall():
    torch.manual_seed(0)
    online = QNetwork(4, 2, shift=CARTPOLE.shift, scale=CARTPOLE.scale, hidden=8)
    target = QNetwork(4, 2, shift=CARTPOLE.shift, scale=CARTPOLE.scale, hidden=8)  # other weights
    states = torch.randn(5, 4).numpy()
    next_states = torch.randn(5, 4).numpy()
    actions = np.array([0, 1, 1, 0, 1])
    rewards = np.full(5, 0.2, dtype=np.float32)  # small: every error stays in the Huber loss's quadratic part
    ends = np.array([0, 1, 0, 0, 1], dtype=np.float32)  # falls: no bootstrap (a time-limit cut is not one)
    expected = {k: v.clone() for k, v in online.state_dict().items()}
    # the hand-written step: Huber loss to r + 0.9 * max_a Q_target(s', a) (r alone after a fall), SGD lr 0.1
    with torch.no_grad():
        goal = torch.full((5,), 0.2) + 0.9 * (1 - torch.from_numpy(ends)) * target.q(
            (torch.from_numpy(next_states) - target.shift) / target.scale).max(1).values
    reference = QNetwork(4, 2, shift=CARTPOLE.shift, scale=CARTPOLE.scale, hidden=8)
    reference.load_state_dict(expected)
    q = reference.q((torch.from_numpy(states) - reference.shift) / reference.scale)[torch.arange(5), actions]
    assert bool(((q - goal).abs() < 1).all())
    F.smooth_l1_loss(q, goal).backward()
    with torch.no_grad():
        for name, p in reference.named_parameters():
            expected[name] = p - 0.1 * p.grad  # gradients here are far below the clip norm of 10
    from xai.zoo.rl import _dqn_update

    _dqn_update(online, target, torch.optim.SGD(online.parameters(), lr=0.1), 0.9, torch.device("cpu"),
                states, actions, rewards, next_states, ends)
    for name, value in online.state_dict().items():
        torch.testing.assert_close(value, expected[name])
