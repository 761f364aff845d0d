"""Calibrated label scoring (content-free and domain-conditional PMI) with the real default model.

Every test that claims calibration works runs the real embedded model
(conftest's ``default_llm``) on real SST-2 sentences from the shared data;
the fake LLM only checks error handling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from prompt_env.envs.edit import PromptEditEnv
from prompt_env.envs.select import PromptSelectEnv
from prompt_env.llm.base import LLM
from prompt_env.prompts import Prompt, Template
from prompt_env.scoring import (
    CONTENT_FREE_INPUTS,
    clear_calibration_cache,
    evaluate,
    pmi_premise,
    score_matrix,
)
from prompt_env.tasks import Example, Task, load_task

TASK_OPTIONS = {"few_shot_seed": 13}


def sst2(data_dir: Path) -> Task:
    return load_task("sst2", data_dir=str(data_dir), **TASK_OPTIONS)


def balanced_sentences(task: Task, per_label: int = 4) -> list[Example]:
    """The first ``per_label`` test sentences of each label, negatives first."""
    test = task.split("test")
    return [e for label in (0, 1) for e in [x for x in test if x.label == label][:per_label]]


def lopsided_prompt() -> Prompt:
    """A cloze prompt with no instruction whose raw scores say "great" to almost anything."""
    return Prompt(instruction="", template=Template("cloze", "{sentence}", "It was"),
                  verbalizer=("terrible", "great"), name="lopsided-cloze")


def log_softmax(values: np.ndarray) -> np.ndarray:
    shifted = values - values.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def blank(task: Task, text: str) -> Example:
    return Example(fields=dict.fromkeys(task.input_fields, text))


def test_content_free_follows_the_formula_and_balances_a_lopsided_prompt(
    default_llm: LLM, shared_data_dir: Path
) -> None:
    clear_calibration_cache()
    task = sst2(shared_data_dir)
    prompt = lopsided_prompt()
    examples = balanced_sentences(task)
    pairs = [(prompt, e) for e in examples]
    raw = evaluate(default_llm, task, pairs, reward="margin")
    calibrated = evaluate(default_llm, task, pairs, reward="margin", calibration="content-free")

    # manual computation straight from llm.score
    choices = prompt.choices()
    raw_scores = default_llm.score([prompt.render(e, task) for e in examples], choices)
    free = default_llm.score([prompt.render(blank(task, t), task) for t in CONTENT_FREE_INPUTS], choices)
    p_cf = np.exp(log_softmax(free)).mean(axis=0)
    expected = log_softmax(raw_scores - np.log(p_cf))
    for i, (before, after) in enumerate(zip(raw, calibrated, strict=True)):
        assert after.label_logprobs == pytest.approx(list(raw_scores[i]))  # raw stays raw
        assert before.label_logprobs == after.label_logprobs
        assert before.calibrated_logprobs is None and after.calibration == "content-free"
        assert after.calibrated_logprobs == pytest.approx(list(expected[i]), abs=1e-9)
        assert np.exp(after.calibrated_logprobs).sum() == pytest.approx(1.0)
        assert after.prediction == prompt.verbalizer[int(np.argmax(expected[i]))]
        assert after.correct == (int(np.argmax(expected[i])) == examples[i].label)

    # raw: "great" for (nearly) every sentence; calibrated: both labels, closer to the 50/50 truth
    raw_great = np.mean([o.prediction == "great" for o in raw])
    cal_great = np.mean([o.prediction == "great" for o in calibrated])
    assert raw_great >= 0.875, [o.prediction for o in raw]
    assert abs(cal_great - 0.5) < abs(raw_great - 0.5), [o.prediction for o in calibrated]
    assert sum(o.correct for o in calibrated) > sum(o.correct for o in raw)


def test_calibration_scores_are_computed_once_per_prompt(default_llm: LLM, shared_data_dir: Path) -> None:
    clear_calibration_cache()
    task = sst2(shared_data_dir)
    prompts = [lopsided_prompt(), task.prompt_pool.manual]
    examples = balanced_sentences(task, per_label=2)
    first = [(p, e) for e in examples[:2] for p in prompts]
    evaluate(default_llm, task, first, calibration="content-free")
    # pairs plus three content-free renderings per prompt, all asked of the LLM
    assert default_llm.stats.calls == len(first) + len(prompts) * len(CONTENT_FREE_INPUTS)
    assert default_llm.stats.model_calls == default_llm.stats.calls

    before = default_llm.stats.as_dict()
    evaluate(default_llm, task, first, calibration="content-free")
    spent = default_llm.stats.since(before)
    assert spent["model_calls"] == 0 and spent["calls"] == len(first)  # no calibration requests

    later = [(p, e) for e in examples[2:] for p in prompts]
    before = default_llm.stats.as_dict()
    evaluate(default_llm, task, later, calibration="content-free")
    spent = default_llm.stats.since(before)
    assert spent["calls"] == spent["model_calls"] == len(later)  # only the new pairs


def test_pmi_subtracts_the_domain_premise(default_llm: LLM, shared_data_dir: Path) -> None:
    clear_calibration_cache()
    task = sst2(shared_data_dir)
    prompt = task.prompt_pool.manual
    premise = pmi_premise(prompt, task)
    assert premise == f"{prompt.instruction}\n\n{prompt.template.answer_prefix}"
    assert pmi_premise(lopsided_prompt(), task) == "It was"
    examples = balanced_sentences(task)
    for chosen in (prompt, lopsided_prompt()):
        outcomes = evaluate(default_llm, task, [(chosen, e) for e in examples], calibration="pmi")
        raw = default_llm.score([chosen.render(e, task) for e in examples], chosen.choices())
        domain = default_llm.score([pmi_premise(chosen, task)], chosen.choices())[0]
        expected = log_softmax(raw - domain)
        got = np.array([o.calibrated_logprobs for o in outcomes])
        np.testing.assert_allclose(got, expected, atol=1e-9)
        assert [o.calibration for o in outcomes] == ["pmi"] * len(examples)
        assert [o.score for o in outcomes] == [float(np.argmax(r) == e.label)
                                               for r, e in zip(expected, examples, strict=True)]
    # score_matrix (batched) gives the same rewards as evaluate
    table = score_matrix(default_llm, task, [prompt], examples, reward="margin", calibration="pmi",
                         chunk_size=3)
    direct = evaluate(default_llm, task, [(prompt, e) for e in examples], reward="margin",
                      calibration="pmi")
    np.testing.assert_allclose(table[:, 0], [o.score for o in direct])


def env_kwargs(data_dir: Path) -> dict[str, object]:
    return {"task": "sst2", "data_dir": str(data_dir), "task_options": TASK_OPTIONS,
            "split": "test", "max_examples": 6, "calibration": "content-free"}


def rollout(env: PromptSelectEnv, seed: int, actions: list[int]) -> list[float]:
    env.reset(seed=seed)
    return [float(env.step(a)[1]) for a in actions]


def test_select_env_with_calibration_passes_check_env_and_repeats(
    default_llm: LLM, shared_data_dir: Path
) -> None:
    env = PromptSelectEnv(**env_kwargs(shared_data_dir), episode_length=3, reward="margin")
    env.use_llm(default_llm)
    assert env.calibration == "content-free"
    check_env(env, skip_render_check=True)
    actions = [2, 0, 10]
    twin = PromptSelectEnv(**env_kwargs(shared_data_dir), episode_length=3, reward="margin")
    twin.use_llm(default_llm)
    assert rollout(env, 7, actions) == rollout(twin, 7, actions)
    # the reward is the calibrated margin of that (prompt, input) pair
    env.reset(seed=7)
    pair = env.pending_pair(2)[1]
    reward = env.step(2)[1]
    assert reward == evaluate(default_llm, env.task, [pair], "margin", calibration="content-free")[0].score
    plain = PromptSelectEnv(**{**env_kwargs(shared_data_dir), "calibration": None})
    plain.use_llm(default_llm)
    assert plain.score_table(limit=4).shape == (4, len(plain.prompts))
    cal_table = env.score_table(limit=4)
    expected = score_matrix(default_llm, env.task, env.prompts, env.examples[:4], "margin",
                            calibration="content-free")
    np.testing.assert_array_equal(cal_table, expected)


def test_edit_env_with_calibration_passes_check_env(default_llm: LLM, shared_data_dir: Path) -> None:
    kwargs = {**env_kwargs(shared_data_dir), "minibatch_size": 2, "max_edits": 2, "n_candidates": 2,
              "n_slots": 1}
    env = PromptEditEnv(**kwargs)
    env.use_llm(default_llm)
    check_env(env, skip_render_check=True)
    twin = PromptEditEnv(**kwargs)
    twin.use_llm(default_llm)
    runs = []
    for e in (env, twin):
        e.reset(seed=3)
        runs.append([float(e.step(a)[1]) for a in (1, len(e.actions) - 2)])
    assert runs[0] == runs[1]


def test_bad_calibration_values_name_the_choices(shared_data_dir: Path) -> None:
    from prompt_env.llm import load_llm

    task = sst2(shared_data_dir)
    pair = [(task.prompt_pool.manual, task.split("test")[0])]
    for bad in ("contextual", "PMI", "", 1):
        with pytest.raises(ValueError, match="'content-free', 'pmi' or None"):
            PromptSelectEnv(**{**env_kwargs(shared_data_dir), "calibration": bad})
        with pytest.raises(ValueError, match="'content-free', 'pmi' or None"):
            PromptEditEnv(**{**env_kwargs(shared_data_dir), "calibration": bad})
        with pytest.raises(ValueError, match="'content-free', 'pmi' or None"):
            evaluate(load_llm("fake"), task, pair, calibration=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="'content-free', 'pmi' or None"):
            score_matrix(load_llm("fake"), task, [pair[0][0]], [pair[0][1]], calibration=bad)  # type: ignore[arg-type]


def test_generation_task_with_calibration_is_an_error() -> None:
    from prompt_env.llm import load_llm

    task = load_task("bbc-headline")
    pair = [(task.prompt_pool.manual, task.split("test")[0])]
    with pytest.raises(ValueError, match="classification tasks"):
        evaluate(load_llm("fake"), task, pair, calibration="pmi")
    with pytest.raises(ValueError, match="classification tasks"):
        PromptSelectEnv(task="bbc-headline", llm="fake", calibration="content-free")
    assert len(evaluate(load_llm("fake"), task, pair, calibration=None)) == 1


def test_a_prompt_carries_its_own_calibration(default_llm: LLM, shared_data_dir: Path) -> None:
    """``Prompt.calibration`` wins over the call's: one call can score raw and calibrated prompts."""
    task = sst2(shared_data_dir)
    manual = task.prompt_pool.manual
    calibrated = manual.replace(calibration="content-free", name="manual@cf")
    inputs = balanced_sentences(task, 2)
    mixed = evaluate(default_llm, task, [(p, e) for e in inputs for p in (manual, calibrated)])
    raw = evaluate(default_llm, task, [(manual, e) for e in inputs])
    called = evaluate(default_llm, task, [(manual, e) for e in inputs], calibration="content-free")
    assert [o.calibrated_logprobs for o in mixed[1::2]] == [o.calibrated_logprobs for o in called]
    assert [o.calibration for o in mixed] == [None, "content-free"] * len(inputs)
    assert [o.score for o in mixed[0::2]] == [o.score for o in raw]
    assert manual.describe()["calibration"] is None and calibrated.describe()["calibration"] == "content-free"
    # the prompt's own method wins over the call's
    pmi = evaluate(default_llm, task, [(calibrated, inputs[0])], calibration="pmi")[0]
    assert pmi.calibration == "content-free"
    headline = load_task("bbc-headline")
    with pytest.raises(ValueError, match="calibration=None"):
        evaluate(default_llm, headline, [(headline.prompt_pool.manual.replace(calibration="pmi"),
                                          headline.split("test")[0])])


