"""A vector env that gathers its sub-envs' prompts into ONE batched LLM call per step."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from prompt_env.envs.select import PromptSelectEnv


class BatchedPromptSelectVectorEnv(VectorEnv):
    """N :class:`PromptSelectEnv` copies stepped together, their LLM calls batched.

    A sync vector env makes N LLM calls per step, one per sub-env; this one
    renders the N (prompt, input) pairs and scores them in one call, which a
    batched backend serves far faster. Semantics match gymnasium's
    ``SyncVectorEnv`` with ``AutoresetMode.NEXT_STEP``: the step after a
    sub-env's episode ends resets it (reward 0, not terminated).

    Created by ``gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``.
    """

    metadata = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.NEXT_STEP,
                "prompt_env_kind": "select"}

    def __init__(self, num_envs: int = 1, max_episode_steps: int | None = None, **kwargs: Any) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.envs = [PromptSelectEnv(**kwargs) for _ in range(num_envs)]
        first = self.envs[0]
        self.render_mode = first.render_mode
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._observations = create_empty_array(self.single_observation_space, num_envs)

    @property
    def llm(self) -> Any:
        """The one LLM all sub-envs share (so its stats cover the whole vector env)."""
        return self.envs[0].llm

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        if seed is None or isinstance(seed, int):
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
        infos: dict[str, Any] = {}
        observations = []
        for i, env in enumerate(self.envs):
            env.use_llm(self.llm)
            obs, info = env.reset(seed=seeds[i], options=options)
            observations.append(obs)
            infos = self._add_info(infos, info, i)
        self._autoreset[:] = False
        self._observations = concatenate(self.single_observation_space, observations, self._observations)
        return self._observations.copy() if isinstance(self._observations, np.ndarray) else self._observations, infos

    def step(self, actions: Any):
        actions = np.asarray(actions)
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminations = np.zeros(self.num_envs, dtype=bool)
        truncations = np.zeros(self.num_envs, dtype=bool)
        observations: list[Any] = [None] * self.num_envs
        infos: dict[str, Any] = {}
        to_score: list[tuple[int, int, Any]] = []  # (env, prompt index, pair)
        for i, env in enumerate(self.envs):
            if self._autoreset[i]:
                observations[i], info = env.reset()
                infos = self._add_info(infos, info, i)
                continue
            index, pair = env.pending_pair(actions[i])
            if env.budget_allows(1):
                to_score.append((i, index, pair))
            else:
                observations[i], rewards[i], terminations[i], truncations[i], info = env.finish_step(index, None)
                infos = self._add_info(infos, info, i)
        if to_score:
            outcomes = self.envs[0].run_pairs([pair for _, _, pair in to_score])  # one batched call
            for (i, index, _), outcome in zip(to_score, outcomes):
                env = self.envs[i]
                observations[i], rewards[i], terminations[i], truncations[i], info = env.finish_step(index, outcome)
                infos = self._add_info(infos, info, i)
        self._autoreset = np.logical_or(terminations, truncations)
        self._observations = concatenate(self.single_observation_space, observations, self._observations)
        obs = self._observations.copy() if isinstance(self._observations, np.ndarray) else self._observations
        return obs, rewards, terminations, truncations, infos

    def render(self) -> tuple[Any, ...] | None:
        if self.render_mode is None:
            return None
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        results = []
        for env in self.envs:
            attribute = getattr(env, name)
            results.append(attribute(*args, **kwargs) if callable(attribute) else attribute)
        return tuple(results)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return tuple(getattr(env, name) for env in self.envs)


__all__ = ["BatchedPromptSelectVectorEnv"]
