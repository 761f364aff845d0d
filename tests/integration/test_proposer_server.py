"""The proposer behind a real llama.cpp server (the embedded model's GGUF, on loopback).

A strong proposer is usually a served model; this is the evidence that the mechanism works
through the OpenAI-compatible backend: a reflection is written, cleaned and metered apart,
replays from the response cache, and an Edit env whose task LLM is local grows its
instruction set from the server's proposals.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from prompt_env.llm import load_llm
from prompt_env.proposer import Failure, make_proposer

pytestmark = pytest.mark.integration

CURRENT = "Is the review positive or negative?"
FAILURES = [Failure("the movie was a waste of two hours", "positive", "negative"),
            Failure("a gorgeous, moving film", "negative", "positive"),
            Failure("dull and lifeless from start to finish", "positive", "negative"),
            Failure("I loved every minute of it", "negative", "positive")]


def test_a_served_proposer_reflects_and_replays_from_the_cache(server_spec, tmp_path: Path) -> None:
    cache = str(tmp_path / "proposer.sqlite")
    proposer = make_proposer(load_llm(server_spec, cache_path=cache), max_new_tokens=40)
    written = proposer.reflect(CURRENT, FAILURES, np.random.default_rng(0))
    assert written and written != CURRENT and "{" not in written and len(written) <= 300
    assert proposer.usage()["proposer_calls"] == 1 and proposer.usage()["proposer_tokens"] > 0

    again = make_proposer(load_llm(server_spec, cache_path=cache), max_new_tokens=40)
    assert again.reflect(CURRENT, FAILURES, np.random.default_rng(0)) == written
    assert again.llm.stats.as_dict()["cache_hits"] == 1  # answered by the cache, not the server


def test_an_edit_env_grows_its_instructions_from_a_served_proposer(server_spec, shared_data_dir,
                                                                    tmp_path: Path) -> None:
    env = gym.make("PromptEnv/SST2-Edit-v0", data_dir=str(shared_data_dir), minibatch_size=4,
                   n_candidates=2, max_edits=3,
                   proposer=load_llm(server_spec, cache_path=str(tmp_path / "proposer.sqlite")),
                   max_instructions=12, propose_modes=["induce", "reflect"])
    env.unwrapped.use_llm(load_llm("default", cache_path=str(tmp_path / "task.sqlite")))
    _, info = env.reset(seed=3)
    before = len(env.unwrapped.instructions)
    action = env.unwrapped.action_meanings().index("propose induce")
    assert info["action_mask"][action]
    _, _, _, _, info = env.step(action)
    usage = env.unwrapped.llm_usage()
    assert usage["proposer_calls"] == 1
    assert usage["calls"] == usage["env_calls"]  # the task meter counts task calls only
    written = env.unwrapped.instructions[before:]
    assert len(written) == 1 and env.unwrapped.prompt.instruction == written[0]
    set_written = env.unwrapped.action_meanings().index(f"set instruction {before}")
    assert info["action_mask"][set_written] == 0  # it is the current instruction now
    env.close()
