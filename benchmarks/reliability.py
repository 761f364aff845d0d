"""Reliability trials: kill -9 during cache writes, concurrent writers, and HTTP faults.

1. Kill trials: a child process writes the SQLite response cache (fake LLM,
   many small batches) and is killed with SIGKILL at a seeded random moment,
   ``--kill-trials`` times over one file; after each kill the file must open,
   pass ``PRAGMA integrity_check`` and its checksums, and hold every batch
   the child reported as committed with exactly the recomputed values.
2. Writers: ``--writers`` processes score the same prompts against one cache
   file at once; no errors, identical values, shared hits.
3. Faults (only when ``xllamacpp`` and the shared data are available;
   otherwise reported as skipped): a tabular-Q run on SST2-Select-Tabular
   through a fault-injecting proxy under ``--fault-rate`` transient faults is
   compared with a fault-free run (rewards and final Q-table).

The trials come from :mod:`prompt_env.testing` (the same ones the test suite
runs); the training runs use ``agents.make_agent``.

The last line printed is one JSON object with ``faults_injected``,
``runs_identical``, ``kill_trials``, ``kill_trials_intact``, ``writers`` and
``writer_errors`` (plus details).

    PROMPT_ENV_THREADS=1 python benchmarks/reliability.py --kill-trials 20
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

from prompt_env.testing import (  # noqa: E402
    CLIENT_TIMEOUT_S,
    TRIAL_STEPS,
    FaultProxy,
    cache_entries,
    client_spec,
    run_trial,
)
from prompt_env.testing.cache_trials import run_cache_kill_trials, run_concurrent_writers  # noqa: E402

API_KEY = "sk-reliability-benchmark"
"""Sent as ``OPENAI_API_KEY`` when none is set, so requests carry an Authorization header."""


def kill_and_writer_trials(kill_trials: int, writers: int, seed: int) -> dict[str, Any]:
    """kill -9 trials on one cache file, then ``writers`` processes sharing another."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="prompt-env-reliability-") as tmp:
        start = time.perf_counter()
        try:
            out.update(run_cache_kill_trials(Path(tmp) / "kill.sqlite", kill_trials, seed))
        except AssertionError as error:  # report, do not hide, a damaged file
            out.update(kill_trials=kill_trials, kill_trials_intact=0, kill_error=str(error)[:300])
        out["kill_wall_s"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        result = run_concurrent_writers(Path(tmp) / "shared.sqlite", writers=writers, prompts=240)
        out.update(
            writers=result["writers"], writer_errors=result["writer_errors"],
            writers_identical=bool(result["identical"]), writer_model_calls=result["model_calls"],
            writer_cache_hits=result["cache_hits"], writers_wall_s=round(time.perf_counter() - start, 1),
        )
    return out


def fault_trial(fault_rate: float, seed: int) -> dict[str, Any]:
    """The fault-free vs faulty training comparison, or why it was skipped."""
    if importlib.util.find_spec("xllamacpp") is None:
        return {"faults": "skipped: xllamacpp is not installed (pip install -e '.[server]')"}
    data = Path(os.environ.get("PROMPT_ENV_DATA", REPO.parent / "shared" / "data"))
    if not (data / "classification" / "sst-2").is_dir():
        return {"faults": f"skipped: no shared data at {data} (set PROMPT_ENV_DATA)"}
    import numpy as np

    from agents import make_agent
    from prompt_env.llm.server import start_local_server

    os.environ.setdefault("OPENAI_API_KEY", API_KEY)
    with tempfile.TemporaryDirectory(prefix="prompt-env-faults-") as tmp, \
            start_local_server(n_parallel=2) as server, \
            FaultProxy(server.base_url, seed=seed, delay_s=CLIENT_TIMEOUT_S + 1.0, max_delays=3) as proxy:
        spec = client_spec(proxy.base_url, server.model)
        clean = run_trial(spec, Path(tmp) / "clean.sqlite", data, make_agent)
        proxy.fault_rate = fault_rate
        faulty = run_trial(spec, Path(tmp) / "faulty.sqlite", data, make_agent)
        clean_cache = cache_entries(Path(tmp) / "clean.sqlite")
        faulty_cache = cache_entries(Path(tmp) / "faulty.sqlite")
        same_keys = set(clean_cache) == set(faulty_cache)
        # llama.cpp log-probs are not bit-reproducible across runs; report how far apart they are
        diffs = [abs(a - b) for k in set(clean_cache) & set(faulty_cache)
                 for a, b in zip(json.loads(clean_cache[k]), json.loads(faulty_cache[k]))]
        identical = (
            clean.log.step_rewards == faulty.log.step_rewards
            and bool(np.array_equal(clean.agent.q_table, faulty.agent.q_table))
        )
        return {
            "faults": "ran",
            "fault_rate": fault_rate,
            "faults_injected": proxy.faults_injected,
            "fault_kinds": dict(proxy.counts),
            "proxy_requests": proxy.requests,
            "runs_identical": identical,
            "cache_keys_identical": same_keys,
            "cache_entries": len(faulty_cache),
            "max_logprob_diff": round(max(diffs, default=0.0), 4),
            "train_steps": TRIAL_STEPS,
            "model_calls": [clean.model_calls, faulty.model_calls],
            "clean_run_s": round(clean.wall_s, 1),
            "faulty_run_s": round(faulty.wall_s, 1),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kill-trials", type=int, default=20)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--no-faults", action="store_true", help="skip the server fault trial")
    args = parser.parse_args(argv)
    os.environ.setdefault("PROMPT_ENV_THREADS", "1")

    result: dict[str, Any] = {"faults_injected": 0, "runs_identical": None}
    result.update(kill_and_writer_trials(args.kill_trials, args.writers, args.seed))
    print(f"kill trials: {result['kill_trials_intact']}/{result['kill_trials']} intact "
          f"({result.get('batches_committed', 0)} committed batches checked, {result['kill_wall_s']} s); "
          f"{result['writers']} writers: {result['writer_errors']} errors, "
          f"identical={result['writers_identical']}, hits={result['writer_cache_hits']}", flush=True)
    if args.no_faults:
        result["faults"] = "skipped: --no-faults"
    else:
        result.update(fault_trial(args.fault_rate, args.seed))
    print(f"faults: {result['faults']}", flush=True)
    keys = ["faults_injected", "runs_identical", "kill_trials", "kill_trials_intact", "writers", "writer_errors"]
    print(json.dumps({**{k: result.get(k) for k in keys},
                      **{k: v for k, v in result.items() if k not in keys}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
