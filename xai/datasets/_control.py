"""States of gymnasium's classic-control tasks, collected by seeded rollouts (nothing stored).

Rows are the states an agent meets: rollouts of a hand-written reference controller that
takes a random action with probability ``EPSILON`` (so the states cover recoveries, not
only the controller's own narrow path). ``y`` is the reference controller's action on
that state, a known-good decision that a policy can be compared with; the zoo's policies
are explained on these rows. Train and test rollouts use disjoint environment seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd
import torch

from xai.datasets._base import Dataset, Split, register_dataset

CARTPOLE_FEATURES = ("cart position", "cart velocity", "pole angle", "pole angular velocity")
CARTPOLE_ACTIONS = ("push left", "push right")
MOUNTAINCAR_FEATURES = ("car position", "car velocity")
MOUNTAINCAR_ACTIONS = ("push left", "no push", "push right")
#: Probability of a random action in the collecting rollouts.
EPSILON = 0.25
#: Keep every ``STRIDE``-th state of an episode (neighbouring states are near duplicates).
STRIDE = 4
#: Environment seeds of each split (disjoint; fixed, independent of any training seed).
SPLIT_SEEDS = {"train": range(0, 24), "test": range(1000, 1012)}
#: The valley floor of MountainCar (``sin(3 x)`` is lowest at ``x = -pi / 6``).
VALLEY = -np.pi / 6

Controller = Callable[[np.ndarray], int]


def cartpole_controller(state: np.ndarray) -> int:
    """A linear balancing rule: push towards where the pole falls (and the cart drifts).

    It keeps CartPole-v1 up for the full 500 steps from every seeded start we tried.
    """
    x, x_dot, theta, theta_dot = (float(v) for v in state)
    return int(0.1 * x + 0.3 * x_dot + 3.0 * theta + theta_dot > 0)


def mountaincar_controller(state: np.ndarray) -> int:
    """Energy pumping: push in the direction of motion (reaches the flag in ~120 steps)."""
    return 2 if float(state[1]) >= 0 else 0


def rollout_states(env_id: str, controller: Controller, seeds: range, *, epsilon: float = EPSILON,
                   stride: int = STRIDE, max_steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """States ``(N, obs)`` met by the epsilon-noisy controller and its actions ``(N,)`` on them."""
    import gymnasium as gym

    states, actions = [], []
    env = gym.make(env_id, max_episode_steps=max_steps) if max_steps else gym.make(env_id)
    try:
        for seed in seeds:
            rng = np.random.default_rng(seed)
            obs, _ = env.reset(seed=seed)
            step, done = 0, False
            if not isinstance(env.action_space, gym.spaces.Discrete):
                raise ValueError(f"{env_id}: a controller needs discrete actions, not {env.action_space}")
            while not done:
                best = controller(obs)
                if step % stride == 0:
                    states.append(np.asarray(obs, dtype=np.float32))
                    actions.append(best)
                explore = rng.random() < epsilon
                action = int(rng.integers(env.action_space.n)) if explore else best
                obs, _, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
                step += 1
    finally:
        env.close()
    return np.stack(states), np.asarray(actions, dtype=np.int64)


@lru_cache(maxsize=4)
def _cartpole_rows(split: str) -> tuple[np.ndarray, np.ndarray]:
    if split == "all":
        parts = [_cartpole_rows("train"), _cartpole_rows("test")]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return rollout_states("CartPole-v1", cartpole_controller, SPLIT_SEEDS[split], max_steps=200)


@lru_cache(maxsize=4)
def _mountaincar_rows(split: str) -> tuple[np.ndarray, np.ndarray]:
    if split == "all":
        parts = [_mountaincar_rows("train"), _mountaincar_rows("test")]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return rollout_states("MountainCar-v0", mountaincar_controller, SPLIT_SEEDS[split])


def _side(values: np.ndarray, at: float, below: str, above: str) -> list[str]:
    return [below if v < at else above for v in values]


@register_dataset("cartpole-states")
def load_cartpole_states(split: Split = "test") -> Dataset:
    """CartPole-v1 states ``(N, 4)`` (episodes capped at 200 steps); ``y``: reference action.

    ``groups``: ``pole`` (leans left / leans right: the sign of the pole angle) and
    ``cart`` (left / right of the track centre).
    """
    states, actions = _cartpole_rows(split)
    groups = pd.DataFrame({
        "pole": _side(states[:, 2], 0.0, "leans left", "leans right"),
        "cart": _side(states[:, 0], 0.0, "left", "right"),
    })
    return Dataset(
        name="cartpole-states",
        split=split,
        modality="state",
        x=torch.from_numpy(states),
        y=torch.from_numpy(actions),
        class_names=CARTPOLE_ACTIONS,
        groups=groups,
        feature_names=CARTPOLE_FEATURES,
        feature_columns=CARTPOLE_FEATURES,
        description="gymnasium CartPole-v1 states from seeded epsilon-noisy rollouts of a "
                    "linear balancing controller; y is that controller's action",
    )


@register_dataset("mountaincar-states")
def load_mountaincar_states(split: Split = "test") -> Dataset:
    """MountainCar-v0 states ``(N, 2)``; ``y``: the energy-pumping controller's action.

    ``groups``: ``side`` (left / right of the valley floor) and ``moving`` (left / right).
    """
    states, actions = _mountaincar_rows(split)
    groups = pd.DataFrame({
        "side": _side(states[:, 0], VALLEY, "left", "right"),
        "moving": _side(states[:, 1], 0.0, "left", "right"),
    })
    return Dataset(
        name="mountaincar-states",
        split=split,
        modality="state",
        x=torch.from_numpy(states),
        y=torch.from_numpy(actions),
        class_names=MOUNTAINCAR_ACTIONS,
        groups=groups,
        feature_names=MOUNTAINCAR_FEATURES,
        feature_columns=MOUNTAINCAR_FEATURES,
        description="gymnasium MountainCar-v0 states from seeded epsilon-noisy rollouts of an "
                    "energy-pumping controller; y is that controller's action",
    )
