"""Search baselines over the Edit env's prompt space: random search, hill climbing, evolution.

The three methods search exactly the structured prompts ``PromptEditEnv`` edits: an
instruction of the pool, exemplar slots filled from the env's candidate train examples (and
their order), a template and a verbalizer. They see the space only through the env's public
API: ``prompt_space()`` (how many options each part has, and the start, the manual prompt),
``reset(seed=...)`` (draws the dev minibatch and scores the start) and ``score_config(config)``
(scores a candidate on that minibatch, charged to the env's ``budget`` like an edit).

Common random numbers: every candidate of one run is scored on the one minibatch that run's
reset drew, so two candidates differ by their prompt only, never by their inputs, and the
comparison of two candidates has none of the sampling noise of scoring them on different
inputs (the price: the search can overfit that minibatch; the evaluator scores the winner
on the test subset). A candidate is scored at most once per run (:class:`MinibatchScorer`
remembers its score), so every call of the budget buys a new candidate. The env's
``budget={"calls": N}`` stops the search: the first candidate it cannot pay for ends the run.

Everything random draws from one seeded ``numpy.random.Generator``: same seed, same env,
same LLM: same candidates, same result.

- :func:`random_search`: uniformly random configurations;
- :func:`hill_climb`: greedy coordinate ascent from the start (every value of one part at a
  time, moving to the best when it improves), restarting from a random configuration at a
  local optimum;
- :func:`evolution`: a genetic algorithm in the style of EvoPrompt-GA (Guo et al. 2024) on
  structured prompts: roulette-wheel parents, uniform crossover of the parts, a one-part
  mutation, and the best ``population`` of parents and children survive (elitist).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

MAX_MISSES = 200
"""Draws of already-scored configurations in a row after which a search stops (space used up)."""


@dataclasses.dataclass(frozen=True)
class Config:
    """One point of the prompt space: indices of the prompt's parts (slot -1 = empty)."""

    instruction: int
    slots: tuple[int, ...]
    template: int
    verbalizer: int
    calibration: int = 0
    """Index into the env's ``calibration_choices`` (0 when the env has none)."""

    def canonical(self) -> Config:
        """The same prompt with its exemplars packed into the first slots: an empty slot does
        not show in the prompt, so slots (3, -1) and (-1, 3) are one prompt, scored once."""
        used = [s for s in self.slots if s >= 0]
        return dataclasses.replace(self, slots=tuple(used + [-1] * (len(self.slots) - len(used))))

    def as_dict(self) -> dict[str, Any]:
        """The configuration as the env's ``score_config`` / ``prompt_of`` take it."""
        return {"instruction": self.instruction, "slots": list(self.slots),
                "template": self.template, "verbalizer": self.verbalizer,
                "calibration": self.calibration}


