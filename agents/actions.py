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


def pick(rng: np.random.Generator, candidates: np.ndarray, groups: np.ndarray | None = None) -> int:
    """A uniformly random entry of ``candidates`` (action indices); with ``groups`` (a group id
    per action), a uniformly random group among the candidates' groups first, then a uniformly
    random candidate of that group."""
    if groups is not None and candidates.size > 1:
        present = np.unique(groups[candidates])
        if present.size > 1:
            chosen = present[int(rng.integers(present.size))]
            candidates = candidates[groups[candidates] == chosen]
    return int(candidates[0]) if candidates.size == 1 else int(rng.choice(candidates))


def masked_argmax(
    values: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator | None = None,
    groups: np.ndarray | None = None,
) -> int:
    """Index of the largest value among allowed entries.

    Ties go to the lowest index, or to a uniformly random one of the tied
    indices when ``rng`` is given (used while learning, so that an all-zero
    Q-row does not always pick action 0); with ``groups``, to a random group of
    actions first (see :func:`pick`).
    """
    if mask is not None and not np.any(mask):
        raise ValueError("action mask allows no action")
    masked = values if mask is None else np.where(mask, values, -np.inf)
    if rng is None:
        return int(np.argmax(masked))
    return pick(rng, np.flatnonzero(masked == np.max(masked)), groups)


def masked_max(values: np.ndarray, mask: np.ndarray | None) -> float:
    """Largest value among allowed entries; 0.0 when nothing is allowed (a state with no moves)."""
    if mask is None:
        return float(np.max(values))
    if not np.any(mask):
        return 0.0
    return float(np.max(values[mask]))


def random_action(rng: np.random.Generator, n_actions: int, mask: np.ndarray | None,
                  groups: np.ndarray | None = None) -> int:
    """Uniformly random action among the allowed ones (with ``groups``: a random group of them
    first, see :func:`pick`)."""
    if mask is None and groups is None:
        return int(rng.integers(n_actions))
    allowed = np.arange(n_actions) if mask is None else np.flatnonzero(mask)
    if allowed.size == 0:
        raise ValueError("action mask allows no action")
    if groups is None:
        return int(rng.choice(allowed))
    return pick(rng, allowed, groups)


def require_discrete(space: gym.Space, what: str, agent: str) -> int:
    """Size of a ``Discrete`` space that starts at 0, or a ValueError saying what fits."""
    if not isinstance(space, gym.spaces.Discrete):
        raise ValueError(f"{agent} needs a Discrete {what} space, got {space}")
    if int(space.start) != 0:
        raise ValueError(
            f"{agent} needs a Discrete {what} space starting at 0, got start={space.start}"
        )
    return int(space.n)
