"""The agent base class and its training log.

Subclasses choose actions for a batch of observations and learn from one
transition at a time; the training loop, the log, the callback and the
progress bar live here (:meth:`Agent.learn`).
"""

from __future__ import annotations

import csv
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np

from agents.checkpoint import read_checkpoint, write_checkpoint
from agents.progress import ProgressReporter, reporter_for
from agents.rollout import EnvStepper, Transition
from prompt_env.errors import CheckpointError

Callback = Callable[[int, float, dict], Any]
"""``callback(step, reward, info)``, called after every env step; returning ``False`` stops learning."""

@dataclass
class TrainingLog:
    """What happened during one ``learn`` call.

    Episodes are counted when they end (terminated or truncated); an episode
    still running when learning stops is not in ``episode_returns``.
    """

    num_envs: int = 1
    """Number of sub-environments stepped in parallel."""
    steps: int = 0
    """Env steps (transitions) taken, summed over sub-environments."""
    step_rewards: list[float] = field(default_factory=list)
    """Reward of every step, in the order the steps were taken."""
    episode_returns: list[float] = field(default_factory=list)
    """Undiscounted return of each finished episode, in order of finishing."""
    episode_lengths: list[int] = field(default_factory=list)
    """Length in steps of each finished episode."""
    episode_end_steps: list[int] = field(default_factory=list)
    """Value of ``steps`` when each episode finished."""
    losses: list[float] = field(default_factory=list)
    """Training losses, one per gradient step (deep agents only)."""
    _running_return: np.ndarray = field(init=False, repr=False)
    _running_length: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._running_return = np.zeros(self.num_envs, dtype=np.float64)
        self._running_length = np.zeros(self.num_envs, dtype=np.int64)

    @property
    def episodes(self) -> int:
        """Number of finished episodes."""
        return len(self.episode_returns)

    def record_step(self, env_index: int, reward: float, done: bool) -> None:
        """Add one step of sub-environment ``env_index``."""
        self.steps += 1
        self.step_rewards.append(float(reward))
        self._running_return[env_index] += reward
        self._running_length[env_index] += 1
        if done:
            self.episode_returns.append(float(self._running_return[env_index]))
            self.episode_lengths.append(int(self._running_length[env_index]))
            self.episode_end_steps.append(self.steps)
            self._running_return[env_index] = 0.0
            self._running_length[env_index] = 0

    def to_rows(self, kind: str = "episodes") -> list[dict[str, float | int]]:
        """Rows for a csv file: one per finished episode (``kind="episodes"``)
        or one per step (``kind="steps"``)."""
        if kind == "episodes":
            return [
                {"episode": i, "return": ret, "length": length, "end_step": end}
                for i, (ret, length, end) in enumerate(
                    zip(
                        self.episode_returns,
                        self.episode_lengths,
                        self.episode_end_steps,
                        strict=True,
                    )
                )
            ]
        if kind == "steps":
            return [{"step": i + 1, "reward": r} for i, r in enumerate(self.step_rewards)]
        raise ValueError(f"to_rows: kind must be 'episodes' or 'steps', got {kind!r}")

    def write_csv(self, path: str | os.PathLike[str], kind: str = "episodes") -> None:
        """Write ``to_rows(kind)`` as a csv file with a header line."""
        rows = self.to_rows(kind)
        fieldnames = (
            ["episode", "return", "length", "end_step"]
            if kind == "episodes"
            else ["step", "reward"]
        )
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(rows)


AgentT = TypeVar("AgentT", bound="Agent")


