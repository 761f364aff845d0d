"""Score many (prompt, example) pairs with as few LLM calls as possible.

Classification pairs are grouped by the prompt's answer choices (its
verbalizer and chat flag) and each group is one ``llm.score`` call;
generation pairs are grouped by chat flag (plain prompts stop at a newline)
and each group is one ``llm.generate`` call. Nothing here loops over single
LLM calls.

Calibrated label scoring
------------------------
``calibration=`` (in :func:`evaluate`, :func:`outcome_matrix` and
:func:`score_matrix`) corrects a prompt's label bias: a prompt whose
verbalizer or wording favours one label earns that label on inputs it says
nothing about. ``None`` (default) scores with the raw label log-probs.

``"content-free"``
    Contextual calibration (Zhao et al. 2021, "Calibrate Before Use"). The
    prompt (instruction, exemplars, template) is rendered with each
    content-free input of :data:`CONTENT_FREE_INPUTS` (``"N/A"``, ``""``,
    ``"[MASK]"``) in place of every input field; the label probabilities,
    normalised over the labels, are averaged over those inputs to ``p_cf``.
    Calibrated scores: ``log p(y|x) - log p_cf(y)``, renormalised over the
    labels (a log-softmax).
``"pmi"``
    Domain-conditional PMI (Holtzman et al. 2021, "Surface Form
    Competition"). The domain premise is the prompt rendered *without the
    input*: the instruction and exemplars exactly as in the real prompt,
    then only the template's answer cue (``"Sentiment:"``, ``"It was"``,
    ...) where the query's input block and cue would be (for a chat prompt,
    the last user message is the answer cue alone). Calibrated scores:
    ``log p(y|x) - log p(y|premise)``, renormalised over the labels.

The calibration scores depend only on the prompt (not on the input), so they
are computed once per rendered premise, choices and model: they are asked of
the LLM (one batched ``llm.score`` call per verbalizer group, so they go
through the persistent response cache and are counted in the LLM's usage
meter like any other call) the first time, and kept in an in-process dict
afterwards, so repeated evaluations in one process cost nothing more
(:func:`clear_calibration_cache` empties it). An env's per-episode
``llm_calls`` and its ``budget`` count only the (prompt, input) pairs it
scores, so they stay deterministic whatever this dict holds.

:attr:`Outcome.label_logprobs` are always the raw log-probs;
:attr:`Outcome.calibrated_logprobs` hold the calibrated ones, and the
reward, ``correct``, ``prediction`` and metrics use them when calibration is
on. Calibration is for classification: asking for it on a generation task
raises ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from prompt_env import rewards as reward_lib
from prompt_env.errors import TaskFormatError
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

CALIBRATIONS: tuple[str, ...] = ("content-free", "pmi")
"""Accepted values of ``calibration=`` besides None (no calibration)."""

CONTENT_FREE_INPUTS: tuple[str, ...] = ("N/A", "", "[MASK]")
"""The content-free inputs of contextual calibration (Zhao et al. 2021)."""

_CALIBRATION_CACHE_LIMIT = 100_000
_calibration_cache: dict[str, np.ndarray] = {}


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


def prompt_as_text(prompt: PromptInput) -> str:
    """A readable string form of a rendered prompt (chats as ``[role] content`` blocks)."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"[{m['role']}] {m['content']}" for m in prompt)


def resolve_reward(task: Task, reward: str | Reward | None) -> Reward:
    """The reward object for ``task``: by name, as given, or the task's default metric."""
    if reward is None:
        chosen = reward_lib.get_reward(task.metric)
    elif isinstance(reward, str):
        chosen = reward_lib.get_reward(reward)
    else:
        chosen = reward
    if chosen.kind != task.kind:
        raise ValueError(
            f"reward {chosen.name!r} is for {chosen.kind} tasks, but task {task.name!r} is "
            f"{task.kind}; choose one of {reward_lib.list_rewards(task.kind)}"
        )
    return chosen


def default_max_new_tokens(task: Task) -> int:
    if task.max_new_tokens is not None:
        return task.max_new_tokens
    return DEFAULT_MAX_NEW_TOKENS.get(task.family, 24)


