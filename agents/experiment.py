"""Train agents on registered envs and evaluate them next to the baselines.

Used by the ``prompt-env train / eval / demo`` commands and the benchmark
harness. Everything goes through ``gym.make`` and the Gymnasium API.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents import AGENTS, Agent, TrainingLog, make_agent
from agents.baselines import PolicyScore, all_baselines, score_of_choices

# Hyperparameters that suit short runs on prompt-selection envs. A Select env
# is a contextual bandit (the next input does not depend on the action), so
# gamma = 0 there; Edit envs use gamma > 0.
SELECT_DEFAULTS: dict[str, dict[str, Any]] = {
    "tabular-q": {"gamma": 0.0, "learning_rate": "1/visits", "epsilon_start": 1.0,
                  "epsilon_end": 0.05, "exploration_fraction": 0.6},
    "dqn": {"gamma": 0.0, "learning_rate": 1e-3, "learning_starts": 50, "batch_size": 32,
            "buffer_size": 5000, "train_frequency": 1, "target_update_interval": 50,
            "epsilon_start": 1.0, "epsilon_end": 0.05, "exploration_fraction": 0.6,
            "hidden_sizes": (64,)},
}
EDIT_DEFAULTS: dict[str, dict[str, Any]] = {
    "tabular-q": {"gamma": 0.9, "learning_rate": 0.5, "epsilon_start": 1.0,
                  "epsilon_end": 0.1, "exploration_fraction": 0.6},
    "dqn": {"gamma": 0.9, "learning_rate": 1e-3, "learning_starts": 50, "batch_size": 32,
            "target_update_interval": 50, "hidden_sizes": (64, 64)},
}


def agent_defaults(env_id: str, agent_name: str) -> dict[str, Any]:
    table = EDIT_DEFAULTS if "-Edit" in env_id else SELECT_DEFAULTS
    return dict(table.get(agent_name, {}))


@dataclasses.dataclass
class TrainResult:
    agent: Agent
    log: TrainingLog
    curve: list[dict[str, float]]
    """Per step: step, reward, env LLM calls so far, cache hits so far."""
    wall_s: float
    llm_calls: int
    cache_hits: int
    model_calls: int

    @property
    def hit_rate(self) -> float:
        return self.cache_hits / self.llm_calls if self.llm_calls else 0.0


def train(
    env_id: str,
    agent_name: str,
    steps: int,
    *,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    agent_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    checkpoint: Path | None = None,
    checkpoint_every: int = 0,
    description: str | None = None,
) -> TrainResult:
    """Train ``agent_name`` on ``env_id`` for ``steps`` env steps, with a progress bar."""
    if agent_name not in AGENTS:
        raise ValueError(f"unknown agent {agent_name!r}; known agents: {sorted(AGENTS)}")
    env = gym.make(env_id, **(env_kwargs or {}))
    kwargs = {**agent_defaults(env_id, agent_name), **(agent_kwargs or {})}
    kwargs.setdefault("seed", seed)
    agent = make_agent(agent_name, env, **kwargs)
    curve: list[dict[str, float]] = []
    start = time.perf_counter()
    bar = _progress(progress, description or f"{agent_name} on {env_id}", steps)

    def callback(step: int, reward: float, info: dict[str, Any]) -> bool:
        usage = info.get("llm")
        calls = usage.env_calls if usage is not None else step
        hits = usage.cache_hits if usage is not None else 0
        curve.append({"step": step, "reward": float(reward), "llm_calls": calls, "cache_hits": hits})
        if bar is not None:
            window = [c["reward"] for c in curve[-50:]]
            bar.update(step, reward=float(np.mean(window)), calls=calls, hits=hits)
        if checkpoint is not None and checkpoint_every and step % checkpoint_every == 0:
            agent.save(checkpoint, env_id=env_id)
        return True

    try:
        log = agent.learn(env, steps, seed=seed, callback=callback, progress=False)
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - start
    llm = getattr(env.unwrapped, "_llm", None)  # None too for envs without a task LLM
    stats = llm.stats if llm is not None else None
    env.close()
    return TrainResult(
        agent=agent,
        log=log,
        curve=curve,
        wall_s=wall,
        llm_calls=int(getattr(env.unwrapped, "calls_used", 0)),
        cache_hits=int(stats.cache_hits) if stats else 0,
        model_calls=int(stats.model_calls) if stats else 0,
    )


class _Bar:
    """A small rich progress bar showing mean reward, LLM calls and cache hits."""

    def __init__(self, description: str, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("reward {task.fields[reward]:.3f}"), TextColumn("LLM calls {task.fields[calls]}"),
            TextColumn("cache hits {task.fields[hits]}"), TimeElapsedColumn(),
        )
        self.progress.start()
        self.task = self.progress.add_task(description, total=total, reward=0.0, calls=0, hits=0)

    def update(self, step: int, **fields: Any) -> None:
        self.progress.update(self.task, completed=step, **fields)

    def close(self) -> None:
        self.progress.stop()


def _progress(enabled: bool, description: str, total: int) -> _Bar | None:
    return _Bar(description, total) if enabled else None


def write_curve_csv(curve: list[dict[str, float]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", "reward", "llm_calls", "cache_hits"])
        writer.writeheader()
        writer.writerows(curve)
    os.replace(tmp, path)


@dataclasses.dataclass
class PhaseStats:
    """LLM spend of one phase (computing a score table, training an agent)."""

    calls: int
    cache_hits: int
    wall_s: float


def timed_table(env: Any, split: str, limit: int | None, reward: str | None,
                on_progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, PhaseStats]:
    llm = env.llm
    before = llm.stats.as_dict()
    start = time.perf_counter()
    table = env.score_table(split, reward=reward, limit=limit, on_progress=on_progress)
    after = llm.stats.as_dict()
    return table, PhaseStats(
        calls=after["calls"] - before["calls"],
        cache_hits=after["cache_hits"] - before["cache_hits"],
        wall_s=time.perf_counter() - start,
    )


def evaluate_policies(
    env_id: str,
    trained: dict[str, TrainResult],
    *,
    env_kwargs: dict[str, Any] | None = None,
    split: str = "test",
    limit: int | None = None,
    reward: str | None = None,
    table_hook: Callable[[str], None] | None = None,
    dev_limit: int | None = None,
    table_progress: Callable[[str, int, int], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Evaluate trained agents and the baselines on ``split`` from score tables.

    Each learned policy picks one prompt per input (greedy); its score is read
    from the split's score table (computed once, batched and cached). Returns
    one row per policy and the tables. ``limit`` and ``dev_limit`` keep only
    the first inputs of ``split`` and of dev (the dev table chooses
    best-fixed-on-dev). ``table_progress(split, done, total)`` reports the
    (prompt, input) pairs scored while the tables are computed.
    """
    env = gym.make(env_id, **(env_kwargs or {})).unwrapped
    if table_hook:
        table_hook("dev")
    def reporter(name: str) -> Callable[[int, int], None] | None:
        if table_progress is None:
            return None
        return lambda done, total: table_progress(name, done, total)

    dev_table, dev_phase = timed_table(env, "dev", dev_limit, reward, reporter("dev"))
    if table_hook:
        table_hook(split)
    test_table, test_phase = timed_table(env, split, limit, reward, reporter(split))
    n_test, k = test_table.shape
    baselines = {p.policy: p for p in all_baselines(dev_table, test_table)}
    rows: list[dict[str, Any]] = []
    eval_hit_rate = test_phase.cache_hits / test_phase.calls if test_phase.calls else 0.0
    dev_hit_rate = dev_phase.cache_hits / dev_phase.calls if dev_phase.calls else 0.0
    costs = {
        "random": (n_test, eval_hit_rate, test_phase.wall_s / k),
        "manual": (n_test, eval_hit_rate, test_phase.wall_s / k),
        "best-fixed-on-dev": (dev_table.size + n_test, dev_hit_rate, dev_phase.wall_s + test_phase.wall_s / k),
        "per-query-oracle": (test_table.size, eval_hit_rate, test_phase.wall_s),
    }
    for name in ("random", "manual", "best-fixed-on-dev", "per-query-oracle"):
        p = baselines[name]
        calls, hit_rate, wall = costs[name]
        rows.append(_row(p, calls, hit_rate, wall, n_test, k))
    observations = {}
    for name, result in trained.items():
        key = _observation_kind(result.agent)
        if key not in observations:
            obs_env = env if (key == "tabular") == bool(getattr(env, "tabular", False)) else None
            if obs_env is None:
                obs_env = _sibling_env(env_id, key == "tabular", env_kwargs)
            observations[key] = obs_env.observe_all(split, limit)
        choices = [int(result.agent.act(o, greedy=True)) for o in observations[key]]
        policy = PolicyScore(name, score_of_choices(test_table, choices), choices,
                             selection_calls=result.llm_calls,
                             notes=f"trained {result.log.steps} steps")
        hit_rate = result.hit_rate
        rows.append(_row(policy, result.llm_calls + n_test, hit_rate, result.wall_s + test_phase.wall_s / k, n_test, k))
    return rows, {"dev": dev_table, split: test_table}


