"""The experiment layer: one policy registry, one train, one evaluate, one report.

- :mod:`~agents.experiments.registry`: ``POLICIES`` (baselines, this package's
  agents, stable-baselines3, search methods) behind one interface;
- :mod:`~agents.experiments.setting`: a task on a seed, its envs and score tables;
- :mod:`~agents.experiments.train`: train one of this package's agents on an env;
- :mod:`~agents.experiments.evaluate` / :mod:`~agents.experiments.run_policies`:
  a results row per policy, every cost in it measured;
- :mod:`~agents.experiments.report` and :mod:`~agents.experiments.plots`: tables
  (terminal and Markdown) and figures from results rows;
- :mod:`~agents.experiments.demo`: the main job (``make demo``).
"""

from __future__ import annotations

from agents.experiments import policies as _policies  # noqa: F401  (registers the policies)
from agents.experiments.registry import POLICIES, Policy, PolicyResult, get_policy, register_policy
from agents.experiments.run_policies import run_policy
from agents.experiments.setting import ScoreTables, Setting
from agents.experiments.train import TrainResult, train
from agents.experiments.usage import Usage

__all__ = [
    "POLICIES",
    "Policy",
    "PolicyResult",
    "ScoreTables",
    "Setting",
    "TrainResult",
    "Usage",
    "get_policy",
    "register_policy",
    "run_policy",
    "train",
]
