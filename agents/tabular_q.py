"""Tabular Q-learning for envs with Discrete observations and Discrete actions.

The documented rule is

    Q(s, a) = r + gamma * max_a' Q(s', a')

and the update moves Q(s, a) a step of size alpha towards that target:

    Q(s, a) <- Q(s, a) + alpha * (r + gamma * max_a' Q(s', a') - Q(s, a))

With alpha = 1 the update *is* the rule. When the episode terminated, s' has
no future and the target is just r; when it was only truncated (time limit,
budget), s' still has a future and the target bootstraps from it.

Ties in the argmax: ``act(obs)`` (greedy) takes the lowest action index, so
the greedy policy is a pure function of the Q-table; while learning, ties
are broken uniformly at random by the agent's own seeded
``numpy.random.Generator`` (an all-zero row would otherwise always pick
action 0 and never find a sparse reward). Exploration draws from the same
generator, so a seed fixes the whole run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.actions import (
    linear_schedule,
    masked_argmax,
    masked_max,
    random_action,
    require_discrete,
)
from agents.base import Agent, TrainingLog
from agents.checkpoint import require_arrays
from agents.rollout import Transition, single_spaces
from agents.sparse_table import SparseRows
from prompt_env.errors import CheckpointError

ONE_OVER_VISITS = "1/visits"
DENSE_ENTRIES = 1 << 24
"""Largest n_states x n_actions kept as a dense array; larger tables keep visited states
only (:class:`~agents.sparse_table.SparseRows`)."""


@dataclass
class TabularQConfig:
    """Hyperparameters of TabularQAgent."""

    learning_rate: float | str = 0.1
    """Step size alpha: a constant in (0, 1], or "1/visits" for 1 / N(s, a) (a running mean of targets)."""
    gamma: float = 0.99
    """Discount factor of future rewards."""
    epsilon_start: float = 1.0
    """Exploration probability at the first step of a learn call."""
    epsilon_end: float = 0.05
    """Exploration probability after the decay."""
    exploration_fraction: float = 0.5
    """Fraction of a learn call's steps over which epsilon decays linearly from start to end."""
    initial_q: float | list[float] = 0.0
    """Initial value of every Q(s, a), or one initial value per action (e.g. untried edits
    slightly below the stop action, so that an agent stops rather than wanders where it has
    learned nothing)."""
    use_action_mask: bool = True
    """Use the env's action mask (info["action_mask"] or action_masks()) for argmax and exploration."""
    action_groups: list[int] | None = None
    """A group id per action: exploration and ties while learning draw a group uniformly first,
    then an action of it (e.g. the kind of an Edit env's edit, so that the many exemplar
    edits do not crowd out the few instruction or verbalizer edits). None: uniform over actions."""
    action_prior: bool = False
    """Start the row of a state seen for the first time at each action's mean reward so far
    (over every state where it was taken), instead of ``initial_q`` (kept for actions never
    taken): what an action did elsewhere is the first guess of what it does here. The update
    rule is unchanged; only new entries start from experience instead of a constant."""
    seed: int | None = None
    """Seed of the exploration generator and of the env's first reset when learn gets no seed."""

    def __post_init__(self) -> None:
        if isinstance(self.learning_rate, str):
            if self.learning_rate != ONE_OVER_VISITS:
                raise ValueError(
                    f"learning_rate must be a number or {ONE_OVER_VISITS!r}, got {self.learning_rate!r}"
                )
        elif not 0.0 < float(self.learning_rate) <= 1.0:
            raise ValueError(f"learning_rate must be in (0, 1], got {self.learning_rate}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")