def check_calibration(calibration: Any) -> str | None:
    """Return ``calibration`` if it is None or one of :data:`CALIBRATIONS`; else a ValueError."""
    if calibration is None or (isinstance(calibration, str) and calibration in CALIBRATIONS):
        return calibration
    raise ValueError(
        f"calibration must be one of {', '.join(repr(c) for c in CALIBRATIONS)} or None, "
        f"got {calibration!r}"
    )


def clear_calibration_cache() -> None:
    """Forget the calibration scores kept in this process (the response cache keeps them)."""
    _calibration_cache.clear()


def evaluate(
    llm: LLM,
    task: Task,
    pairs: Sequence[tuple[Prompt, Example]],
    reward: str | Reward | None = None,
    max_new_tokens: int | None = None,
    *,
    calibration: str | None = None,
) -> list[Outcome]:
    """Score every ``(prompt, example)`` pair; one outcome per pair, in order.

    ``reward`` is a registered name, a :class:`~prompt_env.rewards.Reward`,
    or None for the task's metric. ``max_new_tokens`` overrides the task's
    generation length. ``calibration`` (``"content-free"``, ``"pmi"`` or
    None) calibrates classification label scores (see the module docstring);
    it raises ValueError for a generation task.
    """
    chosen = resolve_reward(task, reward)
    check_calibration(calibration)
    if calibration is not None and task.kind != "classification":
        raise ValueError(
            f"calibration={calibration!r} is for classification tasks, but task {task.name!r} "
            f"is {task.kind}; use calibration=None"
        )
    if not pairs:
        return []
    rendered = [prompt.render(example, task) for prompt, example in pairs]
    if task.kind == "classification":
        return _evaluate_classification(llm, task, pairs, rendered, chosen, calibration)
    tokens = max_new_tokens if max_new_tokens is not None else default_max_new_tokens(task)
    return _evaluate_generation(llm, task, pairs, rendered, chosen, tokens)


def _check_verbalizer(prompt: Prompt, task: Task) -> None:
    if prompt.verbalizer is None or len(prompt.verbalizer) != task.num_labels:
        raise TaskFormatError(
            f"prompt {prompt.name!r} has verbalizer {prompt.verbalizer}, but task "
            f"{task.name!r} has {task.num_labels} labels {list(task.label_names or ())}"
        )


def _blank_example(task: Task, text: str) -> Example:
    """An example whose every input field is ``text`` (and that has no target)."""
    return Example(fields=dict.fromkeys(task.input_fields, text), source=f"calibration:{text!r}")


def pmi_premise(prompt: Prompt, task: Task) -> PromptInput:
    """The domain premise of ``prompt``: the prompt rendered without the input.

    Instruction and exemplars as in the real prompt, then only the template's
    answer cue in place of the query (input block and cue). A chat ends with
    a user message holding only the cue. A template without an answer cue
    keeps its input block with empty fields instead.
    """
    blank = _blank_example(task, "")
    rendered = prompt.render(blank, task)
    cue = prompt.template.answer_prefix
    query = prompt.template.layout(blank.fields)
    if isinstance(rendered, str):
        tail = f"{query}\n{cue}"
        if not rendered.endswith(tail):
            raise TaskFormatError(
                f"prompt {prompt.name!r}: cannot find the query block to drop for the PMI premise"
            )
        return rendered[: len(rendered) - len(tail)] + cue if cue else rendered
    messages = [dict(m) for m in rendered]
    if cue:
        messages[-1]["content"] = cue
    return messages


def calibration_premises(prompt: Prompt, task: Task, calibration: str) -> list[PromptInput]:
    """The prompts whose label scores calibrate ``prompt``: one per content-free input, or the
    PMI domain premise (see the module docstring)."""
    check_calibration(calibration)
    if calibration == "content-free":
        return [prompt.render(_blank_example(task, text), task) for text in CONTENT_FREE_INPUTS]
    if calibration == "pmi":
        return [pmi_premise(prompt, task)]
    raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")


def _log_softmax(values: np.ndarray) -> np.ndarray:
    """Log-probabilities renormalised over the last axis."""
    shifted = values - values.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _calibration_key(llm: LLM, calibration: str, premises: list[PromptInput], choices: list[str]) -> str:
    return json.dumps([llm.identity(), calibration, premises, choices], ensure_ascii=False)