class Agent(ABC):
    """Common API: ``learn``, ``act``, ``save``, ``load``.

    Subclasses choose actions for a batch of observations and learn from one
    transition at a time; the training loop, the log, the callback and the
    progress bar live here.
    """

    agent_name: ClassVar[str]
    rng: np.random.Generator
    num_timesteps: int = 0

    # -- what a subclass provides ------------------------------------------

    @abstractmethod
    def _check_env(self, env: gym.Env | gym.vector.VectorEnv) -> None:
        """Raise ValueError when the env's spaces do not fit this agent."""

    @abstractmethod
    def _choose_training_actions(
        self, obs: np.ndarray, masks: np.ndarray | None, step: int, total_steps: int
    ) -> np.ndarray:
        """One action per sub-env while learning (exploration included)."""

    @abstractmethod
    def _observe(self, transition: Transition, log: TrainingLog) -> None:
        """Learn from one transition."""

    @abstractmethod
    def act(self, obs: Any, *, greedy: bool = True, action_mask: np.ndarray | None = None) -> int:
        """Action for one observation."""

    @abstractmethod
    def config_dict(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments."""

    @abstractmethod
    def _state_arrays(self) -> dict[str, np.ndarray]:
        """Learned state to save."""

    @classmethod
    @abstractmethod
    def _from_checkpoint(
        cls: type[AgentT], path: Path, config: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> AgentT:
        """Rebuild an agent from a checked file's config and arrays."""

    @property
    def uses_action_mask(self) -> bool:
        return bool(getattr(self, "use_action_mask", False))

    def _start_learning(self, seed: int | None, total_steps: int) -> None:
        """Hook run before the first step (reseed, size budgets...)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    # -- the shared API ------------------------------------------------------

    def learn(
        self,
        env: gym.Env | gym.vector.VectorEnv,
        total_steps: int,
        *,
        seed: int | None = None,
        callback: Callback | None = None,
        progress: bool | ProgressReporter = False,
    ) -> TrainingLog:
        """Interact with ``env`` for ``total_steps`` env steps and learn from them.

        Args:
            env: a Gymnasium env or Gymnasium 1.x vector env (steps are counted
                per sub-env; autoreset steps are not counted).
            total_steps: number of env steps (transitions) to take.
            seed: reseeds the agent's random generator and seeds the env's first
                reset; with ``None`` the env seed is drawn from the agent's
                generator (itself seeded by the agent's ``seed``), so runs stay
                reproducible and successive calls differ.
            callback: ``callback(step, reward, info)`` after every env step, with
                ``step`` counted from 1; returning ``False`` stops learning early.
            progress: show a progress bar (True), or add one to a given reporter.

        Returns:
            The TrainingLog of this call.
        """
        if total_steps < 0:
            raise ValueError(f"learn: total_steps must be >= 0, got {total_steps}")
        self._check_env(env)
        self._start_learning(seed, total_steps)
        if seed is None:
            seed = int(self.rng.integers(2**31 - 1))
        stepper = EnvStepper(env, seed=seed, use_action_mask=self.uses_action_mask)
        log = TrainingLog(num_envs=stepper.num_envs)
        stop = False
        reporter = reporter_for(progress)
        with reporter:
            bar = reporter.add(self.agent_name, total_steps)
            while log.steps < total_steps and not stop:
                actions = self._choose_training_actions(
                    stepper.obs, stepper.action_masks, log.steps, total_steps
                )
                for transition in stepper.step(actions):
                    if log.steps >= total_steps:
                        break
                    log.record_step(transition.env_index, transition.reward, transition.done)
                    self.num_timesteps += 1
                    self._observe(transition, log)
                    reporter.update(bar, advance=1)
                    if (
                        callback is not None
                        and callback(log.steps, transition.reward, transition.info) is False
                    ):
                        stop = True
                        break
        return log

    def save(self, path: str | os.PathLike[str], *, env_id: str) -> Path:
        """Save to one file (see the module docstring for the format); return its path."""
        return write_checkpoint(
            path,
            agent=self.agent_name,
            env_id=env_id,
            config=self.config_dict(),
            arrays=self._state_arrays(),
        )

    @classmethod
    def load(
        cls: type[AgentT], path: str | os.PathLike[str], *, env_id: str | None = None
    ) -> AgentT:
        """Load an agent saved by ``save``; with ``env_id``, refuse a file saved for another env."""
        header, arrays = read_checkpoint(path, agent=cls.agent_name, env_id=env_id)
        try:
            return cls._from_checkpoint(Path(path), header["config"], arrays)
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(
                f"{path}: agent file config or arrays do not fit a {cls.agent_name!r} agent ({err})"
            ) from err
