"""What a pool is (:class:`PoolText`) and how :func:`build_pool` binds it to a task.

:func:`build_pool` assembles a :class:`~prompt_env.prompts.PromptPool` for a
task, with a fixed list of ready candidates: ``candidates[0]`` is the manual
prompt (a sensible plain, zero-shot, hand-written prompt), and the rest vary
the instruction, template, verbalizer, exemplars (1-2 train examples) and
chat form. Everything is deterministic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from prompt_env.prompts import Prompt, PromptPool, Template
from prompt_env.tasks.base import Example, TaskKind

_X = "{x}"
SHOT_WORDS = ("zero", "one", "two", "three", "four")
"""Names of exemplar counts, for a candidate whose planned exemplars were capped."""
"""Stands for the task's single input field in the template texts of the pools."""


@dataclasses.dataclass(frozen=True)
class PoolText:
    """The raw parts of a pool before they are bound to a task's field names."""

    instructions: tuple[str, ...]
    templates: tuple[tuple[str, str, str], ...]
    """(name, input format, answer prefix); ``{x}`` is the single input field."""
    verbalizers: tuple[tuple[str, ...], ...] = ()
    weak_instruction: int = -1
    """Index of the misleading instruction used by one candidate."""


def _bind_templates(text: PoolText, input_fields: Sequence[str]) -> tuple[Template, ...]:
    fields = tuple(input_fields)
    templates = []
    for name, input_format, answer_prefix in text.templates:
        if _X in input_format:
            if len(fields) == 1:
                input_format = input_format.replace(_X, "{" + fields[0] + "}")
            else:
                listed = "\n".join(f"{f.capitalize()}: {{{f}}}" for f in fields)
                input_format = input_format.replace(_X, listed)
        templates.append(Template(name=name, input_format=input_format, answer_prefix=answer_prefix))
    return tuple(templates)


def _short_exemplars(train: Sequence[Example], count: int, window: int = 16) -> list[int]:
    """Indices of the ``count`` shortest examples among the first ``window`` train examples."""
    head = list(range(min(window, len(train))))
    head.sort(key=lambda i: (len(train[i].text) + len(train[i].reference), i))
    return head[:count]


def _balanced_exemplars(train: Sequence[Example], count: int, window: int = 64) -> list[int]:
    """One short example per label (labels in order), at most ``count``."""
    chosen = []
    for label in sorted({e.label for e in train[:window] if e.label is not None}):
        same = [i for i in range(min(window, len(train))) if train[i].label == label]
        same.sort(key=lambda i: (len(train[i].text), i))
        chosen.append(same[0])
        if len(chosen) == count:
            break
    return chosen


def build_pool(
    text: PoolText,
    *,
    kind: TaskKind,
    input_fields: Sequence[str],
    train: Sequence[Example],
    max_exemplars: int = 2,
) -> PromptPool:
    """Bind ``text`` to a task's fields and build the fixed candidate list.

    Classification gives 11 candidates, generation 8 (fewer exemplar variants
    when the train split is empty). ``max_exemplars`` caps the shots of any
    candidate (1 keeps long-document prompts short).
    """
    templates = _bind_templates(text, input_fields)
    instr = text.instructions
    weak = instr[text.weak_instruction]
    empty = ""
    if kind == "classification":
        pick = _balanced_exemplars
        verbs = text.verbalizers
        if len(verbs) < 3:
            raise ValueError("a classification pool needs at least three verbalizers")
        plan = [
            ("manual", instr[0], 0, 0, 0, False),
            ("alt-instruction", instr[1], 1, 0, 0, False),
            ("cloze", instr[2], 2, 2, 0, False),
            ("alt-verbalizer", instr[3], 3, 1, 0, False),
            ("no-instruction", empty, 0, 0, 0, False),
            ("misleading", weak, 0, 0, 0, False),
            ("one-shot", instr[0], 0, 0, 1, False),
            ("two-shot", instr[1], 1, 1, 2, False),
            ("chat", instr[0], 0, 0, 0, True),
            ("chat-one-shot", instr[4], 1, 2, 1, True),
            ("odd-verbalizer", instr[-2], 0, len(verbs) - 1, 0, False),
        ]
    else:
        pick = _short_exemplars
        verbs = ()
        plan = [
            ("manual", instr[0], 0, None, 0, False),
            ("alt-instruction", instr[1], 1, None, 0, False),
            ("alt-template", instr[2], 2, None, 0, False),
            ("no-instruction", empty, 0, None, 0, False),
            ("misleading", weak, 0, None, 0, False),
            ("one-shot", instr[0], 0, None, 1, False),
            ("two-shot", instr[3], 1, None, 2, False),
            ("chat", instr[0], 0, None, 0, True),
        ]
    candidates = []
    for name, instruction, template, verbalizer, planned, chat in plan:
        shots = min(planned, max_exemplars)
        if shots < planned:  # long inputs cap the exemplars: the name says how many it shows
            name = f"{SHOT_WORDS[shots]}-shot-alt"
        exemplars = tuple(pick(train, shots)) if shots else ()
        if shots and len(exemplars) < shots:
            continue  # not enough train examples for this variant
        candidates.append(
            Prompt(
                instruction=instruction,
                template=templates[template],
                exemplars=exemplars,
                verbalizer=verbs[verbalizer] if verbalizer is not None else None,
                chat=chat,
                name=name,
            )
        )
    return PromptPool(
        instructions=tuple(instr),
        templates=templates,
        verbalizers=tuple(verbs),
        candidates=tuple(candidates),
    )