@dataclasses.dataclass(frozen=True)
class PromptSpace:
    """How many options each part of the Edit env's prompt has, and where search starts."""

    instructions: int
    candidates: int
    """Train examples offered as exemplars."""
    n_slots: int
    templates: int
    verbalizers: int
    initial: Config
    calibrations: int = 1
    """Ways to read the label scores the prompt may choose among (1: not a part of the prompt)."""

    @classmethod
    def of(cls, description: Mapping[str, Any]) -> PromptSpace:
        """From an Edit env's ``prompt_space()``."""
        start = description["initial"]
        initial = Config(int(start["instruction"]), tuple(int(s) for s in start["slots"]),
                         int(start["template"]), int(start["verbalizer"]),
                         int(start.get("calibration", 0)))
        return cls(int(description["instructions"]), int(description["candidates"]),
                   int(description["n_slots"]), int(description["templates"]),
                   int(description["verbalizers"]), initial, int(description.get("calibrations", 1)))

    @property
    def size(self) -> int:
        """Number of distinct prompts (exemplars: an ordered sequence of distinct candidates,
        at most ``n_slots`` long)."""
        fillings = sum(math.perm(self.candidates, k)
                       for k in range(min(self.n_slots, self.candidates) + 1))
        return self.instructions * self.templates * self.verbalizers * self.calibrations * fillings

    def coordinates(self) -> list[str]:
        """The parts coordinate ascent moves along: instruction, each slot, the exemplar order
        (swaps of two slots), template, verbalizer, and calibration when the prompt chooses it."""
        names = ["instruction", *(f"slot {k}" for k in range(self.n_slots))]
        return (names + (["order"] if self.n_slots > 1 else []) + ["template", "verbalizer"]
                + (["calibration"] if self.calibrations > 1 else []))

    def along(self, config: Config, coordinate: str) -> list[Config]:
        """Every other configuration that differs from ``config`` in ``coordinate`` only."""
        if coordinate in ("instruction", "template", "verbalizer", "calibration"):
            n = {"instruction": self.instructions, "template": self.templates,
                 "verbalizer": self.verbalizers, "calibration": self.calibrations}[coordinate]
            current = getattr(config, coordinate)
            return [dataclasses.replace(config, **{coordinate: v}) for v in range(n) if v != current]
        slots = config.slots
        if coordinate == "order":
            out = []
            for k, m in itertools.combinations(range(self.n_slots), 2):
                if slots[k] != slots[m]:
                    swapped = list(slots)
                    swapped[k], swapped[m] = slots[m], slots[k]
                    out.append(dataclasses.replace(config, slots=tuple(swapped)))
            return out
        k = int(coordinate.removeprefix("slot "))
        others = {s for i, s in enumerate(slots) if i != k and s >= 0}
        values = [-1, *(j for j in range(self.candidates) if j not in others)]
        return [dataclasses.replace(config, slots=slots[:k] + (v,) + slots[k + 1:])
                for v in values if v != slots[k]]

    def neighbours(self, config: Config) -> list[Config]:
        """Configurations one edit away (the Edit env's valid edits, stop aside)."""
        return [c for name in self.coordinates() for c in self.along(config, name)]

    def random(self, rng: np.random.Generator) -> Config:
        """A random configuration: each part uniform; each slot empty or an unused example."""
        slots: list[int] = []
        for _ in range(self.n_slots):
            options = [-1, *(j for j in range(self.candidates) if j not in slots)]
            slots.append(int(options[rng.integers(len(options))]))
        return Config(int(rng.integers(self.instructions)), tuple(slots),
                      int(rng.integers(self.templates)), int(rng.integers(self.verbalizers)),
                      int(rng.integers(self.calibrations)) if self.calibrations > 1 else 0)

    def mutate(self, config: Config, rng: np.random.Generator) -> Config:
        """A random neighbour: one part (or the exemplar order) changed at random."""
        names = [n for n in self.coordinates() if self.along(config, n)]
        if not names:
            return config
        options = self.along(config, names[int(rng.integers(len(names)))])
        return options[int(rng.integers(len(options)))]

    def crossover(self, a: Config, b: Config, rng: np.random.Generator) -> Config:
        """Uniform crossover: each part (and each slot) from ``a`` or ``b`` by a fair coin;
        an example that would appear twice leaves its second slot empty."""
        pick = rng.random(3 + self.n_slots) < 0.5
        slots: list[int] = []
        for k in range(self.n_slots):
            s = b.slots[k] if pick[3 + k] else a.slots[k]
            slots.append(-1 if s >= 0 and s in slots else s)
        # drawn after the others, so a space without the coordinate draws as before
        calibration = (b.calibration if rng.random() < 0.5 else a.calibration) if self.calibrations > 1 else 0
        return Config(b.instruction if pick[0] else a.instruction, tuple(slots),
                      b.template if pick[1] else a.template,
                      b.verbalizer if pick[2] else a.verbalizer, calibration)


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One scored candidate and the env's LLM counts right after scoring it."""

    config: Config
    score: float
    llm_calls: int
    distinct: int
    cache_hits: int


