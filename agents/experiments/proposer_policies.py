"""Search baselines that write instructions with an LLM: APE, OPRO, EvoPrompt (GA), GEPA.

Each runs on the setting's Edit env made with a proposer (``setting.proposer``: the task
LLM by default, metered apart), in the same search space and at the same budget of
task-LM calls as the searches of :mod:`agents.experiments.search_policies`: one reset draws
the dev minibatch, :class:`~agents.search.MinibatchScorer` scores each candidate on it once
(charged to the env's ``budget={"calls": budget}``), and the evaluator scores the result
on the test subset. Candidates differ from the start (the manual prompt: its template,
exemplars, label words) in their instruction only, and the instructions come from the
env's public ``write_instruction`` (:mod:`prompt_env.proposer`'s meta-prompts). A proposal
is asked for only while the budget still pays for scoring it; proposer calls are reported
beside the task-LM calls (``proposer_calls``, ``proposer_tokens`` of the row), never
charged to the budget. After ``MAX_IDLE_PROPOSALS`` proposals in a row that give nothing
new, a method stops.

- ``ape``: induce instructions from random k-shot train samples (half the candidates the
  budget pays for), then resample variants (rewordings) of the top 3; the best written
  instruction is the result (APE selects among its own candidates).
- ``opro``: repeatedly ask for a better instruction from the scored history (best last).
- ``evoprompt-llm``: a GA whose population starts as the pool's instructions; a child is the
  LLM's crossover of two roulette-wheel parents, then its mutation; the best survive.
- ``gepa``: a parent drawn from the Pareto front over per-input dev scores (weighted by
  the inputs it is best on) is rewritten by reflection on its failures; candidates that
  another one dominates on every input are dropped; the best mean score is the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from agents.experiments.curves import search_curve
from agents.experiments.registry import Policy, PolicyResult, register_policy
from agents.experiments.search_policies import edit_env_kwargs, search_budget, tie_broken
from agents.experiments.setting import Setting
from agents.experiments.usage import measured
from agents.search import Config, MinibatchScorer, population_size, roulette, survivors

MAX_IDLE_PROPOSALS = 8
"""Proposals in a row that give no new instruction (empty, duplicate) after which a method stops."""
APE_TOP = 3
"""APE resamples variants of this many best induced instructions."""


@dataclasses.dataclass
class Writer:
    """The Edit env's proposer, seeded, with the affordability check every method shares."""

    scorer: MinibatchScorer
    rng: np.random.Generator
    written: list[Config] = dataclasses.field(default_factory=list)
    """Every scored candidate with a written instruction, in order."""
    idle: int = 0

    @property
    def edit(self) -> Any:
        return self.scorer.edit

    def can_continue(self) -> bool:
        """Whether the budget pays for scoring one more candidate and the proposer still writes."""
        return (not self.scorer.exhausted and self.idle < MAX_IDLE_PROPOSALS
                and self.edit.budget_allows(self.edit.new_prompt_cost()))

    def propose(self, mode: str, base: Config, parents: tuple[int, ...] = ()) -> Config | None:
        """``base`` with an instruction the proposer writes in ``mode``, scored; None if the
        proposer gave nothing new or the budget ended."""
        index = self.edit.write_instruction(mode, base.as_dict(), parents=parents, rng=self.rng)
        if index is None:
            self.idle += 1
            return None
        self.idle = 0
        child = dataclasses.replace(base, instruction=index)
        if self.scorer(child) is None:
            return None
        self.written.append(child)
        return child

    def stop_reason(self) -> str:
        """Why the method ended: the budget, or a proposer that stopped writing anything new."""
        if self.idle >= MAX_IDLE_PROPOSALS:
            return f"the proposer wrote nothing new {self.idle} times in a row"
        if self.scorer.exhausted or not self.edit.budget_allows(self.edit.new_prompt_cost()):
            return "the budget was spent"
        return "a round of proposals gave no new candidate"

    def best_written(self) -> Config | None:
        scored = [(self.scorer.known(c), i) for i, c in enumerate(self.written)]
        return self.written[max(scored, key=lambda s: (s[0], -s[1]))[1]] if scored else None


