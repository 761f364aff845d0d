"""From a data file to an optimized prompt you can ship: ``prompt-env optimize`` and ``agents.optimize``.

    from agents import optimize
    result = optimize("my.jsonl", llm="default", budget=500, out="runs/opt")
    print(result.prompt_text)

Steps: load the task (a file, a directory or a catalog name; see
:mod:`prompt_env.tasks.catalog` for the options), choose the method for the
budget (:func:`choose_method`), find a prompt within ``budget`` LLM calls on
the train/dev splits, then score the winner, the manual prompt and the best
pool prompt on held-out test inputs, and write ``best_prompt.txt``,
``best_prompt.json``, ``report.md`` (with ``score_vs_calls.png``),
``results.json`` and ``config.json`` (:mod:`agents.experiments.optimize_files`).

The default method is **best-fixed-on-dev**: score every pool prompt on the
first ``budget // K`` dev inputs and keep the best. In this project's committed
benchmark rows (README, "Few-shot protocol"), it is the best real policy on
AG News (+13.9 points over the manual prompt) and SQuAD (+0.021 F1) and within
0.6 points of the best on SST-2, at 300-900 LLM calls; the learned policies did
not beat it there. ``method=`` runs any registered policy that returns one
prompt instead: a context-free bandit (``ucb1``, ``successive-halving``, ...),
or a search/edit policy (``hill-climb``, ``evolution``, ``maskable-ppo``, ...).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.baselines import best_fixed_on_dev
from agents.experiments.registry import POLICIES, get_policy
from agents.experiments.setting import Setting
from agents.experiments.task_ids import task_label
from agents.experiments.usage import Usage, measured
from agents.progress import ProgressReporter, reporter_for

DEFAULT_METHOD = "best-fixed-on-dev"
PER_INPUT_POLICIES = frozenset({"random", "manual", "per-query-oracle", "tabular-q", "dqn", "sb3-ppo"})
"""Policies that choose a prompt per input (or none): they cannot give one prompt to ship."""
DEFAULT_TEST_LIMIT = 200


@dataclasses.dataclass
class OptimizePlan:
    """What a run will do and how many LLM calls it will request at most (cached or not)."""

    task: str
    method: str
    reason: str
    n_prompts: int
    n_train: int
    n_dev: int
    dev_inputs: int
    """Dev inputs best-of-pool (and best-fixed-on-dev) scores each pool prompt on."""
    n_test: int
    search_calls: int
    reference_calls: int
    """Best-of-pool's dev scores when the method is not best-fixed-on-dev (0 otherwise)."""
    eval_calls: int
    """At most three prompts (winner, manual, best-of-pool) on the held-out inputs."""

    @property
    def total_calls(self) -> int:
        return self.search_calls + self.reference_calls + self.eval_calls

    def describe(self) -> str:
        lines = [
            f"task {self.task}: {self.n_prompts} pool prompts; {self.n_train} train, "
            f"{self.n_dev} dev, {self.n_test} held-out test inputs used",
            f"method {self.method}: {self.reason}",
            f"projected LLM calls (requested, cached or not; at most): {self.total_calls}",
            f"  search: {self.search_calls}",
        ]
        if self.reference_calls:
            lines.append(f"  best-of-pool reference on dev: {self.reference_calls}")
        lines.append(f"  held-out evaluation (winner, manual, best-of-pool on {self.n_test} inputs): "
                     f"{self.eval_calls}")
        return "\n".join(lines)


@dataclasses.dataclass
class OptimizeResult:
    """The winning prompt, its rendering and the comparison rows."""

    prompt: Any
    """The winner, a ``prompt_env.prompts.Prompt``."""
    prompt_text: str
    """``best_prompt.txt``: the text to send, with ``{field}`` placeholders for the input."""
    rows: list[dict[str, Any]]
    plan: OptimizePlan
    out: Path
    usage: Usage
    """Everything the run requested from the task LLM (search, reference, evaluation)."""


TEXTLESS_KINDS = frozenset({"white-box"})
"""Policy kinds whose result is not a text prompt (soft prompts: trained virtual tokens)."""


def single_prompt_methods() -> list[str]:
    """Registered policies that end with one text prompt to ship (``method=`` choices)."""
    return [name for name, policy in POLICIES.items()
            if name not in PER_INPUT_POLICIES and not policy.upper_bound
            and policy.kind not in TEXTLESS_KINDS]


