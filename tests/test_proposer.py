"""The proposer (``prompt_env.proposer``), the Edit env's propose actions and the baselines
that write instructions (ape, opro, evoprompt-llm, gepa, edit-*-propose).

The machinery (cleaning, metering, seeded draws, masks, budgets) is checked on the
deterministic fake LLM; ``test_real_model_reflects_and_the_env_replays_from_the_cache`` is
the evidence that it works with the real default model.
"""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import prompt_env  # noqa: F401  (registers the env ids)
from agents.experiments import Setting, run_policy
from agents.experiments.proposer_policies import PROPOSER_POLICIES, pareto_front
from prompt_env.errors import LLMSpecError
from prompt_env.llm import load_llm
from prompt_env.llm.fake import FakeLLM
from prompt_env.proposer import Failure, Proposer, ProposerError, clean_instruction

EDIT_ID = "PromptEnv/BBCTopic-Edit-v0"
SMALL = {"llm": "fake", "task_options": {"n_dev": 4}, "minibatch_size": 2, "n_candidates": 3,
         "max_edits": 4, "max_new_tokens": 6}


def make(**extra) -> gym.Env:
    return gym.make(EDIT_ID, **{**SMALL, "proposer": "task", "max_instructions": 12, **extra})


def index_of(env: gym.Env, meaning: str) -> int:
    return env.unwrapped.action_meanings().index(meaning)


