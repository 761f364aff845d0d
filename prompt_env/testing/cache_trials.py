"""Crash and concurrency trials of the SQLite response cache, with a fake LLM in child processes.

- :func:`run_cache_kill_trials`: a child process writes the cache in many
  small batches and reports each batch on stdout after ``score`` /
  ``generate`` returns, i.e. after its transaction committed; the parent
  kills it with SIGKILL at a seeded random moment, many times over the same
  file. After every kill the cache must open, pass ``PRAGMA
  integrity_check`` and every row's checksum, hold only rows the child could
  have written (with exactly the recomputed values) and answer every
  reported batch without the model.
- :func:`run_concurrent_writers`: several processes score the same prompts
  (each in its own order) against one cache file at once.

Used by ``tests/test_reliability_cache.py`` and ``benchmarks/reliability.py``.
Children run ``sys.executable`` with this package on ``PYTHONPATH``
(:func:`child_env`).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import prompt_env
from prompt_env.llm.base import PromptInput
from prompt_env.llm.cache import GENERATE_KEY, CachedLLM, ResponseCache, _checksum, _key
from prompt_env.llm.fake import FakeLLM

PACKAGE_ROOT = Path(prompt_env.__file__).resolve().parents[1]
"""The folder that holds the ``prompt_env`` package (the children's PYTHONPATH and cwd)."""
CHOICES = [" world", " sport", " business", " tech"]
"""The label words every trial scores against."""
FAKE_SEED = 3
"""Seed of the fake LLM the children (and the checks) use."""
BATCH = 8
"""Prompts per batch written by a kill-trial child."""

# Child: writes the cache in small batches, alternating score and generate,
# and prints "<trial> <batch>" after each batch has been stored (committed).
WRITER = r"""
import sys
from prompt_env.llm.cache import CachedLLM
from prompt_env.llm.fake import FakeLLM
path, trial = sys.argv[1], int(sys.argv[2])
choices = sys.argv[3].split("|")
size = int(sys.argv[4])
llm = CachedLLM(FakeLLM(seed=int(sys.argv[5])), path)
print("ready", flush=True)
batch = 0
while True:
    prompts = [f"trial {trial} batch {batch} prompt {j}" for j in range(size)]
    if batch % 2 == 0:
        llm.score(prompts, choices)
    else:
        llm.generate(prompts, max_new_tokens=4)
    print(f"{trial} {batch}", flush=True)
    batch += 1
"""


class ModelMustNotRun(FakeLLM):
    """A fake LLM with the same identity that fails if the cache does not answer."""

    def _score(self, prompts: list[PromptInput], choices: list[str]) -> np.ndarray:
        """Fail: every prompt should have been answered from the cache."""
        raise AssertionError(f"cache miss for {len(prompts)} prompts that should be stored")

    def _generate(self, prompts: list[PromptInput], max_new_tokens: int, stop: list[str] | None) -> list[str]:
        """Fail: every prompt should have been answered from the cache."""
        raise AssertionError(f"cache miss for {len(prompts)} prompts that should be stored")


def child_env() -> dict[str, str]:
    """The environment for child processes: this package importable, one torch thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PACKAGE_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PROMPT_ENV_THREADS", "1")
    return env


def batch_rows(trial: int, batch: int) -> dict[str, str]:
    """key -> stored value of every entry the writer puts in one batch (recomputed here)."""
    fake = FakeLLM(seed=FAKE_SEED)
    model = fake.identity()
    prompts = [f"trial {trial} batch {batch} prompt {j}" for j in range(BATCH)]
    if batch % 2 == 0:
        values = fake.score(prompts, CHOICES)
        return {
            _key("score", model, p, CHOICES): json.dumps([float(v) for v in row])
            for p, row in zip(prompts, values)
        }
    texts = fake.generate(prompts, 4)
    return {_key(GENERATE_KEY, model, p, 4, []): json.dumps(t) for p, t in zip(prompts, texts)}


def check_cache_file(
    path: Path, expected: dict[str, str], committed_keys: set[str], new_batches: list[tuple[int, int]]
) -> None:
    """The cache opens, passes integrity and checksums, and holds exactly what it should."""
    ResponseCache(path).close()  # opens (recovering the WAL) without CacheError
    conn = sqlite3.connect(str(path))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = conn.execute("SELECT key, value, checksum FROM entries").fetchall()
    finally:
        conn.close()
    for key, value, checksum in rows:
        assert _checksum(value) == checksum, f"half-written entry {key[:12]}"
        assert key in expected, f"entry {key[:12]} was never written by the child"
        assert value == expected[key], f"entry {key[:12]} differs from a recomputation"
    missing = committed_keys - {key for key, _, _ in rows}
    assert not missing, f"{len(missing)} entries reported as committed are gone"
    # the batches reported in this trial are answered from the cache alone, through the API
    reader = CachedLLM(ModelMustNotRun(seed=FAKE_SEED), path)
    fake = FakeLLM(seed=FAKE_SEED)
    try:
        for trial, batch in new_batches:
            prompts = [f"trial {trial} batch {batch} prompt {j}" for j in range(BATCH)]
            if batch % 2 == 0:
                assert np.array_equal(reader.score(prompts, CHOICES), fake.score(prompts, CHOICES))
            else:
                assert reader.generate(prompts, max_new_tokens=4) == fake.generate(prompts, 4)
    finally:
        reader.close()


def run_cache_kill_trials(path: Path, trials: int, seed: int) -> dict[str, int]:
    """Kill a cache writer ``trials`` times at seeded random moments; check the file after each.

    Returns counts: trials, intact trials, batches reported committed. Raises
    AssertionError on the first damaged or inconsistent state.
    """
    rng = np.random.default_rng(seed)
    expected: dict[str, str] = {}
    committed_keys: set[str] = set()
    batches = 0
    intact = 0
    for trial in range(trials):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(trial), "|".join(CHOICES), str(BATCH),
             str(FAKE_SEED)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(), cwd=PACKAGE_ROOT,
        )
        try:
            first = child.stdout.readline()  # type: ignore[union-attr]
            assert first.strip() == "ready", child.stderr.read()  # type: ignore[union-attr]
            time.sleep(float(rng.uniform(0.02, 0.4)))
            os.kill(child.pid, signal.SIGKILL)
            out, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == -signal.SIGKILL, err
        reported = [tuple(int(x) for x in line.split()) for line in out.splitlines() if line.strip()]
        last = max((b for _, b in reported), default=-1)
        # the batch after the last report may have committed before the kill
        for batch in range(last + 2):
            rows = batch_rows(trial, batch)
            expected.update(rows)
            if batch <= last:
                committed_keys.update(rows)
        batches += len(reported)
        check_cache_file(path, expected, committed_keys, reported)  # type: ignore[arg-type]
        intact += 1
    return {"kill_trials": trials, "kill_trials_intact": intact, "batches_committed": batches}


SCORER = r"""
import json, sys, time
from pathlib import Path
import numpy as np
from prompt_env.llm.cache import CachedLLM
from prompt_env.llm.fake import FakeLLM
path, worker, n, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
choices = sys.argv[5].split("|")
llm = CachedLLM(FakeLLM(seed=int(sys.argv[6])), path)
order = np.random.default_rng(worker).permutation(n)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
values = {}
for start in range(0, n, 10):
    prompts = [f"shared prompt {i}" for i in order[start:start + 10]]
    for p, row in zip(prompts, llm.score(prompts, choices)):
        values[p] = [float(v) for v in row]
print(json.dumps({"values": values, "model_calls": llm.stats.model_calls,
                  "cache_hits": llm.stats.cache_hits}), flush=True)
"""


def run_concurrent_writers(path: Path, writers: int = 4, prompts: int = 240) -> dict[str, int]:
    """``writers`` processes score the same prompts (each in its own order) against one file."""
    go = path.with_name(path.name + ".go")
    children = [
        subprocess.Popen(
            [sys.executable, "-c", SCORER, str(path), str(w), str(prompts), str(go), "|".join(CHOICES),
             str(FAKE_SEED)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(), cwd=PACKAGE_ROOT,
        )
        for w in range(writers)
    ]
    for child in children:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()  # type: ignore[union-attr]
    go.touch()
    results, errors = [], 0
    for child in children:
        out, err = child.communicate(timeout=300)
        if child.returncode != 0:
            errors += 1
            continue
        results.append(json.loads(out.splitlines()[-1]))
    names = [f"shared prompt {i}" for i in range(prompts)]
    truth = FakeLLM(seed=FAKE_SEED).score(names, CHOICES)
    identical = all(
        np.array_equal(np.array([r["values"][p] for p in names]), truth) for r in results
    )
    stored = len(ResponseCache(path))
    return {
        "writers": writers,
        "writer_errors": errors,
        "identical": int(identical and len(results) == writers),
        "model_calls": sum(r["model_calls"] for r in results),
        "cache_hits": sum(r["cache_hits"] for r in results),
        "stored": stored,
        "prompts": prompts,
    }
