"""Structured prompts: instruction, exemplars, template and verbalizer.

A :class:`Prompt` renders an :class:`~prompt_env.tasks.base.Example` into the
text (or chat) the task LLM reads. Templates are plain ``{field}`` placeholders
substituted by a regular expression, never evaluated: braces inside the data
are left alone and a template cannot run code.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from prompt_env.errors import TaskFormatError

if TYPE_CHECKING:
    from prompt_env.llm.base import PromptInput
    from prompt_env.tasks.example import Example



class ExemplarSource(Protocol):
    """What rendering needs of a task (:class:`~prompt_env.tasks.base.Task` is one): its name,
    for errors, and its splits, since exemplars are indices into ``splits["train"]``."""

    @property
    def name(self) -> str: ...

    @property
    def splits(self) -> Mapping[str, Sequence[Example]]: ...


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill(template: str, fields: Mapping[str, str], *, where: str = "template") -> str:
    """Substitute ``{name}`` placeholders with ``fields[name]``; nothing else is interpreted."""

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in fields:
            raise TaskFormatError(
                f"{where} refers to {{{key}}}, but the example has fields {sorted(fields)}; "
                "use one of those names in the template"
            )
        return str(fields[key])

    return _PLACEHOLDER.sub(substitute, template)


def placeholders(template: str) -> set[str]:
    return set(_PLACEHOLDER.findall(template))


@dataclasses.dataclass(frozen=True)
class Template:
    """How one input and its answer are laid out.

    ``input_format`` names example fields (``"Review: {sentence}"``);
    ``answer_prefix`` introduces the answer (``"Sentiment:"``), which the LLM
    continues after a space.
    """

    name: str
    input_format: str
    answer_prefix: str
    separator: str = "\n\n"
    """Between the instruction, each exemplar and the query (plain-text prompts)."""

    def layout(self, fields: Mapping[str, str]) -> str:
        return fill(self.input_format, fields, where=f"template {self.name!r}")


@dataclasses.dataclass(frozen=True)
class Prompt:
    """A structured prompt: what a Select env picks and an Edit env edits."""

    instruction: str
    template: Template
    exemplars: tuple[int, ...] = ()
    """Indices into the task's train split, shown as solved examples before the query."""
    verbalizer: tuple[str, ...] | None = None
    """Label words, one per label (classification only)."""
    chat: bool = False
    """Send as a chat (through the model's chat template) instead of plain text."""
    name: str = ""
    calibration: str | None = None
    """How its label scores are read (classification): None for the raw log-probabilities,
    or a calibration method (``"content-free"``, ``"pmi"``; see :mod:`prompt_env.calibration`)
    that this prompt is always scored with, whatever the caller's ``calibration``."""

    def answer_text(self, example: Example) -> str:
        if example.label is not None:
            if self.verbalizer is None:
                raise TaskFormatError(f"prompt {self.name!r} has no verbalizer for a labelled example")
            return self.verbalizer[example.label]
        return example.reference

    def choices(self) -> list[str]:
        """The label words as continuations of the rendered prompt."""
        if self.verbalizer is None:
            raise TaskFormatError(f"prompt {self.name!r} has no verbalizer (generation prompt)")
        return [w if self.chat else " " + w for w in self.verbalizer]

    def render(self, example: Example, task: ExemplarSource) -> PromptInput:
        """The text (or chat) that asks the LLM to answer ``example``.

        An exemplar that is the query itself (a train input under a few-shot
        prompt) is left out, so the prompt never shows the answer it asks for.
        """
        train = task.splits.get("train", [])
        shots = []
        for index in self.exemplars:
            if not 0 <= index < len(train):
                raise TaskFormatError(
                    f"prompt {self.name!r} uses exemplar {index}, but task {task.name!r} "
                    f"has {len(train)} train examples"
                )
            if train[index].fields != example.fields:
                shots.append(train[index])
        if self.chat:
            return self._render_chat(example, shots)
        parts = [self.instruction] if self.instruction else []
        for shot in shots:
            parts.append(
                f"{self.template.layout(shot.fields)}\n{self.template.answer_prefix} "
                f"{self.answer_text(shot)}"
            )
        parts.append(f"{self.template.layout(example.fields)}\n{self.template.answer_prefix}")
        return self.template.separator.join(parts)

    def _render_chat(self, example: Example, shots: Sequence[Example]) -> PromptInput:
        messages: list[dict[str, str]] = []
        if self.instruction:
            messages.append({"role": "system", "content": self.instruction})
        for shot in shots:
            messages.append({"role": "user", "content": self._chat_query(shot)})
            messages.append({"role": "assistant", "content": self.answer_text(shot)})
        messages.append({"role": "user", "content": self._chat_query(example)})
        return messages

    def _chat_query(self, example: Example) -> str:
        query = self.template.layout(example.fields)
        return f"{query}\n{self.template.answer_prefix}" if self.template.answer_prefix else query

    def replace(self, **changes: object) -> Prompt:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def unnamed(self) -> Prompt:
        """This prompt without its name. Two prompts that ask the LLM the same thing compare
        equal this way, whatever they are called (a pool names its prompts, an Edit env by
        their edits, so a search can ship a pool prompt under another name)."""
        return dataclasses.replace(self, name="")

    def to_json(self) -> dict[str, object]:
        """Every field as plain JSON data (the template in full): :meth:`from_json` rebuilds
        the same prompt, e.g. from ``best_prompt.json`` or a run's saved state."""
        return {**dataclasses.asdict(self), "exemplars": list(self.exemplars),
                "verbalizer": list(self.verbalizer) if self.verbalizer is not None else None}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Prompt:
        """The prompt of :meth:`to_json`'s data; TaskFormatError naming a missing or bad field."""
        try:
            template = data["template"]
            if not isinstance(template, Mapping):
                raise TypeError("template must be an object")
            verbalizer = data.get("verbalizer")
            return cls(
                instruction=str(data["instruction"]),
                template=Template(**{k: str(v) for k, v in template.items()}),
                exemplars=tuple(int(i) for i in data.get("exemplars", ())),  # type: ignore[union-attr]
                verbalizer=None if verbalizer is None else tuple(str(w) for w in verbalizer),  # type: ignore[union-attr]
                chat=bool(data.get("chat", False)),
                name=str(data.get("name", "")),
                calibration=None if data.get("calibration") is None else str(data["calibration"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise TaskFormatError(f"not a prompt's JSON form ({error}): expected the keys of "
                                  "Prompt.to_json() (instruction, template, exemplars, ...)") from None

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "instruction": self.instruction,
            "template": self.template.name,
            "exemplars": list(self.exemplars),
            "verbalizer": list(self.verbalizer) if self.verbalizer else None,
            "chat": self.chat,
            "calibration": self.calibration,
        }


@dataclasses.dataclass(frozen=True)
class PromptPool:
    """The parts an agent chooses among, and the K ready-made candidate prompts.

    ``candidates[0]`` is the task's manual prompt (the hand-written default).
    """

    instructions: tuple[str, ...]
    templates: tuple[Template, ...]
    verbalizers: tuple[tuple[str, ...], ...]
    candidates: tuple[Prompt, ...]

    @property
    def manual(self) -> Prompt:
        return self.candidates[0]
