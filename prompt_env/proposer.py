"""An LLM that writes instructions: the prompt text beyond the hand-written pool.

A :class:`Proposer` wraps an LLM of :mod:`prompt_env.llm` (any spec ``load_llm`` takes,
or an LLM object; by default the task LLM) and asks it, through one of the documented
meta-prompts below, for a new instruction:

- ``induce`` (APE): k train inputs with their answers; "what instruction produces these?"
  (:data:`INDUCE_META_PROMPT`);
- ``history`` (OPRO): instructions tried so far with their scores, worst first and best
  last, plus two solved inputs; "write one that scores higher" (:data:`HISTORY_META_PROMPT`);
- ``reflect`` (GEPA): the current instruction and up to k inputs it got wrong, each with
  the model's answer, the reference and a short feedback text; "rewrite it so these come
  out right" (:data:`REFLECT_META_PROMPT`);
- ``mutate`` / ``crossover`` (EvoPrompt): one parent reworded, or two parents merged into
  one child (:data:`MUTATE_META_PROMPT`, :data:`CROSSOVER_META_PROMPT`).

Generation is greedy, so the proposer is made "seeded" by a ``numpy.random.Generator``
that draws which examples, history entries and failed inputs go into the meta-prompt: the
same seed (and the response cache) replays the same proposals. The reply is cleaned by
:func:`clean_instruction` (first substantive line, no quotes, bullets, ``Instruction:``
prefixes or ``{...}`` fields, at most ``max_chars``); an empty reply, one equal to the
current instruction or to one already in the set gives ``None``, never an exception.

Usage is metered apart from the task LLM's: :meth:`Proposer.usage` counts requests
(``proposer_calls``), the meta-prompt and reply tokens (``proposer_tokens``; by the LLM's
tokenizer when it has one, else whitespace words: ``token_unit``) and distinct
meta-prompts (``proposer_distinct``). The proposer talks to the model through its own
cache wrapper, so the task LLM's meter never sees proposer generations, even when both
are one model.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from prompt_env.errors import LLMSpecError, PromptEnvError

__all__ = [
    "CROSSOVER_META_PROMPT",
    "HISTORY_META_PROMPT",
    "INDUCE_META_PROMPT",
    "MODES",
    "MUTATE_META_PROMPT",
    "REFLECT_META_PROMPT",
    "Failure",
    "Proposer",
    "ProposerError",
    "clean_instruction",
    "make_proposer",
]


class ProposerError(PromptEnvError, ValueError):
    """A proposer spec, mode or argument that cannot be used; the message names the field."""


MODES = ("induce", "history", "reflect", "mutate", "crossover")
"""What a proposer can be asked for."""

INDUCE_META_PROMPT = (
    "Below are examples of one task. Each input is followed by its correct answer.\n\n"
    "{demos}\n\n"
    "Which single instruction makes someone give exactly these answers to these inputs? "
    "Write that instruction as one sentence and nothing else."
)
"""APE-style induction: ``{demos}`` is k ``Input: ... / Answer: ...`` blocks."""

HISTORY_META_PROMPT = (
    "You are improving the instruction of a task. These instructions were tried, each with "
    "its score on held-out inputs (0 to 1, higher is better), from worst to best:\n\n"
    "{history}\n\n"
    "Examples of the task:\n\n{demos}\n\n"
    "Write one new instruction, different from all of the above, that should score higher "
    "than the best one. Reply with the instruction only."
)
"""OPRO-style history: ``{history}`` is ``Instruction: ... / Score: ...`` lines, best last."""

REFLECT_META_PROMPT = (
    "An assistant followed this instruction:\n\"{instruction}\"\n\n"
    "It answered these inputs wrongly:\n\n{failures}\n\n"
    "Rewrite the instruction so that the assistant answers inputs like these correctly. "
    "Keep what works and fix what failed. Reply with the improved instruction only, in one "
    "or two sentences."
)
"""GEPA-style reflection: ``{failures}`` is up to k blocks of input, the model's answer,
the reference and a feedback line."""

MUTATE_META_PROMPT = (
    "Reword this instruction so that it keeps its meaning but uses different words:\n"
    "\"{instruction}\"\n\nReply with the new instruction only."
)
"""EvoPrompt-style mutation of one parent."""

CROSSOVER_META_PROMPT = (
    "Here are two instructions for the same task:\n1. \"{first}\"\n2. \"{second}\"\n\n"
    "Write one new instruction that combines the best parts of both. Reply with the new "
    "instruction only."
)
"""EvoPrompt-style crossover of two parents into one child."""

INPUT_CHARS = 240
"""An input longer than this is shortened in a meta-prompt (news articles, passages)."""


@dataclasses.dataclass(frozen=True)
class Failure:
    """One input the current instruction got wrong, as a reflection meta-prompt shows it."""

    input: str
    answer: str
    """What the task LLM answered."""
    reference: str
    """The correct answer."""
    feedback: str = ""
    """A short text from the metric (e.g. ``"f1 0.20"``), where there is one."""


# ----------------------------------------------------------------------------- cleaning

_BULLET = re.compile(r"^(?:[-*\u2022>#]+|\(?\d{1,2}[.):])\s*")
_PREFIX = re.compile(
    r"^(?:(?:sure|okay|ok|here(?: is|'s)?|the|a|my|your|new|improved|better|final|rewritten|revised|"
    r"updated|combined|reworded)[\s,!.]+)*"
    r"(?:instruction|prompt|answer|output|response|child)\s*\d*\s*[:\-\u2013]\s*",
    re.IGNORECASE,
)
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "\u00ab": "\u00bb", "`": "`"}
_FIELD = re.compile(r"\{[^{}]*\}")


def _strip_decorations(line: str) -> str:
    """Bullets, markdown emphasis, ``Instruction:``-like prefixes and enclosing quotes, repeatedly."""
    previous = None
    while line != previous:
        previous = line
        line = line.strip().strip("*_").strip()
        line = _BULLET.sub("", line)
        line = _PREFIX.sub("", line)
        close = line.find(_QUOTES[line[0]], 1) if line[:1] in _QUOTES else -1
        if line[:1] in _QUOTES and line[0] != "'" and 1 < close < len(line) - 1:
            line = line[1:close]  # '"X" - and some commentary': the quoted X (not for apostrophes)
        elif len(line) >= 2 and line[0] in _QUOTES and line.endswith(_QUOTES[line[0]]):
            line = line[1:-1]
        elif line[:1] in _QUOTES and _QUOTES[line[:1]] not in line[1:]:
            line = line[1:]  # an opening quote whose closing one the length cap cut off
        elif line[-1:] in _QUOTES.values() and not any(q in line[:-1] for q in _QUOTES):
            line = line[:-1]
    return line.strip()


def _cap(text: str, max_chars: int) -> str:
    """At most ``max_chars``: cut after the last sentence that fits, else at a word boundary."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", head)]
    if ends and ends[-1] >= max_chars // 3:
        return head[: ends[-1]].strip()
    return head.rsplit(" ", 1)[0].strip() if " " in head else head