class ScriptedLLM(FakeLLM):
    """The fake's scores; generations from a fixed list, in turn; records every prompt."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__()
        self.replies, self.prompts = list(replies), []

    def generate(self, prompts, max_new_tokens=32, stop=None):
        self.prompts.extend(prompts)
        self.stats.calls += len(prompts)
        return [self.replies[(len(self.prompts) - len(prompts) + i) % len(self.replies)]
                for i in range(len(prompts))]


# ------------------------------------------------------------------------------ cleaning


@pytest.mark.parametrize("reply, expected", [
    ('Sure! Here is the new instruction:\n\n"Classify the article by its topic."',
     "Classify the article by its topic."),
    ("1. Instruction: Name the topic of the article.", "Name the topic of the article."),
    ("**New instruction:** 'Give the antonym of the word.'", "Give the antonym of the word."),
    ("- \u201cTranslate the sentence into German.\u201d", "Translate the sentence into German."),
    ('"Answer with one word" - that is my suggestion', "Answer with one word"),
    ("Translate {sentence} into German: {answer}", "Translate into German:"),
    ("Instruction:\n\n  Say which topic it is.", "Say which topic it is."),
])
def test_cleaning_strips_what_is_not_the_instruction(reply: str, expected: str) -> None:
    assert clean_instruction(reply) == expected


def test_cleaning_rejects_empty_identical_and_known_text_and_caps_length() -> None:
    assert clean_instruction("") is None
    assert clean_instruction("   \n\n  ") is None
    assert clean_instruction("Instruction:") is None
    assert clean_instruction('"{text}"') is None  # only a template field
    assert clean_instruction("Classify the topic!", current="classify the  topic") is None
    assert clean_instruction("Name the topic.", known=["Pick a label.", "name the topic"]) is None
    long = "Read the article carefully. " * 20
    capped = clean_instruction(long, max_chars=100)
    assert capped is not None and len(capped) <= 100 and capped.endswith(".")
    words = clean_instruction("word " * 100, max_chars=50)
    assert words is not None and len(words) <= 50 and not words.endswith(" ")
    assert "{" not in (clean_instruction("Use {x and } then {y} here") or "{")


# ------------------------------------------------------------------------------ proposer


def test_proposer_is_metered_apart_from_the_task_llm() -> None:
    task = load_llm("fake")
    task.score(["a prompt"], [" yes"])
    before = task.stats.as_dict()
    proposer = Proposer(task)
    out = proposer.induce([("an input", "an answer"), ("another input", "answer two")],
                          np.random.default_rng(0))
    proposer.mutate("Classify the article.")
    assert task.stats.as_dict() == before  # the task meter never sees proposer generations
    usage = proposer.usage()
    assert usage["proposer_calls"] == 2 and usage["proposer_distinct"] == 2
    assert usage["proposer_tokens"] > 20 and proposer.token_unit == "words"
    assert out is None or isinstance(out, str)

    raw = FakeLLM()  # an LLM object without the cache wrapper: its own meter is kept clean too
    Proposer(raw).mutate("Classify the article.")
    assert raw.stats.as_dict()["calls"] == 0


def test_the_seed_draws_what_the_meta_prompt_shows() -> None:
    demos = [(f"input number {i}", f"answer {i}") for i in range(12)]
    prompts = []
    for seed in (0, 0, 1):
        llm = ScriptedLLM(["Name the topic."])
        Proposer(llm).induce(demos, np.random.default_rng(seed))
        prompts.append(llm.prompts[0][0]["content"])
    assert prompts[0] == prompts[1] != prompts[2]
    assert sum(f"input number {i}\n" in prompts[0] for i in range(12)) == 4  # k = 4 drawn

    llm = ScriptedLLM(["Better: sort the news by topic."])
    scored = [("first try", 0.2), ("best so far", 0.9), ("second try", 0.5)]
    out = Proposer(llm).history(scored, np.random.default_rng(0), demos=demos)
    shown = llm.prompts[0][0]["content"]
    assert shown.index("first try") < shown.index("second try") < shown.index("best so far")
    assert out == "Better: sort the news by topic."

    llm = ScriptedLLM(['Here you go:\n"Read the whole article, then name its topic."'])
    failures = [Failure(f"article {i}", "sport", "business", "accuracy 0.00") for i in range(6)]
    out = Proposer(llm).reflect("Name the topic.", failures, np.random.default_rng(3))
    meta = llm.prompts[0][0]["content"]
    assert out == "Read the whole article, then name its topic."
    assert meta.count("Correct answer: business") == 4 and "Feedback: accuracy 0.00" in meta

    llm = ScriptedLLM(["Name the topic."])  # the same as a parent: nothing new
    assert Proposer(llm).crossover("Name the topic.", "Pick a label.") is None


def test_bad_specs_and_modes_are_typed_errors_naming_the_field() -> None:
    with pytest.raises(ProposerError, match="proposer"):
        Proposer("no-such-backend")
    with pytest.raises(ProposerError, match="max_new_tokens"):
        Proposer("fake", max_new_tokens=0)
    with pytest.raises(ProposerError, match="proposer"):
        make(proposer=42)
    with pytest.raises(ProposerError, match="propose_modes"):
        make(propose_modes=["induce", "dream"])
    with pytest.raises(ValueError, match="max_instructions"):
        make(max_instructions=0)
    assert issubclass(ProposerError, ValueError) and not issubclass(ProposerError, LLMSpecError)


# ------------------------------------------------------------------------------ the env


def test_propose_grows_the_instruction_set_in_fixed_slots() -> None:
    env = make()
    edit = env.unwrapped
    plain = gym.make(EDIT_ID, **SMALL)
    pool = edit.pool_size
    meanings = edit.action_meanings()
    assert len(meanings) == plain.action_space.n + 12 - pool + 4  # all slots, four propose actions
    assert meanings[-5:] == ["propose induce", "propose reflect", "propose history", "propose demo",
                             "stop"]
    assert env.observation_space.shape[0] == plain.observation_space.shape[0] + 12 - pool
    _, info = env.reset(seed=0)
    mask = info["action_mask"]
    assert not mask[index_of(env, f"set instruction {pool}")]  # an unfilled slot
    calls = edit.llm_usage()["calls"]
    _, _, _, _, info = env.step(index_of(env, "propose induce"))
    assert info["valid_action"] and info["instructions"] == pool + 1
    assert edit.prompt.instruction == edit.instructions[pool] not in edit.instructions[:pool]
    assert info["proposer_calls"] == 1 and info["proposer_tokens"] > 0
    assert not np.array_equal(info["action_mask"], mask)
    assert info["action_mask"][index_of(env, "set instruction 0")]  # the old one is a move away
    usage = edit.llm_usage()
    assert usage["calls"] - calls == 2 == usage["env_calls"] - 2  # the new prompt on 2 inputs
    assert usage["proposer_calls"] == 1 and usage["proposer_distinct"] == 1


def test_a_full_set_or_nothing_usable_masks_or_penalises() -> None:
    env = make(max_instructions=1, propose_modes=["induce", "history"])  # no free slot at all
    edit = env.unwrapped
    _, info = env.reset(seed=0)
    assert not info["action_mask"][index_of(env, "propose induce")]
    _, reward, _, _, info = env.step(index_of(env, "propose history"))
    assert reward == -edit.invalid_penalty and not info["valid_action"]
    assert info["proposer_calls"] == 0

    env = make()
    env.unwrapped.use_proposer(ScriptedLLM(["Instruction:"]))  # nothing usable, ever
    env.reset(seed=0)
    _, reward, _, _, info = env.step(index_of(env, "propose induce"))
    assert reward == -env.unwrapped.invalid_penalty and not info["valid_action"]
    assert info["proposer_calls"] == 1 and info["instructions"] == env.unwrapped.pool_size


def test_propose_demo_bootstraps_an_exemplar_the_metric_accepts() -> None:
    env = make(propose_modes=["demo"])
    edit = env.unwrapped
    env.reset(seed=1)
    calls = edit.llm_usage()["env_calls"]
    _, _, _, _, info = env.step(index_of(env, "propose demo"))
    if info["valid_action"]:
        slot = edit.state.slots[0]
        assert slot >= 0 and edit.state.slots[1:] == (-1,)
        train = edit.task.splits["train"][edit.candidates[slot]]
        outcome = edit.run_pairs([(edit.prompt_of(edit.initial_state), train)])[0]
        assert outcome.correct
    assert edit.llm_usage()["env_calls"] > calls  # the tries are task-LM calls
    assert info["proposer_calls"] == 0  # and no proposer call


@pytest.mark.parametrize("tabular", [False, True])
def test_check_env_passes_with_the_proposer(tabular: bool) -> None:
    env = make(tabular=tabular)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=True)
    allowed = ("normalized", "one-hot")
    unexpected = [str(w.message) for w in caught if not any(a in str(w.message) for a in allowed)
                  and "Deprecat" not in w.category.__name__]
    assert not unexpected, unexpected
    env.reset(seed=0)
    _, _, _, _, info = env.step(index_of(env, "propose induce"))
    obs = env.unwrapped.observe()
    assert env.observation_space.contains(obs)
    if tabular and info["valid_action"]:
        assert obs == env.unwrapped.state_id(env.unwrapped.state)


def test_same_seed_same_episode_with_proposals() -> None:
    def episode() -> list:
        env = make()
        _, info = env.reset(seed=5)
        trace = [info["score"]]
        for meaning in ("propose induce", "propose reflect", "propose history", "propose demo"):
            action = index_of(env, meaning)
            if not info["action_mask"][action]:
                continue
            _, reward, terminated, truncated, info = env.step(action)
            trace.append((meaning, reward, info["prompt_parts"], info["proposer_calls"]))
            if terminated or truncated:
                break
        return [trace, env.unwrapped.instructions]

    first = episode()
    assert first == episode() and len(first[0]) >= 3

    env = make()  # a pickled env keeps its written instructions and rebuilds its proposer
    env.reset(seed=5)
    env.step(index_of(env, "propose induce"))
    clone = pickle.loads(pickle.dumps(env.unwrapped))
    assert clone.instructions == env.unwrapped.instructions and clone._proposer is None
    clone.reset(seed=5)
    assert clone.step(index_of(env, "propose history"))[4]["proposer_calls"] == 1


def test_proposer_calls_are_not_charged_to_the_budget() -> None:
    env = make(budget={"calls": 4})  # the reset (2) and one new prompt (2)
    _, info = env.reset(seed=0)
    _, _, _, truncated, info = env.step(index_of(env, "propose induce"))
    assert not truncated and env.unwrapped.llm_usage()["env_calls"] == 4
    _, _, _, truncated, info = env.step(index_of(env, "propose history"))
    assert truncated and info["budget_exhausted"] and info["proposer_calls"] == 1  # not asked


# ------------------------------------------------------------------------------ baselines


def test_the_registry_knows_which_policies_write() -> None:
    from agents.experiments import POLICIES
    from agents.experiments.registry import uses_proposer

    assert sorted(n for n in POLICIES if uses_proposer(n)) == sorted(PROPOSER_POLICIES)
    assert uses_proposer("gepa@content-free") and not uses_proposer("evolution")


def test_pareto_front_keeps_the_non_dominated() -> None:
    vectors = [np.array(v, dtype=float) for v in ([1, 0, 0], [0, 1, 0], [1, 1, 0], [0.5, 0.5, 1])]
    assert pareto_front(vectors) == [2, 3]


@pytest.mark.parametrize("name", PROPOSER_POLICIES)
def test_each_writing_policy_runs_within_budget_and_reports_proposer_calls(name: str) -> None:
    setting = Setting("PromptEnv/BBCTopic-Select-v0", {"llm": "fake", "task_options": {"n_dev": 4}},
                      seed=0, edit_id=EDIT_ID, edit_minibatch=2, test_limit=3, train_reward="margin")
    budget = 120  # 60 new prompts at most: enough for the Q-learners' exploration to propose
    row = run_policy(setting, name, budget)
    assert 0 < row["train_calls"] <= budget and row["eval_calls"] == 3
    assert row["proposer_calls"] > 0 and row["proposer_tokens"] > 0
    assert row["llm_calls"] == row["train_calls"] + row["eval_calls"]  # proposer calls apart
    assert row["proposer_token_unit"] == "words" and row["written_instructions"] > 0
    if name not in ("edit-tabular-q-propose", "edit-dqn-propose"):
        assert "stopped: " in row["notes"]
    again = run_policy(setting, name, budget)
    assert again["final_prompt"] == row["final_prompt"] and again["proposer_calls"] == row["proposer_calls"]
    if name == "ape":  # APE keeps the best of its own written instructions
        pool = setting.select_env().task.prompt_pool.instructions
        assert row["final_prompt"]["instruction"] not in pool


def test_optimize_ape_ships_a_written_instruction(tmp_path: Path, monkeypatch) -> None:
    from agents.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    rows = [{"text": f"{word} news about {topic} number {i}", "label": topic}
            for i in range(8) for topic, word in (("sport", "match"), ("business", "market"))]
    data = tmp_path / "news.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "opt"
    code = main(["optimize", "--data", str(data), "--llm", "fake", "--policy", "ape",
                 "--budget", "200", "--test-limit", "4", "--no-progress", "--no-tie-break",
                 "--proposer", "fake", "--out", str(out)])
    assert code == 0
    text = (out / "best_prompt.txt").read_text()
    shipped = json.loads((out / "best_prompt.json").read_text())
    from prompt_env.tasks import load_task

    pool = load_task(str(data)).prompt_pool.instructions
    instruction = shipped["instruction"]
    assert instruction and instruction not in pool
    assert instruction in (text if shipped["format"] == "text" else json.loads(text)[0]["content"])
    results = json.loads((out / "results.json").read_text())
    assert results[-1]["policy"] == "ape" and results[-1]["proposer_calls"] > 0
    assert all(r["proposer_calls"] == 0 for r in results[:-1])


# ------------------------------------------------------------------------------ the evidence


def test_real_model_reflects_and_the_env_replays_from_the_cache(default_backend, shared_data_dir,
                                                                tmp_path: Path) -> None:
    """SmolLM2-135M writes a usable (cleaned, new) instruction from four failures, and an
    Edit episode with proposals replays exactly from the response cache."""
    from prompt_env.llm import CachedLLM

    cache = tmp_path / "cache.sqlite"
    proposer = Proposer(CachedLLM(default_backend, cache), max_new_tokens=40)
    current = "Is the review positive or negative?"
    failures = [Failure("the movie was a waste of two hours", "positive", "negative"),
                Failure("a gorgeous, moving film", "negative", "positive"),
                Failure("dull and lifeless from start to finish", "positive", "negative"),
                Failure("I loved every minute of it", "negative", "positive")]
    written = proposer.reflect(current, failures, np.random.default_rng(0))
    assert written and written.strip() == written and written != current
    assert "{" not in written and len(written) <= 300 and not written.lower().startswith("instruction")
    assert proposer.usage()["proposer_calls"] == 1 and proposer.token_unit == "tokenizer"

    def episode() -> tuple[list, dict]:
        env = gym.make("PromptEnv/SST2-Edit-v0", data_dir=str(shared_data_dir), minibatch_size=4,
                       n_candidates=2, max_edits=3, proposer="task", max_instructions=12,
                       propose_modes=["induce", "reflect"])
        env.unwrapped.use_llm(CachedLLM(default_backend, cache))
        _, info = env.reset(seed=3)
        sizes, masks, trace = [len(env.unwrapped.instructions)], [info["action_mask"]], []
        for meaning in ("propose induce", "propose reflect"):
            action = env.unwrapped.action_meanings().index(meaning)
            if info["action_mask"][action]:
                _, reward, _, _, info = env.step(action)
                trace.append((meaning, reward, env.unwrapped.prompt.instruction))
                sizes.append(len(env.unwrapped.instructions))
                masks.append(info["action_mask"])
        usage = env.unwrapped.llm_usage()
        return trace, {"sizes": sizes, "masks": masks, "usage": usage,
                       "proposer": env.unwrapped.proposer.llm.stats.as_dict()}

    trace, first = episode()
    assert trace and first["sizes"][1] == first["sizes"][0] + 1  # the induced one was written
    assert not np.array_equal(first["masks"][0], first["masks"][1])
    usage = first["usage"]
    assert usage["proposer_calls"] == len(trace) and usage["calls"] == usage["env_calls"]
    again, second = episode()
    assert again == trace  # same instructions, same rewards
    assert second["proposer"]["cache_hits"] == second["proposer"]["calls"] == len(trace)
    assert second["usage"]["model_calls"] == 0


def test_the_stop_reason_says_why_a_writing_method_ended() -> None:
    from types import SimpleNamespace

    from agents.experiments.proposer_policies import MAX_IDLE_PROPOSALS, Writer

    def writer(exhausted: bool, affordable: bool, idle: int) -> Writer:
        edit = SimpleNamespace(budget_allows=lambda cost: affordable, new_prompt_cost=lambda: 8)
        return Writer(SimpleNamespace(exhausted=exhausted, edit=edit), np.random.default_rng(0), idle=idle)

    assert writer(False, True, MAX_IDLE_PROPOSALS).stop_reason().startswith("the proposer wrote nothing new")
    assert writer(True, True, 0).stop_reason() == "the budget was spent"
    assert writer(False, False, 0).stop_reason() == "the budget was spent"
    assert writer(False, True, 0).stop_reason() == "a round of proposals gave no new candidate"
