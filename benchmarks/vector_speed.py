"""Batched vector env vs gymnasium's sync vector env, and the cost of a warm step.

Runs 256 env steps of ``PromptEnv/SST2-Select-v0`` (32 vector steps x N=8
sub-envs) twice from a cold response cache: once with ``SyncVectorEnv`` (one
LLM call per sub-env per step) and once with the batching vector env (one
LLM call per vector step). Then times a warm-cache single-env step next to
gymnasium's ``CartPole-v1`` step in the same process.

Last line: one JSON object with ``sync_steps_per_s``, ``batched_steps_per_s``,
``speedup``, ``warm_step_us``, ``cartpole_step_us`` and ``warm_vs_cartpole``.

    python benchmarks/vector_speed.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from rich.console import Console
from rich.table import Table

import prompt_env  # noqa: F401 - registers the env ids

ENV_ID = "PromptEnv/SST2-Select-v0"


def run_vector(mode: str, num_envs: int, total_steps: int, cache: Path, seed: int) -> float:
    """Env steps per second for ``total_steps`` env steps from a cold cache at ``cache``."""
    os.environ["PROMPT_ENV_CACHE"] = str(cache)
    envs = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode=mode, episode_length=8)
    rng = np.random.default_rng(seed)
    envs.reset(seed=seed)
    envs.step(rng.integers(0, envs.single_action_space.n, size=num_envs))  # loads the model
    start = time.perf_counter()
    for _ in range(total_steps // num_envs):
        envs.step(rng.integers(0, envs.single_action_space.n, size=num_envs))
    elapsed = time.perf_counter() - start
    envs.close()
    return total_steps / elapsed


def time_steps(env: gym.Env, actions: np.ndarray, seed: int) -> float:
    """Mean microseconds per step over ``actions`` (resets excluded)."""
    env.reset(seed=seed)
    total = 0.0
    for action in actions:
        start = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(int(action))
        total += time.perf_counter() - start
        if terminated or truncated:
            env.reset()
    return total / len(actions) * 1e6


def warm_step_us(steps: int, seed: int) -> tuple[float, float]:
    env = gym.make(ENV_ID, episode_length=8, max_examples=8)
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, env.action_space.n, size=steps)
    time_steps(env, actions, seed)  # first pass fills the cache
    ours = time_steps(env, actions, seed)
    cartpole = gym.make("CartPole-v1")
    cart_actions = rng.integers(0, 2, size=steps)
    time_steps(cartpole, cart_actions, seed)
    theirs = time_steps(cartpole, cart_actions, seed)
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="shared data dir (or PROMPT_ENV_DATA)")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=256, help="env steps per mode (vector steps x num_envs)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.data_dir is not None:
        os.environ["PROMPT_ENV_DATA"] = str(args.data_dir.resolve())
    console = Console(stderr=True)
    scratch = Path(tempfile.mkdtemp(prefix="vector-speed-"))
    console.print(f"{args.steps} steps of {ENV_ID}, N={args.num_envs}, cold cache each time")
    sync = run_vector("sync", args.num_envs, args.steps, scratch / "sync.sqlite", args.seed)
    batched = run_vector("vector_entry_point", args.num_envs, args.steps, scratch / "batched.sqlite", args.seed)
    ours, cartpole = warm_step_us(400, args.seed)
    result = {
        "sync_steps_per_s": round(sync, 2),
        "batched_steps_per_s": round(batched, 2),
        "speedup": round(batched / sync, 2),
        "warm_step_us": round(ours, 1),
        "cartpole_step_us": round(cartpole, 1),
        "warm_vs_cartpole": round(ours / cartpole, 2),
    }
    table = Table(title="Vector env throughput and warm step cost")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, str(value))
    console.print(table)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
