"""Learning curves: recorded per env step, smoothed and thinned once for storage and plots."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from agents.experiments.usage import read_usage

CURVE_POINTS = 200
"""Most points a stored curve keeps."""


class CurveRecorder(gym.Wrapper):
    """Records (step, reward, LLM calls, distinct pairs, cache hits) after every env step, and
    the env's ``info["score"]`` when it has one (an Edit env's current prompt's score).

    Works for any learner that steps the env (this package's agents, SB3,
    RLlib); the LLM counts come from the env's public ``llm_usage()``.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.curve: list[dict[str, float]] = []

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        usage = read_usage(self.env)
        step = len(self.curve) + 1
        self.curve.append({
            "step": step,
            "reward": float(reward),
            "llm_calls": int(usage.get("env_calls", step)),
            "distinct": int(usage.get("distinct", 0)),
            "cache_hits": int(usage.get("cache_hits", 0)),
            **({"score": float(info["score"])} if "score" in info else {}),
        })
        return obs, reward, terminated, truncated, info


def moving_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over a sliding window (``len(values) - window + 1`` points; one point per value
    when there are fewer values than the window)."""
    width = max(1, min(int(window), len(values)))
    return np.convolve(np.asarray(values, dtype=np.float64), np.ones(width) / width, mode="valid")


def compress_curve(curve: list[dict[str, float]], window: int = 25) -> dict[str, list[float]]:
    """Moving mean of the training reward vs LLM calls, at most ``CURVE_POINTS`` points."""
    if not curve:
        return {"llm_calls": [], "reward": []}
    smooth = moving_mean(np.array([c["reward"] for c in curve]), window)
    calls = np.array([c["llm_calls"] for c in curve], dtype=np.float64)[len(curve) - len(smooth):]
    index = np.unique(np.linspace(0, len(smooth) - 1, min(CURVE_POINTS, len(smooth))).astype(int))
    return {"llm_calls": calls[index].tolist(), "reward": [round(float(r), 5) for r in smooth[index]]}


def search_curve(points: list[tuple[float, float, float]], start: tuple[float, float, float] | None = None
                 ) -> dict[str, list[float]]:
    """Best score found so far vs cost, from ``(llm_calls, distinct, score)`` per scored prompt
    (``start``: the starting prompt's, if known), at most ``CURVE_POINTS`` points: what an
    edit or search policy holds after spending so much (on its dev minibatch, not on test)."""
    points = ([start] if start is not None else []) + list(points)
    if not points:
        return {"llm_calls": [], "distinct": [], "best": []}
    best = np.maximum.accumulate(np.array([p[2] for p in points], dtype=np.float64))
    index = np.unique(np.linspace(0, len(points) - 1, min(CURVE_POINTS, len(points))).astype(int))
    return {"llm_calls": [float(points[i][0]) for i in index], "distinct": [float(points[i][1]) for i in index],
            "best": [round(float(best[i]), 5) for i in index]}