class MinibatchScorer:
    """Scores configurations on one Edit env episode's minibatch, each prompt at most once.

    ``reset(seed=seed)`` draws the minibatch and scores the start configuration; every
    later candidate is scored on the same minibatch (common random numbers) through the
    env's public ``score_config``, which charges the env's budget and usage counters.

    Args:
        env: an Edit env (``gym.make`` of a ``PromptEnv/<Task>-Edit-v0`` id), any wrappers.
        seed: seeds the env's reset, i.e. which dev inputs form the minibatch.
    """

    def __init__(self, env: gym.Env, seed: int | None) -> None:
        self.env = env
        self.edit = env.unwrapped
        self.space = PromptSpace.of(self.edit.prompt_space())
        self.scores: dict[Config, float] = {}
        self.history: list[Evaluation] = []
        _, info = env.reset(seed=seed)
        self.exhausted = bool(info.get("budget_exhausted", False))
        if not self.exhausted:
            self._record(self.space.initial, float(info["score"]))

    def _record(self, config: Config, score: float) -> None:
        usage = self.edit.llm_usage()
        self.scores[config.canonical()] = score
        self.history.append(Evaluation(config, score, int(usage["env_calls"]),
                                       int(usage["distinct"]), int(usage["cache_hits"])))

    def __call__(self, config: Config) -> float | None:
        """The minibatch score of ``config`` (remembered), or None once the budget is spent."""
        if config.canonical() in self.scores:
            return self.scores[config.canonical()]
        if self.exhausted:
            return None
        score = self.edit.score_config(config.as_dict())
        if score is None:
            self.exhausted = True
            return None
        self._record(config, float(score))
        return float(score)

    def known(self, config: Config) -> float | None:
        """The score of ``config`` (or of the same prompt) if scored already, else None."""
        return self.scores.get(config.canonical())

    def unseen(self, draw: Callable[[], Config]) -> Config | None:
        """A configuration from ``draw()`` not scored yet (None after MAX_MISSES misses)."""
        for _ in range(MAX_MISSES):
            config = draw()
            if config.canonical() not in self.scores:
                return config
        return None

    @property
    def initial_score(self) -> float | None:
        """The start's minibatch score (None when the budget did not cover the reset)."""
        return self.history[0].score if self.history else None

    def best(self) -> tuple[Config, float | None]:
        """The best-scoring candidate so far (the earliest among ties, so the start wins a tie)."""
        if not self.history:
            return self.space.initial, None
        best = max(self.history, key=lambda e: e.score)  # max keeps the first of equal keys
        return best.config, best.score

    def curve(self) -> list[dict[str, float]]:
        """Per scored candidate: its score minus the start's (``reward``), the best so far
        minus the start's (``best``) and the env's LLM counts (``agents.experiments.curves``)."""
        start = self.initial_score or 0.0
        out: list[dict[str, float]] = []
        best = -math.inf
        for i, e in enumerate(self.history[1:], start=1):
            best = max(best, e.score - start)
            out.append({"step": i, "reward": e.score - start, "best": best,
                        "llm_calls": e.llm_calls, "distinct": e.distinct, "cache_hits": e.cache_hits})
        return out


SearchMethod = Callable[[MinibatchScorer, np.random.Generator, int], list[Config]]
"""``search(scorer, rng, evaluations)``: score candidates until the budget (or the space) ends
and return what the method holds at the end (random search: nothing; hill climbing: its
current point; evolution: its population); the result is ``scorer.best()``. ``evaluations``
is about how many candidates the budget pays for (it sizes a population)."""


def random_search(scorer: MinibatchScorer, rng: np.random.Generator,
                  evaluations: int = 0) -> list[Config]:
    """Score uniformly random unseen configurations (after the start) until the budget ends."""
    while not scorer.exhausted:
        config = scorer.unseen(lambda: scorer.space.random(rng))
        if config is None or scorer(config) is None:
            break
    return []


