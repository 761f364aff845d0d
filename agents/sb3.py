"""One-call helpers to train and evaluate stable-baselines3 / sb3-contrib models.

Defaults are sized for short runs (hundreds to a few thousand steps, as
with a real task LLM behind the env); pass any keyword of the algorithm's
constructor to override them.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from agents.rollout import run_episode

ALGORITHMS = ("dqn", "ppo", "maskable_ppo")

SHORT_RUN_DEFAULTS: dict[str, dict[str, Any]] = {
    "dqn": {
        "learning_starts": 100,
        "buffer_size": 10_000,
        "batch_size": 32,
        "train_freq": 1,
        "target_update_interval": 250,
        "exploration_fraction": 0.5,
        "learning_rate": 1e-3,
    },
    "ppo": {"n_steps": 64, "batch_size": 32, "n_epochs": 4, "learning_rate": 3e-4},
    "maskable_ppo": {"n_steps": 64, "batch_size": 32, "n_epochs": 4, "learning_rate": 3e-4},
}
"""Hyperparameters used unless the caller passes its own."""


def _make_env(env_id_or_env: str | gym.Env, env_kwargs: dict[str, Any] | None) -> gym.Env:
    if isinstance(env_id_or_env, str):
        return gym.make(env_id_or_env, **(env_kwargs or {}))
    if env_kwargs:
        raise ValueError("env_kwargs only applies when an env id is given, not an env instance")
    return env_id_or_env


def train_sb3(
    env_id_or_env: str | gym.Env,
    algo: str,
    total_timesteps: int,
    seed: int | None = 0,
    env_kwargs: dict[str, Any] | None = None,
    **algo_kwargs: Any,
) -> Any:
    """Train an SB3 model on an env and return it.

    Args:
        env_id_or_env: an env id for ``gym.make`` (e.g. ``"CartPole-v1"``) or an env.
        algo: ``"dqn"``, ``"ppo"`` or ``"maskable_ppo"`` (sb3-contrib; the env
            must have an ``action_masks()`` method).
        total_timesteps: env steps to train for.
        seed: seed of the model (and through it of the env).
        env_kwargs: keyword arguments for ``gym.make`` when an id is given.
        **algo_kwargs: constructor arguments of the algorithm; they override
            ``SHORT_RUN_DEFAULTS[algo]``. ``policy`` defaults to ``"MlpPolicy"``.

    Returns:
        The trained model (``stable_baselines3.DQN``, ``PPO`` or ``sb3_contrib.MaskablePPO``).
    """
    if algo not in ALGORITHMS:
        raise ValueError(f"algo must be one of {ALGORITHMS}, got {algo!r}")
    env = _make_env(env_id_or_env, env_kwargs)
    kwargs = {**SHORT_RUN_DEFAULTS[algo], **algo_kwargs}
    policy = kwargs.pop("policy", "MlpPolicy")
    kwargs.setdefault("verbose", 0)
    kwargs.setdefault("device", "cpu")
    if algo == "dqn":
        from stable_baselines3 import DQN as algorithm_class
    elif algo == "ppo":
        from stable_baselines3 import PPO as algorithm_class
    else:
        from sb3_contrib import MaskablePPO as algorithm_class

        try:
            env.get_wrapper_attr("action_masks")
        except AttributeError as err:
            raise ValueError(
                "maskable_ppo needs an env with an action_masks() method "
                "(or wrap it in sb3_contrib.common.wrappers.ActionMasker)"
            ) from err
    model = algorithm_class(policy, env, seed=seed, **kwargs)
    model.learn(total_timesteps=total_timesteps)
    return model


def evaluate_sb3(
    model: Any, env: gym.Env, n_episodes: int, *, deterministic: bool = True, seed: int | None = 0
) -> dict[str, Any]:
    """Run ``n_episodes`` episodes with the model's policy.

    Uses ``action_masks()`` when the model is a MaskablePPO and the env has
    the method.

    Returns:
        ``{"mean_return", "std_return", "returns", "lengths"}``.
    """
    try:
        from sb3_contrib import MaskablePPO

        maskable = isinstance(model, MaskablePPO)
    except ImportError:  # pragma: no cover - sb3-contrib is a dependency
        maskable = False

    def choose(obs: Any, mask: np.ndarray | None) -> int:
        if maskable and mask is not None:
            action, _ = model.predict(obs, deterministic=deterministic, action_masks=mask)
        else:
            action, _ = model.predict(obs, deterministic=deterministic)
        return int(np.asarray(action).item())

    episodes = [run_episode(env, choose, seed=None if seed is None else seed + i)
                for i in range(n_episodes)]
    returns = [e.total_reward for e in episodes]
    lengths = [e.length for e in episodes]
    return {
        "mean_return": float(np.mean(returns)) if returns else float("nan"),
        "std_return": float(np.std(returns)) if returns else float("nan"),
        "returns": returns,
        "lengths": lengths,
    }
