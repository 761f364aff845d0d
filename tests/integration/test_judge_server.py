"""The LLM judge behind a real llama.cpp server (the embedded model as a GGUF), by its spec string.

Same model as the in-process default judge, different kernels and a
quantised GGUF: grades agree closely, not exactly; the rerun is answered from
the response cache.
"""

from __future__ import annotations

import numpy as np
import pytest

from prompt_env.judge import judge_llm
from prompt_env.rewards import get_reward
from prompt_env.tasks.base import Example

pytestmark = pytest.mark.integration

PAIRS = [
    ("Paris", Example(fields={"question": "What is the capital of France?"}, references=("Paris",))),
    ("banana bread recipe", Example(fields={"question": "What is the capital of France?"},
                                    references=("Paris",))),
    ("Council approves new 20m bridge",
     Example(fields={"document": "The city council voted on Tuesday to build a new bridge over the "
                                 "river, costing 20 million pounds."},
             references=("Council approves new 20m bridge",))),
]


def test_judge_through_the_server_grades_like_the_local_judge(local_server) -> None:
    spec = f"openai:{local_server.base_url}#{local_server.model}"
    remote = get_reward(f"judge:{spec}")
    local = get_reward("judge")
    served = [remote(answer, example) for answer, example in PAIRS]
    in_process = [local(answer, example) for answer, example in PAIRS]
    assert all(0.0 <= g <= 1.0 for g in served)
    assert np.max(np.abs(np.array(served) - np.array(in_process))) < 0.1
    meter = judge_llm(spec).stats
    hits = meter.cache_hits
    assert [remote(answer, example) for answer, example in PAIRS] == served
    assert meter.cache_hits == hits + len(PAIRS)
