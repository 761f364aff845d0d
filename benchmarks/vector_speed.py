"""Batched vector env vs gymnasium's sync vector env, and the cost of a warm step.

Runs 256 env steps of ``PromptEnv/SST2-Select-v0`` (32 vector steps x N=8
sub-envs), each time from a cold response cache: with ``SyncVectorEnv`` (one
LLM call per sub-env per step) and with the batching vector env (one LLM call
per vector step), each on the reference scoring engine (``engine="transformers"``,
the path before the fused engine existed) and on the default one (``"fused"``:
the eight sub-envs' pairs in one forward pass). Then times a warm-cache
single-env step next to gymnasium's ``CartPole-v1`` step in the same process.

Last line: one JSON object with ``sync_steps_per_s`` and ``batched_steps_per_s``
(reference engine), ``sync_fused_steps_per_s`` and ``batched_fused_steps_per_s``,
``speedup`` (batched over sync, reference engine), ``fused_speedup`` (batched
fused over batched reference: the engine's gain), ``max_abs_reward_diff``
(fused vs reference rewards of the same steps), ``warm_step_us``,
``cartpole_step_us`` and ``warm_vs_cartpole``.

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


def run_vector(mode: str, engine: str, num_envs: int, total_steps: int, cache: Path,
               seed: int) -> tuple[float, np.ndarray]:
    """Env steps per second for ``total_steps`` env steps from a cold cache at ``cache``,
    and the rewards of those steps."""
    os.environ["PROMPT_ENV_CACHE"] = str(cache)
    envs = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode=mode, episode_length=8,
                        llm={"backend": "default", "engine": engine})
    rng = np.random.default_rng(seed)
    envs.reset(seed=seed)
    envs.step(rng.integers(0, envs.single_action_space.n, size=num_envs))  # loads the model
    rewards = []
    start = time.perf_counter()
    for _ in range(total_steps // num_envs):
        rewards.append(envs.step(rng.integers(0, envs.single_action_space.n, size=num_envs))[1])
    elapsed = time.perf_counter() - start
    envs.close()
    return total_steps / elapsed, np.concatenate(rewards)


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
    speed, rewards = {}, {}
    for mode in ("sync", "vector_entry_point"):
        for engine in ("transformers", "fused"):
            cache = scratch / f"{mode}-{engine}.sqlite"
            speed[mode, engine], rewards[mode, engine] = run_vector(
                mode, engine, args.num_envs, args.steps, cache, args.seed)
    sync, batched = speed["sync", "transformers"], speed["vector_entry_point", "transformers"]
    fused = speed["vector_entry_point", "fused"]
    difference = max(float(np.abs(rewards[mode, "fused"] - rewards[mode, "transformers"]).max())
                     for mode in ("sync", "vector_entry_point"))
    ours, cartpole = warm_step_us(400, args.seed)
    result = {
        "sync_steps_per_s": round(sync, 2),
        "batched_steps_per_s": round(batched, 2),
        "sync_fused_steps_per_s": round(speed["sync", "fused"], 2),
        "batched_fused_steps_per_s": round(fused, 2),
        "speedup": round(batched / sync, 2),
        "fused_speedup": round(fused / batched, 2),
        "max_abs_reward_diff": difference,
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