def choose_method(budget: int, n_prompts: int, method: str | None = None) -> tuple[str, str]:
    """(method, why) for this budget; a ValueError saying what to change when it cannot run."""
    if budget < n_prompts:
        raise ValueError(f"budget {budget} is below the {n_prompts} LLM calls needed to score each "
                         f"of the task's {n_prompts} pool prompts once; give at least {n_prompts}")
    if method is None or method == DEFAULT_METHOD:
        return DEFAULT_METHOD, ("every pool prompt on the first budget // K dev inputs, the best "
                                "kept (the best or tied-best real policy in the committed benchmark "
                                "rows, README 'Few-shot protocol')")
    get_policy(method)  # unknown: a ValueError with close matches
    if method not in single_prompt_methods():
        why = ("trains no text prompt" if get_policy(method).kind in TEXTLESS_KINDS
               else "chooses a prompt per input")
        raise ValueError(f"method {method!r} {why}, so it gives no single prompt to ship; "
                         f"choose one of {', '.join(single_prompt_methods())}")
    return method, f"{get_policy(method).description} (chosen with method=)"


def make_setting(data: str, llm: Any, *, seed: int, task_options: dict[str, Any] | None,
                 metric: str | None, dev_inputs: int | None,
                 reporter: ProgressReporter | None) -> Setting:
    """The search setting: policies are scored on dev (``split="dev"``), never on test."""
    return Setting.for_task(data, llm=llm, seed=seed, task_options=task_options, metric=metric,
                            split="dev", test_limit=dev_inputs, dev_limit=dev_inputs,
                            reporter=reporter)


