"""The policy registry: every way of choosing prompts, behind one interface.

A policy is given a :class:`~agents.experiments.setting.Setting` (a task on a
seed) and a budget of LLM calls, and returns a :class:`PolicyResult`: either
one prompt index per evaluation input (``choices``: pool prompts chosen per
input), or one final ``prompt`` (edit and search policies), with what its
training cost. :func:`~agents.experiments.evaluate.evaluate_result` turns that
into a results row the same way for every policy. Baselines, this package's
agents, stable-baselines3 algorithms and search methods are all registered
here, and the demo, the CLI and the benchmark harness look them up by name.

    from agents.experiments import POLICIES, register_policy, Policy
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

from agents.experiments.setting import Setting
from agents.experiments.usage import Usage


@dataclasses.dataclass
class PolicyResult:
    """What a policy chose and what choosing cost."""

    choices: list[int] | None = None
    """Pool prompt index per evaluation input (read from the test score table)."""
    prompt: Any = None
    """One final prompt (a ``prompt_env.prompts.Prompt``), scored on the evaluation inputs."""
    expected_score: float | None = None
    """A score read straight from the tables (the random policy's expected value)."""
    train: Usage = dataclasses.field(default_factory=Usage)
    """LLM spend and wall time of training or selection (measured)."""
    curve: list[dict[str, float]] = dataclasses.field(default_factory=list)
    """Training curve (see ``agents.experiments.curves``)."""
    eval_calls: int | None = None
    """Evaluation calls when not one per evaluation input (the oracle's are in ``train``)."""
    evaluation: Usage | None = None
    """Measured cost of an evaluation the policy did itself (white-box policies score their
    trained model on the evaluation inputs, outside the LLM protocol); with
    ``expected_score``, it replaces the cost of reading the score tables."""
    notes: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    """More fields for the results row (e.g. the final prompt's description)."""


PolicyRunner = Callable[[Setting, int], PolicyResult]
"""``runner(setting, budget)``: train within ``budget`` LLM calls, then choose."""


@dataclasses.dataclass(frozen=True)
class Policy:
    """A registered policy."""

    name: str
    kind: str
    """"baseline", "agent" (this package's learners), "sb3", "search", or "white-box"
    (needs the task model's weights and gradients, e.g. soft prompts)."""
    description: str
    run: PolicyRunner
    upper_bound: bool = False
    """True for the oracle: it looks at the answers, so it bounds, not competes."""
    trains: bool = True
    """False for policies that spend no training budget (they read the score tables)."""
    writes: bool = False
    """True for policies that write prompt text with the setting's proposer LLM."""


POLICIES: dict[str, Policy] = {}
"""Policy name -> :class:`Policy`, in the order tables list them."""


def register_policy(policy: Policy) -> Policy:
    """Add (or replace) a policy in :data:`POLICIES`."""
    POLICIES[policy.name] = policy
    return policy


def get_policy(name: str) -> Policy:
    """The policy called ``name``, or a ValueError with close matches."""
    if name in POLICIES:
        return POLICIES[name]
    close = difflib.get_close_matches(name, list(POLICIES), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown policy {name!r}{hint} Known policies: {', '.join(POLICIES)}")


def uses_proposer(name: str) -> bool:
    """Whether the registered policy ``name`` (optionally ``name@calibration``) writes prompt
    text with a proposer LLM (False for names not registered)."""
    policy = POLICIES.get(name.partition("@")[0])
    return policy is not None and policy.writes
