"""Q-learning on the Edit env as registered policies: edit-tabular-q and edit-dqn.

Machinery and accounting on the deterministic fake LLM; end to end through ``run_policy``
on real BBC articles with the real default model.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.experiments import Setting, run_policy
from agents.experiments.search_policies import greedy_q_chooser

EDIT_POLICIES = ["edit-tabular-q", "edit-dqn"]
SEARCH_SPACE = {"n_candidates": None, "n_slots": 2, "minibatch_size": 3, "fixed_minibatch": True,
                "max_edits": 3}


def setting(llm: str, seed: int = 0) -> Setting:
    return Setting("PromptEnv/BBCTopic-Select-v0", {"llm": llm, "task_options": {"n_dev": 4}},
                   seed=seed, edit_id="PromptEnv/BBCTopic-Edit-v0", edit_minibatch=2,
                   test_limit=3, train_reward="margin")


class TableAgent:
    """A stand-in with a Q-table (one state)."""

    def __init__(self, q: list[float]) -> None:
        self.q_table = np.array([q])


def test_greedy_chooser_edits_only_when_an_edit_beats_stopping() -> None:
    stop = 3
    assert greedy_q_chooser(TableAgent([0.0, 0.0, 0.0, 0.0]), stop)(0, None) == stop  # unvisited
    assert greedy_q_chooser(TableAgent([0.0, 0.2, 0.1, 0.0]), stop)(0, None) == 1
    masked = np.array([1, 0, 1, 1], dtype=np.int8)
    assert greedy_q_chooser(TableAgent([0.0, 0.2, 0.1, 0.0]), stop)(0, masked) == 2
    assert greedy_q_chooser(TableAgent([-0.1, 0.2, -0.3, 0.0]), stop)(0, masked) == stop


def test_a_greedy_edit_without_budget_is_marked_and_not_applied() -> None:
    """A greedy episode whose edit finds no budget left: the edit is marked unscored (the
    notes then say "no budget left: not applied") and the prompt stays the start."""
    import gymnasium as gym

    from agents.experiments.evaluate import greedy_edit_episode

    env = gym.make("PromptEnv/BBCTopic-Edit-v0", llm="fake", task_options={"n_dev": 4},
                   minibatch_size=2, fixed_minibatch=True, budget={"calls": 2})
    stop = env.unwrapped.action_meanings().index("stop")

    def first_edit(obs, mask) -> int:
        return next(i for i, ok in enumerate(mask) if ok and i != stop)

    episode = greedy_edit_episode(env, first_edit, seed=0)
    assert len(episode.edits) == 1 and episode.edits[0]["unscored"]
    assert episode.final_parts == episode.initial_parts


@pytest.mark.parametrize("name", EDIT_POLICIES)
def test_the_greedy_episode_takes_only_edits_the_budget_can_score(name: str) -> None:
    """On a fixed minibatch no calls are reserved for the greedy episode, and a Q-network also
    rates edits to prompts it never scored: it must not pick one the budget left cannot pay
    for (it did: edit-dqn then ended on "no budget left" and shipped its start)."""
    for seed in range(3):
        fake = Setting("PromptEnv/BBCTopic-Select-v0", {"llm": "fake", "task_options": {"n_dev": 4}},
                       seed=seed, edit_id="PromptEnv/BBCTopic-Edit-v0", test_limit=3,
                       train_reward="margin", edit_options=SEARCH_SPACE)
        row = run_policy(fake, name, 30)
        assert "no budget left" not in row["notes"] and row["train_calls"] <= 30
        assert row["search_score"] >= row["start_score"]


def test_the_path_keeps_its_start_when_an_edit_only_ties_it() -> None:
    from agents.experiments.search_policies import path_scores

    def best(initial: float, edits: list[dict]) -> int:  # as the runner picks: first of ties
        return int(np.argmax(path_scores(initial, edits)))

    tie = [{"action": "put train example 11 in slot 3", "score": round(3 / 32, 4)}]
    assert best(3 / 32, tie) == 0  # 0.0938 (rounded) is no better than 0.09375
    assert best(3 / 32, [*tie, {"action": "set template 1", "score": 0.125}]) == 2
    assert best(0.5, []) == 0


@pytest.mark.parametrize("name", [*EDIT_POLICIES, "edit-tabular-q-prior"])
def test_edit_q_learners_train_within_budget_and_repeat(name: str) -> None:
    fake = setting("fake")
    rows = [run_policy(fake, name, 120) for _ in range(2)]
    row = rows[0]
    assert 0 < row["train_calls"] <= 120 and row["eval_calls"] == 3
    assert row["llm_calls"] == row["train_calls"] + row["eval_calls"]
    assert 0 < row["distinct_pairs"] <= row["llm_calls"]
    assert row["edit_steps"] >= 20 and "gamma 0.9" in row["notes"] and row["curve"]["reward"]
    assert [r["final_prompt"] for r in rows[1:]] == [row["final_prompt"]]
    assert rows[1]["test_score"] == row["test_score"]


def test_too_small_a_budget_still_gives_a_prompt() -> None:
    row = run_policy(setting("fake"), "edit-tabular-q", 4)
    assert row["edit_steps"] == 0 and row["train_calls"] <= 4 and row["final_prompt"]["name"]


@pytest.fixture(scope="module")
def real_setting() -> Setting:
    """Real BBC articles (shipped with a dependency) and the real default model."""
    return setting("default")


@pytest.mark.parametrize("name", EDIT_POLICIES)
def test_edit_q_learners_run_on_the_real_model(real_setting: Setting, name: str) -> None:
    row = run_policy(real_setting, name, 24)
    assert row["policy"] == name and row["n_test"] == 3 and 0.0 <= row["test_score"] <= 1.0
    # training and the greedy final episode together stay within the budget
    assert 0 < row["train_calls"] <= 24 and row["eval_calls"] == 3
    assert row["llm_calls"] == row["train_calls"] + row["eval_calls"]
    assert 0 < row["distinct_pairs"] <= row["llm_calls"]
    assert row["edit_steps"] >= 2 and row["final_prompt"]["name"].startswith("edit:")


@pytest.mark.parametrize("name", ["edit-tabular-q", "edit-tabular-q-prior", "hill-climb", "evolution",
                                  "random-search"])
def test_search_space_policies_on_the_real_model(name: str, tmp_path, shared_data_dir,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness's edit-search setting (issue #13) in small: every train example offered,
    a fixed minibatch with remembered scores, label scores raw or calibrated by choice;
    at most budget // 3 new prompts; a search curve that never decreases. Real SST-2 (the
    shared data; skipped where it is absent) and the real default model."""
    from agents.experiments.plots import plot_search_curves

    monkeypatch.setenv("PROMPT_ENV_DATA", str(shared_data_dir))

    space = {**SEARCH_SPACE, "calibration_choices": [None, "content-free"]}
    real = Setting("PromptEnv/SST2-Select-v0", {"llm": "default", "task_options": {"few_shot_seed": 13}},
                   seed=13, edit_id="PromptEnv/SST2-Edit-v0", test_limit=4,
                   train_reward="accuracy_margin", edit_options=space)
    row = run_policy(real, name, 15)
    # the budget covers scored pairs and calibration premises alike; a calibrated final prompt
    # reads its 3 content-free inputs once more at test time
    assert 3 <= row["train_calls"] <= 15
    assert row["eval_calls"] == 4 + (3 if row["final_prompt"]["calibration"] else 0)
    curve = row["search_curve"]
    assert len(curve["best"]) >= 2 and curve["best"] == sorted(curve["best"])
    assert curve["distinct"] == sorted(curve["distinct"]) and curve["distinct"][-1] <= 15
    assert row["final_prompt"]["calibration"] in (None, "content-free")
    row["task"] = "sst2"
    plot_search_curves([row, {**row, "seed": 14}], tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
