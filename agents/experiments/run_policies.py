"""Run registered policies on one setting and evaluate them: the experiment itself.

The demo, ``prompt-env eval`` and each (task, seed) of the benchmark harness
call :func:`run_policy` per policy; it trains (within the budget), evaluates
and returns the results row.
"""

from __future__ import annotations

from typing import Any

from agents.experiments.curves import compress_curve
from agents.experiments.evaluate import evaluate_result
from agents.experiments.registry import get_policy
from agents.experiments.setting import Setting

CALIBRATED = "@"
"""``"<policy>@<calibration>"`` runs a policy with calibrated label scoring, e.g.
``"best-fixed-on-dev@content-free"``: its training rewards, dev search and test
scores all use ``calibration="content-free"`` (see ``prompt_env.scoring``)."""


def split_policy_name(name: str) -> tuple[str, str | None]:
    """``("best-fixed-on-dev", "content-free")`` for ``"best-fixed-on-dev@content-free"``."""
    base, _, calibration = name.partition(CALIBRATED)
    return base, calibration or None


def run_policy(setting: Setting, name: str, budget: int,
               context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (within ``budget`` LLM calls, if the policy trains) and evaluate one policy.

    ``name`` is a registered policy, optionally with ``@<calibration>``; ``context`` adds
    fields to the row (the harness: the task's name and options). The row's distinct pairs
    are the policy's own: pairs an earlier policy of the setting evaluated count again.
    """
    base, calibration = split_policy_name(name)
    policy = get_policy(base)
    if calibration is not None:
        setting = setting.calibrated(calibration)
    setting.restart_distinct_count()
    result = policy.run(setting, budget)
    fields = {
        "seed": setting.seed,
        "metric": setting.resolved_metric,
        "split": setting.split,
        "test_limit": setting.test_limit,
        "budget": budget if policy.trains else 0,
        "train_reward": setting.train_reward,
        "llm": setting.env_kwargs.get("llm", "default"),
        "calibration": setting.env_kwargs.get("calibration"),
        **({"curve": compress_curve(result.curve)} if result.curve else {}),
        **(context or {}),
    }
    return evaluate_result(setting, name, result, upper_bound=policy.upper_bound, context=fields)
