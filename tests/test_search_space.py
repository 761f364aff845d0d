"""The shared search space, the tie-break on held-out inputs, and Setting.for_task.

Machinery on the deterministic fake LLM (BBC articles, offline); the tie-break end to end
with the real default model on real SST-2 in ``test_tie_break_on_real_sst2``.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from agents.experiments import Setting, run_policy
from agents.experiments.files import ResumableRows
from agents.experiments.search_space import (
    SEARCH_SPACE,
    describe_search_space,
    search_space_options,
)
from agents.experiments.tie_break import TieBreak, break_ties, held_out_inputs, tied_candidates
from prompt_env.prompts import Prompt, Template

TEMPLATE = Template("t", "{text}", "A:")


def prompt(name: str, exemplars: tuple[int, ...] = ()) -> Prompt:
    return Prompt(instruction=name, template=TEMPLATE, exemplars=exemplars, verbalizer=("a", "b"))


def test_tied_candidates_are_within_one_dev_input_best_first() -> None:
    scored = [(prompt("a"), 0.75), (prompt("b"), 0.78), (prompt("c"), 0.72), (prompt("d"), 0.76)]
    tied = tied_candidates(scored, n_dev=32, tie_break=TieBreak(prompts=8, within=1))
    assert [p.instruction for p, _ in tied] == ["b", "d", "a"]  # 0.72 < 0.78 - 1/32
    assert [p.instruction for p, _ in tied_candidates(scored, 32, TieBreak(prompts=2))] == ["b", "d"]
    assert [p.instruction for p, _ in tied_candidates(scored, 32, TieBreak(within=0))] == ["b"]
    assert tied_candidates([], 32, TieBreak()) == []


def test_tie_break_options_parse_and_refuse_what_they_cannot_use() -> None:
    assert TieBreak.of(True) == TieBreak() and TieBreak.of(None) is None and TieBreak.of(False) is None
    assert TieBreak.of({"prompts": 4, "inputs": 16}) == TieBreak(prompts=4, inputs=16)
    assert TieBreak().reserve() == 8 * 35 and TieBreak().reserve(2000) == 280
    assert TieBreak().reserve(500) == 100  # at most a fifth of the budget
    with pytest.raises(ValueError, match="takes prompts, inputs and within"):
        TieBreak.of({"prompt": 4})
    with pytest.raises(ValueError, match="positive integer"):
        TieBreak(prompts=0)
    with pytest.raises(ValueError, match="must be true, false or a table"):
        TieBreak.of("yes")


def fake_search_setting(**overrides) -> Setting:
    return Setting.for_task("bbc-topic", llm="fake", seed=0, task_options={"n_dev": 6},
                            search_space=True, split="dev", test_limit=4, **overrides)


def test_search_space_is_defined_once_and_read_by_the_setting() -> None:
    setting = fake_search_setting(edit_options={"n_slots": 2})
    assert setting.edit_options == {**SEARCH_SPACE, "n_slots": 2,
                                    "calibration_choices": [None, "content-free"]}
    assert setting.train_reward == "accuracy_margin"
    assert "calibration_choices" not in search_space_options("generation")
    text = describe_search_space(setting.edit_options, setting.train_reward)
    assert "up to 2 exemplars from the first 64 train examples" in text and "accuracy_margin" in text


def test_exemplar_candidates_are_every_16_shot_example_and_at_most_64(shared_data_dir) -> None:
    """SST-2's and AG News' 16-shot splits offer every train example, in the order the
    committed rows searched (recorded as ``n_candidates: None``); a task with thousands of
    train pairs offers 64, so the Q-learners see hundreds of edit actions, not 10,000."""
    import gymnasium as gym

    def space(env_id: str, **kwargs):
        env = gym.make(env_id, llm="fake", data_dir=str(shared_data_dir), **kwargs).unwrapped
        return env.space.candidates, env.action_space.n

    for env_id, seed, n_train in (("PromptEnv/SST2-Edit-v0", 13, 32), ("PromptEnv/AGNews-Edit-v0", 21, 64)):
        options = {"task_options": {"few_shot_seed": seed}, **search_space_options("classification")}
        ours, _ = space(env_id, **options)
        assert ours == space(env_id, **{**options, "n_candidates": None})[0]
        assert sorted(ours) == list(range(n_train))
    candidates, actions = space("PromptEnv/IIAntonyms-Edit-v0", **search_space_options("generation"))
    assert candidates == list(range(64)) and actions < 400


def test_setting_for_task_decides_the_defaults_in_one_place(shared_data_dir) -> None:
    sst2 = Setting.for_task("sst2", seed=13, data_dir=str(shared_data_dir))
    assert sst2.env_kwargs["task_options"] == {"few_shot_seed": 13}
    assert sst2.train_reward == "margin" and sst2.edit_id == "PromptEnv/SST2-Edit-v0"
    kept = Setting.for_task("sst2", seed=13, data_dir=str(shared_data_dir), seed_picks_split=False)
    assert "task_options" not in kept.env_kwargs
    assert Setting.for_task("sst2", seed=0, data_dir=str(shared_data_dir)).env_kwargs.get(
        "task_options") is None  # 0 names no 16-shot split: the catalog default
    chosen = Setting.for_task("sst2", seed=21, data_dir=str(shared_data_dir), metric="accuracy")
    assert chosen.train_reward == "accuracy"  # a chosen metric is also what learners train on
    squad = Setting.for_task("squad", seed=1, data_dir=str(shared_data_dir))
    assert squad.train_reward is None and squad.compose_id is None
    assert squad.select_env() is squad.select_env()  # made once and kept


def test_held_out_inputs_avoid_the_search_inputs_and_every_shown_exemplar() -> None:
    setting = fake_search_setting(edit_options={"minibatch_size": 4})
    env = setting.make(setting.edit_id, **setting.edit_kwargs())
    env.reset(seed=0)
    edit, select = env.unwrapped, setting.select_env()
    shown = [prompt("x", (0, 3)), prompt("y", (5,))]
    parts = dict(held_out_inputs(edit, select, shown, count=9, seed=0))
    assert set(parts) == {"dev", "train"}
    assert len(parts["dev"]) == 2 and not set(parts["dev"]) & set(edit.minibatch_indices())
    assert len(parts["train"]) == 7 and not set(parts["train"]) & {0, 3, 5}
    assert parts == dict(held_out_inputs(edit, select, shown, count=9, seed=0))  # seeded
    env.close()


@pytest.mark.parametrize("name", ["hill-climb", "edit-tabular-q"])
def test_tie_break_is_charged_to_the_budget_and_says_what_it_did(name: str) -> None:
    budget = 300
    setting = fake_search_setting(tie_break=TieBreak(prompts=4, inputs=5),
                                  edit_options={"minibatch_size": 4})
    row = run_policy(setting, name, budget)
    assert row["train_calls"] <= budget
    assert "tie-break" in row["notes"]
    if row["tie_break"]["tied"] > 1:
        assert 0 < row["tie_break_calls"] <= 4 * (5 + 3)
    assert set(row["final_prompt"]) >= {"instruction", "template", "exemplars"}
    again = run_policy(fake_search_setting(tie_break=TieBreak(prompts=4, inputs=5),
                                           edit_options={"minibatch_size": 4}), name, budget)
    assert (again["test_score"], again["final_prompt"]) == (row["test_score"], row["final_prompt"])


def test_break_ties_keeps_the_best_over_dev_and_held_out_inputs() -> None:
    class Edit:
        split, max_examples = "dev", None
        examples = list(range(6))

        def scored_prompts(self):
            return [(prompt("a"), 0.75), (prompt("b"), 0.75), (prompt("c"), 0.25)]

        def minibatch_indices(self):
            return [0, 1, 2, 3]

    class Select:
        task = SimpleNamespace(split=lambda name: [])  # no train inputs to fall back on

        def __init__(self) -> None:
            import numpy as np

            self.np = np
            self.asked: list[tuple[str, list[int]]] = []

        def score_prompts(self, prompts, split, reward=None, indices=None):
            self.asked.append((split, list(indices)))
            # "b" is right on both held-out inputs, "a" on neither
            return self.np.array([[0.0, 1.0]] * len(indices))

        def llm_usage(self):
            return {"calls": 2 * sum(len(i) for _, i in self.asked)}

        def get_wrapper_attr(self, name):
            return getattr(self, name)

    select = Select()
    result = break_ties(Edit(), select, TieBreak(prompts=2, inputs=8), reward="accuracy", seed=0)
    assert result.prompt.instruction == "b" and result.details["winner_rank_on_dev"] == 1
    assert select.asked == [("dev", select.asked[0][1])] and sorted(select.asked[0][1]) == [4, 5]
    assert result.usage.calls == 4 and "kept the #2 on dev" in result.notes


def test_resumable_rows_skip_done_keys_and_keep_the_last_of_a_key(tmp_path) -> None:
    rows = ResumableRows(tmp_path / "r.jsonl", lambda r: (r["task"], r["seed"]))
    assert not rows.done(("a", 1))
    rows.add({"task": "a", "seed": 1, "v": 1})
    rows.add({"task": "a", "seed": 1, "v": 2})
    with open(tmp_path / "r.jsonl", "a") as handle:  # another process's row, and a torn line
        handle.write('{"task": "b", "seed": 2, "v": 3}\n{"task": "c"')
    again = ResumableRows(tmp_path / "r.jsonl", lambda r: (r["task"], r["seed"]))
    assert again.done(("a", 1)) and again.done(("b", 2))
    assert [r["v"] for r in again.latest()] == [2, 3]


def test_tie_break_on_real_sst2(shared_data_dir) -> None:
    """hill-climb on the real default model: the tie-break rescoring real SST-2 sentences."""
    setting = Setting.for_task("sst2", seed=13, data_dir=str(shared_data_dir), search_space=True,
                               edit_options={"minibatch_size": 8}, test_limit=8,
                               tie_break=TieBreak(prompts=3, inputs=6))
    row = run_policy(setting, "hill-climb", 200)
    assert row["train_calls"] <= 200 and "tie-break" in row["notes"]
    assert dataclasses.asdict(TieBreak(prompts=3, inputs=6)) == {"prompts": 3, "inputs": 6, "within": 1}
