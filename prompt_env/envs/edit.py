"""PromptEditEnv: improve a structured prompt one edit at a time."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from prompt_env.envs.base import (
    PromptEnvBase,
    as_action,
    check_int,
    check_kwarg_types,
    check_reset_options,
)
from prompt_env.envs.edit_space import EditAction, EditSpace, PromptState, exemplar_candidates
from prompt_env.prompts import Prompt
from prompt_env.proposer import Failure, Proposer, ProposerError, check_proposer_spec, make_proposer

PROPOSE_MODES = ("induce", "reflect", "history", "demo")
"""The ``propose <mode>`` actions an Edit env with a proposer may offer (all by default)."""
REFLECT_FAILURES = 4
"""A ``propose reflect`` shows the proposer at most this many failed minibatch inputs."""
DEMO_TRIES = 4
"""A ``propose demo`` asks the task LLM about at most this many unused candidates (one batch)."""

__all__ = ["EditAction", "PromptEditEnv", "PromptState"]


class PromptEditEnv(PromptEnvBase):
    """
    ## Description

    Prompt engineering as a short sequential decision problem. The state is a
    structured prompt (instruction, exemplar slots, template, verbalizer)
    that starts as the task's manual prompt, or as the prompt the user gives
    (`initial_prompt`). Each action edits one part; the reward is how much the
    edit changed the prompt's score on a minibatch of inputs fixed for the
    episode. Good edits now enable better edits later, so the discount γ and
    the bootstrap max_a' Q(s', a') matter here.

    ## Action Space

    One flattened `Discrete(N)`, in this order: set instruction i (for each
    instruction of the pool), put candidate train example j into slot k,
    clear slot k, swap slots k and l, set template t, set verbalizer v
    (classification only), set calibration c (with `calibration_choices`), propose
    <mode> (with a `proposer`), stop. `env.unwrapped.action_meanings()` names them.

    With `proposer` (`"task"`: the task LLM; or any `load_llm` spec), the instruction set
    has `max_instructions` slots: the pool's instructions first, instructions the proposer
    writes appended (they stay for the env's lifetime, across episodes); `set instruction
    i` exists for every slot from the start, so N never changes, and unfilled slots are
    masked. `propose induce` (APE: an instruction induced from k train input/answer pairs),
    `propose reflect` (GEPA: the current instruction rewritten from up to 4 minibatch
    inputs it gets wrong, with the reference and the metric's values) and `propose history`
    (OPRO: the instructions scored so far with their best minibatch scores) write a new
    instruction into the next slot and put it in the prompt; `propose demo` puts a
    bootstrapped demonstration into the first empty exemplar slot: the first of up to 4
    unused candidate train examples (drawn) that the current prompt answers acceptably
    (correct, or a metric of at least 0.5; those up to 4 task-LLM calls count). Which
    examples, scores or failures a meta-prompt shows is drawn from `self.np_random`, and
    generation is greedy, so the same seed and cache replay the same instructions. A
    proposal the set already holds moves to that instruction (the same proposal is the same
    transition); one that is empty, the current instruction, or finds the slots full is a no-op with
    `-invalid_penalty` (masked when foreseeable: slots full, no failure to reflect on, no
    empty exemplar slot). Proposer calls never count in `budget` or the task LLM's meter;
    `info["proposer_calls"]` / `info["proposer_tokens"]` (this episode) and
    `llm_usage()["proposer_calls" | "proposer_tokens" | "proposer_distinct"]` report them. Invalid edits (an example already in the prompt, clearing an
    empty slot, re-setting the current part) are masked in
    `info["action_mask"]` (int8) and by `action_masks()` (sb3-contrib's
    convention); taken anyway, they are a no-op with reward
    `-invalid_penalty`, never an exception.

    ## Observation Space

    `Box(0, 1, (D,), float32)`: one-hots of the current instruction, each
    slot's example (or empty), template, verbalizer (and calibration, with
    `calibration_choices`), the fraction of the edit budget used, and the mean
    encoding of the episode's minibatch (the task context, rescaled to [0, 1]):
    `encoder_dim` wide for the hashed bag-of-words, the model's hidden size for
    `encoder="llm"`. The `-Tabular` variant observes `Discrete(M)`: the mixed-radix id of
    the configuration (instruction, slots, template, verbalizer, calibration), for
    tabular Q-learning (`TabularQAgent` keeps rows for visited states only when M
    is large).

    ## Rewards

    `score(prompt after) - score(prompt before)` where score is the mean of
    the reward (default: the task's metric) over the episode's minibatch,
    computed in one batched LLM call per step (a calibrated prompt also pays, once per
    minibatch, for the inputs its calibration reads: 3 content-free inputs, or 1 PMI
    premise; those count in `budget` and `info["llm_calls"]`, so an episode's counts
    depend on its seed and actions only). The episode return is
    therefore final score - initial score (minus penalties for invalid
    edits). `info["score"]` is the current prompt's score. With
    `fixed_minibatch=True` the reward is a deterministic function of the two
    prompts (common random numbers across episodes), and the env remembers
    the score of every prompt it scored: a prompt seen before costs no LLM call
    and no budget (`info["llm_calls"]` counts only new ones).

    ## Starting State

    The initial prompt (the manual prompt, or `initial_prompt`; for one episode,
    `reset(options={"prompt": config})` with a configuration dict of
    `prompt_space()`), and a minibatch of `minibatch_size` inputs drawn from
    `split` with `self.np_random` (with `fixed_minibatch`, drawn at the first reset
    and kept: every episode scores prompts on the same inputs).

    ## Episode End

    Terminated by the stop action. Truncated after `max_edits` edits, or
    when the LLM budget runs out (`info["budget_exhausted"] = True`; a reset whose
    start prompt the budget cannot score says so in its info, and the next step
    truncates, as in every env of the package).

    ## Arguments

    Those of `PromptSelectEnv` (`task`, `llm`, `split` (default `"dev"`),
    `reward`, `budget`, `data_dir`, ...) plus `max_edits` (default 6),
    `minibatch_size` (default 8; None: every input of `split`), `fixed_minibatch`
    (default False), `n_slots` (exemplar slots, default 2),
    `n_candidates` (train examples offered as exemplars, default 6; None: the whole
    train split, label-balanced order),
    `invalid_penalty` (default 0.01), `initial_prompt` (a dict with any of
    `instruction` (text or pool index), `template` (name or index),
    `verbalizer` (list of words or index), `exemplars` (train indices), `calibration`),
    `tabular`, `calibration` (`"content-free"`, `"pmi"` or None: calibrated
    label scoring of classification rewards, as in `PromptSelectEnv`),
    `calibration_choices` (a list such as `[null, "content-free"]`: how the prompt's
    label scores are read becomes one more part to edit, and the prompt carries it
    (`Prompt.calibration`); needs `calibration=None`), `proposer` (None: no propose
    actions; `"task"` or an LLM spec), `propose_modes` (default all of `induce`, `reflect`,
    `history`, `demo`), `max_instructions` (instruction slots with a proposer, default 32).

    ## Public Methods

    Besides the Gymnasium API and those of every prompt env (`llm_usage()`,
    `use_llm(llm)`): `action_masks()` (valid edits now), `action_meanings()`
    (a name per action) and the property `prompt` (the current prompt, a
    `prompt_env.prompts.Prompt`: what a finished episode returns). Search over the same space:
    `prompt_space()` (option counts; the initial configuration, a dict of part indices, slot -1
    empty), `prompt_of(config)` and `score_config(config)` (its score on this episode's minibatch,
    state unchanged, charged to `budget` and `llm_usage()` like an edit; None: budget exhausted),
    `scored_prompts()` (with `fixed_minibatch`: every prompt scored so far and its score),
    `affordable_edits()` (the valid edits the budget left can score; a remembered prompt is free) and
    `minibatch_indices()` (which inputs of `split` the episode scores on). With a proposer:
    `proposer`, `write_instruction(mode, config, parents=..., rng=...)` (what the LLM-writing
    search baselines call), `add_instruction(text)`, `failures_of(config)`,
    `instruction_scores()`, `train_demos()`, `proposer_usage()`;
    the space itself is `env.unwrapped.space` (`prompt_env.envs.edit_space.EditSpace`).

    ## Registered Configurations

    `PromptEnv/<Task>-Edit-v0` and `PromptEnv/<Task>-Edit-Tabular-v0` for every
    catalog task; `PromptEnv/File-Edit[-Tabular]-v0` take `task=<path of your file>`.

    ## Version History

    - v0: initial version; later, without changing any default: `fixed_minibatch`,
      `n_candidates=None`, `minibatch_size=None`, `calibration_choices`,
      `reset(options={"prompt": ...})`, `proposer` (propose actions; off by default).
    """

    metadata = {**PromptEnvBase.metadata, "prompt_env_kind": "edit"}

    option_defaults = {"split": "dev", "encoder_dim": 32}

    def __init__(
        self,
        task: str = "bbc-topic",
        llm: str | dict[str, Any] = "default",
        *,
        max_edits: int = 6,
        minibatch_size: int | None = 8,
        n_slots: int = 2,
        n_candidates: int | None = 6,
        invalid_penalty: float = 0.01,
        initial_prompt: dict[str, Any] | None = None,
        tabular: bool = False,
        fixed_minibatch: bool = False,
        calibration_choices: list[str | None] | None = None,
        proposer: Any = None,
        propose_modes: Sequence[str] | None = None,
        max_instructions: int = 32,
        **options: Any,
    ) -> None:
        super().__init__(task, llm, **{**self.option_defaults, **options})
        check_proposer_spec(proposer)
        check_int("max_instructions", max_instructions, 1, 4096)
        modes = self._check_propose_modes(propose_modes) if proposer is not None else ()
        check_int("max_edits", max_edits, 1)
        check_int("minibatch_size", minibatch_size, 1, optional=True)
        check_int("n_slots", n_slots, 0, 64)
        check_int("n_candidates", n_candidates, 0, optional=True)
        check_kwarg_types(fixed_minibatch=(fixed_minibatch, bool, False), tabular=(tabular, bool, False))
        calibrations = self._check_calibration_choices(calibration_choices)
        if isinstance(invalid_penalty, bool) or not isinstance(invalid_penalty, (int, float)) or not (
            np.isfinite(invalid_penalty)
        ):
            raise ValueError(f"invalid_penalty must be a finite number, got {invalid_penalty!r}")
        if initial_prompt is not None and not isinstance(initial_prompt, dict):
            raise ValueError(f"initial_prompt must be a dict or None, got {type(initial_prompt).__name__}")
        self.max_edits = max_edits
        self.minibatch_size = len(self.examples) if minibatch_size is None else minibatch_size
        self.fixed_minibatch = fixed_minibatch
        # fixed minibatch: every prompt scored, by prompt.unnamed() (two slot layouts, two
        # names, can be one prompt): score, outcomes, prompt
        self._memo: dict[Prompt, tuple[float, list[Any], Prompt]] = {}
        self._calibrated: set[Prompt] = set()  # prompts whose calibration premises this env paid for
        self.n_slots = n_slots
        self.invalid_penalty = float(invalid_penalty)
        self.tabular = tabular
        pool = self.task.prompt_pool
        manual = pool.manual
        classification = self.task.kind == "classification"
        train = list(self.task.splits.get("train", []))
        self.space = EditSpace(
            instructions=list(pool.instructions), templates=list(pool.templates),
            verbalizers=list(pool.verbalizers) if classification else [None],
            candidates=exemplar_candidates(train, len(train) if n_candidates is None else n_candidates,
                                           classification),
            n_slots=n_slots, calibrations=calibrations, chat=manual.chat, env_id=self.env_id)
        self.instructions, self.templates = self.space.instructions, self.space.templates
        self.verbalizers, self.candidates = self.space.verbalizers, self.space.candidates
        self.calibrations, self.chat = self.space.calibrations, self.space.chat
        self.initial_state = self._initial_state(manual, initial_prompt or {})
        # a proposer writes instructions into a fixed number of slots, so the action space,
        # the one-hot and the tabular state ids never change size
        self.proposer_spec = proposer
        self._proposer: Proposer | None = None
        self.propose_modes = modes
        if modes:
            self.space.instruction_slots = max(max_instructions, len(self.instructions))
            self.space.propose_modes = modes
        self.max_instructions = self.space.instruction_radix
        self.pool_size = len(self.instructions)
        """Instructions of the pool (and of ``initial_prompt``); later slots hold written ones."""
        self._instruction_scores: dict[str, float] = {}  # best minibatch score seen per instruction
        self._proposer_at_reset = {"proposer_calls": 0, "proposer_tokens": 0}
        self.actions = self.space.actions()
        self.action_space = spaces.Discrete(len(self.actions))
        self._radices = self.space.radices
        if tabular:
            self.observation_space = spaces.Discrete(int(np.prod(self._radices)))
        else:
            size = sum(self._radices) + 1 + self.context_dim
            self.observation_space = spaces.Box(0.0, 1.0, shape=(size,), dtype=np.float32)
        self.state = self.initial_state
        self._batch: list[int] = []
        self._context = np.zeros(0 if tabular else self.context_dim, dtype=np.float32)
        self._edits = 0
        self._score = 0.0
        self._done = True
        self._spent_at_reset = False

    # ------------------------------------------------------------- building
    def _initial_state(self, manual: Prompt, given: dict[str, Any]) -> PromptState:
        unknown = set(given) - {"instruction", "template", "verbalizer", "exemplars", "calibration"}
        if unknown:
            raise ValueError(f"initial_prompt has unknown keys {sorted(unknown)}")
        instruction = self._index_of(given.get("instruction", manual.instruction), self.instructions, "instruction")
        by_name = [t.name for t in self.templates]
        template_given = given.get("template", manual.template.name)
        if isinstance(template_given, str):
            if template_given not in by_name:
                if template_given == manual.template.name:
                    self.templates.append(manual.template)
                    by_name.append(manual.template.name)
                else:
                    raise ValueError(f"initial_prompt template {template_given!r} is not one of {by_name}")
            template = by_name.index(template_given)
        else:
            template = self._check_index(template_given, len(self.templates), "template")
        verbalizer = 0
        if self.task.kind == "classification":
            words = given.get("verbalizer", list(manual.verbalizer or self.verbalizers[0]))
            if isinstance(words, int):
                verbalizer = self._check_index(words, len(self.verbalizers), "verbalizer")
            else:
                verbalizer = self._index_of(tuple(words), self.verbalizers, "verbalizer")
        exemplars = list(given.get("exemplars", manual.exemplars))[: self.n_slots]
        slots = []
        for e in exemplars:
            if e not in self.candidates:
                self.candidates.append(int(e))
            slots.append(self.candidates.index(int(e)))
        slots += [-1] * (self.n_slots - len(slots))
        calibration = 0
        if self.calibrations:
            method = given.get("calibration", manual.calibration)
            if method not in self.calibrations:
                raise ValueError(f"initial_prompt calibration {method!r} is not one of {self.calibrations}")
            calibration = self.calibrations.index(method)
        elif given.get("calibration") is not None:
            raise ValueError("initial_prompt has a calibration: give the env calibration_choices (or "
                             "calibration=...) instead")
        return PromptState(instruction, tuple(slots), template, verbalizer, calibration)

    @staticmethod
    def _check_index(value: Any, n: int, what: str) -> int:
        if not isinstance(value, int) or not 0 <= value < n:
            raise ValueError(f"initial_prompt {what} index must be in [0, {n}), got {value!r}")
        return value

    def _index_of(self, value: Any, options: list[Any], what: str) -> int:
        """Index of ``value`` among ``options``; a new text/word list is added as an option."""
        if isinstance(value, int) and not isinstance(value, bool):
            return self._check_index(value, len(options), what)
        if value not in options:
            options.append(value)
        return options.index(value)

    def _check_calibration_choices(self, choices: list[str | None] | None) -> list[str | None]:
        if choices is None:
            return []
        from prompt_env.scoring import check_calibration

        if not isinstance(choices, (list, tuple)) or not choices or len(set(choices)) < len(choices):
            raise ValueError(f"calibration_choices must be a non-empty list of distinct methods "
                             f"(None for raw scores), got {choices!r}")
        for method in choices:
            check_calibration(method)
        if self.task.kind != "classification":
            raise ValueError(f"calibration_choices is for classification tasks; {self.task_name!r} is "
                             f"{self.task.kind}")
        if self.calibration is not None:
            raise ValueError("calibration_choices lets each prompt choose its calibration: "
                             f"leave calibration=None (got {self.calibration!r})")
        return list(choices)

    @staticmethod
    def _check_propose_modes(modes: Sequence[str] | None) -> tuple[str, ...]:
        if modes is None:
            return PROPOSE_MODES
        if isinstance(modes, str) or not isinstance(modes, (list, tuple)) or not modes:
            raise ProposerError(f"propose_modes must be a non-empty list of {list(PROPOSE_MODES)}, got {modes!r}")
        unknown = [m for m in modes if m not in PROPOSE_MODES]
        if unknown or len(set(modes)) < len(modes):
            raise ProposerError(f"propose_modes must be distinct modes of {list(PROPOSE_MODES)}, got {list(modes)!r}")
        return tuple(modes)

    def action_meanings(self) -> list[str]:
        return [a.describe() for a in self.actions]

    # ------------------------------------------------------------- proposer
    @property
    def proposer(self) -> Proposer | None:
        """The instruction writer (None without ``proposer``), made on first use; its usage
        is metered apart from the task LLM's (``llm_usage()["proposer_calls"]`` ...)."""
        if self._proposer is None and self.proposer_spec is not None:
            spec = self.proposer_spec
            self._proposer = make_proposer(spec, self.llm if spec is True or spec == "task" else None)
        return self._proposer

    def use_proposer(self, proposer: Proposer | Any) -> None:
        """Write instructions with ``proposer`` (a :class:`~prompt_env.proposer.Proposer`, or an
        LLM object, metered apart) from now on; the env needs a ``proposer`` option already."""
        if self.proposer_spec is None:
            raise ProposerError(f"{self.env_id}: this env has no propose actions; make it with proposer=...")
        self._proposer = proposer if isinstance(proposer, Proposer) else Proposer(proposer)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_proposer"] = None  # rebuilt from proposer_spec in the receiving process
        return state

    def train_demos(self, prompt: Prompt | None = None) -> list[tuple[str, str]]:
        """Every train example as (input text, answer in ``prompt``'s label words): what
        ``induce`` draws its demonstrations from."""
        prompt = prompt or self.prompt
        train = self.task.splits.get("train", [])
        return [(e.text, prompt.answer_text(e)) for e in train]

    def _outcomes_of(self, config: PromptState | dict[str, Any] | None) -> list[Any] | None:
        prompt = self.prompt if config is None else self.prompt_of(config)
        key = prompt.unnamed()
        if key in self._memo:
            return list(self._memo[key][1])
        if config is None or prompt == self.prompt:
            return list(getattr(self, "_last_outcomes", []))
        return None

    def example_scores(self, config: PromptState | dict[str, Any] | None = None) -> list[float] | None:
        """The reward of each minibatch input (in :meth:`minibatch_indices` order) under the
        prompt of ``config`` (default: the current prompt), from its scoring: free; None if
        it was not scored on this minibatch (remembered with ``fixed_minibatch``)."""
        outcomes = self._outcomes_of(config)
        return None if outcomes is None else [float(o.score) for o in outcomes]

    def failures_of(self, config: PromptState | dict[str, Any] | None = None) -> list[Failure]:
        """The minibatch inputs the prompt of ``config`` (default: the current prompt) got wrong,
        from its last scoring (free with ``fixed_minibatch``; [] if it was never scored here)."""
        outcomes = self._outcomes_of(config) or []
        failures = []
        for index, outcome in zip(self._batch, outcomes):
            if accepted(outcome):
                continue
            feedback = ", ".join(f"{name} {value:.2f}" for name, value in outcome.metrics.items())
            failures.append(Failure(self.examples[index].text, outcome.prediction, outcome.reference,
                                    feedback[:120]))
        return failures

    def instruction_scores(self) -> list[tuple[str, float]]:
        """Every instruction scored so far with the best minibatch score of a prompt holding it
        (what ``history`` shows the proposer), in the order first scored."""
        return list(self._instruction_scores.items())

    def add_instruction(self, text: str, *, reuse: bool = False) -> int | None:
        """Put ``text`` into the next free instruction slot; its index, or None when the slots
        are full or the set already holds it (``reuse``: then the index of the one it holds)."""
        from prompt_env.proposer import normalize

        held = [normalize(t) for t in self.instructions]
        if normalize(text) in held:
            return held.index(normalize(text)) if reuse else None
        if len(self.instructions) >= self.space.instruction_radix:
            return None
        self.instructions.append(text)
        return len(self.instructions) - 1

    def write_instruction(self, mode: str, config: PromptState | dict[str, Any] | None = None, *,
                          parents: Sequence[int] = (), rng: np.random.Generator | None = None,
                          reuse: bool = False) -> int | None:
        """Ask the proposer for an instruction and add it to the set: its slot index, or None
        (nothing usable, a duplicate, or the slots are full). Costs no task-LLM call. With
        ``reuse`` a proposal the set already holds (other than the prompt's own instruction)
        is not rejected: its index is returned, so the same proposal is the same transition.

        ``mode``: ``induce`` (demos from train), ``history`` (:meth:`instruction_scores`),
        ``reflect`` (:meth:`failures_of` ``config``), ``mutate`` (``parents[0]``) or
        ``crossover`` (``parents[0]`` and ``parents[1]``); ``config`` defaults to the current
        prompt; ``rng`` (default ``self.np_random``) draws what the meta-prompt shows.
        """
        proposer = self.proposer
        if proposer is None:
            raise ProposerError(f"{self.env_id}: no proposer; make the env with proposer=...")
        if len(self.instructions) >= self.space.instruction_radix:
            return None
        rng = self.np_random if rng is None else rng
        prompt = self.prompt if config is None else self.prompt_of(config)
        known = [] if reuse else list(self.instructions)
        if mode == "induce":
            text = proposer.induce(self.train_demos(prompt), rng, known=known)
        elif mode == "history":
            scored = self.instruction_scores() or [(prompt.instruction, 0.0)]
            text = proposer.history(scored, rng, demos=self.train_demos(prompt), known=known)
        elif mode == "reflect":
            text = proposer.reflect(prompt.instruction, self.failures_of(config), rng, known=known)
        elif mode == "mutate" and len(parents) >= 1:
            text = proposer.mutate(self.instructions[parents[0]], rng, known=known)
        elif mode == "crossover" and len(parents) >= 2:
            text = proposer.crossover(self.instructions[parents[0]], self.instructions[parents[1]], rng,
                                      known=known)
        else:
            raise ProposerError(f"write_instruction mode must be one of induce, history, reflect, "
                                f"mutate (one parent), crossover (two parents); got {mode!r} with "
                                f"parents {list(parents)}")
        return None if text is None else self.add_instruction(text, reuse=reuse)

    def _can_propose(self, mode: str) -> bool:
        if mode == "demo":
            return bool(self._demo_options())
        if len(self.instructions) >= self.space.instruction_radix:
            return False
        if mode == "reflect":
            return bool(self.failures_of())
        return bool(self.task.splits.get("train")) or mode == "history"

    def _demo_options(self) -> list[int]:
        """Candidates (indices into ``candidates``) a ``propose demo`` may put in the first empty slot."""
        if -1 not in self.state.slots:
            return []
        return [j for j in range(len(self.candidates)) if j not in self.state.slots]

    def _propose_state(self, mode: str) -> PromptState | None:
        """The state after a ``propose <mode>`` action, or None (no usable proposal)."""
        if not self._can_propose(mode):
            return None
        if mode == "demo":
            return self._bootstrap_demo()
        index = self.write_instruction(mode, reuse=True)
        if index is None or index == self.state.instruction:
            return None
        return dataclasses.replace(self.state, instruction=index)

    def _bootstrap_demo(self) -> PromptState | None:
        """A bootstrapped demonstration: the first of up to DEMO_TRIES unused candidates (drawn)
        that the current prompt answers in a way the metric accepts, put into the first empty
        slot (the candidate set is fixed, so the action space stays fixed)."""
        options = self._demo_options()
        order = [options[int(i)] for i in self.np_random.permutation(len(options))][:DEMO_TRIES]
        if not self.budget_allows(len(order)):
            return None
        prompt, train = self.prompt, self.task.splits["train"]
        outcomes = self.run_pairs([(prompt, train[self.candidates[j]]) for j in order])
        self.charge([o.prompt_text for o in outcomes])
        for j, outcome in zip(order, outcomes):
            if accepted(outcome):
                slots = list(self.state.slots)
                slots[slots.index(-1)] = j
                return dataclasses.replace(self.state, slots=tuple(slots))
        return None

    def new_prompt_cost(self) -> int:
        """LLM calls of scoring a new prompt like the current one (its minibatch and, when
        calibrated, its premises)."""
        from prompt_env.calibration import CONTENT_FREE_INPUTS

        method = self.prompt.calibration or self.calibration
        premises = 0 if method is None else (len(CONTENT_FREE_INPUTS) if method == "content-free" else 1)
        return len(self._batch) + premises

    def proposer_usage(self) -> dict[str, int]:
        """The proposer's counters (zeros before its first use or without one)."""
        if self._proposer is None:
            return {"proposer_calls": 0, "proposer_tokens": 0, "proposer_distinct": 0}
        return self._proposer.usage()

    def llm_usage(self) -> dict[str, int]:
        """The task LLM's usage (see the base class) and, apart, the proposer's:
        ``proposer_calls``, ``proposer_tokens``, ``proposer_distinct`` (zeros without one)."""
        return {**super().llm_usage(), **self.proposer_usage()}

    # ---------------------------------------------------------------- state
    def prompt_space(self) -> dict[str, Any]:
        """Option counts of each prompt part and the initial configuration (plain data)."""
        return self.space.describe(self.initial_state)

    def score_config(self, config: PromptState | dict[str, Any]) -> float | None:
        """Mean reward of a configuration on this episode's minibatch (None: budget exhausted)."""
        if not self._batch:
            raise RuntimeError(f"{self.env_id}: call reset() before score_config() (no minibatch yet)")
        outcomes, score = getattr(self, "_last_outcomes", []), self.score_prompt(self.prompt_of(config))
        self._last_outcomes = outcomes  # later infos still describe the env's own prompt
        return score

    def scored_prompts(self) -> list[tuple[Prompt, float]]:
        """Every prompt scored so far on the fixed minibatch, with its score, in the order they
        were first scored (empty without ``fixed_minibatch``: minibatches change per episode)."""
        return [(prompt, score) for score, _, prompt in self._memo.values()]

    def affordable_edits(self) -> np.ndarray:
        """``action_masks()`` less the edits the budget left cannot score (int8): a prompt the
        fixed minibatch already scored costs nothing, a new one its minibatch and premises, a
        proposal ``new_prompt_cost()``. Stop is always affordable."""
        def affordable(edit: EditAction) -> bool:
            if edit.kind == "stop":
                return True
            if edit.kind == "propose":
                return self._can_propose(edit.name) and self.budget_allows(self.new_prompt_cost())
            state = self.apply(self.state, edit)
            return state is not None and self._can_score(self.prompt_of(state))

        return np.array([affordable(a) for a in self.actions], dtype=np.int8)

    def minibatch_indices(self) -> list[int]:
        """Indices (into the env's ``split``) of the inputs this episode scores prompts on."""
        return list(self._batch)

    def prompt_of(self, state: PromptState | dict[str, Any]) -> Prompt:
        """The prompt of a configuration (a `PromptState` or its dict, see `prompt_space()`)."""
        self.space.env_id = self.env_id  # known once gym.make has set the spec
        return self.space.prompt_of(state)

    def apply(self, state: PromptState, action: EditAction) -> PromptState | None:
        """The state after ``action``, or None when the edit is invalid here."""
        return self.space.apply(state, action)

    def state_id(self, state: PromptState) -> int:
        return self.space.state_id(state)

    @property
    def prompt(self) -> Prompt:
        """The current prompt."""
        return self.prompt_of(self.state)

    def action_masks(self) -> np.ndarray:
        """1 for edits valid in the current state, 0 for invalid ones (int8)."""
        return np.array([self._can_propose(a.name) if a.kind == "propose" else self.apply(self.state, a) is not None
                         for a in self.actions], dtype=np.int8)

    def observe(self) -> np.ndarray | int:
        if self.tabular:
            return self.state_id(self.state)
        digits = self.space.digits(self.state)
        parts = []
        for digit, radix in zip(digits, self._radices):
            one_hot = np.zeros(radix, dtype=np.float32)
            one_hot[digit] = 1.0
            parts.append(one_hot)
        parts.append(np.array([self._edits / self.max_edits], dtype=np.float32))
        parts.append(self._context)
        return np.concatenate(parts).astype(np.float32)

    # -------------------------------------------------------------- scoring
    def score_prompt(self, prompt: Prompt) -> float | None:
        """Mean reward of ``prompt`` on the episode's minibatch (None: budget exhausted)."""
        key = prompt.unnamed()
        if self._remembered(prompt):
            score, self._last_outcomes, _ = self._memo[key]
            return score
        if not self._can_score(prompt):
            return None
        pairs = [(prompt, self.examples[i]) for i in self._batch]
        premises = self._premise_calls(prompt)
        outcomes = self.run_pairs(pairs)
        self.charge([o.prompt_text for o in outcomes])
        self.calls_used += premises
        self.episode_calls += premises
        if premises:
            self._calibrated.add(key)
        self._last_outcomes = outcomes
        score = float(np.mean([o.score for o in outcomes]))
        if self.propose_modes:
            self._instruction_scores[prompt.instruction] = max(
                score, self._instruction_scores.get(prompt.instruction, -np.inf))
        if self.fixed_minibatch:
            self._memo[key] = (score, outcomes, prompt)
        return score

    def _remembered(self, prompt: Prompt) -> bool:
        """Whether the fixed minibatch already scored ``prompt`` (scoring it again is free)."""
        return self.fixed_minibatch and prompt.unnamed() in self._memo

    def _can_score(self, prompt: Prompt) -> bool:
        """Whether the budget left pays for scoring ``prompt`` now: its minibatch and premises,
        nothing when remembered."""
        return self._remembered(prompt) or self.budget_allows(len(self._batch) + self._premise_calls(prompt))

    def _premise_calls(self, prompt: Prompt) -> int:
        """LLM calls of calibrating ``prompt`` that this env has not paid yet: its content-free
        inputs (or PMI premise), asked once per prompt (see ``prompt_env.calibration``)."""
        from prompt_env.calibration import CONTENT_FREE_INPUTS

        method = prompt.calibration or self.calibration
        if method is None or prompt.unnamed() in self._calibrated:
            return 0
        return len(CONTENT_FREE_INPUTS) if method == "content-free" else 1

    # -------------------------------------------------------------- episode
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.episode_calls = 0
        self._proposer_at_reset = self.proposer_usage()
        start = self.initial_state
        options = check_reset_options(self.env_id, options, ("prompt",))
        if "prompt" in options:
            given = options["prompt"]
            start = given if isinstance(given, PromptState) else self.space.state_of(given)
            self.prompt_of(start)  # a ValueError unless it is a configuration of this space
        if not (self.fixed_minibatch and self._batch):
            n = len(self.examples)
            size = min(self.minibatch_size, n)
            self._batch = [int(i) for i in self.np_random.choice(n, size, replace=False)]
            context = self.encoder.encode([self.examples[i].text for i in self._batch]).mean(0)
            self._context = ((context + 1.0) / 2.0).clip(0.0, 1.0).astype(np.float32)
            self._memo = {}
            self._calibrated = set()  # a new minibatch pays its premises again: same seed, same counts
        self.state = start
        self._edits = 0
        self._done = False
        score = self.score_prompt(self.prompt)
        self._score = 0.0 if score is None else score
        info = self._info(budget_exhausted=score is None)
        self._spent_at_reset = score is None  # the first step truncates (a learner's loop goes on)
        self._last_render = self._render_text("reset")
        return self.observe(), info

    def step(self, action: Any):
        if self._done:
            raise RuntimeError(f"{self.env_id}: call reset() before step() (the episode has ended)")
        index = as_action(action, len(self.actions), self.env_id)
        edit = self.actions[index]
        if self._spent_at_reset:  # the budget could not score the start: nothing to edit
            self._done = True
            return self.observe(), 0.0, False, True, self._info(action=index, valid=True, budget_exhausted=True)
        if edit.kind == "propose" and not self.budget_allows(self.new_prompt_cost()):
            self._done = True  # the proposal could not be scored: no proposer call either
            return self.observe(), 0.0, False, True, self._info(action=index, valid=True, budget_exhausted=True)
        new_state = self._propose_state(edit.name) if edit.kind == "propose" else self.apply(self.state, edit)
        self._edits += 1
        truncated = self._edits >= self.max_edits
        if edit.kind == "stop":
            self._done = True
            self._last_render = self._render_text("stop")
            return self.observe(), 0.0, True, False, self._info(action=index, valid=True)
        if new_state is None:
            self._done = truncated
            self._last_render = self._render_text(f"invalid edit {edit.describe()} (no-op)")
            reward = -self.invalid_penalty
            return self.observe(), reward, False, truncated, self._info(action=index, valid=False)
        new_score = self.score_prompt(self.prompt_of(new_state))
        if new_score is None:
            self._done = True
            return self.observe(), 0.0, False, True, self._info(action=index, valid=True, budget_exhausted=True)
        reward = new_score - self._score
        self.state, self._score = new_state, new_score
        self._done = truncated
        self._last_render = self._render_text(f"{edit.describe()}: reward {reward:+.3f}")
        return self.observe(), float(reward), False, truncated, self._info(action=index, valid=True)

    def _info(self, action: int | None = None, valid: bool = True, budget_exhausted: bool = False) -> dict[str, Any]:
        outcomes = getattr(self, "_last_outcomes", [])
        prompt = self.prompt
        info: dict[str, Any] = {
            "action_mask": self.action_masks(),
            "score": self._score,
            "edits": self._edits,
            "valid_action": valid,
            "budget_exhausted": budget_exhausted,
            "prompt_name": prompt.name,
            "prompt_parts": prompt.describe(),
            "prompt": outcomes[0].prompt_text if outcomes else "",
            "output": outcomes[0].prediction if outcomes else "",
            "reference": outcomes[0].reference if outcomes else "",
            "correct": [o.correct for o in outcomes],
            **self.llm_info(),
        }
        if self.propose_modes:
            now = self.proposer_usage()
            info["proposer_calls"] = now["proposer_calls"] - self._proposer_at_reset["proposer_calls"]
            info["proposer_tokens"] = now["proposer_tokens"] - self._proposer_at_reset["proposer_tokens"]
            info["instructions"] = len(self.instructions)
        if action is not None:
            info["action"] = self.actions[action].describe()
        return info

    def _render_text(self, event: str) -> str:
        p = self.prompt
        return (
            f"[{self.env_id}] edit {self._edits}/{self.max_edits}: {event}\n"
            f"  score {self._score:.3f} | instruction {p.instruction[:80]!r} | template {p.template.name} | "
            f"exemplars {list(p.exemplars)} | verbalizer {list(p.verbalizer) if p.verbalizer else None}"
            f"{' | calibration ' + str(p.calibration) if self.calibrations else ''}"
        )


def accepted(outcome: Any) -> bool:
    """Whether the metric accepts an answer: correct (classification, exact match), or, for
    metrics without a notion of correct, a score of at least 0.5."""
    return bool(outcome.correct) if outcome.correct is not None else outcome.score >= 0.5
