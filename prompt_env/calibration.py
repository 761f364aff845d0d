"""Calibrated label scoring: correct a classification prompt's label bias.

``calibration=`` (in :func:`~prompt_env.scoring.evaluate`, :func:`~prompt_env.scoring.outcome_matrix`
and :func:`~prompt_env.scoring.score_matrix`) corrects a prompt's label bias: a prompt whose
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
meter like any other call) the first time a given LLM object needs them, and
kept in an in-process dict of that object afterwards, so repeated evaluations
cost nothing more, and the usage meter of every LLM object (each env makes its
own) counts each prompt's premises once, whatever other envs in the process did
(:func:`clear_calibration_cache` empties it). An env's per-episode
``llm_calls`` and its ``budget`` count only the (prompt, input) pairs it
scores, so they stay deterministic whatever this dict holds.

:attr:`~prompt_env.scoring.Outcome.label_logprobs` are always the raw log-probs;
:attr:`~prompt_env.scoring.Outcome.calibrated_logprobs` hold the calibrated ones, and the
reward, ``correct``, ``prediction`` and metrics use them when calibration is
on. Calibration is for classification: asking for it on a generation task
raises ``ValueError``.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from prompt_env.errors import TaskFormatError
from prompt_env.llm.base import LLM, PromptInput
from prompt_env.prompts import Prompt
from prompt_env.tasks.base import Example, Task

CALIBRATIONS: tuple[str, ...] = ("content-free", "pmi")
"""Accepted values of ``calibration=`` besides None (no calibration)."""

CONTENT_FREE_INPUTS: tuple[str, ...] = ("N/A", "", "[MASK]")
"""The content-free inputs of contextual calibration (Zhao et al. 2021)."""

_CALIBRATION_CACHE_LIMIT = 100_000
_calibration_caches: weakref.WeakKeyDictionary[Any, dict[str, np.ndarray]] = weakref.WeakKeyDictionary()
"""Per LLM object: calibration scores by premise key."""


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
    _calibration_caches.clear()


def check_verbalizer(prompt: Prompt, task: Task) -> None:
    """A TaskFormatError unless the prompt has one label word per label of the task."""
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
    _calibration_cache = _calibration_caches.setdefault(llm, {})
    keys: list[str] = []
    todo: dict[tuple[tuple[str, ...], bool], list[tuple[str, list[PromptInput]]]] = {}
    for prompt in prompts:
        check_verbalizer(prompt, task)
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
