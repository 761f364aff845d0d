"""train_sb3 / evaluate_sb3 smoke tests with tiny step counts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from agents.sb3 import evaluate_sb3, train_sb3


class MaskedChoiceEnv(gym.Env):
    """Five-step episodes; 4 actions of which only two are valid in each step
    (which two alternates); a valid action pays 1 for action 0 or 2, else 0.5.
    A masked action raises."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Discrete(4)
        self.t = 0

    def action_masks(self) -> np.ndarray:
        return (
            np.array([True, True, False, False])
            if self.t % 2 == 0
            else np.array([False, False, True, True])
        )

    def _obs(self) -> np.ndarray:
        return np.array([self.t % 2, self.t / 5], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        if not self.action_masks()[action]:
            raise AssertionError(f"masked action {action} at t={self.t}")
        reward = 1.0 if action in (0, 2) else 0.5
        self.t += 1
        return self._obs(), reward, self.t >= 5, False, {}


def test_ppo_on_cartpole_id():
    from stable_baselines3 import PPO

    model = train_sb3("CartPole-v1", "ppo", total_timesteps=128, seed=0)
    assert isinstance(model, PPO) and model.n_steps == 64 and model.num_timesteps >= 128
    result = evaluate_sb3(model, gym.make("CartPole-v1"), n_episodes=2)
    assert len(result["returns"]) == 2 and result["mean_return"] > 0


def test_dqn_on_frozenlake_with_env_kwargs_and_overrides():
    from stable_baselines3 import DQN

    model = train_sb3(
        "FrozenLake-v1",
        "dqn",
        total_timesteps=200,
        seed=0,
        env_kwargs={"is_slippery": False},
        learning_starts=20,
    )
    assert isinstance(model, DQN) and model.learning_starts == 20
    result = evaluate_sb3(
        model, gym.make("FrozenLake-v1", is_slippery=False, max_episode_steps=20), 2
    )
    assert set(result) == {"mean_return", "std_return", "returns", "lengths"}


def test_maskable_ppo_uses_action_masks():
    from sb3_contrib import MaskablePPO

    model = train_sb3(MaskedChoiceEnv(), "maskable_ppo", total_timesteps=256, seed=0)
    assert isinstance(model, MaskablePPO)
    result = evaluate_sb3(model, MaskedChoiceEnv(), n_episodes=3)  # raises on a masked action
    assert all(length == 5 for length in result["lengths"])
    assert 2.5 <= result["mean_return"] <= 5.0


def test_errors():
    with pytest.raises(ValueError, match="algo must be one of"):
        train_sb3("CartPole-v1", "a2c", total_timesteps=10)
    with pytest.raises(ValueError, match="action_masks"):
        train_sb3("CartPole-v1", "maskable_ppo", total_timesteps=10)
    with pytest.raises(ValueError, match="env_kwargs"):
        train_sb3(gym.make("CartPole-v1"), "ppo", total_timesteps=10, env_kwargs={"x": 1})
