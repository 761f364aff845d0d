"""The experiment layer: one policy registry, one train, one evaluate, one report.

- :mod:`~agents.experiments.registry`: ``POLICIES`` (baselines, this package's
  agents, stable-baselines3, search methods, white-box soft prompts) behind one interface;
- :mod:`~agents.experiments.setting`: a task on a seed, its envs and score tables;
- :mod:`~agents.experiments.train`: train one of this package's agents on an env;
- :mod:`~agents.experiments.evaluate` / :mod:`~agents.experiments.run_policies`:
  a results row per policy, every cost in it measured;
- :mod:`~agents.experiments.report` and :mod:`~agents.experiments.plots`: tables
  (terminal and Markdown) and figures from results rows;
- :mod:`~agents.experiments.optimize`: ``optimize(data, budget=...)``, a user's data to
  ``best_prompt.txt`` (``prompt-env optimize``, ``agents.optimize``);
- :mod:`~agents.experiments.tensorboard`: TensorBoard event files of runs and results rows;
- :mod:`~agents.experiments.demo`: the main job (``make demo``).
"""

from __future__ import annotations

from agents.experiments import compose_policies as _compose_policies  # noqa: F401  (Compose env)
from agents.experiments import policies as _policies  # noqa: F401  (registers the policies)
from agents.experiments import proposer_policies as _proposer_policies  # noqa: F401  (LLM-written)
from agents.experiments import search_policies as _search_policies  # noqa: F401  (Edit-env search)
from agents.experiments import white_box as _white_box  # noqa: F401  (soft-prompt, prefix)
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
