"""The task-LLM protocol: batched scoring and generation, with accounting.

Every backend (local transformers model, OpenAI-compatible server, the test
double) implements :class:`LLM`. Nothing here knows about tasks or rewards.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from prompt_env.errors import LLMError

Message = dict[str, str]
Chat = list[Message]
PromptInput = str | Chat


COUNTERS = ("calls", "distinct", "cache_hits", "model_calls", "batches", "prompt_tokens", "generated_tokens")
"""The counters of a :class:`LLMStats` usage meter, in report order."""


@dataclasses.dataclass
class LLMStats:
    """The one usage meter of an LLM object: what was asked, what it cost.

    The cache wrapper (:class:`~prompt_env.llm.cache.CachedLLM`) owns the
    meter every report reads: ``calls`` and ``distinct`` count what callers
    requested (whatever the cache held), ``cache_hits`` / ``model_calls`` /
    ``batches`` / tokens count what it cost. A backend keeps a meter of its
    own for the model work it did; the wrapper adds those deltas to its own.

    ``forget_seen()`` starts the distinct count afresh (the counters stay cumulative), so
    that a caller running several jobs on one LLM counts each job's own distinct requests.

    ``with stats.phase("train"): ...`` also adds everything counted inside
    the block to ``stats.phases["train"]`` (a phase may repeat; different phases may nest), so a
    report can say what training, dev search and test evaluation each spent.
    """

    calls: int = 0
    """Prompts requested (one prompt scored against all choices, or generated from, is one call)."""
    distinct: int = 0
    """Distinct requests among ``calls`` (same operation, prompt and choices or options counted
    once): the (prompt, input) pairs a run really had evaluated, with or without a cache."""
    cache_hits: int = 0
    """Requested prompts answered from the persistent cache (or an env's memo) without the model."""
    model_calls: int = 0
    """Prompts the model actually evaluated (calls minus cache hits)."""
    batches: int = 0
    """Batched requests sent to the model."""
    prompt_tokens: int = 0
    """Tokens the model read (prompts and teacher-forced choices)."""
    generated_tokens: int = 0
    """Tokens the model generated."""
    phases: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict, repr=False)
    """Counters per named phase (see :meth:`phase`)."""
    _seen: set[str] = dataclasses.field(default_factory=set, repr=False)

    def as_dict(self) -> dict[str, int]:
        """The counters as plain data (no phases)."""
        return {name: int(getattr(self, name)) for name in COUNTERS}

    @property
    def hit_rate(self) -> float:
        return self.cache_hits / self.calls if self.calls else 0.0

    def record(self, *, keys: Sequence[str] = (), **counts: int) -> None:
        """Add ``counts`` (``calls=``, ``cache_hits=``, ...); ``keys`` identify the requests,
        so that ``distinct`` grows only for requests not seen before by this meter."""
        for name, value in counts.items():
            if name not in COUNTERS or name == "distinct":
                raise ValueError(f"LLMStats.record: unknown counter {name!r}; counters: {COUNTERS}")
            setattr(self, name, getattr(self, name) + int(value))
        for key in keys:
            if key not in self._seen:
                self._seen.add(key)
                self.distinct += 1

    def forget_seen(self) -> None:
        """Count every request from now on as distinct the first time it comes again: the
        ``distinct`` of work done after this call is that work's own, as if it ran alone."""
        self._seen.clear()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[dict[str, int]]:
        """Count what happens inside the block under ``phases[name]`` too; yields those counters."""
        before = self.as_dict()
        totals = self.phases.setdefault(name, dict.fromkeys(COUNTERS, 0))
        try:
            yield totals
        finally:
            after = self.as_dict()
            for counter in COUNTERS:
                totals[counter] += after[counter] - before[counter]

    def since(self, before: dict[str, int]) -> dict[str, int]:
        """Counters spent since ``before`` (an earlier :meth:`as_dict`)."""
        now = self.as_dict()
        return {name: now[name] - int(before.get(name, 0)) for name in COUNTERS}


def validate_prompts(prompts: Sequence[PromptInput]) -> list[PromptInput]:
    """Check that every prompt is a string or a chat; return them as a list."""
    if isinstance(prompts, (str, dict)):
        raise LLMError("prompts must be a list of prompts, not a single prompt; wrap it in a list")
    checked: list[PromptInput] = []
    for i, prompt in enumerate(prompts):
        if isinstance(prompt, str):
            checked.append(prompt)
            continue
        if isinstance(prompt, (list, tuple)) and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            for m in prompt
        ) and len(prompt) > 0:
            checked.append([{"role": m["role"], "content": m["content"]} for m in prompt])
            continue
        raise LLMError(
            f"prompt {i} is {type(prompt).__name__}; a prompt is a string or a non-empty "
            "list of {'role': ..., 'content': ...} messages"
        )
    return checked


def validate_choices(choices: Sequence[str]) -> list[str]:
    """Check that choices are a non-empty list of non-empty strings."""
    if isinstance(choices, str):
        raise LLMError("choices must be a list of strings, not one string; wrap it in a list")
    choices = list(choices)
    if not choices:
        raise LLMError("choices is empty: give at least one continuation to score")
    for j, choice in enumerate(choices):
        if not isinstance(choice, str):
            raise LLMError(f"choice {j} is {type(choice).__name__}, expected str")
        if choice == "":
            raise LLMError(f"choice {j} is the empty string; it has no tokens to score")
    return choices


