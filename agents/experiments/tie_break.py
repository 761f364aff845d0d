"""Breaking ties between the best prompts of a search on inputs no prompt has seen.

A search scores every candidate on the same few dev inputs (32 on SST-2), and small
models saturate them: many prompts answer 29-31 of 32 right, and which of the dev-tied
prompts a search keeps decides its test score. The tie-break takes the prompts within
``within`` dev inputs of the best (at most ``prompts`` of them, best first), scores them on
up to ``inputs`` held-out inputs, and keeps the best over dev and held-out inputs together.

Held-out inputs are ones no candidate shows and no search scored: first the dev inputs
outside the search's fixed minibatch (AG News: the other 32 of its 64), then train examples
that none of the tied prompts uses as an exemplar, in an order drawn by the seed. Their calls
are charged to the policy's budget: a search with a tie-break gets ``budget - reserve``
(:meth:`TieBreak.reserve`: at most a fifth of the budget) for itself, and the tie-break fits
its prompts and inputs into the reserve.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from agents.experiments.usage import Usage, measured

CALIBRATION_PREMISES = 3
"""Calls a content-free calibrated prompt adds the first time it is scored."""
MAX_SHARE = 5
"""The tie-break takes at most 1/MAX_SHARE of a policy's budget."""


@dataclasses.dataclass(frozen=True)
class TieBreak:
    """How many tied prompts to rescore, on how many held-out inputs."""

    prompts: int = 8
    """At most this many prompts (the best on dev first) are rescored."""
    inputs: int = 32
    """Held-out inputs each of them is scored on."""
    within: int = 1
    """A prompt within this many dev inputs (right answers) of the best one ties with it."""

    def __post_init__(self) -> None:
        for name in ("prompts", "inputs", "within"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name != "within" else 0):
                raise ValueError(f"tie_break {name} must be a positive integer, got {value!r}")

    def reserve(self, budget: int | None = None) -> int:
        """The most LLM calls the tie-break spends (what the search leaves for it): its full
        size, or a fifth of ``budget`` when that is less."""
        full = self.prompts * (self.inputs + CALIBRATION_PREMISES)
        return full if budget is None else min(full, max(0, budget) // MAX_SHARE)

    @classmethod
    def of(cls, value: Any) -> TieBreak | None:
        """From a config value: True (the defaults), a table of fields, False/None (off)."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, TieBreak):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {f.name for f in dataclasses.fields(cls)}
            if unknown:
                raise ValueError(f"tie_break takes prompts, inputs and within; got {sorted(unknown)}")
            return cls(**value)
        raise ValueError(f"tie_break must be true, false or a table of prompts/inputs/within, got {value!r}")


@dataclasses.dataclass
class TieBreakResult:
    prompt: Any
    """The winner."""
    usage: Usage
    """What rescoring cost (zero when nothing tied)."""
    notes: str
    details: dict[str, Any]


def tied_candidates(scored: list[tuple[Any, float]], n_dev: int, tie_break: TieBreak) -> list[tuple[Any, float]]:
    """The prompts within ``tie_break.within`` dev inputs of the best, best first (stable)."""
    if not scored:
        return []
    best = max(score for _, score in scored)
    slack = tie_break.within / max(1, n_dev) + 1e-9
    ranked = sorted(((p, s) for p, s in scored if s >= best - slack), key=lambda ps: -ps[1])
    return ranked[: tie_break.prompts]


def held_out_inputs(edit: Any, select: Any, prompts: list[Any], count: int,
                    seed: int) -> list[tuple[str, list[int]]]:
    """Up to ``count`` inputs no search scored and no prompt shows: ``[(split, indices), ...]``."""
    split = edit.split
    used = set(edit.minibatch_indices())
    rng = np.random.default_rng(seed)
    spare_dev = [i for i in rng.permutation(len(edit.examples)).tolist() if i not in used]
    if edit.max_examples is not None:  # the env's split is the first max_examples inputs
        spare_dev = [i for i in spare_dev if i < edit.max_examples]
    chosen = [(split, spare_dev[:count])]
    left = count - len(chosen[0][1])
    if left > 0 and split != "train":
        shown = {i for p in prompts for i in p.exemplars}
        train = select.task.split("train")
        spare_train = [i for i in rng.permutation(len(train)).tolist() if i not in shown]
        chosen.append(("train", spare_train[:left]))
    return [(s, idx) for s, idx in chosen if idx]


def break_ties(edit: Any, select: Any, tie_break: TieBreak, *, reward: str | None,
               seed: int, calls: int | None = None) -> TieBreakResult:
    """The best of the Edit env's scored prompts, dev ties broken on held-out inputs.

    ``edit`` is the (unwrapped) Edit env the search ran on (its ``scored_prompts()`` and
    ``minibatch_indices()``); ``select`` the task's Select env, which scores the tied prompts on
    the held-out inputs (``score_prompts(..., indices=...)``) with ``reward``. ``calls`` caps
    what it spends (default :meth:`TieBreak.reserve`): fewer inputs per prompt when needed.
    """
    n_dev = len(edit.minibatch_indices())
    tied = tied_candidates(edit.scored_prompts(), n_dev, tie_break)
    if not tied:
        raise ValueError("the search scored no prompt: nothing to choose from")
    calls = tie_break.reserve() if calls is None else calls
    inputs = min(tie_break.inputs, calls // len(tied) - CALIBRATION_PREMISES)
    if len(tied) == 1 or inputs < 1:
        why = "no tie on dev" if len(tied) == 1 else f"{len(tied)} tied, no calls left to rescore them"
        return TieBreakResult(tied[0][0], Usage(), why, {"tied": len(tied)})
    prompts = [p for p, _ in tied]
    parts = held_out_inputs(edit, select, prompts, inputs, seed)
    totals = np.array([score * n_dev for _, score in tied])
    counts = n_dev
    with measured(select) as usage:
        for split, indices in parts:
            table = select.score_prompts(prompts, split, reward=reward, indices=indices)
            totals = totals + table.sum(axis=0)
            counts += len(indices)
    pooled = totals / counts
    winner = int(np.argmax(pooled))  # the first of ties: the better one on dev
    held = counts - n_dev
    details = {"tied": len(tied), "held_out_inputs": held,
               "held_out_from": {split: len(indices) for split, indices in parts},
               "dev_scores": [round(s, 4) for _, s in tied],
               "pooled_scores": [round(float(v), 4) for v in pooled], "winner_rank_on_dev": winner}
    notes = (f"{len(tied)} prompts within {tie_break.within} dev input(s) of the best rescored on "
             f"{held} held-out inputs ({', '.join(f'{len(i)} {s}' for s, i in parts)}); kept the "
             f"{'best' if winner == 0 else f'#{winner + 1}'} on dev "
             f"(dev+held-out {pooled[winner]:.3f})")
    return TieBreakResult(prompts[winner], usage(), notes, details)