def normalize(text: str) -> str:
    """Case, spacing and punctuation folded: two instructions equal here are one instruction."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def clean_instruction(text: str, *, current: str | None = None, known: Sequence[str] = (),
                      max_chars: int = 300) -> str | None:
    """The usable instruction in an LLM reply, or None.

    Takes the first line that is neither empty nor a preamble ending in ``:`` (``Here is
    the new instruction:``), strips bullets, markdown, ``Instruction:``-like prefixes and
    enclosing quotes, removes ``{...}`` fields (the template fills those, an instruction
    must not) and stray braces, and caps the length at ``max_chars`` (after the last whole
    sentence that fits). None when nothing with a letter is left, or when the result equals
    ``current`` or one of ``known`` (ignoring case, spacing and punctuation).
    """
    for raw in text.splitlines():
        line = _strip_decorations(raw)
        if not line or (line.endswith(":") and len(line.split()) <= 12):
            continue
        line = _FIELD.sub(" ", line).replace("{", " ").replace("}", " ")
        line = _strip_decorations(" ".join(line.split()))
        line = _cap(line, max_chars)
        if not re.search(r"[^\W\d_]", line) or len(line) < 3:
            continue
        key = normalize(line)
        taken = {normalize(k) for k in known} | ({normalize(current)} if current is not None else set())
        return None if not key or key in taken else line
    return None


# ----------------------------------------------------------------------------- proposer


def shorten(text: str, limit: int = INPUT_CHARS) -> str:
    """One line of at most ``limit`` characters (``...`` where cut)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3].rsplit(" ", 1)[0] + "..."


