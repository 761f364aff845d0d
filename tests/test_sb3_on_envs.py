"""stable-baselines3 and sb3-contrib on the real prompt envs.

DQN and PPO train on the Select env and MaskablePPO on the Edit env with the
real default model, on small cached slices of bbc-topic; a SubprocVecEnv
with the fake LLM checks that the envs pickle into worker processes.
"""

from __future__ import annotations

import functools
import pickle

import gymnasium as gym
import numpy as np

import prompt_env  # noqa: F401 - registers the env ids
from agents.sb3 import evaluate_sb3, train_sb3

SELECT_ID = "PromptEnv/BBCTopic-Select-v0"
EDIT_ID = "PromptEnv/BBCTopic-Edit-v0"
# The first 10 train articles: 10 x 11 distinct LLM calls, shared with test_agents_on_envs.
SELECT_KWARGS = {"llm": "default", "split": "train", "max_examples": 10}
# Two dev articles, so every prompt the agent builds costs at most two LLM calls.
EDIT_KWARGS = {"llm": "default", "minibatch_size": 2, "max_edits": 3, "n_candidates": 2, "max_examples": 2}


def check_select_model(model) -> None:
    assert model.num_timesteps >= 300
    env = gym.make(SELECT_ID, **SELECT_KWARGS)
    result = evaluate_sb3(model, env, n_episodes=1, seed=0)
    assert result["lengths"] == [8] and np.isfinite(result["mean_return"])


def test_sb3_dqn_on_select_env():
    from stable_baselines3 import DQN

    model = train_sb3(SELECT_ID, "dqn", total_timesteps=300, seed=0, env_kwargs=SELECT_KWARGS)
    assert isinstance(model, DQN)
    check_select_model(model)


def test_sb3_ppo_on_select_env():
    from stable_baselines3 import PPO

    model = train_sb3(SELECT_ID, "ppo", total_timesteps=300, seed=0, env_kwargs=SELECT_KWARGS)
    assert isinstance(model, PPO)
    check_select_model(model)


def test_sb3_contrib_maskable_ppo_on_edit_env():
    from sb3_contrib import MaskablePPO

    model = train_sb3(EDIT_ID, "maskable_ppo", total_timesteps=32, seed=0, env_kwargs=EDIT_KWARGS,
                      n_steps=32, batch_size=16, n_epochs=2)
    assert isinstance(model, MaskablePPO) and model.num_timesteps >= 32
    env = gym.make(EDIT_ID, **EDIT_KWARGS)
    result = evaluate_sb3(model, env, n_episodes=1, seed=0)
    assert 1 <= result["lengths"][0] <= 3 and np.isfinite(result["mean_return"])


def test_subproc_vec_env_with_two_worker_processes():
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.vec_env import SubprocVecEnv

    kwargs = {"llm": "fake", "minibatch_size": 2, "max_edits": 3, "n_candidates": 2}
    # The env itself pickles (its LLM client is dropped and recreated lazily) ...
    env = gym.make(EDIT_ID, **kwargs)
    env.reset(seed=0)
    env.step(int(np.flatnonzero(env.unwrapped.action_masks())[0]))
    clone = pickle.loads(pickle.dumps(env.unwrapped))
    assert clone._llm is None and clone.reset(seed=0)[0].shape == env.observation_space.shape
    env.close()
    # ... and two of them run in worker processes behind SB3's SubprocVecEnv. The workers
    # start fresh (forkserver), so the id names the module that registers it.
    make = functools.partial(gym.make, f"prompt_env:{EDIT_ID}", **kwargs)
    vec_env = SubprocVecEnv([make, make])
    try:
        obs = vec_env.reset()
        assert obs.shape == (2, *env.observation_space.shape)
        masks = np.stack(vec_env.env_method("action_masks"))
        assert masks.shape == (2, env.action_space.n) and masks.any(axis=1).all()
        model = MaskablePPO("MlpPolicy", vec_env, n_steps=8, batch_size=8, n_epochs=1, seed=0, device="cpu")
        model.learn(total_timesteps=16)
        assert model.num_timesteps >= 16
        _, rewards, _, infos = vec_env.step(np.array([int(np.flatnonzero(m)[0]) for m in masks]))
        assert np.all(np.isfinite(rewards)) and all("score" in info for info in infos)
    finally:
        vec_env.close()
