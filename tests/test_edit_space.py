"""The Edit env's search-space options on the real default model: the whole train split as
exemplar candidates, all of dev per edit, a fixed minibatch with remembered scores, and
episodes started from a given configuration."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import prompt_env  # noqa: F401 - registers the env ids

ENV = "PromptEnv/BBCTopic-Edit-v0"


def test_whole_train_split_and_all_of_dev():
    env = gym.make(ENV, n_candidates=None, minibatch_size=None, max_examples=6).unwrapped
    env.reset(seed=0)
    assert env.prompt_space()["candidates"] == len(env.task.split("train"))
    assert sorted(env._batch) == list(range(6))  # noqa: SLF001 - the minibatch is every input


def test_fixed_minibatch_remembers_scores_and_costs_nothing_twice():
    env = gym.make(ENV, minibatch_size=3, fixed_minibatch=True, max_edits=3, n_candidates=3)
    _, info = env.reset(seed=1)
    start_score, first_calls = info["score"], env.unwrapped.llm_usage()["env_calls"]
    assert first_calls == 3
    edit = int(info["action_mask"][:-1].argmax())
    _, reward, *_ = env.step(edit)
    spent = env.unwrapped.llm_usage()["env_calls"]
    assert spent == 6
    # a second episode on the same inputs: the start and the same edit come from memory
    _, info = env.reset(seed=99)
    assert info["score"] == start_score
    _, again, *_ = env.step(edit)
    assert again == reward and env.unwrapped.llm_usage()["env_calls"] == spent


def test_affordable_edits_are_the_ones_the_budget_left_can_score():
    """affordable_edits(): the valid edits, less those the budget left cannot pay for; a prompt
    the fixed minibatch already scored is free, so it stays affordable with no budget left."""
    env = gym.make(ENV, minibatch_size=3, fixed_minibatch=True, max_edits=3, n_candidates=3,
                   budget={"calls": 6})
    _, info = env.reset(seed=1)
    edit_env = env.unwrapped
    stop = edit_env.action_meanings().index("stop")
    assert (edit_env.affordable_edits() == info["action_mask"]).all()  # 3 calls left: any new prompt
    edit = int(info["action_mask"][:-1].argmax())
    env.step(edit)  # the budget is spent
    env.reset(seed=1)
    affordable = list(np.flatnonzero(edit_env.affordable_edits()))
    assert edit in affordable and stop in affordable and len(affordable) < info["action_mask"].sum()
    for action in affordable:  # every one of them is answered from memory: no call
        if action != stop:
            env.reset(seed=1)
            *_, step_info = env.step(int(action))
            assert not step_info["budget_exhausted"]
    assert edit_env.llm_usage()["env_calls"] == 6


def test_resampled_minibatch_is_the_default():
    env = gym.make(ENV, minibatch_size=2, max_examples=10).unwrapped
    env.reset(seed=0)
    first = list(env._batch)  # noqa: SLF001
    batches = set()
    for seed in range(1, 6):
        env.reset(seed=seed)
        batches.add(tuple(env._batch))  # noqa: SLF001
    assert any(b != tuple(first) for b in batches)


def test_reset_can_start_from_a_configuration():
    env = gym.make(ENV, minibatch_size=2, n_candidates=4, n_slots=2)
    space = env.unwrapped.prompt_space()
    config = {"instruction": space["instructions"] - 1, "slots": [2, -1], "template": 0, "verbalizer": 0}
    env.reset(seed=0, options={"prompt": config})
    prompt = env.unwrapped.prompt
    assert prompt.exemplars == (env.unwrapped.candidates[2],)
    assert prompt.instruction == env.unwrapped.instructions[-1]
    env.reset(seed=0)
    assert env.unwrapped.prompt.exemplars == ()  # the next plain reset starts from the manual prompt
    with pytest.raises(ValueError, match="keys"):
        env.reset(options={"prompt": {"instruction": 0}})
    with pytest.raises(ValueError, match="not a configuration"):
        env.reset(options={"prompt": {**config, "slots": [9, -1]}})


@pytest.mark.parametrize("kwargs, message", [
    ({"fixed_minibatch": "yes"}, "fixed_minibatch"),
    ({"n_candidates": -1}, "n_candidates"),
    ({"minibatch_size": 0}, "minibatch_size"),
])
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make(ENV, **kwargs)
