"""Small helpers agents share: masked argmax/max, random actions, schedules, space checks."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


def linear_schedule(
    start: float, end: float, fraction: float, step: int, total_steps: int
) -> float:
    """Value that moves linearly from ``start`` to ``end`` over the first
    ``fraction * total_steps`` steps and stays at ``end`` afterwards."""
    decay_steps = fraction * total_steps
    if decay_steps <= 0:
        return end
    progress = min(1.0, step / decay_steps)
    return start + progress * (end - start)


def masked_argmax(
    values: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator | None = None
) -> int:
    """Index of the largest value among allowed entries.

    Ties go to the lowest index, or to a uniformly random one of the tied
    indices when ``rng`` is given (used while learning, so that an all-zero
    Q-row does not always pick action 0).
    """
    if mask is not None and not np.any(mask):
        raise ValueError("action mask allows no action")
    masked = values if mask is None else np.where(mask, values, -np.inf)
    if rng is None:
        return int(np.argmax(masked))
    best = np.flatnonzero(masked == np.max(masked))
    return int(best[0]) if best.size == 1 else int(rng.choice(best))


def masked_max(values: np.ndarray, mask: np.ndarray | None) -> float:
    """Largest value among allowed entries; 0.0 when nothing is allowed (a state with no moves)."""
    if mask is None:
        return float(np.max(values))
    if not np.any(mask):
        return 0.0
    return float(np.max(values[mask]))


def random_action(rng: np.random.Generator, n_actions: int, mask: np.ndarray | None) -> int:
    """Uniformly random action among the allowed ones."""
    if mask is None:
        return int(rng.integers(n_actions))
    allowed = np.flatnonzero(mask)
    if allowed.size == 0:
        raise ValueError("action mask allows no action")
    return int(rng.choice(allowed))


def require_discrete(space: gym.Space, what: str, agent: str) -> int:
    """Size of a ``Discrete`` space that starts at 0, or a ValueError saying what fits."""
    if not isinstance(space, gym.spaces.Discrete):
        raise ValueError(f"{agent} needs a Discrete {what} space, got {space}")
    if int(space.start) != 0:
        raise ValueError(
            f"{agent} needs a Discrete {what} space starting at 0, got start={space.start}"
        )
    return int(space.n)
