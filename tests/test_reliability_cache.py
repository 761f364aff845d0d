"""Crashes and concurrency: the response cache and agent checkpoints survive kill -9.

* A child process writes the SQLite response cache in many small batches
  (fake LLM) and reports each batch on stdout after ``score`` returns, i.e.
  after its transaction committed. The parent kills it with SIGKILL at a
  seeded random moment, many times over the same file. After every kill the
  cache opens, ``PRAGMA integrity_check`` is ok, every row's checksum passes,
  every row is one the child could have written with exactly the recomputed
  value, and every reported batch is present (answered without the model).
* A training run killed mid-way leaves its last periodic checkpoint, which
  loads as a valid agent with steps > 0 and can keep learning.
* Four processes score against one cache file at once: no errors, identical
  values, hits shared.

The trial functions are also used by ``benchmarks/reliability.py``.
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
import pytest

from prompt_env.llm.cache import CachedLLM, ResponseCache, _checksum, _key
from prompt_env.llm.fake import FakeLLM

REPO = Path(__file__).resolve().parents[1]
CHOICES = [" world", " sport", " business", " tech"]
FAKE_SEED = 3
BATCH = 8

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

    def score(self, prompts, choices):  # type: ignore[override]
        raise AssertionError(f"cache miss for {len(prompts)} prompts that should be stored")

    def generate(self, prompts, max_new_tokens=32, stop=None):  # type: ignore[override]
        raise AssertionError(f"cache miss for {len(prompts)} prompts that should be stored")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
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
    return {_key("generate", model, p, 4, []): json.dumps(t) for p, t in zip(prompts, texts)}


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
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO,
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


def test_cache_survives_kill_9_at_random_points(tmp_path):
    trials = 20
    result = run_cache_kill_trials(tmp_path / "cache.sqlite", trials=trials, seed=20240601)
    assert result["kill_trials"] == trials
    assert result["kill_trials_intact"] == trials
    assert result["batches_committed"] > 10  # the kills did land while writing


# --------------------------------------------------------------------------- training checkpoints

TRAINER = r"""
import sys
from pathlib import Path
from agents.experiment import train
train(sys.argv[1], "tabular-q", 10**7, seed=0, progress=False,
      env_kwargs={"llm": "fake", "max_examples": 12, "episode_length": 4},
      checkpoint=Path(sys.argv[2]), checkpoint_every=int(sys.argv[3]))
"""
TRAIN_ENV = "PromptEnv/BBCTopic-Select-Tabular-v0"


def test_killed_training_resumes_from_its_last_checkpoint(tmp_path):
    import gymnasium as gym

    import prompt_env  # noqa: F401  (registers the env ids)
    from agents import TabularQAgent, load_agent

    checkpoint = tmp_path / "run" / "agent.safetensors"
    every = 25
    child = subprocess.Popen(
        [sys.executable, "-c", TRAINER, TRAIN_ENV, str(checkpoint), str(every)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 120
        seen: set[int] = set()
        while time.monotonic() < deadline and len(seen) < 4 and child.poll() is None:
            if checkpoint.exists():
                seen.add(checkpoint.stat().st_mtime_ns)
            time.sleep(0.005)
        assert child.poll() is None, child.communicate()[1]
        assert len(seen) >= 2, "the trainer wrote no periodic checkpoints"
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    agent = load_agent(checkpoint, env_id=TRAIN_ENV)
    assert isinstance(agent, TabularQAgent)
    steps = int(agent.visits.sum())  # one visit per learned step
    assert steps > 0 and steps % every == 0
    assert np.all(np.isfinite(agent.q_table))
    # resume: keep learning from the loaded state and save again
    env = gym.make(TRAIN_ENV, llm="fake", max_examples=12, episode_length=4)
    agent.learn(env, 20, seed=1)
    assert int(agent.visits.sum()) == steps + 20
    agent.save(checkpoint, env_id=TRAIN_ENV)
    assert int(TabularQAgent.load(checkpoint, env_id=TRAIN_ENV).visits.sum()) == steps + 20
    env.close()


# --------------------------------------------------------------------------- concurrent writers

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
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO,
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


def test_four_processes_share_one_cache_file(tmp_path):
    path = tmp_path / "shared.sqlite"
    result = run_concurrent_writers(path, writers=4, prompts=240)
    assert result["writer_errors"] == 0
    assert result["identical"] == 1
    assert result["stored"] == 240
    # hits were shared: together they ran the model far less than 4 x 240 times
    assert result["cache_hits"] > 0
    assert result["model_calls"] + result["cache_hits"] == 4 * 240
    assert result["model_calls"] < 4 * 240
    # and everything is now answered from the file alone
    reader = CachedLLM(ModelMustNotRun(seed=FAKE_SEED), path)
    names = [f"shared prompt {i}" for i in range(240)]
    assert np.array_equal(reader.score(names, CHOICES), FakeLLM(seed=FAKE_SEED).score(names, CHOICES))
    conn = sqlite3.connect(str(path))
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


@pytest.mark.parametrize("op", ["score", "generate"])
def test_a_failed_batch_stores_nothing(tmp_path, op):
    """A model failure mid-batch leaves no partial rows (put_many is all or nothing)."""

    class Broken(FakeLLM):
        def score(self, prompts, choices):  # type: ignore[override]
            return np.full((len(prompts) - 1, len(choices)), -1.0)  # wrong shape

        def generate(self, prompts, max_new_tokens=32, stop=None):  # type: ignore[override]
            return ["ok"] * (len(prompts) - 1) + [None]

    from prompt_env.errors import LLMError

    llm = CachedLLM(Broken(seed=FAKE_SEED), tmp_path / "c.sqlite")
    with pytest.raises(LLMError, match="nothing was cached"):
        if op == "score":
            llm.score(["a", "b", "c"], CHOICES)
        else:
            llm.generate(["a", "b", "c"])
    assert len(ResponseCache(tmp_path / "c.sqlite")) == 0