def _draw(items: Sequence[Any], k: int, rng: np.random.Generator) -> list[Any]:
    """Up to ``k`` of ``items`` drawn without replacement, in the order drawn."""
    if len(items) <= k:
        order = rng.permutation(len(items)) if len(items) > 1 else np.arange(len(items))
    else:
        order = rng.choice(len(items), size=k, replace=False)
    return [items[int(i)] for i in order]


class Proposer:
    """Writes instructions with an LLM through documented meta-prompts (see the module doc).

    Args:
        llm: an LLM spec (``"default"``, ``"hf:DIR"``, ``"openai:URL#MODEL"``, a dict ...) or an
            LLM object (e.g. the env's task LLM): wrapped in a cache wrapper of its own, so its
            usage is counted here and not on the object's meter.
        chat: send the meta-prompt as a one-message chat (instruct and server models), or as
            plain text ending in ``Instruction:`` (base models); None (default): chat unless the
            model's tokenizer has no chat template.
        max_new_tokens: reply length (an instruction is short).
        max_chars: length cap of a cleaned instruction.
        k: at most this many examples, history entries or failures in a meta-prompt.
    """

    def __init__(self, llm: Any = "default", *, chat: bool | None = None, max_new_tokens: int = 48,
                 max_chars: int = 300, k: int = 4) -> None:
        for name, value, low in (("max_new_tokens", max_new_tokens, 1), ("max_chars", max_chars, 20),
                                 ("k", k, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ProposerError(f"proposer {name} must be an integer >= {low}, got {value!r}")
        self.llm, self._shared_meter = _own_wrapper(llm)
        self.chat = _has_chat_template(self.llm) if chat is None else bool(chat)
        self.max_new_tokens = max_new_tokens
        self.max_chars = max_chars
        self.k = k
        self.calls = 0
        self.tokens = 0
        self._seen: set[str] = set()
        count = getattr(self.llm, "count_tokens", None)
        self._count = count if callable(count) else None
        self.token_unit = "tokenizer" if self._count is not None else "words"
        self.last_reply = ""
        """The raw reply of the last request (for debugging a None)."""

    # ----------------------------------------------------------------- meter
    def usage(self) -> dict[str, int]:
        """``proposer_calls`` (requests, cached or not), ``proposer_tokens`` (meta-prompt plus
        reply, in :attr:`token_unit`), ``proposer_distinct`` (distinct meta-prompts)."""
        return {"proposer_calls": self.calls, "proposer_tokens": self.tokens,
                "proposer_distinct": len(self._seen)}

    def describe(self) -> dict[str, Any]:
        """The model, the token unit and the usage (plain data, no secrets)."""
        return {"llm": self.llm.describe(), "token_unit": self.token_unit, **self.usage()}

    def _tokens(self, prompt: Any, text: str) -> int:
        if self._count is not None:
            try:
                return int(self._count(prompt)) + int(self._count(text)) if text else int(self._count(prompt))
            except Exception:  # a backend whose tokenizer refuses a chat: fall back to words
                self._count, self.token_unit = None, "words"
        words = prompt if isinstance(prompt, str) else " ".join(m["content"] for m in prompt)
        return len(words.split()) + len(text.split())

    def _ask(self, meta: str) -> str:
        """One generation for one meta-prompt, metered here only."""
        prompt: Any = [{"role": "user", "content": meta}] if self.chat else f"{meta}\n\nInstruction:"
        saved = _snapshot(self._shared_meter)
        try:
            text = self.llm.generate([prompt], max_new_tokens=self.max_new_tokens)[0]
        finally:
            _restore(self._shared_meter, saved)
        self.calls += 1
        self._seen.add(meta)
        self.tokens += self._tokens(prompt, text)
        self.last_reply = text
        return text

    def _clean(self, text: str, current: str | None, known: Sequence[str]) -> str | None:
        return clean_instruction(text, current=current, known=known, max_chars=self.max_chars)

    # ----------------------------------------------------------------- modes
    def induce(self, demos: Sequence[tuple[str, str]], rng: np.random.Generator, *,
               known: Sequence[str] = ()) -> str | None:
        """An instruction induced from up to k (input, answer) pairs drawn from ``demos``."""
        if not demos:
            return None
        shown = _draw(list(demos), self.k, rng)
        meta = INDUCE_META_PROMPT.format(demos=_demo_blocks(shown))
        return self._clean(self._ask(meta), None, known)

    def history(self, scored: Sequence[tuple[str, float]], rng: np.random.Generator, *,
                demos: Sequence[tuple[str, str]] = (), known: Sequence[str] = ()) -> str | None:
        """A better instruction than those in ``scored`` ((instruction, score) pairs): the best
        always shown, up to k - 1 others drawn, sorted worst first; two drawn demos."""
        if not scored:
            return None
        ranked = sorted(scored, key=lambda pair: pair[1])
        shown = [ranked[-1], *_draw(ranked[:-1], self.k - 1, rng)]
        shown.sort(key=lambda pair: pair[1])
        lines = "\n".join(f"Instruction: {shorten(text, self.max_chars)}\nScore: {score:.2f}"
                          for text, score in shown)
        blocks = _demo_blocks(_draw(list(demos), 2, rng)) if demos else "(none)"
        meta = HISTORY_META_PROMPT.format(history=lines, demos=blocks)
        return self._clean(self._ask(meta), None, [*known, *(text for text, _ in scored)])

    def reflect(self, instruction: str, failures: Sequence[Failure], rng: np.random.Generator, *,
                known: Sequence[str] = ()) -> str | None:
        """``instruction`` rewritten from up to k of its ``failures`` (drawn)."""
        if not failures:
            return None
        shown = _draw(list(failures), self.k, rng)
        blocks = "\n\n".join(
            f"Input: {shorten(f.input)}\nIts answer: {shorten(f.answer, 80) or '(empty)'}\n"
            f"Correct answer: {shorten(f.reference, 80)}" + (f"\nFeedback: {f.feedback}" if f.feedback else "")
            for f in shown)
        meta = REFLECT_META_PROMPT.format(instruction=shorten(instruction, self.max_chars) or "(none)",
                                          failures=blocks)
        return self._clean(self._ask(meta), instruction, known)

    def mutate(self, instruction: str, rng: np.random.Generator | None = None, *,
               known: Sequence[str] = ()) -> str | None:
        """``instruction`` reworded (one parent -> one child)."""
        meta = MUTATE_META_PROMPT.format(instruction=shorten(instruction, self.max_chars))
        return self._clean(self._ask(meta), instruction, known)

    def crossover(self, first: str, second: str, rng: np.random.Generator | None = None, *,
                  known: Sequence[str] = ()) -> str | None:
        """One child of two parents (their order drawn with ``rng`` when given)."""
        if rng is not None and rng.random() < 0.5:
            first, second = second, first
        meta = CROSSOVER_META_PROMPT.format(first=shorten(first, self.max_chars),
                                            second=shorten(second, self.max_chars))
        return self._clean(self._ask(meta), None, [*known, first, second])


def _demo_blocks(demos: Sequence[tuple[str, str]]) -> str:
    return "\n\n".join(f"Input: {shorten(text)}\nAnswer: {shorten(answer, 80)}" for text, answer in demos)


def _own_wrapper(llm: Any) -> tuple[Any, Any]:
    """The proposer's cache wrapper of ``llm`` and the meter to keep clean, if any.

    A spec loads a fresh wrapper (its own meter; the model weights are shared within the
    process). A :class:`~prompt_env.llm.cache.CachedLLM` (a task LLM) is re-wrapped around
    the same backend and cache file. Any other LLM object is wrapped without a cache, and its
    own meter, which would see the proposer's generations, is restored after each request.
    """
    from prompt_env.llm import CachedLLM, load_llm
    from prompt_env.llm.base import LLM

    if isinstance(llm, (str, dict)):
        try:
            return load_llm(llm), None
        except LLMSpecError as error:
            raise ProposerError(f"proposer: {error}") from error
    if isinstance(llm, CachedLLM):
        store = llm.store
        return CachedLLM(llm.inner, store.path if store is not None else None,
                         use_cache=store is not None), None
    if isinstance(llm, LLM) or callable(getattr(llm, "generate", None)):
        return CachedLLM(llm, use_cache=False), llm
    raise ProposerError(f"proposer must be an LLM spec (a string or dict load_llm takes) or an LLM "
                        f"object, got {type(llm).__name__}")


def _has_chat_template(llm: Any) -> bool:
    """False for a transformers model whose tokenizer has no chat template (a base model);
    True otherwise (instruct models, servers, the test double)."""
    inner = getattr(llm, "inner", llm)
    tokenizer = getattr(inner, "tokenizer", None)
    return tokenizer is None or bool(getattr(tokenizer, "chat_template", None))


def _snapshot(llm: Any) -> Any:
    if llm is None or not hasattr(llm, "stats"):
        return None
    stats = llm.stats
    return dataclasses.replace(stats, phases={k: dict(v) for k, v in stats.phases.items()},
                               _seen=set(stats._seen))


def _restore(llm: Any, saved: Any) -> None:
    """Put the counters of a shared LLM object back as they were (in place, so an open
    ``stats.phase`` block still reads the same object)."""
    if saved is None:
        return
    stats = llm.stats
    for field in dataclasses.fields(saved):
        setattr(stats, field.name, getattr(saved, field.name))


def make_proposer(spec: Any, task_llm: Any = None, **options: Any) -> Proposer:
    """A :class:`Proposer` from an env's or a policy's ``proposer`` option.

    ``spec``: ``"task"`` or ``True`` (the task LLM ``task_llm``, metered apart), an LLM spec
    ``load_llm`` takes, or an LLM object. ``options`` are :class:`Proposer` keyword arguments.
    """
    if spec is True or spec == "task":
        if task_llm is None:
            raise ProposerError("proposer='task' needs the task LLM; give the proposer an LLM spec instead")
        return Proposer(task_llm, **options)
    if spec is None or spec is False or (isinstance(spec, str) and not spec.strip()):
        raise ProposerError(f"proposer must be 'task', an LLM spec or an LLM object, got {spec!r}")
    return Proposer(spec, **options)


def check_proposer_spec(spec: Any) -> None:
    """A ProposerError naming the field when ``spec`` is not a usable ``proposer`` option
    (checked without loading a model)."""
    if spec is None or spec is True or spec == "task":
        return
    if isinstance(spec, (str, dict)):
        from prompt_env.llm import normalize_spec

        try:
            normalize_spec(spec)
        except LLMSpecError as error:
            raise ProposerError(f"proposer: {error}") from error
        return
    if callable(getattr(spec, "generate", None)):
        return
    raise ProposerError(f"proposer must be None, 'task', an LLM spec (string or dict) or an LLM "
                        f"object, got {type(spec).__name__} {spec!r}")
