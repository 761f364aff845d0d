"""Batched scoring of (prompt, example) pairs."""

from __future__ import annotations

import numpy as np
import pytest

from prompt_env import rewards
from prompt_env.llm.fake import FakeLLM
from prompt_env.scoring import evaluate, prompt_as_text, score_matrix
from prompt_env.tasks import Example, Task, pools

SENTENCES = [
    ("a wonderful , moving and beautifully acted film .", 1),
    ("one of the best movies of the year , a pure delight .", 1),
    ("brilliant , funny and full of heart .", 1),
    ("i loved every minute of it .", 1),
    ("a boring , pointless mess .", 0),
    ("the worst film i have seen in years .", 0),
    ("dull , lifeless and painfully bad .", 0),
    ("a terrible waste of time and talent .", 0),
]


def sentiment_task() -> Task:
    examples = [Example(fields={"sentence": s}, label=y, source=f"inline:{i}")
                for i, (s, y) in enumerate(SENTENCES)]
    pool = pools.build_pool(pools.SENTIMENT, kind="classification", input_fields=("sentence",),
                            train=examples)
    return Task(name="mini-sst", kind="classification", family="classification",
                splits={"train": examples, "dev": examples, "test": examples},
                input_fields=("sentence",), metric="accuracy", prompt_pool=pool,
                label_names=("negative", "positive"))


def qa_task() -> Task:
    examples = [
        Example(fields={"context": f"The box holds {n} apples.", "question": "How many apples?"},
                references=(str(n), f"{n} apples"), source=f"inline:{n}")
        for n in range(1, 6)
    ]
    pool = pools.build_pool(pools.QA, kind="generation", input_fields=("context", "question"),
                            train=examples)
    return Task(name="mini-qa", kind="generation", family="qa",
                splits={"train": examples, "dev": examples, "test": examples},
                input_fields=("context", "question"), metric="f1", prompt_pool=pool)


def test_classification_groups_llm_calls_by_choices() -> None:
    task, llm = sentiment_task(), FakeLLM()
    prompts = task.prompt_pool.candidates
    pairs = [(p, e) for e in task.split("test") for p in prompts]
    outcomes = evaluate(llm, task, pairs)
    groups = {(p.verbalizer, p.chat) for p in prompts}
    assert llm.stats.batches == len(groups) < len(prompts)
    assert llm.stats.calls == len(pairs)
    assert len(outcomes) == len(pairs)
    for (prompt, example), outcome in zip(pairs, outcomes, strict=True):
        assert outcome.metrics.keys() == {"accuracy", "margin"}
        assert outcome.score == outcome.metrics["accuracy"]
        assert outcome.correct == (outcome.score == 1.0)
        assert outcome.reference == prompt.verbalizer[example.label]
        assert outcome.prediction in prompt.verbalizer
        assert len(outcome.label_logprobs) == 2
        assert outcome.prompt_text == prompt_as_text(prompt.render(example, task))
    chat_outcome = next(o for (p, _), o in zip(pairs, outcomes, strict=True) if p.chat)
    assert chat_outcome.prompt_text.startswith("[system] ")


def test_classification_scores_match_direct_llm_call() -> None:
    task, llm = sentiment_task(), FakeLLM(seed=3)
    manual = task.prompt_pool.manual
    examples = task.split("test")
    outcomes = evaluate(llm, task, [(manual, e) for e in examples], reward="margin")
    direct = FakeLLM(seed=3).score([manual.render(e, task) for e in examples], manual.choices())
    for row, example, outcome in zip(direct, examples, outcomes, strict=True):
        assert outcome.label_logprobs == pytest.approx(list(row))
        assert outcome.score == pytest.approx(rewards.label_margin(row, example))


def test_generation_is_one_call_per_chat_flag() -> None:
    task, llm = qa_task(), FakeLLM()
    prompts = task.prompt_pool.candidates
    pairs = [(p, e) for e in task.split("test") for p in prompts]
    outcomes = evaluate(llm, task, pairs, reward="exact_match", max_new_tokens=5)
    assert llm.stats.batches == 2  # plain prompts and chat prompts
    assert llm.stats.calls == len(pairs)
    for outcome in outcomes:
        assert set(outcome.metrics) == {"f1", "exact_match"}
        assert outcome.score == outcome.metrics["exact_match"]
        assert outcome.correct == (outcome.metrics["exact_match"] > 0)
        assert outcome.label_logprobs is None and "\n" not in outcome.prediction


