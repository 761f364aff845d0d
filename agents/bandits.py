"""Multi-armed bandits over a prompt pool: each arm is one prompt, a pull is
one env step with that prompt, the reward is the step's reward.

All bandits share one small API:

- ``select(rng, action_mask=None) -> arm``: the arm to pull next;
- ``update(arm, reward)``: record the reward of a pull;
- ``best_arm(action_mask=None) -> arm``: the arm the bandit would recommend now.

They are also Agents (``learn``, ``act``, ``save``, ``load``): on an env,
observations are ignored and the env's Discrete action space is the set of
arms. Ties always go to the lowest arm index.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from agents.actions import masked_argmax, random_action, require_discrete
from agents.base import Agent, TrainingLog
from agents.checkpoint import require_arrays
from agents.rollout import Transition, single_spaces
from prompt_env.errors import CheckpointError


class Bandit(Agent):
    """Per-arm statistics (pulls, reward sum, sum of squares) and the Agent glue."""

    agent_name: ClassVar[str]
    _state_names: ClassVar[tuple[str, ...]] = ("counts", "sums", "sums_of_squares")
    _variable_length: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, n_arms: int, *, use_action_mask: bool = True, seed: int | None = None
    ) -> None:
        if n_arms < 1:
            raise ValueError(f"a bandit needs at least one arm, got n_arms={n_arms}")
        self.n_arms = int(n_arms)
        self.use_action_mask = use_action_mask
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.counts = np.zeros(self.n_arms, dtype=np.int64)
        self.sums = np.zeros(self.n_arms, dtype=np.float64)
        self.sums_of_squares = np.zeros(self.n_arms, dtype=np.float64)
        self.num_timesteps = 0

    @classmethod
    def from_env(cls, env: gym.Env | gym.vector.VectorEnv, **kwargs: Any) -> Bandit:
        """A bandit whose arms are ``env``'s Discrete actions."""
        _, action_space = single_spaces(env)
        return cls(require_discrete(action_space, "action", cls.__name__), **kwargs)

    # -- the bandit API -----------------------------------------------------------

    def select(self, rng: np.random.Generator, action_mask: np.ndarray | None = None) -> int:
        """The arm to pull next."""
        raise NotImplementedError

    def update(self, arm: int, reward: float) -> None:
        """Record one pull of ``arm`` that paid ``reward``."""
        self.counts[arm] += 1
        self.sums[arm] += reward
        self.sums_of_squares[arm] += reward * reward

    @property
    def means(self) -> np.ndarray:
        """Empirical mean reward of each arm (0 for arms never pulled)."""
        return np.divide(self.sums, self.counts, out=np.zeros(self.n_arms), where=self.counts > 0)

    def best_arm(self, action_mask: np.ndarray | None = None) -> int:
        """Arm with the highest empirical mean among pulled arms (lowest index on ties)."""
        mask = self.counts > 0
        if action_mask is not None:
            mask = mask & np.asarray(action_mask, dtype=bool)
            if not mask.any():
                mask = np.asarray(action_mask, dtype=bool)
        elif not mask.any():
            return 0
        return masked_argmax(self.means, mask)

    # -- the Agent hooks --------------------------------------------------------------

    def act(
        self, obs: Any = None, *, greedy: bool = True, action_mask: np.ndarray | None = None
    ) -> int:
        """``best_arm()`` when greedy, else ``select``; the observation is ignored."""
        if greedy:
            return self.best_arm(action_mask)
        return self.select(self.rng, action_mask)

    def _check_env(self, env: gym.Env | gym.vector.VectorEnv) -> None:
        _, action_space = single_spaces(env)
        n = require_discrete(action_space, "action", type(self).__name__)
        if n != self.n_arms:
            raise ValueError(
                f"{type(self).__name__} has {self.n_arms} arms, the env has {n} actions"
            )

    def _choose_training_actions(
        self, obs: np.ndarray, masks: np.ndarray | None, step: int, total_steps: int
    ) -> np.ndarray:
        return np.array(
            [self.select(self.rng, None if masks is None else masks[i]) for i in range(len(obs))],
            dtype=np.int64,
        )

    def _observe(self, transition: Transition, log: TrainingLog) -> None:
        self.update(transition.action, transition.reward)

    def config_dict(self) -> dict[str, Any]:
        return {"n_arms": self.n_arms, "use_action_mask": self.use_action_mask, "seed": self.seed}

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self, name)) for name in self._state_names}

    @classmethod
    def _from_checkpoint(
        cls, path: Path, config: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> Bandit:
        require_arrays(path, arrays, list(cls._state_names))
        bandit = cls(**config)
        for name in cls._state_names:
            current = np.asarray(getattr(bandit, name))
            if name not in cls._variable_length and arrays[name].shape != current.shape:
                raise CheckpointError(
                    f"{path}: array {name!r} has shape {arrays[name].shape}, expected {current.shape}"
                )
            setattr(bandit, name, arrays[name].astype(current.dtype))
        return bandit


def _first_unpulled(counts: np.ndarray, mask: np.ndarray | None) -> int | None:
    unpulled = counts == 0 if mask is None else (counts == 0) & mask
    return int(np.flatnonzero(unpulled)[0]) if unpulled.any() else None


class EpsilonGreedyBandit(Bandit):
    """Pull every arm once, then the best mean with probability 1 - epsilon,
    otherwise a uniformly random arm.

    Args:
        n_arms: number of arms.
        epsilon: exploration probability.
    """

    agent_name = "epsilon-greedy"

    def __init__(
        self,
        n_arms: int,
        *,
        epsilon: float = 0.1,
        use_action_mask: bool = True,
        seed: int | None = None,
    ):
        super().__init__(n_arms, use_action_mask=use_action_mask, seed=seed)
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.epsilon = float(epsilon)

    def select(self, rng: np.random.Generator, action_mask: np.ndarray | None = None) -> int:
        mask = None if action_mask is None else np.asarray(action_mask, dtype=bool)
        unpulled = _first_unpulled(self.counts, mask)
        if unpulled is not None:
            return unpulled
        if rng.random() < self.epsilon:
            return random_action(rng, self.n_arms, mask)
        return masked_argmax(self.means, mask)

    def config_dict(self) -> dict[str, Any]:
        return {**super().config_dict(), "epsilon": self.epsilon}


class UCB1(Bandit):
    """UCB1 (Auer et al. 2002): pull every arm once, then the arm with the highest upper
    confidence bound on its mean reward:

        mean_a + exploration * sqrt(2 ln t / n_a)

    where t is the total number of pulls. Deterministic (ties: lowest index).
    ``exploration`` = 1 is the textbook bound for rewards in [0, 1]; scale it
    with the reward range otherwise.
    """

    agent_name = "ucb1"

    def __init__(
        self,
        n_arms: int,
        *,
        exploration: float = 1.0,
        use_action_mask: bool = True,
        seed: int | None = None,
    ):
        super().__init__(n_arms, use_action_mask=use_action_mask, seed=seed)
        self.exploration = float(exploration)

    def upper_bounds(self) -> np.ndarray:
        """UCB index of each arm (+inf for arms never pulled)."""
        total = max(int(self.counts.sum()), 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            bonus = self.exploration * np.sqrt(2.0 * math.log(total) / self.counts)
        return np.where(self.counts > 0, self.means + bonus, np.inf)

    def select(self, rng: np.random.Generator, action_mask: np.ndarray | None = None) -> int:
        mask = None if action_mask is None else np.asarray(action_mask, dtype=bool)
        unpulled = _first_unpulled(self.counts, mask)
        if unpulled is not None:
            return unpulled
        return masked_argmax(self.upper_bounds(), mask)

    def config_dict(self) -> dict[str, Any]:
        return {**super().config_dict(), "exploration": self.exploration}


class ThompsonSampling(Bandit):
    """Thompson sampling: draw a plausible mean for each arm from its posterior
    and pull the arm with the largest draw.

    Two posteriors:

    - ``prior="gaussian"`` (default; any real rewards): the mean of arm a has
      prior N(prior_mean, prior_std^2) and rewards are N(mean_a, noise_std^2)
      with known ``noise_std``; the posterior is Gaussian with precision
      1/prior_std^2 + n_a/noise_std^2.
    - ``prior="beta"`` (rewards in [0, 1], e.g. accuracy): Beta(1 + S_a,
      1 + n_a - S_a) with S_a the reward sum; for 0/1 rewards this is the exact
      Beta-Bernoulli posterior, for fractional rewards the usual
      "fractional success" generalisation. Rewards outside [0, 1] raise
      ValueError.
    """

    agent_name = "thompson"

    def __init__(
        self,
        n_arms: int,
        *,
        prior: str = "gaussian",
        prior_mean: float = 0.0,
        prior_std: float = 1.0,
        noise_std: float = 0.5,
        use_action_mask: bool = True,
        seed: int | None = None,
    ):
        super().__init__(n_arms, use_action_mask=use_action_mask, seed=seed)
        if prior not in ("gaussian", "beta"):
            raise ValueError(f"prior must be 'gaussian' or 'beta', got {prior!r}")
        if prior_std <= 0 or noise_std <= 0:
            raise ValueError("prior_std and noise_std must be > 0")
        self.prior = prior
        self.prior_mean = float(prior_mean)
        self.prior_std = float(prior_std)
        self.noise_std = float(noise_std)

    def update(self, arm: int, reward: float) -> None:
        if self.prior == "beta" and not 0.0 <= reward <= 1.0:
            raise ValueError(
                f"ThompsonSampling(prior='beta') needs rewards in [0, 1], got {reward}"
            )
        super().update(arm, reward)

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-arm posterior parameters: (mean, std) for Gaussian, (alpha, beta) for Beta."""
        if self.prior == "beta":
            return 1.0 + self.sums, 1.0 + self.counts - self.sums
        precision = 1.0 / self.prior_std**2 + self.counts / self.noise_std**2
        mean = (self.prior_mean / self.prior_std**2 + self.sums / self.noise_std**2) / precision
        return mean, 1.0 / np.sqrt(precision)

    def sample_means(self, rng: np.random.Generator) -> np.ndarray:
        """One draw of every arm's mean from its posterior."""
        first, second = self.posterior()
        if self.prior == "beta":
            return rng.beta(first, second)
        return rng.normal(first, second)

    def select(self, rng: np.random.Generator, action_mask: np.ndarray | None = None) -> int:
        mask = None if action_mask is None else np.asarray(action_mask, dtype=bool)
        return masked_argmax(self.sample_means(rng), mask)

    def config_dict(self) -> dict[str, Any]:
        return {
            **super().config_dict(),
            "prior": self.prior,
            "prior_mean": self.prior_mean,
            "prior_std": self.prior_std,
            "noise_std": self.noise_std,
        }


class SuccessiveHalving(Bandit):
    """Best-arm identification with a fixed budget of pulls (Karnin et al. 2013).

    The budget is split over ceil(log2 n) rounds. In each round every
    surviving arm is pulled budget // (survivors * rounds) times (at least
    once), then the better half (by mean over all pulls so far) survives.
    When one arm is left, or the budget is spent, ``select`` keeps pulling
    ``best_arm()``. ``learn(env, total_steps)`` sets the budget to
    ``total_steps`` when none was given.
    """

    agent_name = "successive-halving"
    _state_names = ("counts", "sums", "sums_of_squares", "active", "queue", "round_stats")
    _variable_length = ("queue",)

    def __init__(
        self,
        n_arms: int,
        *,
        budget: int | None = None,
        use_action_mask: bool = True,
        seed: int | None = None,
    ):
        super().__init__(n_arms, use_action_mask=use_action_mask, seed=seed)
        self.budget = budget
        self.active = np.ones(self.n_arms, dtype=bool)
        self.queue = np.zeros(0, dtype=np.int64)
        # [round index, pulls scheduled this round, updates received this round, pulls selected in total]
        self.round_stats = np.zeros(4, dtype=np.int64)
        if budget is not None:
            self.set_budget(budget)

    @property
    def n_rounds(self) -> int:
        return max(1, math.ceil(math.log2(self.n_arms)))

    def set_budget(self, budget: int) -> None:
        """Restart the schedule with ``budget`` pulls (keeps the statistics)."""
        if budget < 1:
            raise ValueError(f"budget must be >= 1, got {budget}")
        self.budget = int(budget)
        self.active[:] = True
        self.round_stats[:] = 0
        self._schedule_round()

    def _schedule_round(self) -> None:
        survivors = np.flatnonzero(self.active)
        if len(survivors) <= 1:
            self.queue = np.zeros(0, dtype=np.int64)
            self.round_stats[1] = 0
            return
        pulls_each = max(1, self.budget // (len(survivors) * self.n_rounds))
        self.queue = np.tile(survivors, pulls_each).astype(np.int64)  # round-robin order
        self.round_stats[1] = len(self.queue)
        self.round_stats[2] = 0

    def _halve(self) -> None:
        survivors = np.flatnonzero(self.active)
        keep = math.ceil(len(survivors) / 2)
        # stable sort on -mean: ties keep the lower index
        order = survivors[np.argsort(-self.means[survivors], kind="stable")]
        self.active[:] = False
        self.active[order[:keep]] = True
        self.round_stats[0] += 1
        self._schedule_round()

    @property
    def finished(self) -> bool:
        """True when one arm is left or the budget is spent."""
        return int(self.active.sum()) <= 1 or (
            self.budget is not None and self.round_stats[3] >= self.budget
        )

    def select(self, rng: np.random.Generator, action_mask: np.ndarray | None = None) -> int:
        if self.budget is None:
            raise ValueError(
                "SuccessiveHalving needs a budget: pass budget=... or call set_budget()"
            )
        mask = None if action_mask is None else np.asarray(action_mask, dtype=bool)
        self.round_stats[3] += 1
        if not self.finished and len(self.queue) > 0:
            arm, self.queue = int(self.queue[0]), self.queue[1:]
            if mask is None or mask[arm]:
                return arm
        return self.best_arm(mask if mask is not None else self.active)

    def update(self, arm: int, reward: float) -> None:
        super().update(arm, reward)
        if self.round_stats[1] > 0:
            self.round_stats[2] += 1
            if self.round_stats[2] >= self.round_stats[1] and int(self.active.sum()) > 1:
                self._halve()

    def best_arm(self, action_mask: np.ndarray | None = None) -> int:
        """Best surviving arm by mean (restricted to ``action_mask`` when given)."""
        mask = self.active if action_mask is None else np.asarray(action_mask, dtype=bool)
        if not np.any(mask & (self.counts > 0)):
            return masked_argmax(np.zeros(self.n_arms), mask)
        return masked_argmax(self.means, mask & (self.counts > 0))

    def _start_learning(self, seed: int | None, total_steps: int) -> None:
        super()._start_learning(seed, total_steps)
        if self.budget is None:
            self.set_budget(total_steps)

    def config_dict(self) -> dict[str, Any]:
        return {**super().config_dict(), "budget": self.budget}


def run_bandit_on_env(
    bandit: Bandit, env: gym.Env | gym.vector.VectorEnv, steps: int, seed: int | None = None
) -> TrainingLog:
    """Pull arms by stepping ``env`` ``steps`` times (observations ignored; the
    env's Discrete actions are the arms); returns the TrainingLog."""
    return bandit.learn(env, steps, seed=seed)
