"""The prompt space of :class:`~prompt_env.envs.edit.PromptEditEnv`: its parts, its edits, and
the map between a configuration (:class:`PromptState`) and the :class:`~prompt_env.prompts.Prompt`
it stands for.

A configuration is a vector of indices: an instruction of the pool, ``n_slots`` exemplar slots
(each a candidate train example or empty), a template, a verbalizer and, when the env is given
``calibration_choices``, how the prompt's label scores are read. Flattened in mixed radix it is
the Edit-Tabular env's observation.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from prompt_env.prompts import Prompt, Template
from prompt_env.tasks.base import Example


@dataclasses.dataclass(frozen=True)
class EditAction:
    """One entry of the flattened action list."""

    kind: str  # instruction, put, clear, swap, template, verbalizer, calibration, propose, stop
    a: int = -1
    b: int = -1
    name: str = ""
    """The mode of a ``propose`` action (``induce``, ``reflect``, ``history``, ``demo``)."""

    def describe(self) -> str:
        if self.kind == "propose":
            return f"propose {self.name}"
        return {
            "instruction": f"set instruction {self.a}",
            "put": f"put train example {self.a} in slot {self.b}",
            "clear": f"clear slot {self.a}",
            "swap": f"swap slots {self.a} and {self.b}",
            "template": f"set template {self.a}",
            "verbalizer": f"set verbalizer {self.a}",
            "calibration": f"set calibration {self.a}",
            "stop": "stop",
        }[self.kind]


@dataclasses.dataclass(frozen=True)
class PromptState:
    """Indices of the prompt's parts: instruction, exemplar slots (-1 empty), template, verbalizer,
    and how its label scores are read (an index into ``calibration_choices``; 0 without them)."""

    instruction: int
    slots: tuple[int, ...]
    template: int
    verbalizer: int
    calibration: int = 0



def exemplar_candidates(train: list[Example], n: int, classification: bool) -> list[int]:
    """Train examples offered as exemplars: the first ``n``, label-balanced (round robin over
    the labels in train order) for classification."""
    if not classification:
        return list(range(min(n, len(train))))
    by_label: dict[int, list[int]] = {}
    for i, e in enumerate(train):
        by_label.setdefault(int(e.label or 0), []).append(i)
    chosen: list[int] = []
    for round_ in itertools.count():
        added = False
        for label in sorted(by_label):
            if round_ < len(by_label[label]) and len(chosen) < n:
                chosen.append(by_label[label][round_])
                added = True
        if not added or len(chosen) >= n:
            break
    return chosen


@dataclasses.dataclass
class EditSpace:
    """The options of each prompt part (lists that an ``initial_prompt`` may extend) and the edits."""

    instructions: list[str]
    templates: list[Template]
    verbalizers: list[tuple[str, ...] | None]
    """``[None]`` for generation tasks."""
    candidates: list[int]
    """Train indices offered as exemplars."""
    n_slots: int
    calibrations: list[str | None]
    """Empty: the calibration is not a part of the prompt (the env's ``calibration`` applies)."""
    chat: bool
    env_id: str = "PromptEditEnv"
    instruction_slots: int = 0
    """With a proposer: the fixed number of instruction slots (pool first, written ones
    appended; unfilled slots are no configuration yet); 0: exactly the pool's instructions."""
    propose_modes: tuple[str, ...] = ()
    """The ``propose <mode>`` actions (empty without a proposer)."""

    @property
    def instruction_radix(self) -> int:
        """Instruction slots (filled or not): the one-hot's width and the first radix."""
        return max(len(self.instructions), self.instruction_slots)

    @property
    def radices(self) -> list[int]:
        return ([self.instruction_radix] + [len(self.candidates) + 1] * self.n_slots
                + [len(self.templates), len(self.verbalizers)]
                + ([len(self.calibrations)] if self.calibrations else []))

    def digits(self, state: PromptState) -> list[int]:
        """The state's mixed-radix digits (one per entry of ``radices``)."""
        return ([state.instruction, *(s + 1 for s in state.slots), state.template, state.verbalizer]
                + ([state.calibration] if self.calibrations else []))

    def state_id(self, state: PromptState) -> int:
        """The state's index in mixed radix (the Edit-Tabular observation)."""
        index = 0
        for digit, radix in zip(self.digits(state), self.radices):
            index = index * radix + digit
        return index

    def actions(self) -> list[EditAction]:
        """Every edit, in the action space's order (stop last)."""
        actions = [EditAction("instruction", i) for i in range(self.instruction_radix)]
        actions += [EditAction("put", j, k) for j in range(len(self.candidates)) for k in range(self.n_slots)]
        actions += [EditAction("clear", k) for k in range(self.n_slots)]
        actions += [EditAction("swap", k, m) for k, m in itertools.combinations(range(self.n_slots), 2)]
        actions += [EditAction("template", t) for t in range(len(self.templates))]
        if self.verbalizers != [None]:
            actions += [EditAction("verbalizer", v) for v in range(len(self.verbalizers))]
        actions += [EditAction("calibration", c) for c in range(len(self.calibrations))]
        actions += [EditAction("propose", name=mode) for mode in self.propose_modes]
        actions.append(EditAction("stop"))
        return actions

    def describe(self, initial: PromptState) -> dict[str, Any]:
        """Option counts of each part and the initial configuration (plain data)."""
        return {"instructions": len(self.instructions), "instruction_slots": self.instruction_radix,
                "candidates": len(self.candidates),
                "n_slots": self.n_slots, "templates": len(self.templates),
                "verbalizers": len(self.verbalizers), "calibrations": max(1, len(self.calibrations)),
                "initial": dataclasses.asdict(initial)}

    @staticmethod
    def state_of(config: dict[str, Any]) -> PromptState:
        """A configuration dict (see :meth:`describe`) as a :class:`PromptState`."""
        keys = {"instruction", "slots", "template", "verbalizer"}
        if not isinstance(config, dict) or not keys <= set(config) <= keys | {"calibration"}:
            raise ValueError(f"a prompt configuration is a dict with the keys {sorted(keys)} "
                             f"(and optionally 'calibration'), got {config!r}")
        return PromptState(**{**config, "slots": tuple(config["slots"])})

    def prompt_of(self, state: PromptState | dict[str, Any]) -> Prompt:
        """The prompt of a configuration (a ValueError if it is not one of this space)."""
        state = state if isinstance(state, PromptState) else self.state_of(state)
        digits, used = self.digits(state), [k for k in state.slots if k >= 0]
        if (len(state.slots) != self.n_slots or len(set(used)) < len(used)
                or not all(0 <= d < r for d, r in zip(digits, self.radices))
                or state.instruction >= len(self.instructions)
                or (not self.calibrations and state.calibration != 0)):
            raise ValueError(f"{self.env_id}: {state!r} is not a configuration of this prompt space")
        verbalizer = self.verbalizers[state.verbalizer]
        calibration = f"-c{state.calibration}" if self.calibrations else ""
        return Prompt(
            instruction=self.instructions[state.instruction],
            template=self.templates[state.template],
            exemplars=tuple(self.candidates[s] for s in state.slots if s >= 0),
            verbalizer=tuple(verbalizer) if verbalizer is not None else None,
            chat=self.chat,
            name=f"edit:i{state.instruction}-s{'.'.join(map(str, state.slots))}-t{state.template}-v{state.verbalizer}{calibration}",
            calibration=self.calibrations[state.calibration] if self.calibrations else None,
        )

    def apply(self, state: PromptState, action: EditAction) -> PromptState | None:
        """The state after ``action``, or None when the edit is invalid here (a ``propose``
        action needs the env's proposer: None here)."""
        slots = list(state.slots)
        if action.kind == "instruction":
            if action.a == state.instruction or action.a >= len(self.instructions):
                return None  # the current one, or a slot no instruction was written into yet
            return dataclasses.replace(state, instruction=action.a)
        if action.kind == "propose":
            return None
        if action.kind == "put":
            if action.a in slots:
                return None
            slots[action.b] = action.a
            return dataclasses.replace(state, slots=tuple(slots))
        if action.kind == "clear":
            if slots[action.a] < 0:
                return None
            slots[action.a] = -1
            return dataclasses.replace(state, slots=tuple(slots))
        if action.kind == "swap":
            if slots[action.a] == slots[action.b]:
                return None
            slots[action.a], slots[action.b] = slots[action.b], slots[action.a]
            return dataclasses.replace(state, slots=tuple(slots))
        if action.kind == "template":
            return None if action.a == state.template else dataclasses.replace(state, template=action.a)
        if action.kind == "verbalizer":
            return None if action.a == state.verbalizer else dataclasses.replace(state, verbalizer=action.a)
        if action.kind == "calibration":
            return None if action.a == state.calibration else dataclasses.replace(state, calibration=action.a)
        return state  # stop
