"""Train one of this package's agents on a registered env: the one training entry point.

Used by ``prompt-env train``, the demo and the benchmark harness. Everything
goes through ``gym.make``, the Gymnasium API and the env's public
``llm_usage()``; the env's kind (``metadata["prompt_env_kind"]``) picks the
hyperparameters that suit it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents import AGENTS, make_agent
from agents.base import Agent, TrainingLog
from agents.experiments.curves import CurveRecorder
from agents.experiments.usage import Usage, measured
from agents.progress import ProgressReporter, reporter_for

# A Select env is a contextual bandit (the next input does not depend on the
# action), so gamma = 0 there; on an Edit env an edit changes the next state,
# and the bootstrap term gamma * max_a' Q(s', a') is what makes it RL.
SELECT_DEFAULTS: dict[str, dict[str, Any]] = {
    "tabular-q": {"gamma": 0.0, "learning_rate": "1/visits", "epsilon_start": 1.0,
                  "epsilon_end": 0.05, "exploration_fraction": 0.6},
    "dqn": {"gamma": 0.0, "learning_rate": 1e-3, "learning_starts": 50, "batch_size": 32,
            "buffer_size": 5000, "train_frequency": 1, "target_update_interval": 50,
            "epsilon_start": 1.0, "epsilon_end": 0.05, "exploration_fraction": 0.6,
            "hidden_sizes": (64,)},
}
# A Compose env pays its reward only after the last word: Monte-Carlo targets (gamma 1 and
# n_step at least the prompt length, so every word's target is the prompt's score).
COMPOSE_DEFAULTS: dict[str, dict[str, Any]] = {
    "dqn": {"gamma": 1.0, "n_step": 64, "learning_rate": 1e-3, "learning_starts": 50, "batch_size": 32,
            "buffer_size": 10_000, "target_update_interval": 100, "epsilon_start": 1.0,
            "epsilon_end": 0.05, "exploration_fraction": 0.5, "hidden_sizes": (64,)},
}
EDIT_DEFAULTS: dict[str, dict[str, Any]] = {
    "tabular-q": {"gamma": 0.9, "learning_rate": 0.5, "epsilon_start": 1.0,
                  "epsilon_end": 0.1, "exploration_fraction": 0.6},
    "dqn": {"gamma": 0.9, "learning_rate": 1e-3, "learning_starts": 50, "batch_size": 32,
            "target_update_interval": 50, "hidden_sizes": (64, 64)},
}


def env_kind(env: gym.Env | gym.vector.VectorEnv) -> str:
    """``"select"``, ``"edit"``, ``"compose"`` (prompt envs, from their metadata) or ``"other"``."""
    return str(env.metadata.get("prompt_env_kind", "other"))


def agent_defaults(env: gym.Env | gym.vector.VectorEnv, agent_name: str) -> dict[str, Any]:
    """Hyperparameters of ``agent_name`` that suit short runs on this kind of env."""
    table = {"select": SELECT_DEFAULTS, "edit": EDIT_DEFAULTS,
             "compose": COMPOSE_DEFAULTS}.get(env_kind(env), {})
    return dict(table.get(agent_name, {}))


@dataclasses.dataclass
class TrainResult:
    """A trained learner and what its training cost (all measured)."""

    agent: Any
    """The trained agent (or SB3 model)."""
    log: TrainingLog | None
    """The agent's training log (None for SB3 models)."""
    curve: list[dict[str, float]]
    """Per step: step, reward, env LLM calls, distinct pairs and cache hits so far."""
    usage: Usage
    """LLM calls, distinct pairs, cache hits, model calls and wall time of training."""
    tensorboard_dir: Path | None = None
    """The run's TensorBoard folder, when asked for."""

    @property
    def steps(self) -> int:
        return len(self.curve)


def describe_status(curve: list[dict[str, float]]) -> str:
    """Progress text: mean reward of the last 50 steps and the LLM counts."""
    if not curve:
        return ""
    last = curve[-1]
    reward = float(np.mean([c["reward"] for c in curve[-50:]]))
    return (f"reward {reward:.3f} | LLM calls {int(last['llm_calls'])} | "
            f"distinct {int(last['distinct'])} | cache hits {int(last['cache_hits'])}")


def train(
    env_id: str,
    agent_name: str,
    steps: int,
    *,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    agent_kwargs: dict[str, Any] | None = None,
    progress: bool | ProgressReporter = True,
    checkpoint: Path | None = None,
    checkpoint_every: int = 0,
    description: str | None = None,
    tensorboard_log: str | Path | None = None,
) -> TrainResult:
    """Train ``agent_name`` on ``gym.make(env_id, **env_kwargs)`` for ``steps`` env steps.

    Args:
        env_id: a registered env id.
        agent_name: a name of ``agents.AGENTS``.
        steps: env steps to train for (one LLM call each on a Select env).
        seed: seeds the agent and the env.
        env_kwargs, agent_kwargs: passed to ``gym.make`` and to the agent, whose
            defaults for the env's kind (:func:`agent_defaults`) they override.
        progress: a progress bar (True), none (False), or a bar on a given reporter.
        checkpoint, checkpoint_every: also save the agent there every N steps.
        description: the progress bar's label.
        tensorboard_log: also write TensorBoard event files into ``<dir>/<agent>_<N>``
            (stable-baselines3's convention; see :mod:`agents.experiments.tensorboard`).
    """
    if agent_name not in AGENTS:
        raise ValueError(f"unknown agent {agent_name!r}; known agents: {sorted(AGENTS)}")
    env = CurveRecorder(gym.make(env_id, **(env_kwargs or {})))
    kwargs = {**agent_defaults(env, agent_name), **(agent_kwargs or {})}
    kwargs.setdefault("seed", seed)
    agent: Agent = make_agent(agent_name, env, **kwargs)
    reporter = reporter_for(progress)
    board = None
    if tensorboard_log is not None:
        from agents.experiments.tensorboard import TensorBoardLog

        board = TensorBoardLog(tensorboard_log, agent_name)
    with measured(env) as spent, reporter:
        bar = reporter.add(description or f"{agent_name} on {env_id}", steps)

        def callback(step: int, reward: float, info: dict[str, Any]) -> bool:
            reporter.update(bar, completed=step, status=describe_status(env.curve))
            if board is not None and env.curve:
                board.log_step(env.curve[-1])
            if checkpoint is not None and checkpoint_every and step % checkpoint_every == 0:
                agent.save(checkpoint, env_id=env_id)
            return True

        try:
            log = agent.learn(env, steps, seed=seed, callback=callback, progress=False)
        finally:
            if board is not None:
                board.close()
    env.close()
    return TrainResult(agent=agent, log=log, curve=env.curve, usage=spent(),
                       tensorboard_dir=board.path if board is not None else None)