def _observation_kind(agent: Agent) -> str:
    """"tabular" for agents that read context ids (tabular Q, DQN built on a Discrete space), else "box"."""
    if getattr(agent, "agent_name", "") == "tabular-q":
        return "tabular"
    spec = getattr(agent, "observation_spec", None)
    if isinstance(spec, dict) and spec.get("kind") == "discrete":
        return "tabular"
    return "box"


def _sibling_env(env_id: str, tabular: bool, env_kwargs: dict[str, Any] | None) -> Any:
    base = env_id.replace("-Select-Tabular-", "-Select-")
    sibling = base.replace("-Select-", "-Select-Tabular-") if tabular else base
    return gym.make(sibling, **(env_kwargs or {})).unwrapped


def _row(p: PolicyScore, calls: int, hit_rate: float, wall: float, n_test: int, k: int) -> dict[str, Any]:
    counts = np.bincount([c for c in p.choices if c >= 0], minlength=k).tolist() if p.choices else []
    return {
        "policy": p.policy,
        "test_score": round(p.test_score, 4),
        "llm_calls": int(calls),
        "cache_hit_rate": round(hit_rate, 3),
        "wall_s": round(wall, 2),
        "n_test": n_test,
        "prompt_counts": counts,
        "upper_bound": p.policy == "per-query-oracle",
        "notes": p.notes,
    }


def save_json(data: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