def ape(writer: Writer, evaluations: int) -> Config:
    """Induce, score, resample variants of the top ones; the best written instruction."""
    start = writer.scorer.space.initial
    induced = max(1, evaluations // 2)
    while writer.can_continue() and len(writer.written) < induced:
        writer.propose("induce", start)
    turn = 0
    while writer.can_continue() and writer.written:
        ranked = sorted(writer.written, key=lambda c: -float(writer.scorer.known(c) or 0.0))
        parent = ranked[turn % min(APE_TOP, len(ranked))]
        turn += 1
        writer.propose("mutate", parent, (parent.instruction,))
    return writer.best_written() or start


def opro(writer: Writer, evaluations: int) -> Config:
    """Ask for a better instruction from the scored history until the budget ends."""
    start = writer.scorer.space.initial
    while writer.can_continue():
        writer.propose("history", start)
    return writer.scorer.best()[0]


def evoprompt_llm(writer: Writer, evaluations: int) -> Config:
    """EvoPrompt-GA with the LLM as crossover and mutation operator, over instructions."""
    scorer, start = writer.scorer, writer.scorer.space.initial
    size = population_size(evaluations)
    population = [start]
    for index in range(writer.edit.pool_size):
        if len(population) >= size or not writer.can_continue():
            break
        config = dataclasses.replace(start, instruction=index)
        if config not in population and scorer(config) is not None:
            population.append(config)
    while writer.can_continue() and len(population) >= 2:
        scores = np.array([scorer.known(c) for c in population], dtype=np.float64)
        children = []
        for _ in range(size):
            if not writer.can_continue():
                break
            a, b = (population[i] for i in roulette(scores, writer.rng, 2))
            cross = writer.edit.write_instruction("crossover", a.as_dict(),
                                                  parents=(a.instruction, b.instruction), rng=writer.rng)
            parent = a if cross is None else dataclasses.replace(a, instruction=cross)
            child = writer.propose("mutate", parent, (parent.instruction,))
            if child is None and cross is not None and writer.can_continue():
                child = parent if scorer(parent) is not None else None  # the crossover alone
            if child is not None:
                children.append(child)
        if not children:
            break
        population = survivors(population + children, scorer, size)
    return scorer.best()[0]


def pareto_front(vectors: list[np.ndarray]) -> list[int]:
    """Indices of the vectors no other vector dominates (>= on every input, > on one)."""
    front = []
    for i, v in enumerate(vectors):
        if not any(np.all(w >= v) and np.any(w > v) for j, w in enumerate(vectors) if j != i):
            front.append(i)
    return front


def gepa(writer: Writer, evaluations: int) -> Config:
    """Reflective mutation of Pareto-front parents over per-input dev scores."""
    scorer, edit = writer.scorer, writer.edit
    candidates = [scorer.space.initial]
    while writer.can_continue():
        vectors = [np.asarray(edit.example_scores(c.as_dict()), dtype=np.float64) for c in candidates]
        table = np.stack(vectors)
        best = table.max(axis=0)
        wins = np.array([np.sum(np.isclose(v, best)) for v in vectors], dtype=np.float64)
        parent = candidates[int(writer.rng.choice(len(candidates), p=wins / wins.sum()))]
        mode = "reflect" if edit.failures_of(parent.as_dict()) else "mutate"
        child = writer.propose(mode, parent, (parent.instruction,))
        if child is None:
            continue
        candidates.append(child)
        vectors.append(np.asarray(edit.example_scores(child.as_dict()), dtype=np.float64))
        candidates = [candidates[i] for i in pareto_front(vectors)]
    return max(candidates, key=lambda c: float(scorer.known(c) or 0.0))


ProposerMethod = Callable[[Writer, int], Config]
PROPOSER_METHODS: dict[str, ProposerMethod] = {
    "ape": ape, "opro": opro, "evoprompt-llm": evoprompt_llm, "gepa": gepa,
}
"""Registered policy name -> method."""


def _proposer_runner(name: str, method: ProposerMethod) -> Callable[[Setting, int], PolicyResult]:
    def run(setting: Setting, budget: int) -> PolicyResult:
        own = search_budget(setting, budget)
        evaluations = max(1, own // setting.edit_cost())
        pool = len(setting.select_env().task.prompt_pool.instructions)
        env = setting.make(setting.edit_id, **edit_env_kwargs(
            setting, own, proposer=setting.proposer, fixed_minibatch=True,  # per-input scores kept
            max_instructions=min(4096, pool + evaluations + 8)))
        with measured(env) as usage:
            scorer = MinibatchScorer(env, seed=setting.seed)
            writer = Writer(scorer, np.random.default_rng(setting.seed))
            config = method(writer, evaluations) if scorer.history else scorer.space.initial
            prompt = env.unwrapped.prompt_of(config.as_dict())
        score, start = scorer.known(config), scorer.initial_score
        written = env.unwrapped.instructions[env.unwrapped.pool_size:]
        proposer = env.unwrapped.proposer_usage()
        notes = (f"{len(writer.written)} written instructions scored on one dev minibatch of "
                 f"{setting.edit_cost()} ({len(written)} written, {proposer['proposer_calls']} "
                 f"proposer calls); result {'written' if config.instruction >= env.unwrapped.pool_size else 'pool'}"
                 f" instruction, minibatch score {score if score is None else round(score, 4)}"
                 f" (start {start if start is None else round(start, 4)}); stopped: "
                 f"{writer.stop_reason()}")
        history = [(e.llm_calls, e.distinct, e.score) for e in scorer.history]
        extra = {"final_prompt": prompt.describe(), "candidates": len(scorer.history),
                 "written_instructions": len(written), "search_score": score, "start_score": start,
                 "proposer_token_unit": env.unwrapped.proposer.token_unit,
                 "search_curve": search_curve(history)}
        prompt, spent, notes, extra = tie_broken(setting, env, budget, prompt, usage(), notes, extra)
        env.close()
        return PolicyResult(prompt=prompt, train=spent, curve=scorer.curve(), notes=notes, extra=extra)

    run.__name__ = f"run_{name.replace('-', '_')}"
    return run


_DESCRIPTIONS = {
    "ape": "APE: instructions induced by the proposer LLM from k-shot train samples, the top "
           "ones resampled; the best written instruction on one dev minibatch",
    "opro": "OPRO: the proposer LLM reads the scored instructions (best last) and writes a better one",
    "evoprompt-llm": "EvoPrompt-GA with the proposer LLM as crossover and mutation of instructions",
    "gepa": "GEPA: reflective rewrites (failed inputs, references) of Pareto-front candidates "
            "over per-input dev scores",
}
for _name, _method in PROPOSER_METHODS.items():
    register_policy(Policy(_name, "search", _DESCRIPTIONS[_name], _proposer_runner(_name, _method),
                           writes=True))

PROPOSER_POLICIES = (*PROPOSER_METHODS, "edit-tabular-q-propose", "edit-dqn-propose")
"""Every registered policy that writes prompt text with the setting's proposer."""

__all__ = ["PROPOSER_METHODS", "PROPOSER_POLICIES", "Writer", "pareto_front"]