def plan_run(data: str, *, llm: Any = "default", budget: int = 500, method: str | None = None,
             task_options: dict[str, Any] | None = None, test_limit: int | None = DEFAULT_TEST_LIMIT,
             metric: str | None = None) -> OptimizePlan:
    """The plan of a run (reads the data, calls no LLM): what ``--dry-run`` prints."""
    env = make_setting(data, llm, seed=0, task_options=task_options, metric=metric,
                       dev_inputs=None, reporter=None).select_env()
    task = env.task
    if metric is not None:  # an unknown name or an unimportable module:function fails before any work
        from prompt_env.scoring import resolve_reward

        resolve_reward(task, metric)
    k = len(env.prompts)
    chosen, reason = choose_method(budget, k, method)
    n_dev = len(task.split("dev"))
    dev_inputs = max(1, min(n_dev, budget // k))
    n_test = len(task.split("test")) if test_limit is None else min(test_limit, len(task.split("test")))
    pool_calls = k * dev_inputs
    pooled = chosen == DEFAULT_METHOD
    if pooled:
        reason = reason.replace("the first budget // K dev inputs",
                                f"the first {dev_inputs} dev inputs ({k} x {dev_inputs} calls)")
    return OptimizePlan(task_label(data), chosen, reason, k, len(task.split("train")), n_dev,
                        dev_inputs, n_test, pool_calls if pooled else budget,
                        0 if pooled else pool_calls, (2 if pooled else 3) * n_test)


def pool_search(setting: Setting, reporter: ProgressReporter) -> tuple[int, np.ndarray, Usage]:
    """Best-fixed-on-dev with live progress: (best index, dev table, usage)."""
    env = setting.select_env()
    k = len(env.prompts)
    columns: list[np.ndarray] = []
    bar = reporter.add(f"best-fixed-on-dev: {k} pool prompts x {setting.dev_limit} dev inputs", k)
    best = ""
    with measured(env) as usage:
        for prompt in env.prompts:
            columns.append(env.score_prompts([prompt], "dev", reward=setting.resolved_metric,
                                             limit=setting.dev_limit)[:, 0])
            means = [float(c.mean()) for c in columns]
            top = int(np.argmax(means))
            best = f"best dev {means[top]:.3f} ({env.prompts[top].name})"
            meter = env.llm_usage()
            reporter.update(bar, completed=len(columns), status=(
                f"LLM calls {meter['calls']} | cache hits {meter['cache_hits']} | {best}"))
    table = np.stack(columns, axis=1)
    index = best_fixed_on_dev(table, table).choices[0]
    return int(index), table, usage()


def run_method(setting: Setting, method: str, budget: int) -> tuple[Any, Usage, str]:
    """Run a registered policy on the dev setting: (its prompt, its usage, notes)."""
    result = get_policy(method).run(setting, budget)
    if result.prompt is not None:
        return result.prompt, result.train, result.notes
    if result.choices is None:
        raise ValueError(f"method {method!r} returned no prompt, so it gives nothing to ship")
    choices = sorted(set(result.choices))
    if len(choices) != 1:
        raise ValueError(f"method {method!r} chose {len(choices)} different prompts for the dev "
                         "inputs, so it gives no single prompt to ship")
    return setting.select_env().prompts[choices[0]], result.train, result.notes


def evaluate_prompts(setting: Setting, prompts: Sequence[Any], test_limit: int | None,
                     reporter: ProgressReporter) -> dict[int, tuple[float, Usage]]:
    """Mean test score and usage of each distinct prompt (keyed by position of its first copy)."""
    env = setting.select_env()
    out: dict[int, tuple[float, Usage]] = {}
    distinct = list(dict.fromkeys(prompts))
    bar = reporter.add(f"held-out test: {len(distinct)} prompts", len(distinct))
    for i, prompt in enumerate(distinct):
        with measured(env) as usage:
            scores = env.score_prompts([prompt], "test", reward=setting.resolved_metric,
                                       limit=test_limit)
        out[prompts.index(prompt)] = (float(scores.mean()), usage())
        meter = env.llm_usage()
        reporter.update(bar, completed=i + 1,
                        status=f"LLM calls {meter['calls']} | cache hits {meter['cache_hits']}")
    return out


def result_row(task: str, name: str, score: float, n_test: int, search: Usage, evaluation: Usage,
               metric: str, seed: int, notes: str) -> dict[str, Any]:
    """A results row in the experiment layer's schema (report.py, plots.py read it)."""
    own = search + evaluation
    return {"task": task, "policy": name, "seed": seed, "test_score": round(score, 4),
            "n_test": n_test, "test_limit": n_test, "metric": metric,
            "llm_calls": own.calls, "distinct_pairs": own.distinct, "train_calls": search.calls,
            "eval_calls": evaluation.calls, "cache_hit_rate": round(own.hit_rate, 3),
            "model_calls": own.model_calls, "wall_s": round(own.wall_s, 2),
            "upper_bound": False, "notes": notes}


def optimize(data: str | Path, *, llm: Any = "default", budget: int = 500, method: str | None = None,
             seed: int = 0, out: str | Path = "runs/opt", task_options: dict[str, Any] | None = None,
             test_limit: int | None = DEFAULT_TEST_LIMIT, metric: str | None = None,
             progress: bool | ProgressReporter = True) -> OptimizeResult:
    """Find the best prompt for ``data`` within ``budget`` LLM calls and write it to ``out``.

    Args:
        data: a .jsonl/.csv/.tsv file, a directory (train/dev/test files, or a saved
            ``datasets`` directory) or a catalog task name.
        llm: the task LLM spec (``"default"``, ``"hf:..."``, ``"openai:<url>#<model>"``, a dict).
        budget: LLM calls the search may request (cached or not); the held-out evaluation
            and the best-of-pool reference come on top (see :func:`plan_run`).
        method: a registered single-prompt policy (None: :data:`DEFAULT_METHOD`).
        seed: seeds the method (the file's train/dev/test split is ``task_options["split_seed"]``).
        out: the output directory.
        task_options: how to read the data (``input_field``, ``label_field``, ``label_names``, ...).
        test_limit: score on the first N held-out test inputs (None: all).
        metric: the reward that selects and evaluates (None: the task's metric).
        progress: progress bars (True), none (False), or a given reporter.
    """
    from agents.experiments.optimize_files import write_run_files

    data = str(data)
    plan = plan_run(data, llm=llm, budget=budget, method=method, task_options=task_options,
                    test_limit=test_limit, metric=metric)
    reporter = reporter_for(progress)
    start = time.perf_counter()
    with reporter:
        reporter.print(plan.describe(), highlight=False)
        setting = make_setting(data, llm, seed=seed, task_options=task_options, metric=metric,
                               dev_inputs=plan.dev_inputs, reporter=reporter)
        prompts = setting.select_env().prompts
        best_index, dev_table, pool_usage = pool_search(setting, reporter)
        winner, search_usage, notes = prompts[best_index], pool_usage, "chosen on dev"
        if plan.method != DEFAULT_METHOD:
            winner, search_usage, notes = run_method(setting, plan.method, budget)
        evaluation = dataclasses.replace(setting, split="test", test_limit=test_limit)
        candidates = [winner, prompts[0], prompts[best_index]]
        scored = evaluate_prompts(evaluation, candidates, test_limit, reporter)
    label, metric_name = task_label(data), setting.resolved_metric

    def row(name: str, position: int, search: Usage, note: str) -> dict[str, Any]:
        score, usage = scored[candidates.index(candidates[position])]
        return result_row(label, name, score, plan.n_test, search, usage, metric_name, seed, note)

    rows = [row("manual", 1, Usage(), "the task's hand-written prompt (pool candidate 0)"),
            row(DEFAULT_METHOD, 2, pool_usage,
                f"best of {len(prompts)} pool prompts on {plan.dev_inputs} dev inputs: "
                f"{prompts[best_index].name} (dev {dev_table[:, best_index].mean():.3f})")]
    if plan.method != DEFAULT_METHOD:
        rows.append(row(plan.method, 0, search_usage, notes))
    usage = sum((s[1] for s in scored.values()), pool_usage)
    if plan.method != DEFAULT_METHOD:
        usage = usage + search_usage
    usage.wall_s = time.perf_counter() - start
    text = write_run_files(Path(out), winner=winner, task=setting.select_env().task, rows=rows,
                         plan=plan, usage=usage, config={
                             "data": str(Path(data).resolve()) if Path(data).exists() else data,
                             "llm": llm, "budget": budget, "method": plan.method, "seed": seed,
                             "task_options": task_options or {}, "test_limit": test_limit,
                             "metric": metric})
    return OptimizeResult(winner, text, rows, plan, Path(out), usage)
