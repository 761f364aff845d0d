"""Search baselines over the Edit env's prompt space (random search, hill climbing, evolution).

The algorithmic properties are checked on the deterministic fake LLM; the policies run end
to end through ``run_policy`` on real BBC articles with the real default model.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import prompt_env  # noqa: F401  (registers the env ids)
from agents.experiments import Setting, run_policy
from agents.search import (
    SEARCH_METHODS,
    Config,
    MinibatchScorer,
    PromptSpace,
    evolution,
    hill_climb,
)

EDIT_ID = "PromptEnv/BBCTopic-Edit-v0"
FAKE = {"llm": "fake", "task_options": {"n_dev": 4}, "reward": "margin", "minibatch_size": 2}


def scorer(budget: int, seed: int = 0) -> MinibatchScorer:
    return MinibatchScorer(gym.make(EDIT_ID, **FAKE, budget={"calls": budget}), seed=seed)


def test_edit_env_scores_configurations_without_moving() -> None:
    env = gym.make(EDIT_ID, **FAKE, budget={"calls": 5})
    edit = env.unwrapped
    space = edit.prompt_space()
    assert space["initial"] == {"instruction": 0, "slots": (-1, -1), "template": 0, "verbalizer": 0,
                                "calibration": 0}
    assert space["calibrations"] == 1  # no calibration_choices: not a part of the prompt
    with pytest.raises(RuntimeError, match="reset"):
        edit.score_config(space["initial"])
    _, info = env.reset(seed=0)
    config = {**space["initial"], "slots": [3, 1], "template": 2}
    score = edit.score_config(config)
    assert isinstance(score, float) and edit.state == edit.initial_state
    assert edit.llm_usage()["env_calls"] == 4 and edit.prompt_of(config).exemplars == (
        edit.candidates[3], edit.candidates[1])
    assert edit.score_config(config) is None  # 4 + 2 > 5: the budget is spent
    for bad in ({**config, "slots": [1, 1]}, {**config, "slots": [6, -1]}, {**config, "instruction": 8}):
        with pytest.raises(ValueError, match="not a configuration"):
            edit.score_config(bad)


def test_prompt_space_moves_are_the_edit_env_edits() -> None:
    edit = gym.make(EDIT_ID, **FAKE).unwrapped
    space = PromptSpace.of(edit.prompt_space())
    start = space.initial
    # the start's neighbours: 7 instructions, 6 examples in each of 2 slots, 3 templates and
    # 3 verbalizers; valid Edit-env edits from the start: the same minus the stop action
    assert len(space.neighbours(start)) == int(edit.action_masks().sum()) - 1 == 7 + 12 + 3 + 3
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = space.random(rng), space.random(rng)
        for child in (space.crossover(a, b, rng), space.mutate(a, rng)):
            edit.prompt_of(child.as_dict())  # raises unless a valid configuration
    assert Config(0, (3, -1), 0, 0).canonical() == Config(0, (-1, 3), 0, 0).canonical()
    assert space.size == 8 * 4 * 4 * (1 + 6 + 30)


@pytest.mark.parametrize("name", list(SEARCH_METHODS))
def test_searches_stay_in_budget_and_are_deterministic(name: str) -> None:
    results = []
    for _ in range(2):
        s = scorer(60)
        SEARCH_METHODS[name](s, np.random.default_rng(3), 30)
        assert s.edit.llm_usage()["env_calls"] <= 60 and s.exhausted
        assert len(s.history) == 30  # the start, then one new prompt per minibatch of 2 calls
        assert len({e.config.canonical() for e in s.history}) == len(s.history)
        results.append((s.best(), [e.config for e in s.history]))
    assert results[0] == results[1]


def test_hill_climb_never_ends_below_its_start() -> None:
    for seed in range(4):
        s = scorer(40, seed)
        (current,) = hill_climb(s, np.random.default_rng(seed), 20)
        config, score = s.best()
        assert score is not None and score >= s.initial_score and score >= s.known(current)
        assert max(c["best"] for c in s.curve()) == pytest.approx(score - s.initial_score)


def test_evolution_keeps_the_best() -> None:
    s = scorer(80)
    population = evolution(s, np.random.default_rng(1), 40)
    config, score = s.best()
    assert config in population and len(population) == 10
    assert score == max(e.score for e in s.history)


@pytest.fixture(scope="module")
def real_setting() -> Setting:
    """Real BBC articles (shipped with a dependency) and the real default model."""
    return Setting("PromptEnv/BBCTopic-Select-v0", {"llm": "default", "task_options": {"n_dev": 4}},
                   edit_id=EDIT_ID, edit_minibatch=2, test_limit=3, train_reward="margin")


@pytest.mark.parametrize("name", list(SEARCH_METHODS))
def test_search_policies_run_on_the_real_model(real_setting: Setting, name: str) -> None:
    row = run_policy(real_setting, name, 16)
    assert row["policy"] == name and row["n_test"] == 3 and 0.0 <= row["test_score"] <= 1.0
    assert 0 < row["train_calls"] <= 16 and row["eval_calls"] == 3
    assert row["llm_calls"] == row["train_calls"] + row["eval_calls"]
    assert 0 < row["distinct_pairs"] <= row["llm_calls"]
    assert row["candidates"] == 8 and row["search_score"] >= row["start_score"]
    assert row["final_prompt"]["name"].startswith("edit:") and row["curve"]["reward"]