def validate_max_new_tokens(max_new_tokens: int) -> int:
    """Check that ``max_new_tokens`` is a positive integer (a bool is not one); return it as int."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, numbers.Integral) or max_new_tokens < 1:
        raise LLMError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    return int(max_new_tokens)


def validate_stop(stop: Sequence[str] | None) -> list[str] | None:
    """Check that ``stop`` is None or a list of strings (not one string); return it as a list
    (None when empty). Empty strings are kept here (they are part of a cached request's key)
    and ignored by every backend."""
    if stop is None:
        return None
    if isinstance(stop, str) or not isinstance(stop, (list, tuple)):
        raise LLMError(
            f"stop must be a list of strings, got {type(stop).__name__}"
            + ("; wrap it in a list" if isinstance(stop, str) else "")
        )
    for k, item in enumerate(stop):
        if not isinstance(item, str):
            raise LLMError(f"stop string {k} is {type(item).__name__}, expected str")
    return list(stop) or None


ScoreRequest = tuple[list[PromptInput], list[str]]
"""A checked score request: prompts (at least one) and their choices."""


class LLM(abc.ABC):
    """A task LLM: score continuations and generate text, in batches.

    The public methods (:meth:`score`, :meth:`score_many`, :meth:`generate`) are the same for
    every backend: they check their arguments (one error type and message for one mistake,
    whatever the backend), skip empty batches, call the backend's part (:meth:`_score`,
    :meth:`_score_many`, :meth:`_generate`) with checked arguments, and count the requested
    prompts once in :attr:`stats` (:meth:`_count`). A backend implements only the model work,
    and counts what it cost (``batches``, ``prompt_tokens``, ``generated_tokens``).

    Implementations must be deterministic: the same inputs give the same outputs (greedy
    decoding, no sampling).
    """

    name: str = "llm"

    def __init__(self) -> None:
        self.stats = LLMStats()

    @abc.abstractmethod
    def identity(self) -> str:
        """A string that changes whenever outputs could change (model, weights, backend options)."""

    # ------------------------------------------------------------------ the protocol
    def score(self, prompts: Sequence[PromptInput], choices: Sequence[str]) -> np.ndarray:
        """Total log-probability of each choice as the continuation of each prompt.

        Returns a float64 array of shape ``(len(prompts), len(choices))``.
        Multi-token choices are scored exactly by teacher forcing.
        """
        return self.score_many([(prompts, choices)])[0]

    def score_many(self, requests: Sequence[tuple[Sequence[PromptInput], Sequence[str]]]) -> list[np.ndarray]:
        """Several :meth:`score` requests at once, each with its own choices; one array per
        request. A backend may run them in shared forward passes (see :meth:`_score_many`)."""
        checked = [(validate_prompts(p), validate_choices(c)) for p, c in requests]
        results = [np.zeros((len(p), len(c)), dtype=np.float64) for p, c in checked]
        todo = [r for r, (prompts, _) in enumerate(checked) if prompts]
        if todo:
            for r, values in zip(todo, self._score_many([checked[r] for r in todo]), strict=True):
                results[r] = values
            self._count(sum(len(checked[r][0]) for r in todo))
        return results

    def generate(
        self,
        prompts: Sequence[PromptInput],
        max_new_tokens: int = 32,
        stop: Sequence[str] | None = None,
    ) -> list[str]:
        """Greedy continuation of each prompt (at most ``max_new_tokens`` tokens), cut at the
        first stop string after the answer's first visible character (whitespace before it
        never ends an answer)."""
        prompts = validate_prompts(prompts)
        max_new_tokens = validate_max_new_tokens(max_new_tokens)
        stop_list = validate_stop(stop)
        if not prompts:
            return []
        outputs = self._generate(prompts, max_new_tokens, stop_list)
        self._count(len(prompts))
        return outputs

    # ------------------------------------------------------------------ what a backend implements
    @abc.abstractmethod
    def _score(self, prompts: list[PromptInput], choices: list[str]) -> np.ndarray:
        """The model's part of :meth:`score`: checked, non-empty ``prompts`` and ``choices``."""

    def _score_many(self, requests: list[ScoreRequest]) -> list[np.ndarray]:
        """The model's part of :meth:`score_many` (checked, non-empty requests); by default one
        :meth:`_score` per request. Backends that share forward passes override it."""
        return [self._score(prompts, choices) for prompts, choices in requests]

    @abc.abstractmethod
    def _generate(self, prompts: list[PromptInput], max_new_tokens: int, stop: list[str] | None) -> list[str]:
        """The model's part of :meth:`generate`: checked, non-empty ``prompts``, a positive
        ``max_new_tokens``, ``stop`` None or a non-empty list of strings (skip empty ones)."""

    def _count(self, prompts: int) -> None:
        """Count ``prompts`` answered prompts: for a backend that runs the model, each one is
        a call and a model call (a wrapper that answers some itself overrides this)."""
        self.stats.record(calls=prompts, model_calls=prompts)

    # ------------------------------------------------------------------ optional
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled hidden states, shape ``(len(texts), dim)``; optional for backends."""
        raise LLMError(f"backend {self.name!r} does not provide embeddings; use encoder='hashing'")

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description for reports (never contains secrets)."""
        return {"name": self.name, "identity": self.identity()}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (connections, files)."""


def cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """Cut ``text`` at the earliest occurrence of any stop string after its first visible
    character: whitespace before an answer never ends it (a model that opens with a newline
    under a newline stop still answers)."""
    if not stop:
        return text
    start = len(text) - len(text.lstrip())
    cut = len(text)
    for s in stop:
        if s:
            k = text.find(s, start)
            if k != -1:
                cut = min(cut, k)
    return text[:cut]


def stopped(text: str, stop: Sequence[str] | None) -> bool:
    """Whether ``text`` already holds a stop string after its first visible character (see
    :func:`cut_at_stop`)."""
    return cut_at_stop(text, stop) != text
