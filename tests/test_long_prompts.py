"""Prompts longer than the model's context get no answer and the worst score, not a crash.

An Edit-env search on XSum put four articles in the exemplar slots (18,093 tokens against the
default model's 8,192) and `prompt-env optimize` died after 55 minutes. These tests run the
real default model: pairs that fit are scored exactly as they would be alone, pairs that do
not are marked ``fits=False`` and scored as no answer.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from prompt_env import rewards
from prompt_env.envs.edit import PromptEditEnv
from prompt_env.errors import PromptTooLongError
from prompt_env.llm.base import LLM
from prompt_env.scoring import answers_that_fit, evaluate
from tests.test_scoring import qa_task, sentiment_task

FILLER = "Read the text with care. " * 2000
"""About 12,000 tokens: more than SmolLM2-135M-Instruct's 8,192."""


def overlong(prompt):
    return prompt.replace(instruction=FILLER + (prompt.instruction or ""))


def test_answers_that_fit_halves_a_batch_until_the_long_items_stand_alone() -> None:
    calls: list[list[int]] = []

    def answer(batch: list[int]) -> list[int]:
        calls.append(batch)
        if any(n > 9 for n in batch):
            raise PromptTooLongError("too long")
        return [n * 10 for n in batch]

    assert answers_that_fit(answer, [1, 2, 30, 4, 5, 60, 7]) == [10, 20, None, 40, 50, None, 70]
    assert calls[0] == [1, 2, 30, 4, 5, 60, 7]
    assert [30] in calls and [60] in calls
    assert answers_that_fit(answer, []) == []


def test_a_classification_prompt_that_does_not_fit_scores_no_answer_and_the_rest_as_alone(
    default_llm: LLM,
) -> None:
    task = sentiment_task()
    short = task.prompt_pool.candidates[0]
    long = overlong(short)
    examples = task.split("test")[:4]
    for calibration in (None, "content-free"):
        alone = evaluate(default_llm, task, [(short, e) for e in examples], calibration=calibration)
        mixed = evaluate(default_llm, task, [(p, e) for e in examples for p in (short, long)],
                         calibration=calibration)
        assert [o.score for o in mixed[0::2]] == pytest.approx([o.score for o in alone], abs=1e-9)
        assert all(o.fits for o in mixed[0::2])
        for outcome in mixed[1::2]:
            assert not outcome.fits
            assert outcome.prediction == "" and outcome.correct is False
            assert outcome.label_logprobs is None
            assert outcome.metrics["accuracy"] == 0.0 and outcome.score == 0.0
            assert outcome.metrics["margin"] == pytest.approx(-1.8)  # RLPrompt's worst, 2 labels
    margin = evaluate(default_llm, task, [(long, examples[0])], reward="margin")[0]
    assert margin.score == pytest.approx(-1.8) and not margin.fits


def test_a_generation_prompt_that_does_not_fit_answers_nothing(default_llm: LLM) -> None:
    task = qa_task()
    short = task.prompt_pool.candidates[0]
    examples = task.split("test")[:2]
    alone = evaluate(default_llm, task, [(short, e) for e in examples])
    mixed = evaluate(default_llm, task, [(p, e) for e in examples for p in (overlong(short), short)])
    assert [o.prediction for o in mixed[1::2]] == [o.prediction for o in alone]
    assert all(o.fits for o in mixed[1::2])
    f1 = rewards.get_reward("f1")
    for outcome, example in zip(mixed[0::2], examples, strict=True):
        assert not outcome.fits and outcome.prediction == ""
        assert outcome.score == f1("", example) == 0.0


def test_an_edit_that_makes_the_prompt_too_long_costs_its_score_not_the_run(
    default_llm: LLM, tmp_path: Path
) -> None:
    """A train split whose first review is very long: putting it in the exemplar slot makes
    every dev prompt too long, so the step scores 0 and the episode goes on."""
    reviews = [("a warm , funny and moving film .", "positive"), ("dull and lifeless .", "negative"),
               ("i loved every minute of it .", "positive"), ("a terrible waste of time .", "negative")]
    splits = {"train": [("so long . " * 4000, "positive"), *reviews], "dev": reviews, "test": reviews}
    for split, rows in splits.items():
        (tmp_path / f"{split}.jsonl").write_text(
            "".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in rows))
    env = PromptEditEnv(task=str(tmp_path), fixed_minibatch=True, minibatch_size=4, n_slots=1,
                        n_candidates=None, tabular=True, max_edits=3)
    env.use_llm(default_llm)
    _, info = env.reset(seed=0)
    start = info["score"]
    meanings = env.action_meanings()
    put_long = meanings.index(f"put train example {env.candidates.index(0)} in slot 0")
    _, reward, terminated, truncated, info = env.step(put_long)
    assert start >= 0.5  # the manual prompt gets most of the four reviews right
    assert info["score"] == pytest.approx(0.0, abs=0.01)
    assert reward == pytest.approx(-start, abs=0.02)  # less the edit's small cost, if any
    assert not terminated and not truncated
    _, _, _, _, info = env.step(meanings.index("clear slot 0"))
    assert info["score"] == pytest.approx(start)


def test_optimize_finishes_when_a_held_out_input_does_not_fit_and_says_so(
    tmp_path: Path, shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real SST-2 sentences; the first test input is 400 of them run together (about 9,000
    tokens). The run ends, that input scores as no answer, and the report says why."""
    from agents import optimize

    monkeypatch.setenv("PROMPT_ENV_CACHE", str(tmp_path / "cache.sqlite"))
    with open(shared_data_dir / "classification" / "sst-2" / "test.tsv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    names = ("negative", "positive")

    def write(split: str, chosen: list[dict[str, str]], first: str | None = None) -> None:
        lines = [{"text": r["sentence"], "label": names[int(r["label"])]} for r in chosen]
        if first is not None:
            lines[0]["text"] = first
        (tmp_path / "data").mkdir(exist_ok=True)
        (tmp_path / "data" / f"{split}.jsonl").write_text(
            "".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")

    write("train", rows[:6])
    write("dev", rows[6:12])
    write("test", rows[12:16], first=" ".join(r["sentence"] for r in rows[100:500]))
    result = optimize(tmp_path / "data", budget=33, test_limit=4, out=tmp_path / "out",
                      progress=False)
    report = (tmp_path / "out" / "report.md").read_text()
    assert report.count("(too long for the model)") == 3  # manual, best-of-pool, winner
    assert "exceeds the model's context" in report
    assert all(0.0 <= row["test_score"] <= 0.75 for row in result.rows)  # 1 of 4 scores 0
