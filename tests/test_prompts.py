"""Prompt rendering and the built-in prompt pools."""

from __future__ import annotations

from pathlib import Path

import pytest

from prompt_env.errors import TaskFormatError
from prompt_env.prompts import Prompt, PromptPool, Template, fill
from prompt_env.tasks import Example, Task, load_task, pools
from prompt_env.tasks.catalog import INDUCTION_TASKS

TEMPLATE = Template(name="review", input_format="Review: {sentence}", answer_prefix="Sentiment:")


def tiny_task(train: list[Example] | None = None) -> Task:
    train = train or [
        Example(fields={"sentence": "awful"}, label=0),
        Example(fields={"sentence": "lovely"}, label=1),
    ]
    pool = PromptPool((), (TEMPLATE,), (("negative", "positive"),), ())
    return Task(
        name="tiny", kind="classification", family="classification",
        splits={"train": train, "dev": train, "test": train}, input_fields=("sentence",),
        metric="accuracy", prompt_pool=pool, label_names=("negative", "positive"),
    )


def test_fill_leaves_braces_in_data_alone() -> None:
    assert fill("Q: {q}", {"q": "{not_a_field} and {0} and {{x}}"}) == "Q: {not_a_field} and {0} and {{x}}"


def test_unknown_placeholder_is_named() -> None:
    with pytest.raises(TaskFormatError, match=r"refers to \{review\}.*\['sentence'\]"):
        fill("{review}", {"sentence": "x"})


def test_render_plain_with_exemplars() -> None:
    prompt = Prompt("Classify.", TEMPLATE, exemplars=(1,), verbalizer=("negative", "positive"))
    text = prompt.render(Example(fields={"sentence": "a {braced} film"}, label=0), tiny_task())
    assert text == (
        "Classify.\n\nReview: lovely\nSentiment: positive\n\nReview: a {braced} film\nSentiment:"
    )
    assert prompt.choices() == [" negative", " positive"]


def test_query_is_never_its_own_exemplar() -> None:
    """A train input under a few-shot prompt: its own answer is left out of the shots."""
    task = tiny_task()
    prompt = Prompt("Classify.", TEMPLATE, exemplars=(0, 1), verbalizer=("negative", "positive"))
    text = prompt.render(task.splits["train"][1], task)
    assert text == "Classify.\n\nReview: awful\nSentiment: negative\n\nReview: lovely\nSentiment:"
    chat = Prompt("C.", TEMPLATE, exemplars=(0,), verbalizer=("bad", "good"), chat=True)
    assert chat.render(task.splits["train"][0], task) == [
        {"role": "system", "content": "C."},
        {"role": "user", "content": "Review: awful\nSentiment:"},
    ]


def test_render_chat() -> None:
    prompt = Prompt("Classify.", TEMPLATE, exemplars=(0,), verbalizer=("bad", "good"), chat=True)
    chat = prompt.render(Example(fields={"sentence": "fine"}, label=1), tiny_task())
    assert chat == [
        {"role": "system", "content": "Classify."},
        {"role": "user", "content": "Review: awful\nSentiment:"},
        {"role": "assistant", "content": "bad"},
        {"role": "user", "content": "Review: fine\nSentiment:"},
    ]
    assert prompt.choices() == ["bad", "good"]


def test_exemplar_out_of_range() -> None:
    prompt = Prompt("", TEMPLATE, exemplars=(5,), verbalizer=("negative", "positive"))
    with pytest.raises(TaskFormatError, match="uses exemplar 5"):
        prompt.render(Example(fields={"sentence": "x"}, label=0), tiny_task())


def check_pool(task: Task, k_range: tuple[int, int]) -> None:
    pool = task.prompt_pool
    lo, hi = k_range
    assert lo <= len(pool.candidates) <= hi
    manual = pool.manual
    assert manual.name == "manual" and not manual.chat and not manual.exemplars and manual.instruction
    assert any(c.chat for c in pool.candidates)
    assert any(1 <= len(c.exemplars) <= 2 for c in pool.candidates)
    assert any(c.instruction == "" for c in pool.candidates)
    example = task.split("test")[0]
    for candidate in pool.candidates:
        rendered = candidate.render(example, task)
        assert rendered  # every candidate renders on real examples
        if task.kind == "classification":
            assert candidate.verbalizer is not None and len(candidate.verbalizer) == task.num_labels


def test_classification_pool_sizes() -> None:
    for text in (pools.SENTIMENT, pools.NEWS_TOPIC, pools.BBC_TOPIC, pools.generic_classification(["a", "b"])):
        assert len(text.instructions) >= 8 and len(text.templates) >= 4 and len(text.verbalizers) >= 3
        assert "" in text.instructions
        for words in text.verbalizers:
            assert all(w and " " not in w for w in words)


def test_generation_pool_sizes() -> None:
    texts = [pools.QA, pools.SUMMARIZATION, pools.HEADLINE, pools.COUNTING, pools.translation("German"),
             pools.GENERIC_GENERATION] + [pools.induction(t) for t in INDUCTION_TASKS]
    for text in texts:
        assert len(text.instructions) >= 6 and len(text.templates) >= 3
    assert "antonym" in pools.induction("antonyms").instructions[1]


def test_bbc_pools_build_and_are_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPT_ENV_DATA", raising=False)
    topic = load_task("bbc-topic")
    check_pool(topic, (8, 12))
    headline = load_task("bbc-headline")
    check_pool(headline, (6, 8))
    assert load_task("bbc-topic").prompt_pool == topic.prompt_pool


def test_catalog_pools(shared_data_dir: Path) -> None:
    for name in ("sst2", "agnews"):
        check_pool(load_task(name, data_dir=shared_data_dir), (8, 12))
    for name in ("squad", "xsum", "object-counting", "ii-antonyms", "ii-translation_en-fr",
                 "ii-common_concept"):
        check_pool(load_task(name, data_dir=shared_data_dir), (6, 8))
    sst2 = load_task("sst2", data_dir=shared_data_dir)
    two_shot = next(c for c in sst2.prompt_pool.candidates if c.name == "two-shot")
    labels = {sst2.split("train")[i].label for i in two_shot.exemplars}
    assert labels == {0, 1}  # balanced exemplars
    # long documents cap every candidate at one exemplar; a name never promises more
    squad = {c.name: len(c.exemplars) for c in load_task("squad", data_dir=shared_data_dir).prompt_pool.candidates}
    assert "two-shot" not in squad and squad["one-shot-alt"] == squad["one-shot"] == 1
