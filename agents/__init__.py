"""Learners that use prompt-env environments only through the Gymnasium API.

Every agent has ``learn(env, total_steps, *, seed, callback, progress) ->
TrainingLog``, ``act(obs, *, greedy, action_mask) -> int``, ``save(path, *,
env_id)`` and ``load(path, *, env_id=None)``. ``AGENTS`` maps a name to the
agent class; ``make_agent(name, env, **kwargs)`` builds one sized for an env
and ``load_agent(path)`` loads any saved agent.

``agents.optimize(data, llm=..., budget=..., out=...)`` finds the best prompt
for a data file and writes it out (:mod:`agents.experiments.optimize`).
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym

from agents.bandits import (
    UCB1,
    Bandit,
    EpsilonGreedyBandit,
    SuccessiveHalving,
    ThompsonSampling,
    run_bandit_on_env,
)
from agents.base import Agent, TrainingLog
from agents.checkpoint import read_checkpoint_header
from agents.dqn import DQNAgent, DQNConfig
from agents.tabular_q import TabularQAgent, TabularQConfig
from prompt_env.errors import CheckpointError

AGENTS: dict[str, type[Agent]] = {
    TabularQAgent.agent_name: TabularQAgent,
    DQNAgent.agent_name: DQNAgent,
    UCB1.agent_name: UCB1,
    EpsilonGreedyBandit.agent_name: EpsilonGreedyBandit,
    ThompsonSampling.agent_name: ThompsonSampling,
    SuccessiveHalving.agent_name: SuccessiveHalving,
}
"""Agent name -> class; every class has ``from_env(env, **kwargs)``."""


def make_agent(name: str, env: gym.Env | gym.vector.VectorEnv, **kwargs: Any) -> Agent:
    """The agent called ``name``, sized for ``env``; kwargs go to its constructor."""
    try:
        agent_class = AGENTS[name]
    except KeyError:
        raise ValueError(f"unknown agent {name!r}; known agents: {sorted(AGENTS)}") from None
    return agent_class.from_env(env, **kwargs)  # type: ignore[attr-defined]


def load_agent(path: str | os.PathLike[str], *, env_id: str | None = None) -> Agent:
    """Load any agent saved with ``save``, whatever its type."""
    name = read_checkpoint_header(path)["agent"]
    if name not in AGENTS:
        raise CheckpointError(f"{path}: unknown agent type {name!r}; known: {sorted(AGENTS)}")
    return AGENTS[name].load(path, env_id=env_id)


def __getattr__(name: str) -> Any:
    """``agents.optimize``, imported on first use (it pulls in the experiment layer)."""
    if name == "optimize":
        from agents.experiments.optimize import optimize

        return optimize
    raise AttributeError(f"module 'agents' has no attribute {name!r}")


__all__ = [
    "AGENTS",
    "Agent",
    "Bandit",
    "DQNAgent",
    "DQNConfig",
    "EpsilonGreedyBandit",
    "SuccessiveHalving",
    "TabularQAgent",
    "TabularQConfig",
    "ThompsonSampling",
    "TrainingLog",
    "UCB1",
    "load_agent",
    "make_agent",
    "optimize",
    "run_bandit_on_env",
]
