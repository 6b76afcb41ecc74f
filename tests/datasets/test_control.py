from __future__ import annotations

import numpy as np
import pytest

from xai.datasets import load_dataset
from xai.datasets._control import STRIDE, cartpole_controller, mountaincar_controller, rollout_states


@pytest.mark.parametrize(("name", "controller", "features"), [
    ("cartpole-states", cartpole_controller, 4),
    ("mountaincar-states", mountaincar_controller, 2),
])
def test_state_rows_are_labelled_with_the_reference_controllers_action(name, controller, features):
    test, train = load_dataset(name, "test"), load_dataset(name, "train")
    assert test.modality == "state" and test.x.shape[1:] == (features,)
    assert len(test.feature_names) == features and test.feature_columns == test.feature_names
    assert test.y.tolist() == [controller(row) for row in test.x.numpy()]
    assert set(test.y.tolist()) <= set(range(len(test.class_names)))
    # disjoint rollouts: test states are not training states (MountainCar's car can rest at
    # the left wall, (-1.2, 0), in both)
    train_rows = {tuple(r) for r in train.x.numpy().tolist()}
    shared = sum(tuple(r) in train_rows for r in test.x.numpy().tolist())
    assert shared <= 0.05 * len(test)
    both = load_dataset(name, "all")
    assert len(both) == len(train) + len(test)


def test_cartpole_groups_follow_the_signs_of_pole_angle_and_cart_position():
    data = load_dataset("cartpole-states", "test")
    x = data.x.numpy()
    assert (data.groups["pole"].to_numpy() == np.where(x[:, 2] < 0, "leans left", "leans right")).all()
    assert (data.groups["cart"].to_numpy() == np.where(x[:, 0] < 0, "left", "right")).all()
    assert set(data.groups["pole"]) == {"leans left", "leans right"}


def test_rollouts_are_seeded_and_label_the_state_before_exploration():
    first = rollout_states("CartPole-v1", cartpole_controller, range(3), max_steps=50)
    second = rollout_states("CartPole-v1", cartpole_controller, range(3), max_steps=50)
    np.testing.assert_array_equal(first[0], second[0])
    # every STRIDE-th state of 3 episodes of at most 50 steps
    assert len(first[0]) <= 3 * (50 // STRIDE + 1)
    # with no exploration the controller keeps the pole up for all 50 steps
    calm = rollout_states("CartPole-v1", cartpole_controller, range(2), epsilon=0.0, stride=1, max_steps=50)
    assert len(calm[0]) == 100