def calibration_logprobs(
    llm: LLM, task: Task, prompts: Sequence[Prompt], calibration: str
) -> list[np.ndarray]:
    """The per-label correction ``log p_cal(y)`` of each prompt, subtracted from its raw scores.

    ``"content-free"``: ``log`` of the label probabilities (normalised over the
    labels) averaged over the content-free inputs. ``"pmi"``: the raw
    ``log p(y | domain premise)``. Prompts not yet calibrated in this process
    are scored in one ``llm.score`` call per verbalizer group; the rest come
    from the in-process dict at no cost.
    """
    check_calibration(calibration)
    keys: list[str] = []
    todo: dict[tuple[tuple[str, ...], bool], list[tuple[str, list[PromptInput]]]] = {}
    for prompt in prompts:
        _check_verbalizer(prompt, task)
        premises = calibration_premises(prompt, task, calibration)
        choices = prompt.choices()
        key = _calibration_key(llm, calibration, premises, choices)
        keys.append(key)
        if key not in _calibration_cache:
            group = todo.setdefault((tuple(choices), prompt.chat), [])
            if all(k != key for k, _ in group):
                group.append((key, premises))
    for (choices, _), entries in todo.items():
        flat = [premise for _, premises in entries for premise in premises]
        scores = np.asarray(llm.score(flat, list(choices)), dtype=np.float64)
        start = 0
        if len(_calibration_cache) + len(entries) > _CALIBRATION_CACHE_LIMIT:
            _calibration_cache.clear()
        for key, premises in entries:
            block = scores[start : start + len(premises)]
            start += len(premises)
            if calibration == "content-free":
                p_cf = np.exp(_log_softmax(block)).mean(axis=0)
                # a label the model never says would make its correction -inf
                _calibration_cache[key] = np.log(np.maximum(p_cf, np.finfo(np.float64).tiny))
            else:
                _calibration_cache[key] = block[0].copy()
    return [_calibration_cache[key].copy() for key in keys]


def calibrate(label_logprobs: np.ndarray, correction: np.ndarray) -> np.ndarray:
    """``label_logprobs - correction``, renormalised over the labels (last axis)."""
    return _log_softmax(np.asarray(label_logprobs, dtype=np.float64) - np.asarray(correction))


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
        _check_verbalizer(prompt, task)
        groups.setdefault((tuple(prompt.verbalizer or ()), prompt.chat), []).append(i)
    logprobs = np.zeros((len(pairs), task.num_labels))
    for indices in groups.values():
        choices = pairs[indices[0]][0].choices()
        logprobs[indices] = np.asarray(llm.score([rendered[i] for i in indices], choices))
    used = logprobs
    if calibration is not None:
        distinct = list(dict.fromkeys(prompt for prompt, _ in pairs))
        corrections = dict(zip(distinct, calibration_logprobs(llm, task, distinct, calibration)))
        used = np.stack([calibrate(logprobs[i], corrections[prompt])
                         for i, (prompt, _) in enumerate(pairs)])
    outcomes = []
    for i, (prompt, example) in enumerate(pairs):
        row = used[i]
        assert prompt.verbalizer is not None
        accuracy = reward_lib.accuracy(row, example)
        metrics = {"accuracy": accuracy, "margin": reward_lib.label_margin(row, example)}
        score = float(reward(row, example))
        outcomes.append(
            Outcome(
                score=score,
                correct=accuracy == 1.0,
                prediction=prompt.verbalizer[int(np.argmax(row))],
                reference=prompt.answer_text(example),
                label_logprobs=[float(v) for v in logprobs[i]],
                prompt_text=prompt_as_text(rendered[i]),
                metrics=metrics,
                calibrated_logprobs=None if calibration is None else [float(v) for v in row],
                calibration=calibration,
            )
        )
    return outcomes


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
    for chat in (False, True):
        indices = [i for i, (prompt, _) in enumerate(pairs) if prompt.chat == chat]
        if not indices:
            continue
        stop = None if chat else list(PLAIN_STOP)
        outputs = llm.generate([rendered[i] for i in indices], max_new_tokens, stop)
        for i, text in zip(indices, outputs, strict=True):
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
    check_calibration(calibration)
    total = len(examples) * len(prompts)
    rows: list[list[Outcome]] = []
    if on_progress is not None:
        on_progress(0, total)
    for start in range(0, len(examples), chunk_size):
        chunk = examples[start : start + chunk_size]
        pairs = [(prompt, example) for example in chunk for prompt in prompts]
        outcomes = evaluate(llm, task, pairs, reward=reward, calibration=calibration, **options)
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
