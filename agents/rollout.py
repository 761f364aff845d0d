"""Stepping a single env or a Gymnasium 1.x vector env into clean transitions.

Every agent's training loop goes through :class:`EnvStepper`, so the three
vector-env autoreset modes and action masks are handled in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass
class Transition:
    """One real env step of one sub-environment (never an autoreset step)."""

    obs: Any
    action: int
    reward: float
    next_obs: Any
    terminated: bool
    truncated: bool
    info: dict
    env_index: int
    next_action_mask: np.ndarray | None
    """Valid actions in ``next_obs`` (for a masked max over Q(s', .)), or None."""

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


def is_vector_env(env: Any) -> bool:
    """True for a Gymnasium 1.x vector env."""
    return isinstance(env, gym.vector.VectorEnv)


def single_spaces(env: gym.Env | gym.vector.VectorEnv) -> tuple[gym.Space, gym.Space]:
    """(observation space, action space) of one sub-environment."""
    if is_vector_env(env):
        return env.single_observation_space, env.single_action_space
    return env.observation_space, env.action_space


def _as_mask(mask: Any, n_actions: int) -> np.ndarray:
    array = np.asarray(mask, dtype=bool).reshape(-1)
    if array.shape != (n_actions,):
        raise ValueError(f"action mask has {array.size} entries, the action space has {n_actions}")
    return array


def single_env_action_mask(env: gym.Env, info: Mapping[str, Any]) -> np.ndarray | None:
    """Valid actions of a single env: ``info["action_mask"]``, else ``env.action_masks()``, else None."""
    n_actions = int(env.action_space.n)
    if "action_mask" in info:
        return _as_mask(info["action_mask"], n_actions)
    try:
        method = env.get_wrapper_attr("action_masks")
    except AttributeError:
        return None
    return _as_mask(method(), n_actions)


def vector_env_action_masks(
    env: gym.vector.VectorEnv, infos: Mapping[str, Any]
) -> np.ndarray | None:
    """Valid actions of every sub-env, shape (num_envs, n): from the batched
    ``infos["action_mask"]``, else ``env.call("action_masks")``, else None."""
    n_actions = int(env.single_action_space.n)
    valid = infos.get("_action_mask")
    if "action_mask" in infos and (valid is None or np.all(valid)):
        return np.asarray(infos["action_mask"], dtype=bool).reshape(env.num_envs, n_actions)
    try:
        masks = env.call("action_masks")
    except AttributeError:
        return None
    return np.stack([_as_mask(m, n_actions) for m in masks])


def unbatch_info(infos: Mapping[str, Any], index: int) -> dict:
    """The info dict of sub-env ``index`` out of a vector env's batched infos."""
    single: dict[str, Any] = {}
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        valid = infos.get("_" + key)
        if valid is not None and not valid[index]:
            continue
        if isinstance(value, Mapping):
            single[key] = unbatch_info(value, index)
        else:
            single[key] = value[index]
    return single


class EnvStepper:
    """Steps a single env or a Gymnasium 1.x vector env and returns clean transitions.

    ``obs`` is always batched (first axis = sub-env). With a vector env, the
    three autoreset modes are handled so that no transition links the last
    observation of one episode to the first of the next:

    - NEXT_STEP (Gymnasium's default): the step after an episode ends only
      resets that sub-env; it is skipped (not returned, not counted).
    - SAME_STEP: the true last observation is taken from ``info["final_obs"]``.
    - DISABLED: finished sub-envs are reset here with ``reset_mask``.
    """

    def __init__(
        self, env: gym.Env | gym.vector.VectorEnv, *, seed: int | None, use_action_mask: bool
    ):
        self.env = env
        self.vector = is_vector_env(env)
        self.num_envs = int(env.num_envs) if self.vector else 1
        self.use_action_mask = use_action_mask
        self.autoreset_mode = self._autoreset_mode() if self.vector else None
        self._resetting = np.zeros(self.num_envs, dtype=bool)  # NEXT_STEP: next step is a reset
        obs, info = env.reset(seed=seed)
        self.obs = self._batch(obs)
        self.action_masks = self._masks(info)

    def _autoreset_mode(self) -> str:
        mode = self.env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
        mode = getattr(mode, "value", mode)
        names = {m.value: m.value for m in gym.vector.AutoresetMode}
        names.update({m.name: m.value for m in gym.vector.AutoresetMode})
        if mode not in names:
            raise ValueError(f"unknown autoreset_mode {mode!r} in the vector env's metadata")
        return names[mode]

    def _batch(self, obs: Any) -> np.ndarray:
        return np.asarray(obs) if self.vector else np.asarray(obs)[None]

    def _masks(self, info: Mapping[str, Any]) -> np.ndarray | None:
        if not self.use_action_mask:
            return None
        if self.vector:
            return vector_env_action_masks(self.env, info)
        mask = single_env_action_mask(self.env, info)
        return None if mask is None else mask[None]

    def step(self, actions: np.ndarray) -> list[Transition]:
        """Step every sub-env with ``actions[i]`` and return the real transitions."""
        actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        if not self.vector:
            return self._step_single(int(actions[0]))
        return self._step_vector(actions)

    def _step_single(self, action: int) -> list[Transition]:
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        next_mask = self._masks(info)
        transition = Transition(
            obs=self.obs[0],
            action=action,
            reward=float(reward),
            next_obs=np.asarray(next_obs),
            terminated=bool(terminated),
            truncated=bool(truncated),
            info=dict(info),
            env_index=0,
            next_action_mask=None if next_mask is None else next_mask[0],
        )
        if terminated or truncated:
            next_obs, info = self.env.reset()
            next_mask = self._masks(info)
        self.obs = self._batch(next_obs)
        self.action_masks = next_mask
        return [transition]

    def _step_vector(self, actions: np.ndarray) -> list[Transition]:
        next_obs, rewards, terminateds, truncateds, infos = self.env.step(actions)
        next_obs = np.asarray(next_obs)
        masks = self._masks(infos)
        dones = np.logical_or(terminateds, truncateds)
        transitions = []
        for i in range(self.num_envs):
            if self._resetting[i]:
                continue  # NEXT_STEP autoreset: this "step" only reset sub-env i
            info = unbatch_info(infos, i)
            true_next_obs, next_mask = next_obs[i], None if masks is None else masks[i]
            if dones[i] and self.autoreset_mode == "SameStep":
                final_info = info.get("final_info", {})
                true_next_obs = np.asarray(info["final_obs"])
                next_mask = final_info.get("action_mask") if self.use_action_mask else None
                next_mask = None if next_mask is None else np.asarray(next_mask, dtype=bool)
                info = {**info, **final_info}
            transitions.append(
                Transition(
                    obs=self.obs[i],
                    action=int(actions[i]),
                    reward=float(rewards[i]),
                    next_obs=true_next_obs,
                    terminated=bool(terminateds[i]),
                    truncated=bool(truncateds[i]),
                    info=info,
                    env_index=i,
                    next_action_mask=next_mask,
                )
            )
        if self.autoreset_mode == "NextStep":
            self._resetting = dones.copy()
        elif self.autoreset_mode == "Disabled" and np.any(dones):
            reset_obs, reset_infos = self.env.reset(options={"reset_mask": dones})
            next_obs = np.where(
                dones.reshape((-1,) + (1,) * (next_obs.ndim - 1)), np.asarray(reset_obs), next_obs
            )
            if self.use_action_mask:
                reset_masks = self._masks(reset_infos)
                if masks is not None and reset_masks is not None:
                    masks = np.where(dones[:, None], reset_masks, masks)
        self.obs = next_obs
        self.action_masks = masks
        return transitions


@dataclass
class Episode:
    """One finished episode: its first and last info, rewards and step infos."""

    reset_info: dict
    final_info: dict
    rewards: list[float]
    infos: list[dict]

    @property
    def total_reward(self) -> float:
        return float(sum(self.rewards))

    @property
    def length(self) -> int:
        return len(self.rewards)


def run_episode(
    env: gym.Env, choose: Any, *, seed: int | None = None
) -> Episode:
    """Play one episode of a single env with ``choose(obs, action_mask) -> action``.

    ``action_mask`` is the env's valid-action mask (``info["action_mask"]`` or
    ``action_masks()``) or None. An episode whose reset already exhausted a
    prompt env's LLM budget (``info["budget_exhausted"]``) has no steps.
    """
    obs, info = env.reset(seed=seed)
    reset_info = dict(info)
    rewards: list[float] = []
    infos: list[dict] = []
    done = bool(info.get("budget_exhausted", False))
    while not done:
        action = int(choose(obs, single_env_action_mask(env, info)))
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(float(reward))
        infos.append(dict(info))
        done = bool(terminated or truncated)
    return Episode(reset_info, dict(info), rewards, infos)
