"""The LLM-as-judge reward: its fixed rubric, how its grade is read, and the real default model as judge.

The 135M default is a weak judge: these tests check that its grades are
well-formed, deterministic, cached and, on average over two examples, higher
for the reference itself than for an unrelated answer; not that it grades well.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import prompt_env  # noqa: F401  (registers the env ids)
from prompt_env.judge import RUBRIC, grade_from_logprobs, judge_llm, judge_prompt
from prompt_env.rewards import get_reward, list_rewards
from prompt_env.tasks.base import Example

CAPITAL = Example(fields={"question": "What is the capital of France?"}, references=("Paris",))
BRIDGE = Example(
    fields={"document": "The city council voted on Tuesday to build a new bridge over the river, "
                        "costing 20 million pounds."},
    references=("Council approves new 20m bridge",),
)


def test_rubric_prompt_and_grade_reading():
    text = judge_prompt("Lyon", CAPITAL)
    assert text.startswith(RUBRIC) and text.endswith("Grade (1-5):")
    assert "Task input:\nWhat is the capital of France?" in text
    assert "Reference answer:\nParis" in text and "Candidate answer:\nLyon" in text
    no_reference = judge_prompt("  ", Example(fields={"text": "Say hi."}))
    assert "Reference answer" not in no_reference and "Candidate answer:\n(empty)" in no_reference
    assert grade_from_logprobs(np.zeros(5)) == pytest.approx(0.5)
    assert grade_from_logprobs(np.array([0, -50, -50, -50, -50.0])) == pytest.approx(0.0, abs=1e-9)
    assert grade_from_logprobs(np.array([-50, -50, -50, -50, 0.0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="expected 5 grade log-probs"):
        grade_from_logprobs(np.zeros(3))
    assert "judge" in list_rewards("generation")
    assert get_reward("judge:fake:3").kind == "generation"


def test_default_model_as_judge_is_well_formed_deterministic_and_cached():
    judge = get_reward("judge")
    right = [judge(e.reference, e) for e in (CAPITAL, BRIDGE)]
    wrong = [judge(answer, e) for answer, e in (("banana bread recipe", CAPITAL),
                                                ("Football team wins cup", BRIDGE))]
    assert all(0.0 <= g <= 1.0 for g in right + wrong)
    assert np.mean(right) > np.mean(wrong)  # weak, but not blind
    meter = judge_llm("default").stats
    hits = meter.cache_hits
    assert judge(CAPITAL.reference, CAPITAL) == right[0]
    assert meter.cache_hits == hits + 1  # the rerun is answered from the response cache


def test_judge_reward_on_a_generation_env_with_the_real_model():
    env = gym.make("PromptEnv/BBCHeadline-Select-v0", reward="judge", max_examples=2,
                   episode_length=1, max_new_tokens=12)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(0)
    assert 0.0 <= reward <= 1.0 and terminated
    assert info["metrics"]["rouge_l"] >= 0.0  # the task metric is still reported beside the judge