class TabularQAgent(Agent):
    """Q-learning with a table Q[state, action] and epsilon-greedy exploration.

    Args:
        n_states: size of the Discrete observation space.
        n_actions: size of the Discrete action space.
        config: a TabularQConfig; keyword arguments override its fields.
    """

    agent_name = "tabular-q"

    def __init__(
        self, n_states: int, n_actions: int, config: TabularQConfig | None = None, **overrides: Any
    ) -> None:
        config = config or TabularQConfig()
        if overrides:
            known = {f.name for f in fields(TabularQConfig)}
            unknown = sorted(set(overrides) - known)
            if unknown:
                raise TypeError(
                    f"TabularQAgent: unknown option(s) {unknown}; known: {sorted(known)}"
                )
            config = TabularQConfig(**{**asdict(config), **overrides})
        self.config = config
        self.n_states = int(n_states)
        self.n_actions = int(n_actions)
        self.sparse = self.n_states * self.n_actions > DENSE_ENTRIES
        self.q_table: Any
        self.visits: Any
        if self.sparse:
            self.q_table = SparseRows(self.n_states, self.n_actions, self._initial_row(), np.float64)
            self.visits = SparseRows(self.n_states, self.n_actions, 0, np.int64)
        else:
            self.q_table = np.tile(self._initial_row(), (self.n_states, 1))
            self.visits = np.zeros((self.n_states, self.n_actions), dtype=np.int64)
        self.rng = np.random.default_rng(config.seed)
        self.num_timesteps = 0
        self.groups = None if config.action_groups is None else np.asarray(config.action_groups, dtype=np.int64)
        self.reward_sums = np.zeros(self.n_actions, dtype=np.float64)  # for action_prior
        self.reward_counts = np.zeros(self.n_actions, dtype=np.int64)
        self.started: set[int] = set()
        if self.groups is not None and self.groups.shape != (self.n_actions,):
            raise ValueError(f"action_groups needs one group per action ({self.n_actions}), got {len(self.groups)}")

    def _initial_row(self) -> np.ndarray:
        """Q(s, .) of a state not visited yet."""
        initial = np.asarray(self.config.initial_q, dtype=np.float64)
        if initial.ndim > 1 or (initial.ndim == 1 and initial.shape != (self.n_actions,)):
            raise ValueError(f"initial_q needs one value or one per action ({self.n_actions}), "
                             f"got shape {initial.shape}")
        return np.array(np.broadcast_to(initial, (self.n_actions,)))

    @classmethod
    def from_env(
        cls,
        env: gym.Env | gym.vector.VectorEnv,
        config: TabularQConfig | None = None,
        **overrides: Any,
    ) -> TabularQAgent:
        """An agent sized for ``env``'s Discrete observation and action spaces."""
        obs_space, action_space = single_spaces(env)
        n_states = require_discrete(obs_space, "observation", "TabularQAgent")
        n_actions = require_discrete(action_space, "action", "TabularQAgent")
        return cls(n_states, n_actions, config, **overrides)

    # convenient read-only views of the config
    @property
    def gamma(self) -> float:
        return self.config.gamma

    @property
    def seed(self) -> int | None:
        return self.config.seed

    @property
    def use_action_mask(self) -> bool:
        return self.config.use_action_mask

    # -- the Q-learning update ------------------------------------------------

    def step_size(self, state: int, action: int) -> float:
        """alpha for this (s, a): the constant, or 1 / N(s, a) (N counts this update)."""
        if self.config.learning_rate == ONE_OVER_VISITS:
            return 1.0 / self.visits[state, action]
        return float(self.config.learning_rate)

    def update(
        self,
        state: int,
        action: int,
        reward: float,
        next_state: int,
        terminated: bool,
        next_action_mask: np.ndarray | None = None,
    ) -> float:
        """One Q-learning update of Q[state, action]; returns the TD error.

        ``next_action_mask`` restricts the max over Q(s', .) to valid actions.
        """
        self.visits[state, action] += 1
        self.reward_sums[action] += reward
        self.reward_counts[action] += 1
        self.row(state)
        max_next = masked_max(self.row(next_state), next_action_mask)
        td_target = reward + self.gamma * max_next * (1.0 - float(terminated))
        td_error = td_target - self.q_table[state, action]
        self.q_table[state, action] += self.step_size(state, action) * td_error
        return float(td_error)

    def row(self, state: int) -> np.ndarray:
        """Q(state, .); with ``action_prior``, started from the actions' mean rewards the
        first time the state is seen."""
        values = self.q_table[state]
        if self.config.action_prior and state not in self.started:
            self.started.add(state)
            taken = self.reward_counts > 0
            values[taken] = self.reward_sums[taken] / self.reward_counts[taken]
        return values

    # -- acting ----------------------------------------------------------------

    def epsilon(self, step: int, total_steps: int) -> float:
        """Exploration probability at ``step`` of a learn call of ``total_steps`` steps."""
        c = self.config
        return linear_schedule(
            c.epsilon_start, c.epsilon_end, c.exploration_fraction, step, total_steps
        )

    def act(self, obs: Any, *, greedy: bool = True, action_mask: np.ndarray | None = None) -> int:
        """Greedy action (lowest index on ties), or epsilon-greedy with the final epsilon."""
        state = self._state(obs)
        mask = None if action_mask is None else np.asarray(action_mask, dtype=bool)
        if not greedy and self.rng.random() < self.config.epsilon_end:
            return random_action(self.rng, self.n_actions, mask)
        return masked_argmax(self.row(state), mask)

    def greedy_policy(self) -> np.ndarray:
        """Greedy action of every state (ignores masks); a sparse table: of each visited state,
        in increasing state order."""
        if self.sparse:
            return np.argmax(self.q_table.to_arrays()[1], axis=1)
        return np.argmax(self.q_table, axis=1)

    def _state(self, obs: Any) -> int:
        state = int(np.asarray(obs).reshape(()))
        if not 0 <= state < self.n_states:
            raise ValueError(f"observation {state} is outside the table's {self.n_states} states")
        return state

    # -- the Agent hooks ----------------------------------------------------------

    def _check_env(self, env: gym.Env | gym.vector.VectorEnv) -> None:
        obs_space, action_space = single_spaces(env)
        n_states = require_discrete(obs_space, "observation", "TabularQAgent")
        n_actions = require_discrete(action_space, "action", "TabularQAgent")
        if (n_states, n_actions) != (self.n_states, self.n_actions):
            raise ValueError(
                f"TabularQAgent has a {self.n_states}x{self.n_actions} table, "
                f"the env has {n_states} states and {n_actions} actions"
            )

    def _choose_training_actions(
        self, obs: np.ndarray, masks: np.ndarray | None, step: int, total_steps: int
    ) -> np.ndarray:
        epsilon = self.epsilon(step, total_steps)
        actions = np.empty(len(obs), dtype=np.int64)
        for i, single_obs in enumerate(obs):
            mask = None if masks is None else masks[i]
            if self.rng.random() < epsilon:
                actions[i] = random_action(self.rng, self.n_actions, mask, self.groups)
            else:
                actions[i] = masked_argmax(self.row(self._state(single_obs)), mask, self.rng, self.groups)
        return actions

    def _observe(self, transition: Transition, log: TrainingLog) -> None:
        self.update(
            self._state(transition.obs),
            transition.action,
            transition.reward,
            self._state(transition.next_obs),
            transition.terminated,
            transition.next_action_mask,
        )

    def config_dict(self) -> dict[str, Any]:
        return {"n_states": self.n_states, "n_actions": self.n_actions, **asdict(self.config)}

    def _state_arrays(self) -> dict[str, np.ndarray]:
        prior = {"reward_sums": self.reward_sums, "reward_counts": self.reward_counts,
                 "started": np.array(sorted(self.started), dtype=np.int64)} if self.config.action_prior else {}
        return {**self._table_arrays(), **prior}

    def _table_arrays(self) -> dict[str, np.ndarray]:
        if self.sparse:  # the visited states' rows (the visit table has the same states)
            states, q_rows = self.q_table.to_arrays()
            visits = np.stack([self.visits[s] for s in states]) if len(states) else np.zeros((0, self.n_actions), np.int64)
            return {"states": states, "q_rows": q_rows, "visit_rows": visits}
        return {"q_table": self.q_table, "visits": self.visits}

    @classmethod
    def _from_checkpoint(
        cls, path: Path, config: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> TabularQAgent:
        config = dict(config)
        agent = cls(config.pop("n_states"), config.pop("n_actions"), TabularQConfig(**config))
        if agent.sparse:
            require_arrays(path, arrays, ["states", "q_rows", "visit_rows"])
            states = arrays["states"]
            shape = (len(states), agent.n_actions)
            if states.ndim != 1 or arrays["q_rows"].shape != shape or arrays["visit_rows"].shape != shape:
                raise CheckpointError(f"{path}: sparse table arrays do not match {len(states)} states x "
                                      f"{agent.n_actions} actions")
            if len(states) and (states.min() < 0 or states.max() >= agent.n_states):
                raise CheckpointError(f"{path}: a stored state is outside [0, {agent.n_states})")
            agent.q_table.load(states, arrays["q_rows"])
            agent.visits.load(states, arrays["visit_rows"])
            return agent._load_prior(path, arrays)
        require_arrays(path, arrays, ["q_table", "visits"])
        expected = (agent.n_states, agent.n_actions)
        for name in ("q_table", "visits"):
            if arrays[name].shape != expected:
                raise CheckpointError(
                    f"{path}: array {name!r} has shape {arrays[name].shape}, expected {expected}"
                )
        agent.q_table = arrays["q_table"].astype(np.float64)
        agent.visits = arrays["visits"].astype(np.int64)
        return agent._load_prior(path, arrays)

    def _load_prior(self, path: Path, arrays: dict[str, np.ndarray]) -> TabularQAgent:
        """The action prior's statistics (``action_prior`` agents only)."""
        if not self.config.action_prior:
            return self
        require_arrays(path, arrays, ["reward_sums", "reward_counts", "started"])
        if arrays["reward_sums"].shape != (self.n_actions,) or arrays["reward_counts"].shape != (self.n_actions,):
            raise CheckpointError(f"{path}: the action prior needs one sum and one count per action")
        self.reward_sums = arrays["reward_sums"].astype(np.float64)
        self.reward_counts = arrays["reward_counts"].astype(np.int64)
        self.started = {int(s) for s in arrays["started"]}
        return self
