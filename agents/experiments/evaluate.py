"""Evaluate any policy's result the same way: one results row per (policy, setting).

Choice policies are scored from the setting's test score table (computed once
for all of them); a final prompt is scored on the same evaluation inputs directly, so
a setting whose policies all return prompts never computes the pool's tables. A
row says what the policy spent, all of it measured: LLM calls requested
(``llm_calls`` = training or selection + evaluation), distinct (prompt, input)
pairs among them, the cache hit rate of its own phases, and the wall time of
the work done for that policy alone. A white-box policy (soft prompts) cannot send its
trained model through the LLM protocol: it scores the same evaluation inputs itself and
returns that score with the measured cost (``PolicyResult.evaluation``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from agents.baselines import score_of_choices
from agents.experiments.registry import PolicyResult
from agents.experiments.rows import ResultRow
from agents.experiments.setting import Setting
from agents.experiments.usage import Usage, read_usage
from agents.rollout import run_episode


def evaluate_result(setting: Setting, policy: str, result: PolicyResult, *,
                    upper_bound: bool = False, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The results row of ``result`` on the setting's evaluation inputs (``context``: more
    fields that describe the run, e.g. the task and the seed)."""
    counts: list[int] = []
    table_hit_rate = 0.0
    if result.prompt is not None:
        score, evaluation = setting.score_prompt(result.prompt)
        n_test = setting.n_eval
    else:
        tables = setting.tables()
        n_test, k, table_hit_rate = tables.n_test, tables.n_prompts, tables.test_usage.hit_rate
        if result.expected_score is not None:
            score = float(result.expected_score)
        elif result.choices is not None:
            score = score_of_choices(tables.test, result.choices)
            counts = np.bincount([c for c in result.choices if c >= 0], minlength=k).tolist()
        else:
            raise ValueError(f"policy {policy!r} returned neither choices, a prompt nor a score")
        calls = n_test if result.eval_calls is None else int(result.eval_calls)
        # read from the shared test table: no new LLM work, so no wall time of its own;
        # a policy that evaluated itself (white-box) reports what that measured
        evaluation = (Usage(calls=calls, distinct=calls) if result.evaluation is None
                      else result.evaluation)
    # the hit rate of the work done for this policy; table readers report the table's
    evaluated = result.prompt is not None or result.evaluation is not None
    measured = result.train + (evaluation if evaluated else Usage())
    hit_rate = measured.hit_rate if measured.calls else table_hit_rate
    return ResultRow(policy, score, n_test, result.train, evaluation, hit_rate, counts, upper_bound,
                     result.notes, {**result.extra, **(context or {})}).as_dict()


@dataclasses.dataclass
class EditEpisode:
    """One greedy episode on an Edit env."""

    initial_score: float
    final_score: float
    initial_parts: Any
    final_parts: Any
    prompt: Any
    """The final prompt (``env.unwrapped.prompt``)."""
    edits: list[dict[str, Any]]
    usage: dict[str, int]


def greedy_edit_episode(env: Any, choose: Callable[[Any, np.ndarray], int], *,
                        seed: int | None) -> EditEpisode:
    """Run one episode choosing ``choose(obs, action_mask)`` until it ends; return its prompt."""
    episode = run_episode(env, choose, seed=seed)
    edits = [{"action": info["action"], "valid": bool(info["valid_action"]),
              "reward": round(reward, 4), "score": round(float(info["score"]), 4),
              "unscored": bool(info.get("budget_exhausted"))}  # no budget left: not applied
             for reward, info in zip(episode.rewards, episode.infos, strict=True)]
    return EditEpisode(float(episode.reset_info["score"]), float(episode.final_info["score"]),
                       episode.reset_info["prompt_parts"], episode.final_info["prompt_parts"],
                       env.unwrapped.prompt, edits, read_usage(env))