def test_edit_env_can_choose_the_calibration(default_llm: LLM, shared_data_dir: Path) -> None:
    kwargs = {**env_kwargs(shared_data_dir), "minibatch_size": 4, "max_edits": 2, "n_candidates": 2,
              "n_slots": 1, "calibration_choices": [None, "content-free"], "fixed_minibatch": True,
              "calibration": None}
    env = PromptEditEnv(**kwargs)
    env.use_llm(default_llm)
    check_env(env, skip_render_check=True)
    meanings = env.action_meanings()
    assert "set calibration 1" in meanings and env.prompt_space()["calibrations"] == 2
    _, info = env.reset(seed=0)
    assert env.prompt.calibration is None
    _, reward, *_ = env.step(meanings.index("set calibration 1"))
    assert env.prompt.calibration == "content-free" and env.prompt.name.endswith("-c1")
    direct = evaluate(default_llm, env.task, [(env.prompt, env.examples[i]) for i in env._batch])  # noqa: SLF001
    assert reward == pytest.approx(np.mean([o.score for o in direct]) - info["score"])
    with pytest.raises(ValueError, match="leave calibration=None"):
        PromptEditEnv(**{**kwargs, "calibration": "pmi"})
    with pytest.raises(ValueError, match="distinct"):
        PromptEditEnv(**{**kwargs, "calibration_choices": [None, None]})
