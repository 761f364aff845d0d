"""Baselines that give every learned policy's number a meaning.

All of them work from *score tables*: the reward of each of the K prompts on
each input of a split (``PromptSelectEnv.score_table(split)``, one batched,
cached LLM call per prompt group).

* random prompt: the expected score of a uniformly random prompt per input;
* manual prompt: the task's hand-written prompt (pool candidate 0);
* best-fixed-on-dev: the prompt with the best mean on dev (exhaustive search,
  K x n_dev LLM calls), then used for every test input;
* per-query oracle: the best prompt for each input, chosen by looking at the
  answers. An UPPER BOUND that no real policy can reach, labelled as such.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

ORACLE_LABEL = "per-query-oracle"


@dataclasses.dataclass
class PolicyScore:
    """A policy's result on one split."""

    policy: str
    test_score: float
    choices: list[int]
    """The prompt index chosen for each input (the oracle: its best prompt)."""
    selection_calls: int = 0
    """LLM calls spent choosing (training, dev search); evaluation calls come on top."""
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def score_of_choices(table: np.ndarray, choices: Sequence[int]) -> float:
    """Mean score when input i is answered with prompt ``choices[i]``."""
    table = np.asarray(table, dtype=np.float64)
    if len(choices) != len(table):
        raise ValueError(f"{len(choices)} choices for {len(table)} inputs")
    return float(table[np.arange(len(table)), np.asarray(choices, dtype=int)].mean())


def random_prompt(test_table: np.ndarray) -> PolicyScore:
    """Expected score of picking a prompt uniformly at random for each input."""
    table = np.asarray(test_table, dtype=np.float64)
    return PolicyScore("random", float(table.mean()), [-1] * len(table),
                       notes="expected value over a uniformly random prompt per input")


def manual_prompt(test_table: np.ndarray, manual_index: int = 0) -> PolicyScore:
    table = np.asarray(test_table, dtype=np.float64)
    return PolicyScore("manual", float(table[:, manual_index].mean()), [manual_index] * len(table),
                       notes="the task's hand-written prompt")


def best_fixed_on_dev(dev_table: np.ndarray, test_table: np.ndarray) -> PolicyScore:
    """Pick the prompt with the best dev mean (ties: lowest index), report it on test."""
    dev = np.asarray(dev_table, dtype=np.float64)
    best = int(np.argmax(dev.mean(axis=0)))
    test = np.asarray(test_table, dtype=np.float64)
    return PolicyScore("best-fixed-on-dev", float(test[:, best].mean()), [best] * len(test),
                       selection_calls=int(dev.size),
                       notes=f"prompt {best} (dev mean {dev[:, best].mean():.3f})")


def per_query_oracle(test_table: np.ndarray) -> PolicyScore:
    """UPPER BOUND: the best prompt for each input, chosen with the answers in hand."""
    table = np.asarray(test_table, dtype=np.float64)
    return PolicyScore(ORACLE_LABEL, float(table.max(axis=1).mean()), [int(i) for i in table.argmax(axis=1)],
                       selection_calls=int(table.size),
                       notes="upper bound: looks at the answers; not a real policy")


def all_baselines(dev_table: np.ndarray, test_table: np.ndarray, manual_index: int = 0) -> list[PolicyScore]:
    return [
        random_prompt(test_table),
        manual_prompt(test_table, manual_index),
        best_fixed_on_dev(dev_table, test_table),
        per_query_oracle(test_table),
    ]