def hill_climb(scorer: MinibatchScorer, rng: np.random.Generator,
               evaluations: int = 0) -> list[Config]:
    """Greedy coordinate ascent from the start, with random restarts at local optima.

    Each pass visits the coordinates in a random order; for each it scores every other value
    (the others fixed) and moves to the best one if it beats the current score strictly. A
    pass without a move is a local optimum: the climb restarts from an unseen random
    configuration. The start is scored first, so the best configuration the scorer reports
    never scores below it on the minibatch.
    """
    space = scorer.space
    current = space.initial
    value = scorer(current)
    while value is not None:
        moved = False
        for name in rng.permutation(space.coordinates()):
            best, best_value = current, value
            for candidate in space.along(current, str(name)):
                score = scorer(candidate)
                if score is None:
                    return [current]
                if score > best_value:
                    best, best_value = candidate, score
            if best != current:
                current, value, moved = best, best_value, True
        if not moved:
            restart = scorer.unseen(lambda: space.random(rng))
            if restart is None:
                return [current]
            current, value = restart, scorer(restart)
    return [current]


def population_size(evaluations: int) -> int:
    """Population of :func:`evolution` for a budget of about ``evaluations`` candidates:
    a quarter of them (at least 2, at most 10), so that a few generations fit."""
    return max(2, min(10, evaluations // 4))


def roulette(scores: np.ndarray, rng: np.random.Generator, n: int) -> list[int]:
    """``n`` distinct indices drawn with probability growing with the score (fitness-proportional
    on scores shifted to be positive; uniform when all scores are equal)."""
    shifted = scores - scores.min()
    weights = shifted + (shifted.max() * 0.05 if shifted.max() > 0 else 1.0)
    chosen = rng.choice(len(scores), size=min(n, len(scores)), replace=False,
                        p=weights / weights.sum())
    return [int(i) for i in chosen]


def breed(space: PromptSpace, population: list[Config], scores: np.ndarray,
          rng: np.random.Generator) -> Config:
    """A child: two roulette-wheel parents, uniform crossover, then a one-part mutation."""
    a, b = (population[i] for i in roulette(scores, rng, 2))
    return space.mutate(space.crossover(a, b, rng), rng)


def survivors(pool: list[Config], scorer: MinibatchScorer, size: int) -> list[Config]:
    """The ``size`` best of ``pool`` by score (a stable sort: an earlier one wins a tie)."""
    ranked = sorted(range(len(pool)), key=lambda i: -float(scorer.known(pool[i]) or 0.0))
    return [pool[i] for i in ranked[:size]]


def evolution(scorer: MinibatchScorer, rng: np.random.Generator,
              evaluations: int = 0) -> list[Config]:
    """EvoPrompt-style genetic algorithm over structured prompts.

    The population starts as the start configuration plus random ones. Each generation
    makes ``population`` children: two parents drawn by roulette wheel, uniform
    crossover, then a one-part mutation (a child already scored is redrawn); parents and
    children together are ranked by score and the best ``population`` survive, so the best
    configuration is never lost.
    """
    space = scorer.space
    size = population_size(evaluations)
    population = [space.initial]
    if scorer(space.initial) is None:
        return population
    while len(population) < size:
        config = scorer.unseen(lambda: space.random(rng))
        if config is None or scorer(config) is None:
            return population
        population.append(config)
    while not scorer.exhausted:
        scores = np.array([scorer.known(c) for c in population], dtype=np.float64)
        children: list[Config] = []
        draw = functools.partial(breed, space, population, scores, rng)
        for _ in range(size):
            config = scorer.unseen(draw)
            if config is None or scorer(config) is None:
                break
            children.append(config)
        if not children:
            break
        population = survivors(population + children, scorer, size)  # parents first
    return population


SEARCH_METHODS: dict[str, SearchMethod] = {
    "random-search": random_search,
    "hill-climb": hill_climb,
    "evolution": evolution,
}
"""Registered policy name -> search method."""
