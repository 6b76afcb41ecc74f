"""RL agents on gymnasium's classic-control tasks: PPO actor-critics (with curiosity), DQN and REINFORCE.

Every policy maps a state ``(B, obs)`` to one row ``[log pi(a_1 | s), ..., log pi(a_n | s),
V(s)]`` ``(B, n + 1)``: the action log-probabilities and the state value in one tensor, so
the targets adapter picks "explain this action" (column ``k < n``) or "explain the value"
(the last column) and captum differentiates either. The greedy action is the arg-max of the
first ``n`` columns.

Training is PPO (Schulman et al. 2017, clipped objective, GAE) on seeded
``gymnasium.vector.SyncVectorEnv`` copies. The curious variant adds an Intrinsic Curiosity
Module (Pathak et al. 2017): a feature encoder, an inverse model (which action led from
``phi(s)`` to ``phi(s')``) and a forward model (``phi(s), a -> phi(s')``) whose error is the
intrinsic reward; it is trained with the policy and saved with it (``module.icm``).

CartPole also has the other two agent types of the course, with the same output layout
(``[action scores..., value]``), task, evaluation and explained states: ``cartpole-dqn``
(value-based: a Q-network whose columns are ``Q(s, a)`` and ``max_a Q(s, a)``, trained by
DQN with a replay buffer, a target network and epsilon-greedy exploration) and
``cartpole-reinforce`` (policy-based: the actor-critic's architecture trained by
Monte-Carlo policy gradient, its value head only a baseline).

Evaluation is deterministic: greedy actions on environments reset with fixed seeds that
no training run uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from xai.datasets import Dataset
from xai.datasets._control import CARTPOLE_ACTIONS, MOUNTAINCAR_ACTIONS
from xai.errors import DataError
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._store import single_cpu_thread
from xai.zoo._train import TrainContext, seed_everything

#: Environment seeds of the held-out evaluation episodes (no training run resets with these).
EVAL_SEEDS = tuple(range(10_000, 10_020))
#: Seeds of the validation episodes that decide when training may stop.
VALIDATION_SEEDS = tuple(range(20_000, 20_010))


class ScaledStateNet(nn.Module):
    """A network of the raw state on a fixed affine input scaling (the task's ``shift`` and ``scale``).

    The scaling is stored with the weights (buffers), so a saved agent reads raw states.
    """

    # buffers (register_buffer), declared for the type checker
    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, n_actions: int, *, shift: tuple[float, ...], scale: tuple[float, ...]) -> None:
        super().__init__()
        self.n_actions = n_actions
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """The raw state in the network's units ``(B, obs)``."""
        return (x - self.shift) / self.scale


class ActorCritic(ScaledStateNet):
    """Separate tanh MLPs for the policy and the value, on a fixed affine input scaling.

    ``forward`` returns ``[log-probabilities of the n actions, value]`` ``(B, n + 1)``.

    Examples
    --------
    >>> ActorCritic(4, 2, shift=(0, 0, 0, 0), scale=(1, 1, 1, 1))(torch.zeros(3, 4)).shape
    torch.Size([3, 3])
    """

    def __init__(self, obs_dim: int, n_actions: int, *, shift: tuple[float, ...],
                 scale: tuple[float, ...], hidden: int = 64) -> None:
        super().__init__(n_actions, shift=shift, scale=scale)
        self.policy = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden),
                                    nn.Tanh(), nn.Linear(hidden, n_actions))
        self.value = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden),
                                   nn.Tanh(), nn.Linear(hidden, 1))
        # Orthogonal initialisation (PPO's usual one); its QR decomposition gives different
        # bits on different thread counts, so it runs on one thread like training.
        with single_cpu_thread():
            for net in (self.policy, self.value):
                for layer in net:
                    if isinstance(layer, nn.Linear):
                        nn.init.orthogonal_(layer.weight, math.sqrt(2))
                        nn.init.zeros_(layer.bias)
            nn.init.orthogonal_(cast(nn.Linear, self.policy[-1]).weight, 0.01)
            nn.init.orthogonal_(cast(nn.Linear, self.value[-1]).weight, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[log pi(. | s), V(s)]`` ``(B, n_actions + 1)`` for raw states ``(B, obs)``."""
        z = self.normalise(x)
        log_probs = F.log_softmax(self.policy(z), dim=-1)  # (B, n)
        return torch.cat([log_probs, self.value(z)], dim=-1)  # (B, n + 1)


class CuriosityModule(nn.Module):
    """ICM (Pathak et al. 2017, https://arxiv.org/abs/1705.05363) for low-dimensional states.

    ``phi`` encodes a (normalised) state; ``inverse`` predicts the action from
    ``[phi(s), phi(s')]``; ``forward_model`` predicts ``phi(s')`` from ``[phi(s), one-hot a]``.
    The intrinsic reward is half the squared forward error (the encoder is trained only
    through the inverse loss, so the features keep what the agent can control).
    """

    def __init__(self, obs_dim: int, n_actions: int, features: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.n_actions = n_actions
        self.phi = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ELU(), nn.Linear(hidden, features))
        self.inverse = nn.Sequential(nn.Linear(2 * features, hidden), nn.ELU(),
                                     nn.Linear(hidden, n_actions))
        self.forward_model = nn.Sequential(nn.Linear(features + n_actions, hidden), nn.ELU(),
                                           nn.Linear(hidden, features))

    def losses(self, z: torch.Tensor, z_next: torch.Tensor,
               action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample inverse (cross-entropy) and forward (half squared error) losses ``(B,)``."""
        f, f_next = self.phi(z), self.phi(z_next)  # (B, features)
        inverse = F.cross_entropy(self.inverse(torch.cat([f, f_next], -1)), action, reduction="none")
        one_hot = F.one_hot(action, self.n_actions).float()
        predicted = self.forward_model(torch.cat([f.detach(), one_hot], -1))
        forward = 0.5 * (predicted - f_next.detach()).pow(2).sum(-1)
        return inverse, forward

    def forward(self, z: torch.Tensor, z_next: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Intrinsic reward (the forward-model error) of transitions ``(B,)``."""
        return self.losses(z, z_next, action)[1]


class CuriousActorCritic(ActorCritic):
    """An :class:`ActorCritic` that carries its :class:`CuriosityModule` (``icm``).

    The policy's forward is the parent's; the curiosity module only shapes training.
    """

    def __init__(self, obs_dim: int, n_actions: int, *, shift: tuple[float, ...],
                 scale: tuple[float, ...], hidden: int = 64, features: int = 32) -> None:
        super().__init__(obs_dim, n_actions, shift=shift, scale=scale, hidden=hidden)
        self.icm = CuriosityModule(obs_dim, n_actions, features=features, hidden=hidden)


# --- the targets adapter ------------------------------------------------------------------


def policy_target(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Column ``target[i]`` of ``[log pi(. | s), V(s)]``: an action's log-probability or the value.

    Target ``k < n_actions`` explains ``log pi(a_k | s)``; ``k = n_actions`` (the last
    column) explains ``V(s)``.
    """
    if output.ndim != 2:
        raise DataError(f"a policy target needs (batch, actions + 1) outputs, got {tuple(output.shape)}")
    index = target.view(-1, 1).to(output.device)
    if bool(((index < 0) | (index >= output.shape[1])).any()):
        raise DataError(f"policy targets are 0..{output.shape[1] - 1} (actions, then the value)")
    return output.gather(1, index).squeeze(1)  # (B,)


def greedy_action(output: torch.Tensor) -> torch.Tensor:
    """The arg-max action of ``[log pi(. | s), V(s)]`` outputs ``(B,)`` (the value is ignored)."""
    return output[:, :-1].argmax(1)


# --- environments -------------------------------------------------------------------------


def _sparse_mountaincar() -> Any:
    """MountainCar-v0 whose reward is 1 on reaching the flag and 0 otherwise (200 steps)."""
    import gymnasium as gym

    class SparseGoalReward(gym.Wrapper):
        def step(self, action: Any) -> Any:
            obs, _, terminated, truncated, info = self.env.step(action)
            return obs, float(terminated), terminated, truncated, info

    return SparseGoalReward(gym.make("MountainCar-v0"))


def _cartpole() -> Any:
    import gymnasium as gym

    return gym.make("CartPole-v1")


@dataclass(frozen=True)
class Task:
    """A control task: how to make an environment and how to summarise episodes."""

    make: Callable[[], Any]
    obs_dim: int
    n_actions: int
    shift: tuple[float, ...]
    scale: tuple[float, ...]
    max_steps: int


CARTPOLE = Task(make=_cartpole, obs_dim=4, n_actions=2, shift=(0.0, 0.0, 0.0, 0.0),
                scale=(1.0, 1.0, 0.1, 1.0), max_steps=500)
MOUNTAINCAR = Task(make=_sparse_mountaincar, obs_dim=2, n_actions=3, shift=(-0.3, 0.0),
                   scale=(0.9, 0.07), max_steps=200)


@torch.no_grad()
def run_episodes(module: nn.Module, task: Task, seeds: tuple[int, ...],
                 device: torch.device | str = "cpu") -> dict[str, float]:
    """Greedy episodes, one per seed, stepped together; returns their summary.

    The network always sees all ``len(seeds)`` states (finished episodes keep their last
    one), so every forward pass has the same batch shape, and runs on one CPU thread (as
    in training; small ops on a busy machine are much slower on more): the result is
    reproducible.

    Returns
    -------
    dict
        ``mean_return`` and ``std_return`` (the task's reward), ``success_rate`` (share
        of episodes that ended by termination: the goal for MountainCar, a fall for
        CartPole is reported as ``fall_rate`` instead) and ``mean_steps``.
    """
    was_training = module.training
    module.eval()
    envs = [task.make() for _ in seeds]
    with single_cpu_thread():
        try:
            return _greedy_episodes(module, task, envs, seeds, device)
        finally:
            for env in envs:
                env.close()
            module.train(was_training)


def _greedy_episodes(module: nn.Module, task: Task, envs: list[Any], seeds: tuple[int, ...],
                 device: torch.device | str) -> dict[str, float]:
    obs = np.stack([env.reset(seed=seed)[0] for env, seed in zip(envs, seeds, strict=True)])
    returns = np.zeros(len(seeds))
    steps = np.zeros(len(seeds), dtype=np.int64)
    ended_by_termination = np.zeros(len(seeds), dtype=bool)
    alive = np.ones(len(seeds), dtype=bool)
    while alive.any():
        state = torch.as_tensor(obs, dtype=torch.float32, device=device)
        actions = greedy_action(module(state)).cpu().numpy()
        for i in np.flatnonzero(alive):
            next_obs, reward, terminated, truncated, _ = envs[i].step(int(actions[i]))
            returns[i] += float(reward)
            steps[i] += 1
            obs[i] = next_obs
            if terminated or truncated:
                alive[i] = False
                ended_by_termination[i] = terminated
    return {"mean_return": float(returns.mean()), "std_return": float(returns.std()),
            "terminated_rate": float(ended_by_termination.mean()), "mean_steps": float(steps.mean())}


# --- PPO ------------------------------------------------------------------------------------


def ppo(module: ActorCritic, ctx: TrainContext, task: Task, recipe: dict[str, Any], *,
        label: str, stop_at: float | None = None) -> dict[str, float]:
    """Train ``module`` by PPO (with ICM when it is a :class:`CuriousActorCritic`).

    Parameters
    ----------
    recipe
        ``envs``, ``steps`` (per env and rollout), ``updates`` (the budget in rollouts),
        ``epochs``, ``minibatches``, ``lr``, ``gamma``, ``lam``, ``clip``, ``ent_coef``,
        ``vf_coef``; for curiosity ``icm_coef`` (intrinsic reward weight), ``icm_beta``
        (forward vs inverse loss weight) and ``icm_lr``.
    stop_at
        Stop once the greedy mean return on the validation seeds reaches this value and
        the sampling policy's last 20 training episodes average ``stop_train_share`` of it
        (checked after every rollout; a greedy policy balances long before the policy has
        settled); ``None``: spend the whole budget.

    Returns
    -------
    dict
        Training statistics (``train_steps``, ``train_episodes``, ``train_successes``,
        ``train_mean_return`` of the last 20 episodes, ``validation_mean_return``).
    """
    import gymnasium as gym

    seed_everything(ctx.seed)
    device = ctx.device
    module.to(device).train()
    icm = module.icm if isinstance(module, CuriousActorCritic) else None
    n_envs, n_steps = recipe["envs"], recipe["steps"]
    envs = gym.vector.SyncVectorEnv([task.make for _ in range(n_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    agent_params = [p for name, p in module.named_parameters() if not name.startswith("icm.")]
    optimiser = torch.optim.Adam(agent_params, lr=recipe["lr"], eps=1e-5)
    icm_optimiser = (torch.optim.Adam(icm.parameters(), lr=recipe["icm_lr"])
                     if icm is not None else None)
    obs_shape = (n_steps, n_envs, task.obs_dim)
    states = torch.zeros(obs_shape)
    next_states = torch.zeros(obs_shape)  # the true successor (the final one at episode ends)
    actions = torch.zeros((n_steps, n_envs), dtype=torch.long)
    log_probs = torch.zeros((n_steps, n_envs))
    rewards = torch.zeros((n_steps, n_envs))
    dones = torch.zeros((n_steps, n_envs))
    values = torch.zeros((n_steps, n_envs))
    bootstrap = torch.zeros((n_steps, n_envs))  # V(final state) of truncated episodes
    obs, _ = envs.reset(seed=[ctx.seed * 1000 + i for i in range(n_envs)])
    episode_return = np.zeros(n_envs)
    finished: list[float] = []
    successes = 0
    validation = float("nan")
    updates = recipe["updates"]
    step_count = 0
    with ctx.progress() as progress:
        bar = progress.add_task(label, total=updates, status="")
        for update in range(updates):
            for group in optimiser.param_groups:  # linear learning-rate decay
                group["lr"] = recipe["lr"] * (1.0 - update / updates)
            module.eval()
            for t in range(n_steps):
                state = torch.as_tensor(obs, dtype=torch.float32)
                with torch.no_grad():
                    out = module(state.to(device)).cpu()
                action = torch.distributions.Categorical(logits=out[:, :-1]).sample()
                obs, reward, terminated, truncated, info = envs.step(action.numpy())
                done = np.logical_or(terminated, truncated)
                successor = np.array(obs, dtype=np.float32, copy=True)
                if done.any():
                    final = info["final_obs"]
                    for i in np.flatnonzero(done):
                        successor[i] = final[i]
                states[t], next_states[t] = state, torch.as_tensor(successor)
                actions[t], log_probs[t] = action, out.gather(1, action.view(-1, 1)).squeeze(1)
                values[t], rewards[t] = out[:, -1], torch.as_tensor(reward, dtype=torch.float32)
                dones[t] = torch.as_tensor(done, dtype=torch.float32)
                bootstrap[t] = 0.0
                cut = np.flatnonzero(np.logical_and(truncated, ~terminated))
                if len(cut):
                    with torch.no_grad():
                        bootstrap[t, cut] = module(torch.as_tensor(successor[cut]).to(device))[:, -1].cpu()
                episode_return += reward
                for i in np.flatnonzero(done):
                    finished.append(float(episode_return[i]))
                    successes += int(terminated[i]) if task is MOUNTAINCAR else 0
                    episode_return[i] = 0.0
                step_count += n_envs
            total_rewards = rewards.clone()
            if icm is not None:
                with torch.no_grad():
                    z = module.normalise(states.view(-1, task.obs_dim).to(device))
                    z_next = module.normalise(next_states.view(-1, task.obs_dim).to(device))
                    intrinsic = icm(z, z_next, actions.view(-1).to(device)).cpu()
                # (T * E,) centred and scaled per rollout: novel transitions earn a bonus, familiar
                # ones a cost, so the bonus does not pay the agent for making episodes longer.
                intrinsic = (intrinsic - intrinsic.mean()) / (intrinsic.std() + 1e-8)
                total_rewards += recipe["icm_coef"] * intrinsic.view(n_steps, n_envs)
            with torch.no_grad():
                last_value = module(torch.as_tensor(obs, dtype=torch.float32).to(device))[:, -1].cpu()
            advantages = _gae(total_rewards + recipe["gamma"] * bootstrap, values, dones, last_value,
                              recipe["gamma"], recipe["lam"])
            returns = advantages + values
            module.train()
            _ppo_update(module, optimiser, icm_optimiser, recipe, task, device,
                        states.view(-1, task.obs_dim), next_states.view(-1, task.obs_dim),
                        actions.view(-1), log_probs.view(-1), advantages.view(-1), returns.view(-1))
            recent = float(np.mean(finished[-20:])) if finished else float("nan")
            if stop_at is not None and recent >= stop_at * recipe["stop_train_share"]:
                validation = run_episodes(module, task, VALIDATION_SEEDS, device)["mean_return"]
                if validation >= stop_at:
                    break
            progress.update(bar, advance=1, status=f"return {recent:.1f} valid {validation:.1f}")
    envs.close()
    module.eval()
    return {"train_steps": float(step_count), "train_episodes": float(len(finished)),
            "train_successes": float(successes),
            "train_mean_return": float(np.mean(finished[-20:])) if finished else float("nan"),
            "validation_mean_return": validation}


def _gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor,
         gamma: float, lam: float) -> torch.Tensor:
    """Generalised advantage estimates ``(T, E)`` (Schulman et al. 2016); ``dones`` end episodes."""
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(last_value)
    next_value = last_value
    for t in reversed(range(rewards.shape[0])):
        keep = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * keep - values[t]
        running = delta + gamma * lam * keep * running
        advantages[t] = running
        next_value = values[t]
    return advantages


def _ppo_update(module: ActorCritic, optimiser: torch.optim.Optimizer,
                icm_optimiser: torch.optim.Optimizer | None, recipe: dict[str, Any], task: Task,
                device: torch.device, states: torch.Tensor, next_states: torch.Tensor,
                actions: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor,
                returns: torch.Tensor) -> None:
    n = len(states)
    size = n // recipe["minibatches"]
    params = [p for group in optimiser.param_groups for p in group["params"]]
    for _ in range(recipe["epochs"]):
        order = torch.randperm(n)
        for start in range(0, n - size + 1, size):
            idx = order[start:start + size]
            out = module(states[idx].to(device))
            log_prob = out[:, :-1].gather(1, actions[idx].to(device).view(-1, 1)).squeeze(1)
            ratio = torch.exp(log_prob - old_log_probs[idx].to(device))
            adv = advantages[idx].to(device)
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            clip = recipe["clip"]
            policy_loss = -torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
            value_loss = 0.5 * (out[:, -1] - returns[idx].to(device)).pow(2).mean()
            entropy = -(out[:, :-1].exp() * out[:, :-1]).sum(-1).mean()
            loss = policy_loss + recipe["vf_coef"] * value_loss - recipe["ent_coef"] * entropy
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 0.5)
            optimiser.step()
            if icm_optimiser is not None:
                assert isinstance(module, CuriousActorCritic)  # an ICM optimiser comes with a curious agent
                icm = module.icm
                z = module.normalise(states[idx].to(device))
                z_next = module.normalise(next_states[idx].to(device))
                inverse, forward = icm.losses(z, z_next, actions[idx].to(device))
                beta = recipe["icm_beta"]
                icm_loss = (1 - beta) * inverse.mean() + beta * forward.mean()
                icm_optimiser.zero_grad(set_to_none=True)
                icm_loss.backward()
                icm_optimiser.step()


# --- the registry's one-batch loss --------------------------------------------------------


def imitation_loss(module: nn.Module, batch: Dataset) -> torch.Tensor:
    """Cross-entropy of the policy to the dataset's reference actions.

    A supervised surrogate on dataset rows (what the registry tests step on); the recipes
    themselves train by PPO in the environment.
    """
    return F.nll_loss(module(batch.x)[:, :-1], batch.y)


# --- entries --------------------------------------------------------------------------------


def build_cartpole_ac() -> ActorCritic:
    """The CartPole actor-critic: 4 state variables -> 2 action log-probabilities + value."""
    return ActorCritic(CARTPOLE.obs_dim, CARTPOLE.n_actions, shift=CARTPOLE.shift, scale=CARTPOLE.scale)


_CARTPOLE_RECIPE: dict[str, Any] = {
    "algorithm": "ppo", "envs": 8, "steps": 128, "updates": 150, "epochs": 10, "minibatches": 4,
    "lr": 1e-3, "gamma": 0.99, "lam": 0.95, "clip": 0.2, "ent_coef": 0.0, "vf_coef": 0.5,
    "stop_at_validation_return": 500.0, "stop_train_share": 0.9,
}


def evaluate_cartpole(module: nn.Module, test: Dataset, device: torch.device) -> dict[str, float]:
    """Greedy returns of 20 seeded CartPole-v1 episodes (500 steps at most).

    Also the agreement of the greedy action with the reference controller on ``test``.
    """
    metrics = run_episodes(module, CARTPOLE, EVAL_SEEDS, device)
    metrics["fall_rate"] = metrics.pop("terminated_rate")
    metrics["reference_agreement"] = _agreement(module, test, device)
    return metrics


def _agreement(module: nn.Module, data: Dataset, device: torch.device) -> float:
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            greedy = greedy_action(module(data.x.to(device))).cpu()
    finally:
        module.train(was_training)
    return float((greedy == data.y).float().mean())


def _train_cartpole(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    assert isinstance(module, ActorCritic)  # the entry builds one
    stats = ppo(module, ctx, CARTPOLE, _CARTPOLE_RECIPE, label="cartpole-ac",
                stop_at=_CARTPOLE_RECIPE["stop_at_validation_return"])
    stats.pop("train_successes")  # CartPole episodes end in a fall, never at a goal
    return {**evaluate_cartpole(module, ctx.test, ctx.device), **stats}


register_model(
    ZooEntry(
        name="cartpole-ac",
        family="rl",
        task="policy",
        modality="state",
        dataset="cartpole-states",
        build=build_cartpole_ac,
        train=_train_cartpole,
        input_shape=(4,),
        class_names=CARTPOLE_ACTIONS,
        layers=("policy.0", "policy.2", "policy.4", "value.4"),
        metric="mean_return",
        floor=450.0,
        paper="https://arxiv.org/abs/1707.06347",
        description="PPO actor-critic on gymnasium CartPole-v1; outputs [log pi(left), log pi(right), V]",
        recipe=_CARTPOLE_RECIPE,
        loss=imitation_loss,
        evaluate=evaluate_cartpole,
        targets=policy_target,
        target_names=(*CARTPOLE_ACTIONS, "value"),
        predicted_target=greedy_action,
    )
)


# --- MountainCar with a sparse goal reward: plain PPO vs PPO + ICM ----------------------------


def build_mountaincar_ac() -> ActorCritic:
    """The MountainCar actor-critic: position, velocity -> 3 action log-probabilities + value."""
    return ActorCritic(MOUNTAINCAR.obs_dim, MOUNTAINCAR.n_actions, shift=MOUNTAINCAR.shift,
                       scale=MOUNTAINCAR.scale)


def build_mountaincar_icm() -> CuriousActorCritic:
    """The same actor-critic carrying an Intrinsic Curiosity Module (``icm``)."""
    return CuriousActorCritic(MOUNTAINCAR.obs_dim, MOUNTAINCAR.n_actions, shift=MOUNTAINCAR.shift,
                              scale=MOUNTAINCAR.scale)


_MOUNTAINCAR_PPO: dict[str, Any] = {
    "algorithm": "ppo", "reward": "1 on reaching the flag, else 0 (200 steps)", "envs": 16,
    "steps": 128, "updates": 60, "epochs": 4, "minibatches": 4, "lr": 5e-4, "gamma": 0.99,
    "lam": 0.95, "clip": 0.2, "ent_coef": 0.01, "vf_coef": 0.5,
}
_MOUNTAINCAR_ICM: dict[str, Any] = {
    **_MOUNTAINCAR_PPO, "algorithm": "ppo+icm", "icm_coef": 0.1, "icm_beta": 0.2, "icm_lr": 1e-3,
}


def evaluate_mountaincar(module: nn.Module, test: Dataset, device: torch.device) -> dict[str, float]:
    """Greedy episodes of sparse-reward MountainCar-v0 from 20 seeded starts.

    ``success_rate`` (share that reach the flag within 200 steps; equal to the mean sparse
    return), ``mean_steps`` and the agreement with the energy-pumping controller on ``test``.
    """
    metrics = run_episodes(module, MOUNTAINCAR, EVAL_SEEDS, device)
    metrics["success_rate"] = metrics.pop("terminated_rate")
    metrics["reference_agreement"] = _agreement(module, test, device)
    return metrics


def _mountaincar_trainer(recipe: dict[str, Any], label: str) -> Callable[[nn.Module, TrainContext],
                                                                          dict[str, float]]:
    def train(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
        assert isinstance(module, ActorCritic)  # the entry builds one
        stats = ppo(module, ctx, MOUNTAINCAR, recipe, label=label)
        return {**evaluate_mountaincar(module, ctx.test, ctx.device), **stats}

    return train


_MOUNTAINCAR_COMMON: dict[str, Any] = {
    "family": "rl",
    "task": "policy",
    "modality": "state",
    "dataset": "mountaincar-states",
    "input_shape": (2,),
    "class_names": MOUNTAINCAR_ACTIONS,
    "layers": ("policy.0", "policy.2", "policy.4", "value.4"),
    "metric": "success_rate",
    "loss": imitation_loss,
    "evaluate": evaluate_mountaincar,
    "targets": policy_target,
    "target_names": (*MOUNTAINCAR_ACTIONS, "value"),
    "predicted_target": greedy_action,
}

register_model(
    ZooEntry(
        name="mountaincar-ac",
        build=build_mountaincar_ac,
        train=_mountaincar_trainer(_MOUNTAINCAR_PPO, "mountaincar-ac"),
        floor=0.0,
        paper="https://arxiv.org/abs/1707.06347",
        description="plain PPO actor-critic on sparse-reward MountainCar-v0 (the baseline of "
                    "mountaincar-icm, same budget)",
        recipe=_MOUNTAINCAR_PPO,
        **_MOUNTAINCAR_COMMON,
    )
)

register_model(
    ZooEntry(
        name="mountaincar-icm",
        build=build_mountaincar_icm,
        train=_mountaincar_trainer(_MOUNTAINCAR_ICM, "mountaincar-icm"),
        floor=0.9,  # every seed we ran reached the flag from all 20 starts; plain PPO from none
        paper="https://arxiv.org/abs/1705.05363",
        description="PPO actor-critic with an Intrinsic Curiosity Module on sparse-reward "
                    "MountainCar-v0",
        recipe=_MOUNTAINCAR_ICM,
        **_MOUNTAINCAR_COMMON,
    )
)


# --- CartPole's other agent types: value-based (DQN) and policy-based (REINFORCE) ------------
#
# All three CartPole agents share the output convention ``[action scores..., value]``
# ``(B, n + 1)`` (so ``policy_target`` and ``greedy_action`` serve them all), the task, the
# evaluation seeds and the explained states (``cartpole-states``): an audit can explain the
# same states on each and compare what they read.


class QNetwork(ScaledStateNet):
    """A ReLU MLP of action values on the same fixed input scaling as :class:`ActorCritic`.

    ``forward`` returns ``[Q(s, a_1), ..., Q(s, a_n), max_a Q(s, a)]`` ``(B, n + 1)``: the
    action targets explain one action's Q-value, the last column (the greedy value
    ``V(s) = max_a Q(s, a)``) the state's value.

    Examples
    --------
    >>> QNetwork(4, 2, shift=(0, 0, 0, 0), scale=(1, 1, 1, 1))(torch.zeros(3, 4)).shape
    torch.Size([3, 3])
    """

    def __init__(self, obs_dim: int, n_actions: int, *, shift: tuple[float, ...],
                 scale: tuple[float, ...], hidden: int = 64) -> None:
        super().__init__(n_actions, shift=shift, scale=scale)
        self.q = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                               nn.Linear(hidden, n_actions))

    def q_values(self, x: torch.Tensor) -> torch.Tensor:
        """``Q(s, .)`` ``(B, n_actions)`` for raw states ``(B, obs)``."""
        return self.q(self.normalise(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[Q(s, .), max_a Q(s, a)]`` ``(B, n_actions + 1)`` for raw states ``(B, obs)``."""
        q = self.q_values(x)  # (B, n)
        return torch.cat([q, q.max(dim=-1, keepdim=True).values], dim=-1)  # (B, n + 1)


def q_imitation_loss(module: nn.Module, batch: Dataset) -> torch.Tensor:
    """Cross-entropy of the softmax over Q-values to the dataset's reference actions.

    The registry tests' one-batch surrogate (a Boltzmann policy over the action values);
    the recipe itself trains by DQN in the environment.
    """
    return F.cross_entropy(module(batch.x)[:, :-1], batch.y)


class _Validation:
    """Greedy validation returns during training; keeps the best weights seen so far.

    A value-based or Monte-Carlo agent on CartPole can score 500 at one check and forget
    it a few thousand steps later; the weights saved are those of the best validation
    check (ties: the latest, the most trained), measured on :data:`VALIDATION_SEEDS`,
    never on the evaluation seeds.
    """

    def __init__(self, module: nn.Module, task: Task, device: torch.device) -> None:
        self.module, self.task, self.device = module, task, device
        self.best = -math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.checks = 0

    def check(self) -> float:
        value = run_episodes(self.module, self.task, VALIDATION_SEEDS, self.device)["mean_return"]
        self.checks += 1
        if value >= self.best:
            self.best = value
            self.best_state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        return value

    def restore(self) -> None:
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state)


def dqn(module: QNetwork, ctx: TrainContext, task: Task, recipe: dict[str, Any], *, label: str,
        stop_at: float | None = None) -> dict[str, float]:
    """Train ``module`` by deep Q-learning (Mnih et al. 2015) in one seeded environment.

    Epsilon-greedy acting (epsilon decays linearly from ``eps_start`` to ``eps_end`` over
    ``eps_steps``), a replay buffer of the last ``buffer`` transitions, one Huber-loss
    update on a uniform minibatch of ``batch`` transitions every ``train_every`` steps
    once ``learning_starts`` transitions are stored, and a target network copied every
    ``target_every`` steps. A time-limit cut (truncation) bootstraps from the target
    network; only a fall (termination) ends the return.

    Parameters
    ----------
    recipe
        ``steps`` (environment steps, the budget), ``lr``, ``gamma``, ``buffer``, ``batch``,
        ``learning_starts``, ``train_every``, ``target_every``, ``eps_start``, ``eps_end``,
        ``eps_steps``, ``validate_every``.
    stop_at
        Stop once epsilon has reached ``eps_end`` and the greedy mean return on the
        validation seeds reaches this value (checked every ``validate_every`` steps); the
        best validation check's weights are kept.

    Returns
    -------
    dict
        ``train_steps``, ``train_episodes``, ``train_mean_return`` (last 20 episodes),
        ``validation_mean_return`` (of the kept weights).
    """
    seed_everything(ctx.seed)
    rng = np.random.default_rng(ctx.seed)
    device = ctx.device
    module.to(device).train()
    target = QNetwork(task.obs_dim, task.n_actions, shift=task.shift, scale=task.scale,
                      hidden=cast(nn.Linear, module.q[0]).out_features).to(device)
    target.load_state_dict(module.state_dict())
    target.eval()
    optimiser = torch.optim.Adam(module.parameters(), lr=recipe["lr"])
    size = recipe["buffer"]
    states = np.zeros((size, task.obs_dim), dtype=np.float32)
    next_states = np.zeros((size, task.obs_dim), dtype=np.float32)
    actions = np.zeros(size, dtype=np.int64)
    rewards = np.zeros(size, dtype=np.float32)
    ends = np.zeros(size, dtype=np.float32)  # 1 where the episode terminated (no bootstrap)
    stored = 0
    env = task.make()
    episode = 0
    obs, _ = env.reset(seed=ctx.seed * 1000)
    episode_return, finished = 0.0, []
    validation = _Validation(module, task, device)
    last_check = float("nan")
    stopped = False
    steps = recipe["steps"]
    step = 0
    with ctx.progress() as progress:
        bar = progress.add_task(label, total=steps, status="")
        for step in range(1, steps + 1):
            fraction = min(1.0, (step - 1) / recipe["eps_steps"])
            epsilon = recipe["eps_start"] + fraction * (recipe["eps_end"] - recipe["eps_start"])
            if rng.random() < epsilon:
                action = int(rng.integers(task.n_actions))
            else:
                with torch.no_grad():
                    state = torch.as_tensor(obs, dtype=torch.float32, device=device).unsqueeze(0)
                    action = int(module.q_values(state).argmax(1).item())
            next_obs, reward, terminated, truncated, _ = env.step(action)
            slot = stored % size
            states[slot], next_states[slot] = obs, next_obs
            actions[slot], rewards[slot], ends[slot] = action, float(reward), float(terminated)
            stored += 1
            episode_return += float(reward)
            obs = next_obs
            if terminated or truncated:
                finished.append(episode_return)
                episode_return = 0.0
                episode += 1
                obs, _ = env.reset(seed=ctx.seed * 1000 + episode)
            if stored >= recipe["learning_starts"] and step % recipe["train_every"] == 0:
                idx = rng.integers(0, min(stored, size), recipe["batch"])
                _dqn_update(module, target, optimiser, recipe["gamma"], device, states[idx], actions[idx],
                            rewards[idx], next_states[idx], ends[idx])
            if step % recipe["target_every"] == 0:
                target.load_state_dict(module.state_dict())
            if step % recipe["validate_every"] == 0 and stored >= recipe["learning_starts"]:
                last_check = validation.check()
                # stop only once exploration has decayed: a greedy policy can balance on one
                # check long before the Q-values have settled
                if stop_at is not None and last_check >= stop_at and step >= recipe["eps_steps"]:
                    stopped = True
                    break
                module.train()
            if step % 500 == 0:
                recent = float(np.mean(finished[-20:])) if finished else float("nan")
                progress.update(bar, completed=step, status=f"return {recent:.1f} valid {last_check:.1f}")
    env.close()
    if not stopped:
        validation.check()  # the final weights may be the best
    validation.restore()
    module.eval()
    return {"train_steps": float(step), "train_episodes": float(len(finished)),
            "train_mean_return": float(np.mean(finished[-20:])) if finished else float("nan"),
            "validation_mean_return": validation.best, "validation_checks": float(validation.checks)}


def _dqn_update(module: QNetwork, target: QNetwork, optimiser: torch.optim.Optimizer, gamma: float,
                device: torch.device, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                next_states: np.ndarray, ends: np.ndarray) -> None:
    s = torch.from_numpy(states).to(device)  # (B, obs)
    a = torch.from_numpy(actions).to(device)  # (B,)
    with torch.no_grad():
        next_value = target.q_values(torch.from_numpy(next_states).to(device)).max(1).values  # (B,)
        goal = torch.from_numpy(rewards).to(device) + gamma * (1.0 - torch.from_numpy(ends).to(device)) * next_value
    q = module.q_values(s).gather(1, a.view(-1, 1)).squeeze(1)  # (B,)
    loss = F.smooth_l1_loss(q, goal)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(module.parameters(), 10.0)
    optimiser.step()


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Monte-Carlo returns ``G_t = sum_k gamma^k r_{t+k}`` of one episode ``(T,)``.

    Examples
    --------
    >>> discounted_returns(np.array([1.0, 1.0, 1.0]), 0.5).tolist()
    [1.75, 1.5, 1.0]
    """
    out = np.zeros(len(rewards), dtype=np.float64)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = float(rewards[t]) + gamma * running
        out[t] = running
    return out


def reinforce(module: ActorCritic, ctx: TrainContext, task: Task, recipe: dict[str, Any], *, label: str,
              stop_at: float | None = None) -> dict[str, float]:
    """Train ``module`` by REINFORCE with a learned baseline (Williams 1992; Sutton & Barto 13.4).

    Each update samples ``episodes`` whole episodes from the current policy (stepped
    together, seeded), computes Monte-Carlo returns ``G_t``, and steps
    ``-log pi(a_t | s_t) * (G_t - V(s_t))`` (advantages normalised over the batch) plus
    ``vf_coef`` times the squared error of ``V(s_t)`` to the scaled returns
    ``G_t / return_scale`` (the advantage is ``G_t / return_scale - V(s_t)``). Unlike
    actor-critic, the value is only a baseline: no return is bootstrapped from it.

    Parameters
    ----------
    recipe
        ``updates`` (the budget), ``episodes`` (per update), ``lr``, ``gamma``, ``vf_coef``,
        ``ent_coef``, ``return_scale``, ``validate_every`` (updates).
    stop_at
        Stop once the last batch of sampled episodes averaged ``stop_train_share`` of this
        value and the greedy validation mean return reaches it; validation also runs every
        ``validate_every`` updates, and the best check's weights are kept.

    Returns
    -------
    dict
        ``train_steps``, ``train_episodes``, ``train_mean_return`` (last 20 episodes),
        ``validation_mean_return`` (of the kept weights), ``validation_checks``.
    """
    seed_everything(ctx.seed)
    device = ctx.device
    module.to(device).train()
    optimiser = torch.optim.Adam(module.parameters(), lr=recipe["lr"])
    envs = [task.make() for _ in range(recipe["episodes"])]
    validation = _Validation(module, task, device)
    last_check = float("nan")
    stopped = False
    finished: list[float] = []
    step_count = 0
    updates = recipe["updates"]
    scale = recipe["return_scale"]
    with ctx.progress() as progress:
        bar = progress.add_task(label, total=updates, status="")
        for update in range(updates):
            seeds = [ctx.seed * 100_000 + update * len(envs) + i for i in range(len(envs))]
            batch_states, batch_actions, batch_returns, lengths = _sample_episodes(module, task, envs, seeds,
                                                                                     recipe["gamma"], device)
            finished.extend(float(n) for n in lengths)  # CartPole's return is its length
            step_count += int(sum(lengths))
            out = module(batch_states)  # (N, n + 1)
            log_prob = out[:, :-1].gather(1, batch_actions.view(-1, 1)).squeeze(1)
            value = out[:, -1]
            advantage = batch_returns / scale - value.detach()
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
            entropy = -(out[:, :-1].exp() * out[:, :-1]).sum(-1).mean()
            loss = (-(log_prob * advantage).mean() + recipe["vf_coef"] * (value - batch_returns / scale).pow(2).mean()
                    - recipe["ent_coef"] * entropy)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            optimiser.step()
            batch_mean = float(np.mean(lengths))
            # As in PPO, the greedy policy balances long before the sampling policy has settled:
            # stopping needs both (the sampled batch near the goal, the greedy validation at it).
            settled = stop_at is not None and batch_mean >= stop_at * recipe["stop_train_share"]
            if settled or (update + 1) % recipe["validate_every"] == 0:
                last_check = validation.check()
                module.train()
                if settled and last_check >= stop_at:  # type: ignore[operator]  # settled implies a stop_at
                    stopped = True
                    break
            progress.update(bar, advance=1, status=f"return {batch_mean:.1f} valid {last_check:.1f}")
    for env in envs:
        env.close()
    if not stopped:
        validation.check()  # the final weights may be the best
    validation.restore()
    module.eval()
    return {"train_steps": float(step_count), "train_episodes": float(len(finished)),
            "train_mean_return": float(np.mean(finished[-20:])) if finished else float("nan"),
            "validation_mean_return": validation.best, "validation_checks": float(validation.checks)}


def _sample_episodes(module: ActorCritic, task: Task, envs: list[Any], seeds: list[int], gamma: float,
                     device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """One episode per env from the sampling policy: states ``(N, obs)``, actions, returns ``(N,)``, lengths."""
    obs = np.stack([env.reset(seed=seed)[0] for env, seed in zip(envs, seeds, strict=True)]).astype(np.float32)
    alive = np.ones(len(envs), dtype=bool)
    trajectories: list[tuple[list[np.ndarray], list[int], list[float]]] = [([], [], []) for _ in envs]
    while alive.any():
        live = np.flatnonzero(alive)
        with torch.no_grad():
            logits = module(torch.as_tensor(obs[live], device=device))[:, :-1]
        sampled = torch.distributions.Categorical(logits=logits).sample().cpu().numpy()
        for j, i in enumerate(live):
            action = int(sampled[j])
            next_obs, reward, terminated, truncated, _ = envs[i].step(action)
            trajectories[i][0].append(obs[i].copy())
            trajectories[i][1].append(action)
            trajectories[i][2].append(float(reward))
            obs[i] = next_obs
            if terminated or truncated:
                alive[i] = False
    states = np.concatenate([np.stack(t[0]) for t in trajectories])
    actions = np.concatenate([np.asarray(t[1], dtype=np.int64) for t in trajectories])
    returns = np.concatenate([discounted_returns(np.asarray(t[2]), gamma) for t in trajectories])
    return (torch.as_tensor(states, device=device), torch.as_tensor(actions, device=device),
            torch.as_tensor(returns, dtype=torch.float32, device=device), [len(t[1]) for t in trajectories])


def build_cartpole_dqn() -> QNetwork:
    """The CartPole Q-network: 4 state variables -> 2 action values + their maximum."""
    return QNetwork(CARTPOLE.obs_dim, CARTPOLE.n_actions, shift=CARTPOLE.shift, scale=CARTPOLE.scale)


def build_cartpole_reinforce() -> ActorCritic:
    """The CartPole REINFORCE policy with its value baseline (the actor-critic's architecture)."""
    return ActorCritic(CARTPOLE.obs_dim, CARTPOLE.n_actions, shift=CARTPOLE.shift, scale=CARTPOLE.scale)


_CARTPOLE_DQN: dict[str, Any] = {
    "algorithm": "dqn", "steps": 60_000, "lr": 1e-3, "gamma": 0.99, "buffer": 20_000, "batch": 64,
    "learning_starts": 1_000, "train_every": 2, "target_every": 500, "eps_start": 1.0, "eps_end": 0.05,
    "eps_steps": 8_000, "validate_every": 2_000, "stop_at_validation_return": 500.0,
}
_CARTPOLE_REINFORCE: dict[str, Any] = {
    "algorithm": "reinforce with a value baseline", "updates": 300, "episodes": 8, "lr": 2e-3, "gamma": 0.99,
    "vf_coef": 0.5, "ent_coef": 0.0, "return_scale": 100.0, "validate_every": 10,
    "stop_at_validation_return": 500.0, "stop_train_share": 0.9,
}


def _train_cartpole_dqn(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    assert isinstance(module, QNetwork)  # the entry builds one
    stats = dqn(module, ctx, CARTPOLE, _CARTPOLE_DQN, label="cartpole-dqn",
                stop_at=_CARTPOLE_DQN["stop_at_validation_return"])
    return {**evaluate_cartpole(module, ctx.test, ctx.device), **stats}


def _train_cartpole_reinforce(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    assert isinstance(module, ActorCritic)  # the entry builds one
    stats = reinforce(module, ctx, CARTPOLE, _CARTPOLE_REINFORCE, label="cartpole-reinforce",
                      stop_at=_CARTPOLE_REINFORCE["stop_at_validation_return"])
    return {**evaluate_cartpole(module, ctx.test, ctx.device), **stats}


#: What the CartPole agents share: task, data, evaluation and the ``[actions..., value]`` targets.
_CARTPOLE_COMMON: dict[str, Any] = {
    "family": "rl",
    "task": "policy",
    "modality": "state",
    "dataset": "cartpole-states",
    "input_shape": (4,),
    "class_names": CARTPOLE_ACTIONS,
    "metric": "mean_return",
    "evaluate": evaluate_cartpole,
    "targets": policy_target,
    "target_names": (*CARTPOLE_ACTIONS, "value"),
    "predicted_target": greedy_action,
}

register_model(
    ZooEntry(
        name="cartpole-dqn",
        build=build_cartpole_dqn,
        train=_train_cartpole_dqn,
        layers=("q.0", "q.2", "q.4"),
        floor=450.0,
        paper="https://doi.org/10.1038/nature14236",
        description="DQN (value-based) on gymnasium CartPole-v1; outputs [Q(left), Q(right), max Q]",
        recipe=_CARTPOLE_DQN,
        loss=q_imitation_loss,
        **_CARTPOLE_COMMON,
    )
)

register_model(
    ZooEntry(
        name="cartpole-reinforce",
        build=build_cartpole_reinforce,
        train=_train_cartpole_reinforce,
        layers=("policy.0", "policy.2", "policy.4", "value.4"),
        floor=450.0,
        paper="https://doi.org/10.1007/BF00992696",
        description="REINFORCE with a value baseline (policy-based) on gymnasium CartPole-v1; outputs "
                    "[log pi(left), log pi(right), V]",
        recipe=_CARTPOLE_REINFORCE,
        loss=imitation_loss,
        **_CARTPOLE_COMMON,
    )
)
