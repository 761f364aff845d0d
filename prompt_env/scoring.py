"""Score many (prompt, example) pairs with as few LLM calls as possible.

Classification pairs are grouped by the prompt's answer choices (its
verbalizer and chat flag) and each group is one ``llm.score`` call;
generation pairs are grouped by chat flag (plain prompts stop at a newline)
and each group is one ``llm.generate`` call. Nothing here loops over single
LLM calls.

Calibrated label scoring (``calibration=``) lives in :mod:`prompt_env.calibration`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from prompt_env import rewards as reward_lib
from prompt_env.calibration import (  # re-exported: calibration is a scoring option
    CALIBRATIONS,
    CONTENT_FREE_INPUTS,
    calibrate,
    calibration_logprobs,
    calibration_premises,
    check_calibration,
    check_verbalizer,
    clear_calibration_cache,
    pmi_premise,
)
from prompt_env.errors import PromptTooLongError
from prompt_env.llm.base import LLM, PromptInput
from prompt_env.prompts import Prompt
from prompt_env.rewards import Reward
from prompt_env.tasks.base import Example, Task

DEFAULT_MAX_NEW_TOKENS = {
    "classification": 8,
    "qa": 24,
    "translation": 24,
    "summarization": 32,
    "instruction": 16,
}
"""Generation length per task family, when neither the call nor the task sets one."""

PLAIN_STOP = ("\n",)

@dataclasses.dataclass
class Outcome:
    """How one prompt did on one example."""

    score: float
    """The reward value."""
    correct: bool | None
    """Classification: the top label is gold. QA and exact-match tasks: EM > 0. Else None."""
    prediction: str
    """Predicted label word, or the generated text (first non-empty line, stripped)."""
    reference: str
    """Gold label word (in the prompt's verbalizer), or the first reference."""
    label_logprobs: list[float] | None
    """Log-probability of each label word (classification), else None."""
    prompt_text: str
    """The rendered prompt; a chat is written as ``[role] content`` blocks."""
    metrics: dict[str, float]
    """Classification: accuracy and margin. Generation: the task metric and exact_match."""
    calibrated_logprobs: list[float] | None = None
    """Classification with ``calibration`` on: the calibrated label scores (log-probs
    renormalised over the labels) that the reward, ``correct`` and ``prediction`` used.
    None without calibration (then those used ``label_logprobs``)."""
    calibration: str | None = None
    """The calibration method used (``"content-free"``, ``"pmi"``), or None."""
    fits: bool = True
    """False when the rendered prompt (or its calibration premise) does not fit the model's
    context: the model gave no answer, and the pair is scored as the worst answer (see
    :func:`answers_that_fit`)."""


def prompt_as_text(prompt: PromptInput) -> str:
    """A readable string form of a rendered prompt (chats as ``[role] content`` blocks)."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"[{m['role']}] {m['content']}" for m in prompt)


Item = TypeVar("Item")
Answer = TypeVar("Answer")


def answers_that_fit(answer: Callable[[list[Item]], Sequence[Answer]],
                     items: Sequence[Item]) -> list[Answer | None]:
    """``answer(items)``, with None for each item the LLM cannot read (PromptTooLongError).

    A batch that raises is halved until the items that do not fit stand alone, so one
    over-long prompt costs a few extra requests (the local backend checks lengths before it
    computes anything) instead of the whole run. Pairs with no answer are scored as the worst
    answer: an empty generation, or a classification that gives the gold label no probability.
    """
    items = list(items)
    if not items:
        return []
    try:
        return list(answer(items))
    except PromptTooLongError:
        if len(items) == 1:
            return [None]
        half = len(items) // 2
        return answers_that_fit(answer, items[:half]) + answers_that_fit(answer, items[half:])


NO_ANSWER_LOGPROB = -1e9
"""The gold label's log-probability in the row that scores a classification pair the model
could not read: no probability on the gold label, the rest shared by the other labels."""


def resolve_reward(task: Task, reward: str | Reward | None) -> Reward:
    """The reward object for ``task``: by name, as given, or the task's default metric."""
    if reward is None:
        chosen = reward_lib.get_reward(task.metric)
    elif isinstance(reward, str):
        chosen = reward_lib.get_reward(reward, task_kind=task.kind)
    else:
        chosen = reward
    if chosen.kind != task.kind:
        raise ValueError(
            f"reward {chosen.name!r} is for {chosen.kind} tasks, but task {task.name!r} is "
            f"{task.kind}; choose one of {reward_lib.list_rewards(task.kind)}"
        )
    return chosen


@dataclasses.dataclass(frozen=True)
class ScoringOptions:
    """How pairs of one task are scored, checked once: the reward object, the calibration of
    label scores and the generation length (None: the task's default). Build it with
    :meth:`for_task`; :func:`evaluate` and the envs take it as it is."""

    reward: Reward
    calibration: str | None = None
    max_new_tokens: int | None = None

    @classmethod
    def for_task(cls, task: Task, reward: str | Reward | None = None,
                 calibration: str | None = None, max_new_tokens: int | None = None) -> ScoringOptions:
        """Resolve ``reward`` (a name, a ``module:function``, a Reward, None: the task's metric)
        and check ``calibration`` against the task; ValueError naming what to change."""
        chosen = resolve_reward(task, reward)
        check_calibration(calibration)
        if calibration is not None and task.kind != "classification":
            raise ValueError(
                f"calibration={calibration!r} is for classification tasks, but task {task.name!r} "
                f"is {task.kind}; use calibration=None"
            )
        return cls(chosen, calibration, max_new_tokens)


def default_max_new_tokens(task: Task) -> int:
    if task.max_new_tokens is not None:
        return task.max_new_tokens
    return DEFAULT_MAX_NEW_TOKENS.get(task.family, 24)


def evaluate(
    llm: LLM,
    task: Task,
    pairs: Sequence[tuple[Prompt, Example]],
    reward: str | Reward | None = None,
    max_new_tokens: int | None = None,
    *,
    calibration: str | None = None,
    options: ScoringOptions | None = None,
) -> list[Outcome]:
    """Score every ``(prompt, example)`` pair; one outcome per pair, in order.

    ``reward`` is a registered name, a :class:`~prompt_env.rewards.Reward`,
    or None for the task's metric. ``max_new_tokens`` overrides the task's
    generation length. ``calibration`` (``"content-free"``, ``"pmi"`` or
    None) calibrates classification label scores (see the module docstring);
    it raises ValueError for a generation task. ``options`` (checked once by
    :meth:`ScoringOptions.for_task`) replaces those three.
    """
    if options is None:
        options = ScoringOptions.for_task(task, reward, calibration, max_new_tokens)
    chosen, calibration, max_new_tokens = options.reward, options.calibration, options.max_new_tokens
    if not pairs:
        return []
    if task.kind != "classification" and any(prompt.calibration for prompt, _ in pairs):
        raise ValueError(f"a prompt with a calibration scores labels; task {task.name!r} is "
                         f"{task.kind}: give its prompts calibration=None")
    rendered = [prompt.render(example, task) for prompt, example in pairs]
    if task.kind == "classification":
        return _evaluate_classification(llm, task, pairs, rendered, chosen, calibration)
    tokens = max_new_tokens if max_new_tokens is not None else default_max_new_tokens(task)
    return _evaluate_generation(llm, task, pairs, rendered, chosen, tokens)


def _evaluate_classification(
    llm: LLM,
    task: Task,
    pairs: Sequence[tuple[Prompt, Example]],
    rendered: list[PromptInput],
    reward: Reward,
    calibration: str | None = None,
) -> list[Outcome]:
    groups: dict[tuple[tuple[str, ...], bool], list[int]] = {}
    for i, (prompt, _) in enumerate(pairs):
        check_verbalizer(prompt, task)
        groups.setdefault((tuple(prompt.verbalizer or ()), prompt.chat), []).append(i)
    logprobs = np.zeros((len(pairs), task.num_labels))
    fits = np.ones(len(pairs), dtype=bool)
    requests = [([rendered[i] for i in indices], pairs[indices[0]][0].choices())
                for indices in groups.values()]
    try:  # one request per choice set; a backend may run them all in shared forward passes
        answered: list[Any] = list(llm.score_many(requests))
    except PromptTooLongError:  # some prompt does not fit: find which, request by request
        answered = [answers_that_fit(lambda batch, c=choices: list(llm.score(batch, c)), prompts)
                    for prompts, choices in requests]
    for indices, values in zip(groups.values(), answered, strict=True):
        for i, row in zip(indices, values, strict=True):
            if row is None:
                fits[i] = False
            else:
                logprobs[i] = np.asarray(row)
    # a prompt's own calibration wins over the call's
    methods = [prompt.calibration or calibration for prompt, _ in pairs]
    used = logprobs
    if any(methods):
        corrections: dict[tuple[Prompt, str], np.ndarray | None] = {}
        for method in dict.fromkeys(m for m in methods if m):
            check_calibration(method)
            distinct = list(dict.fromkeys(p for (p, _), m, f in zip(pairs, methods, fits) if m == method and f))
            found = answers_that_fit(lambda batch, m=method: calibration_logprobs(llm, task, batch, m), distinct)
            for prompt, correction in zip(distinct, found, strict=True):
                corrections[prompt, method] = correction
        for i, ((prompt, _), method) in enumerate(zip(pairs, methods)):
            if method and fits[i] and corrections[prompt, method] is None:
                fits[i] = False  # its calibration premise does not fit: no calibrated answer
        used = np.stack([calibrate(logprobs[i], corrections[prompt, method]) if method and fits[i]
                         else logprobs[i] for i, ((prompt, _), method) in enumerate(zip(pairs, methods))])
    outcomes = []
    for i, (prompt, example) in enumerate(pairs):
        assert prompt.verbalizer is not None
        row = used[i] if fits[i] else _no_answer_row(task.num_labels, example)
        accuracy = reward_lib.accuracy(row, example)
        metrics = {"accuracy": accuracy, "margin": reward_lib.label_margin(row, example)}
        score = float(reward(row, example))
        calibrated = methods[i] is not None and bool(fits[i])
        outcomes.append(
            Outcome(
                score=score,
                correct=accuracy == 1.0,
                prediction=prompt.verbalizer[int(np.argmax(row))] if fits[i] else "",
                reference=prompt.answer_text(example),
                label_logprobs=[float(v) for v in logprobs[i]] if fits[i] else None,
                prompt_text=prompt_as_text(rendered[i]),
                metrics=metrics,
                calibrated_logprobs=[float(v) for v in row] if calibrated else None,
                calibration=methods[i],
                fits=bool(fits[i]),
            )
        )
    return outcomes


def _no_answer_row(num_labels: int, example: Example) -> np.ndarray:
    """Label scores of a pair the model could not read: the gold label gets no probability."""
    row = np.zeros(num_labels)
    if example.label is not None and 0 <= example.label < num_labels:
        row[example.label] = NO_ANSWER_LOGPROB
    return row


def clean_generation(text: str) -> str:
    """The first non-empty line of a generation, stripped."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _evaluate_generation(
    llm: LLM,
    task: Task,
    pairs: Sequence[tuple[Prompt, Example]],
    rendered: list[PromptInput],
    reward: Reward,
    max_new_tokens: int,
) -> list[Outcome]:
    texts: list[str] = [""] * len(pairs)
    fits = [True] * len(pairs)
    for chat in (False, True):
        indices = [i for i, (prompt, _) in enumerate(pairs) if prompt.chat == chat]
        if not indices:
            continue
        stop = None if chat else list(PLAIN_STOP)
        outputs = answers_that_fit(lambda batch, s=stop: llm.generate(batch, max_new_tokens, s),
                                   [rendered[i] for i in indices])
        for i, text in zip(indices, outputs, strict=True):
            if text is None:
                fits[i] = False  # no answer: scored as an empty generation
            else:
                texts[i] = clean_generation(text)
    metric = reward_lib.get_reward(task.metric)
    exact = reward_lib.get_reward("exact_match")
    outcomes = []
    for i, (_, example) in enumerate(pairs):
        prediction = texts[i]
        metrics: dict[str, float] = {metric.name: metric(prediction, example)}
        metrics["exact_match"] = metrics.get("exact_match", exact(prediction, example))
        score = float(reward(prediction, example))
        judged = task.family == "qa" or task.metric == "exact_match"
        outcomes.append(
            Outcome(
                score=score,
                correct=metrics["exact_match"] > 0 if judged else None,
                prediction=prediction,
                reference=example.reference,
                label_logprobs=None,
                prompt_text=prompt_as_text(rendered[i]),
                metrics=metrics,
                fits=fits[i],
            )
        )
    return outcomes


def outcome_matrix(
    llm: LLM,
    task: Task,
    prompts: Sequence[Prompt],
    examples: Sequence[Example],
    reward: str | Reward | None = None,
    *,
    chunk_size: int = 64,
    on_progress: Callable[[int, int], None] | None = None,
    calibration: str | None = None,
    **options: Any,
) -> list[list[Outcome]]:
    """Outcomes of every prompt on every example: ``result[i][j]`` is example i under prompt j.

    Scored ``chunk_size`` examples at a time (every prompt on the chunk, so
    one LLM call per prompt group per chunk): a cached LLM stores each chunk
    as it finishes, so an interrupted table resumes from its last chunk.
    ``on_progress(done, total)`` is called with the pairs scored so far.
    ``calibration`` and ``options`` (``max_new_tokens``) go to :func:`evaluate`.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    unknown = sorted(set(options) - {"max_new_tokens"})
    if unknown:
        raise TypeError(f"outcome_matrix() got unexpected keyword argument(s) {unknown}")
    checked = ScoringOptions.for_task(task, reward, calibration, options.get("max_new_tokens"))
    total = len(examples) * len(prompts)
    rows: list[list[Outcome]] = []
    if on_progress is not None:
        on_progress(0, total)
    for start in range(0, len(examples), chunk_size):
        chunk = examples[start : start + chunk_size]
        pairs = [(prompt, example) for example in chunk for prompt in prompts]
        outcomes = evaluate(llm, task, pairs, options=checked)
        for k in range(len(chunk)):
            rows.append(outcomes[k * len(prompts) : (k + 1) * len(prompts)])
        if on_progress is not None:
            on_progress((start + len(chunk)) * len(prompts), total)
    return rows


def score_matrix(
    llm: LLM,
    task: Task,
    prompts: Sequence[Prompt],
    examples: Sequence[Example],
    reward: str | Reward | None = None,
    *,
    chunk_size: int = 64,
    on_progress: Callable[[int, int], None] | None = None,
    calibration: str | None = None,
    **options: Any,
) -> np.ndarray:
    """Rewards of every prompt on every example, shape ``(len(examples), len(prompts))``.

    Scored ``chunk_size`` examples at a time (every prompt on the chunk, so
    one LLM call per prompt group per chunk): a cached LLM stores each chunk
    as it finishes, so an interrupted table resumes from its last chunk.
    ``on_progress(done, total)`` is called with the pairs scored so far.
    ``calibration`` (``"content-free"``, ``"pmi"`` or None) and ``options``
    (``max_new_tokens``) go to :func:`evaluate`; :func:`outcome_matrix` gives
    the whole outcomes (predictions, label scores) instead of the rewards.
    """
    rows = outcome_matrix(llm, task, prompts, examples, reward, chunk_size=chunk_size,
                          on_progress=on_progress, calibration=calibration, **options)
    values = np.zeros((len(examples), len(prompts)), dtype=np.float64)
    for i, row in enumerate(rows):
        values[i] = [o.score for o in row]
    return values


__all__ = [
    "CALIBRATIONS",
    "CONTENT_FREE_INPUTS",
    "Outcome",
    "ScoringOptions",
    "calibrate",
    "calibration_logprobs",
    "calibration_premises",
    "check_calibration",
    "clear_calibration_cache",
    "evaluate",
    "outcome_matrix",
    "pmi_premise",
    "prompt_as_text",
    "resolve_reward",
    "score_matrix",
]
