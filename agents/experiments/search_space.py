"""The prompt space the searches and Q-learners of the harness and ``prompt-env optimize`` share.

Defined once here and read by both (``search_space = true`` in a harness config,
and every Edit-env policy of ``prompt-env optimize``):

- a prompt is an instruction of the task's pool, up to 4 exemplars in any order drawn from
  the train split (every example of a 16-shot split; of a larger one the first
  :data:`MAX_EXEMPLAR_CANDIDATES`, label-balanced for classification, so that the edit actions
  stay a few hundred rather than thousands), a template, a verbalizer and (classification)
  whether its label scores are read raw or contextually calibrated (``calibration_choices``);
- every candidate is scored on one fixed set of dev inputs (all of dev up to 32; a fixed
  random 32 of a larger dev split, drawn by the seed), so a prompt scored twice costs
  nothing and two prompts differ by their prompt only;
- classification searches select on ``accuracy_margin`` (dev accuracy, ties broken by the
  label-probability margin); generation searches on the task's metric.

This is the configuration behind the committed edit-search rows
(``benchmarks/results/edit_search/``), where tabular Q-learning with gamma = 0.9 beat
best-of-pool by 4.3 (SST-2) and 10.5 (AG News) points.
"""

from __future__ import annotations

from typing import Any

MAX_EXEMPLAR_CANDIDATES = 64
"""Train examples offered as exemplars: all of SST-2's 32 and AG News' 64 (the committed rows,
recorded as ``n_candidates: None``, searched this same space); the instruction-induction tasks'
thousands of train pairs would give the Q-learners over 10,000 edit actions."""

SEARCH_SPACE: dict[str, Any] = {
    "n_candidates": MAX_EXEMPLAR_CANDIDATES,  # every train example of a 16-shot split
    "n_slots": 4,               # up to 4 exemplars, in any order
    "max_edits": 8,             # edits per Edit-env episode
    "fixed_minibatch": True,    # one fixed set of dev inputs for the whole run
    "minibatch_size": 32,       # all of dev up to 32; a fixed random 32 of a larger dev
}
"""``gym.make`` kwargs of the Edit env that define the search space (any task kind)."""

SEARCH_CALIBRATIONS: list[str | None] = [None, "content-free"]
"""Classification: reading the label scores raw or contextually calibrated is a part of the
prompt (``Prompt.calibration``), chosen like the instruction."""

SEARCH_TRAIN_REWARD = "accuracy_margin"
"""What classification searches select on: accuracy, ties broken by the margin."""


def search_space_options(kind: str) -> dict[str, Any]:
    """The Edit-env kwargs of the search space for a task of ``kind``."""
    options = dict(SEARCH_SPACE)
    if kind == "classification":
        options["calibration_choices"] = list(SEARCH_CALIBRATIONS)
    return options


def search_train_reward(kind: str, metric: str | None) -> str | None:
    """The reward searches select on: ``accuracy_margin`` for classification (unless a metric is
    chosen), else the metric (None: the task's own)."""
    return SEARCH_TRAIN_REWARD if kind == "classification" and metric is None else metric


def describe_search_space(options: dict[str, Any], train_reward: str | None) -> str:
    """One line for reports: what the searches explored and what they selected on."""
    slots = options.get("n_slots", 2)
    candidates = options.get("n_candidates")
    size = options.get("minibatch_size")
    fixed = "one fixed set of" if options.get("fixed_minibatch") else "a fresh minibatch each episode of"
    calibration = (", raw or content-free calibrated label scores"
                   if options.get("calibration_choices") else "")
    offered = ("every train example" if candidates is None else
               f"the first {candidates} train examples (all of a smaller train split)")
    return (f"an instruction, template and label words of the pool, up to {slots} exemplars from "
            f"{offered}"
            f"{calibration}; each candidate scored on {fixed} "
            f"{'all' if size is None else f'up to {size}'} dev inputs with "
            f"{train_reward or 'the task metric'}")
