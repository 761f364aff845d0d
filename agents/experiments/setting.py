"""One task on one seed: the envs its policies train on and the tables they are judged by.

A :class:`Setting` is what the demo, ``prompt-env eval``, ``prompt-env optimize`` and
the benchmark harness share: the Select env of a task (its pool prompts scored on dev and
on a fixed test subset, once, batched and cached) and, for edit policies, the task's Edit
env. Every env is made with ``gym.make`` from registered ids and JSON keyword arguments.
:meth:`Setting.for_task` builds one from a task name or a data path; the defaults that
every caller shares (the training reward, the 16-shot split of a seed) live there.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np

from agents.experiments.search_space import search_space_options, search_train_reward
from agents.experiments.task_ids import task_envs
from agents.experiments.tie_break import TieBreak
from agents.experiments.usage import Usage, measured
from agents.progress import ProgressReporter
from prompt_env.tasks.catalog import TASK_CATALOG

CLASSIFICATION_TRAIN_REWARD = "margin"
"""What learners train on for a classification task when neither a training reward nor a
metric is given: the label-probability margin (RLPrompt's), denser than accuracy."""


def default_train_reward(kind: str, metric: str | None) -> str | None:
    """The training reward when none is given: the margin for classification (unless a
    metric is chosen: then that metric), else the metric (None: the task's own)."""
    return CLASSIFICATION_TRAIN_REWARD if kind == "classification" and metric is None else metric


@dataclasses.dataclass
class ScoreTables:
    """Reward of every pool prompt on every dev and test input, and what computing them cost."""

    dev: np.ndarray
    """Shape (n_dev, K)."""
    test: np.ndarray
    """Shape (n_test, K): the split being evaluated (test, or the split asked for)."""
    dev_usage: Usage
    test_usage: Usage
    prompt_names: list[str]

    @property
    def n_test(self) -> int:
        return int(self.test.shape[0])

    @property
    def n_prompts(self) -> int:
        return int(self.test.shape[1])


@dataclasses.dataclass
class Setting:
    """Where policies train and how they are evaluated, for one task and seed."""

    select_id: str
    """A registered Select env id of the task (the pool, the score tables)."""
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """``gym.make`` kwargs every env of the setting shares (llm, data_dir, task_options ...)."""
    seed: int = 0
    train_reward: str | None = None
    """Reward while training (None: the task's metric)."""
    metric: str | None = None
    """Reward the tables report (None: the task's metric)."""
    split: str = "test"
    """The split policies are evaluated on."""
    test_limit: int | None = None
    """Evaluate on the first N inputs of ``split`` only (a fixed subset)."""
    dev_limit: int | None = None
    """best-fixed-on-dev (and other dev searches) use the first N dev inputs only."""
    edit_id: str | None = None
    """The task's Edit env id, for policies that edit prompts."""
    edit_minibatch: int = 8
    """Dev inputs each edit is scored on (``edit_options["minibatch_size"]`` wins when given)."""
    edit_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """More ``gym.make`` kwargs of the Edit env of the edit and search policies: the prompt
    space (``n_candidates``, ``n_slots``), ``max_edits``, ``minibatch_size``, ``fixed_minibatch``."""
    compose_id: str | None = None
    """The task's Compose env id (classification tasks), for policies that write prompts word by word."""
    compose_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """``gym.make`` kwargs of the Compose env only (``prompt_length``, ``position``, ``zscore`` ...)."""
    tie_break: TieBreak | None = None
    """Edit-env searches and learners: rescore the dev-tied best prompts on held-out inputs
    (:mod:`~agents.experiments.tie_break`); None keeps the best on dev as it is."""
    proposer: Any = "task"
    """Who writes instructions for the LLM-writing policies (``ape``, ``opro``,
    ``evoprompt-llm``, ``gepa``, ``edit-*-propose``): ``"task"`` (the task LLM, metered apart)
    or any LLM spec (see ``prompt_env.proposer``)."""
    reporter: ProgressReporter | None = dataclasses.field(default=None, repr=False, compare=False)
    """Where progress goes (a silent reporter when None)."""
    # made on first use and kept; ``dataclasses.replace`` starts a copy without them
    _select: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)
    _tables: ScoreTables | None = dataclasses.field(default=None, init=False, repr=False,
                                                    compare=False)
    _observations: dict[bool, list[Any]] = dataclasses.field(default_factory=dict, init=False,
                                                             repr=False, compare=False)
    _variants: dict[str, Setting] = dataclasses.field(default_factory=dict, init=False, repr=False,
                                                      compare=False)

    @classmethod
    def for_task(cls, task: str, *, llm: str | dict[str, Any] = "default", seed: int = 0,
                 data_dir: str | None = None, task_options: dict[str, Any] | None = None,
                 train_reward: str | None = None, metric: str | None = None,
                 env_kwargs: dict[str, Any] | None = None, seed_picks_split: bool = True,
                 search_space: bool = False, **fields: Any) -> Setting:
        """The setting of a catalog task name or of a user's data path (a file or directory).

        The one place where a setting's defaults are decided: ``train_reward=None`` becomes
        :func:`default_train_reward` of the task; for a catalog task with 16-shot splits
        (sst2, agnews) a ``seed`` that names one (13, 21, 42, 87, 100) also picks that split
        unless ``task_options`` give ``few_shot_seed`` (or ``seed_picks_split=False``).
        ``env_kwargs`` are more ``gym.make`` kwargs of every env of the setting (``encoder``,
        ``calibration`` ...). ``search_space=True`` gives the Edit-env policies the shared
        search space (:mod:`~agents.experiments.search_space`; ``edit_options`` override parts
        of it) and selects on its reward. ``fields`` are the other :class:`Setting` fields
        (``split``, ``test_limit``, ``dev_limit``, ``edit_options``, ``tie_break``,
        ``reporter`` ...); the Select, Edit and Compose env ids come from the task.
        """
        envs = task_envs(task)
        kwargs: dict[str, Any] = {**(env_kwargs or {}), "llm": llm, **envs.kwargs}
        if data_dir:
            kwargs["data_dir"] = str(data_dir)
        options = dict(task_options or {})
        entry = TASK_CATALOG.get(str(task))
        if seed_picks_split and entry is not None and seed in entry.few_shot_seeds:
            options.setdefault("few_shot_seed", seed)
        if options:
            kwargs["task_options"] = options
        setting = cls(envs.select_id, kwargs, seed=seed, metric=metric, edit_id=envs.edit_id,
                      compose_id=envs.compose_id, **fields)
        kind = entry.kind if entry is not None else setting.select_env().task.kind
        if search_space:
            setting.edit_options = {**search_space_options(kind), **setting.edit_options}
            setting.train_reward = train_reward or search_train_reward(kind, metric)
        else:
            setting.train_reward = train_reward or default_train_reward(kind, metric)
        return setting

    # ------------------------------------------------------------------ envs
    def make(self, env_id: str | None = None, **overrides: Any) -> gym.Env:
        """``gym.make`` of ``env_id`` (default: the Select env) with the shared kwargs."""
        return gym.make(env_id or self.select_id, **{**self.env_kwargs, **overrides})

    def select_env(self, **overrides: Any) -> Any:
        """The unwrapped Select env (its public ``score_table`` / ``score_prompts`` /
        ``observe_all``): made once and kept, unless ``overrides`` ask for another one."""
        if overrides:
            return self.make(**overrides).unwrapped
        if self._select is None:
            self._select = self.make().unwrapped
        return self._select

    def restart_distinct_count(self) -> None:
        """Count distinct (prompt, input) pairs afresh on the shared Select env, so that the next
        policy's row counts the pairs it evaluates even where an earlier policy of this setting
        evaluated them too (a row's cost is what the policy would cost run alone)."""
        if self._select is not None:
            self._select.restart_distinct_count()

    def with_observations(self, **env_kwargs: Any) -> Setting:
        """A copy whose envs take more kwargs that change only what policies observe (e.g.
        ``encoder="llm"``); it shares this setting's score tables (same prompts, same inputs)."""
        copy = dataclasses.replace(self, env_kwargs={**self.env_kwargs, **env_kwargs})
        copy._tables = self.tables()
        return copy

    def calibrated(self, calibration: str) -> Setting:
        """The same setting with calibrated label scoring everywhere (training rewards, the
        score tables, test scores); made once and shared by every policy that asks for it."""
        from prompt_env.scoring import check_calibration

        check_calibration(calibration)
        if calibration not in self._variants:
            self._variants[calibration] = dataclasses.replace(
                self, env_kwargs={**self.env_kwargs, "calibration": calibration})
        return self._variants[calibration]

    @property
    def resolved_metric(self) -> str:
        if self.metric is None:
            self.metric = str(self.select_env().task.metric)
        return self.metric

    # ---------------------------------------------------------------- tables
    def tables(self) -> ScoreTables:
        """Dev and evaluation score tables of the pool, computed once (batched, cached)."""
        if self._tables is None:
            env = self.select_env()
            dev, dev_usage = self._table(env, "dev", self.dev_limit)
            test, test_usage = self._table(env, self.split, self.test_limit)
            self._tables = ScoreTables(dev, test, dev_usage, test_usage,
                                       [p.name for p in env.prompts])
        return self._tables

    def _table(self, env: Any, split: str, limit: int | None) -> tuple[np.ndarray, Usage]:
        reporter = self.reporter
        bar = None
        if reporter is not None:
            bar = reporter.add(f"  {split} score table (prompt x input pairs)", 1)

        def on_progress(done: int, total: int) -> None:
            if reporter is not None and bar is not None:
                reporter.update(bar, completed=done, total=max(total, 1),
                                visible=done < total)

        with measured(env) as usage:
            table = env.score_table(split, reward=self.resolved_metric, limit=limit,
                                    on_progress=on_progress)
        return table, usage()

    def observations(self, tabular: bool) -> list[Any]:
        """What a Select-env policy observes for each evaluation input (context ids if tabular)."""
        if tabular not in self._observations:
            env = self.select_env(tabular=tabular)
            self._observations[tabular] = env.observe_all(self.split, self.test_limit)
        return self._observations[tabular]

    def edit_kwargs(self, budget: int | None = None, **extra: Any) -> dict[str, Any]:
        """``gym.make`` kwargs of the Edit env for an edit or search policy: the shared kwargs,
        ``edit_options``, the training reward and, given a ``budget``, ``budget={"calls": budget}``."""
        if self.edit_id is None:
            raise ValueError("edit and search policies need the setting's edit_id (the task's Edit env)")
        kwargs: dict[str, Any] = {**self.env_kwargs, "minibatch_size": self.edit_minibatch,
                                  **self.edit_options, **extra}
        if budget is not None:
            kwargs["budget"] = {"calls": max(0, int(budget))}
        if self.train_reward:
            kwargs["reward"] = self.train_reward
        return kwargs

    def edit_cost(self) -> int:
        """LLM calls of scoring one new prompt in the Edit env: its minibatch, which the env
        caps at the inputs of the split it draws from (all of them with ``minibatch_size=None``)."""
        kwargs = {**self.env_kwargs, "minibatch_size": self.edit_minibatch, **self.edit_options}
        n = len(self.select_env().task.split(kwargs.get("split", "dev")))
        if kwargs.get("max_examples") is not None:
            n = min(n, int(kwargs["max_examples"]))
        size = kwargs["minibatch_size"]
        return n if size is None else min(int(size), n)

    @property
    def n_eval(self) -> int:
        """The number of evaluation inputs (the first ``test_limit`` of ``split``), known without
        scoring anything."""
        examples = self.select_env().task.split(self.split)
        return len(examples) if self.test_limit is None else min(len(examples), self.test_limit)

    def score_prompt(self, prompt: Any) -> tuple[float, Usage]:
        """Mean reward of one prompt (e.g. an edited one) on the evaluation inputs, measured."""
        env = self.select_env()
        with measured(env) as usage:
            table = env.score_prompts([prompt], self.split, reward=self.resolved_metric,
                                      limit=self.test_limit)
        return float(table.mean()), usage()
