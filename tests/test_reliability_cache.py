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

The trials live in :mod:`prompt_env.testing.cache_trials` (``benchmarks/reliability.py``
runs them too).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from prompt_env.llm.cache import CachedLLM, ResponseCache
from prompt_env.llm.fake import FakeLLM
from prompt_env.testing.cache_trials import (
    CHOICES,
    FAKE_SEED,
    ModelMustNotRun,
    child_env,
    run_cache_kill_trials,
    run_concurrent_writers,
)

REPO = Path(__file__).resolve().parents[1]

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
from agents.experiments import train
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
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(), cwd=REPO,
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
        def _score(self, prompts, choices):
            return np.full((len(prompts) - 1, len(choices)), -1.0)  # wrong shape

        def _generate(self, prompts, max_new_tokens, stop):
            return ["ok"] * (len(prompts) - 1) + [None]

    from prompt_env.errors import LLMError

    llm = CachedLLM(Broken(seed=FAKE_SEED), tmp_path / "c.sqlite")
    with pytest.raises(LLMError, match="nothing was cached"):
        if op == "score":
            llm.score(["a", "b", "c"], CHOICES)
        else:
            llm.generate(["a", "b", "c"])
    assert len(ResponseCache(tmp_path / "c.sqlite")) == 0