def test_score_matrix_shape_and_custom_reward() -> None:
    task, llm = sentiment_task(), FakeLLM()
    prompts = task.prompt_pool.candidates[:3]
    examples = task.split("test")[:5]
    matrix = score_matrix(llm, task, prompts, examples, reward="margin")
    assert matrix.shape == (5, 3)
    assert np.all(matrix >= -1.8) and np.all(matrix <= 2.0)
    custom = rewards.FunctionReward("always_one", "classification", lambda p, e: 1.0)
    assert np.all(score_matrix(FakeLLM(), task, prompts, examples, reward=custom) == 1.0)
    with pytest.raises(ValueError, match="is for generation tasks"):
        evaluate(FakeLLM(), task, [(prompts[0], examples[0])], reward="rouge_l")
    assert evaluate(FakeLLM(), task, []) == []


def test_real_model_manual_sentiment_prompt(default_llm) -> None:
    """The real default model (conftest's ``default_llm``) gets clear-cut sentences right."""
    task = sentiment_task()
    manual = task.prompt_pool.manual
    outcomes = evaluate(default_llm, task, [(manual, e) for e in task.split("test")])
    right = sum(o.correct for o in outcomes)
    assert right >= 6, [(o.prediction, o.reference) for o in outcomes]


def test_score_matrix_chunks_match_one_call_and_store_each_chunk(tmp_path) -> None:
    """Chunked scoring gives the one-call table; each finished chunk is already in the cache."""
    from prompt_env.llm.cache import CachedLLM

    task = sentiment_task()
    prompts = task.prompt_pool.candidates[:4]
    examples = list({e.text: e for split in ("train", "dev", "test") for e in task.split(split)}.values())
    whole = score_matrix(FakeLLM(), task, prompts, examples, reward="margin", chunk_size=len(examples))
    seen: list[tuple[int, int]] = []
    cached = CachedLLM(FakeLLM(), tmp_path / "r.sqlite")
    chunked = score_matrix(cached, task, prompts, examples, reward="margin", chunk_size=3,
                           on_progress=lambda done, total: seen.append((done, total)))
    np.testing.assert_array_equal(chunked, whole)
    total = len(examples) * len(prompts)
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) == 1 + -(-len(examples) // 3)
    # a second pass is served from the cache only
    model_calls = cached.inner.stats.calls
    assert model_calls == total
    again = score_matrix(cached, task, prompts, examples, reward="margin", chunk_size=5)
    np.testing.assert_array_equal(again, whole)
    assert cached.inner.stats.calls == model_calls  # nothing new reached the model
    with pytest.raises(ValueError, match="chunk_size"):
        score_matrix(FakeLLM(), task, prompts, examples, chunk_size=0)


def test_calibration_machinery_with_the_fake_llm() -> None:
    """Plumbing only (the evidence that calibration works is tests/test_calibration.py)."""
    from prompt_env.scoring import (
        calibrate,
        calibration_logprobs,
        calibration_premises,
        clear_calibration_cache,
        outcome_matrix,
    )

    clear_calibration_cache()
    task = sentiment_task()
    prompts = task.prompt_pool.candidates
    examples = task.split("test")[:3]
    llm = FakeLLM(seed=5)
    rows = outcome_matrix(llm, task, prompts, examples, reward="margin", calibration="content-free",
                          chunk_size=2)
    calibration_calls = len(prompts) * 3
    assert llm.stats.calls == len(prompts) * len(examples) + calibration_calls
    table = score_matrix(llm, task, prompts, examples, reward="margin", calibration="content-free")
    assert llm.stats.calls == 2 * len(prompts) * len(examples) + calibration_calls  # once per prompt
    assert [[o.score for o in row] for row in rows] == table.tolist()
    corrections = calibration_logprobs(llm, task, prompts, "content-free")
    for row in rows:
        for prompt, outcome, correction in zip(prompts, row, corrections, strict=True):
            assert outcome.calibration == "content-free"
            expected = calibrate(np.array(outcome.label_logprobs), correction)
            assert outcome.calibrated_logprobs == pytest.approx(list(expected))
            assert outcome.prediction == prompt.verbalizer[int(np.argmax(expected))]
    assert len(calibration_premises(prompts[0], task, "content-free")) == 3
    assert len(calibration_premises(prompts[0], task, "pmi")) == 1
    raw = score_matrix(FakeLLM(seed=5), task, prompts, examples, reward="margin")
    assert raw.shape == table.shape
    assert all(o.calibrated_logprobs is None for o in evaluate(llm, task, [(prompts[0], examples[0])]))
    with pytest.raises(ValueError, match="classification tasks"):
        evaluate(llm, qa_task(), [(qa_task().prompt_pool.manual, qa_task().split("test")[0])],
                 calibration="pmi")
    clear_calibration_cache()
