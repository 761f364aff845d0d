"""An LLM judge: a reward for open-ended generation (summaries, answers, translations).

``reward="judge"`` (the embedded default model as judge) or
``reward="judge:<llm spec>"`` (``"judge:hf:Qwen/Qwen2.5-1.5B-Instruct"``,
``"judge:openai:http://127.0.0.1:8080#my-model"``) scores a generated answer
against the task input and, when the example has one, its reference, on the
fixed rubric :data:`RUBRIC`. The judge does not write free text that has to be
parsed: it is asked for a grade from 1 to 5 and the reward is read from its
probabilities of the five grade tokens (one ``llm.score`` call per answer):
``(expected grade - 1) / 4``, in ``[0, 1]``. A judge behind a server that
cannot return log-probabilities (``score_method="generate-match"``) gives the
grade it generates, or 0.5 when it generates none of them.

The judge is loaded with :func:`prompt_env.llm.load_llm`, so its answers go
through the same persistent response cache as the task LLM's (a rerun asks the
judge nothing new) and are counted by its own usage meter,
``judge_llm(spec).stats``; cap its spend with
``judge_llm(spec).budget = Budget(max_calls=N)``
(:class:`~prompt_env.llm.cache.Budget`), which raises ``BudgetExhausted``.

**A weak judge by default.** SmolLM2-135M-Instruct barely separates a right
answer from a wrong one (the tests check only that its grades are well-formed,
deterministic and cached, and that it prefers the reference itself to an
unrelated answer on average). For a reward to optimise against, use a judge of
at least a few billion parameters: ``"judge:hf:Qwen/Qwen2.5-7B-Instruct"``, or
any larger model behind an OpenAI-compatible server (vLLM, llama.cpp, Ollama).
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from prompt_env.llm.cache import CachedLLM
    from prompt_env.tasks.base import Example

RUBRIC = (
    "You are grading an answer to a task. Compare the candidate answer with the task input "
    "and the reference answer, then grade the candidate from 1 to 5:\n"
    "5 = correct and complete, as good as the reference;\n"
    "4 = correct, with small omissions or extra words;\n"
    "3 = partly correct;\n"
    "2 = mostly wrong, but related to the input;\n"
    "1 = wrong, empty or unrelated."
)
"""The fixed grading rubric, the first paragraph of every judge prompt."""

GRADES = ("1", "2", "3", "4", "5")
MAX_INPUT_CHARS = 2000
"""Inputs longer than this are cut (with ``...``) so the judge prompt fits a small context."""

_JUDGES: dict[str, CachedLLM] = {}
_LOCK = threading.Lock()


def judge_prompt(prediction: str, example: Example) -> str:
    """The text the judge reads: rubric, input, reference (if any), candidate, answer cue."""
    text = example.text
    if len(text) > MAX_INPUT_CHARS:
        text = text[:MAX_INPUT_CHARS] + " ..."
    parts = [RUBRIC, f"Task input:\n{text}"]
    if example.references:
        parts.append(f"Reference answer:\n{example.reference}")
    parts.append(f"Candidate answer:\n{prediction.strip() or '(empty)'}")
    parts.append("Grade (1-5):")
    return "\n\n".join(parts)


def judge_llm(spec: str | dict[str, Any] = "default") -> CachedLLM:
    """The judge LLM of ``spec``, loaded once per process (with the response cache)."""
    from prompt_env.llm import load_llm, normalize_spec

    key = json.dumps(normalize_spec(spec), sort_keys=True)
    with _LOCK:
        if key not in _JUDGES:
            _JUDGES[key] = load_llm(spec)
        return _JUDGES[key]


def grade_from_logprobs(logprobs: np.ndarray) -> float:
    """The reward in [0, 1] from the judge's log-probabilities of the grades 1..5."""
    values = np.asarray(logprobs, dtype=np.float64)
    if values.shape != (len(GRADES),):
        raise ValueError(f"expected {len(GRADES)} grade log-probs, got shape {values.shape}")
    probs = np.exp(values - values.max())
    probs /= probs.sum()
    expected = float(np.dot(probs, np.arange(1, len(GRADES) + 1)))
    return (expected - 1.0) / (len(GRADES) - 1)


def judge_score(prediction: str, example: Example, llm: str | dict[str, Any] = "default") -> float:
    """The judge's reward for ``prediction`` as an answer to ``example`` (see the module docstring)."""
    if not isinstance(prediction, str):
        raise TypeError(f"the judge grades generated text, got {type(prediction).__name__}")
    judge = judge_llm(llm)
    logprobs = judge.score([judge_prompt(prediction, example)], [" " + g for g in GRADES])
    return grade_from_logprobs(np.asarray(logprobs)[0])
