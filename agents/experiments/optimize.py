"""From a data file to an optimized prompt you can ship: ``prompt-env optimize`` and ``agents.optimize``.

    from agents import optimize
    result = optimize("my.jsonl", llm="default", budget="medium", out="runs/opt")
    print(result.prompt_text)

Steps: plan the run (:func:`~agents.experiments.optimize_plan.plan_run`: the method for the
budget, the calls it will request), score the pool on dev (best-of-pool, the reference;
the winner when the method is best-fixed-on-dev), run the method on train/dev only, then
score the winner, the manual prompt and the best pool prompt on held-out test inputs, and
write ``best_prompt.txt``, ``best_prompt.json``, ``report.md`` (with what the model
answered on a few held-out inputs), ``results.json`` and ``config.json``
(:mod:`agents.experiments.optimize_files`).

Edit-env methods search the shared search space (:mod:`agents.experiments.search_space`)
and break dev ties on held-out inputs (:mod:`agents.experiments.tie_break`). A run keeps
its finished phases in ``<out>/state.json``: killed (even ``kill -9``), the same command
restarts, skips them, and replays the unfinished phase from the response cache (every
answer the killed run received is there, and the search is deterministic), so it ends with
the same result. ``tracking_uri=`` (``--mlflow``) logs the run to MLflow.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.baselines import best_fixed_on_dev
from agents.experiments.files import redact, save_json
from agents.experiments.optimize_plan import (
    DEFAULT_POLICY,
    DEFAULT_TEST_LIMIT,
    OptimizePlan,
    OptimizeResult,
    plan_run,
)
from agents.experiments.registry import get_policy, uses_proposer
from agents.experiments.rows import ResultRow
from agents.experiments.setting import Setting
from agents.experiments.task_ids import task_label
from agents.experiments.usage import Usage, measured
from agents.progress import ProgressReporter, reporter_for

STATE = "state.json"
STATE_VERSION = 1
EXAMPLES = 5
"""Held-out inputs whose answers the report shows."""


# ------------------------------------------------------------------------------ phases


class RunState:
    """The finished phases of a run, saved after each (atomically) in ``<out>/state.json``.

    A state is reused only by a run with the same configuration; anything else starts over.
    """

    def __init__(self, out: Path, config: dict[str, Any]) -> None:
        self.path = out / STATE
        self.config = json.loads(json.dumps(config, default=str))
        self.phases: dict[str, Any] = {}
        self.resumed = False
        try:
            saved = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            return
        if saved.get("version") == STATE_VERSION and saved.get("config") == self.config:
            self.phases = dict(saved.get("phases", {}))
            self.resumed = bool(self.phases)

    def run(self, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The phase's saved result, or ``compute()`` saved before it is returned."""
        if name not in self.phases:
            self.phases[name] = compute()
            save_json({"version": STATE_VERSION, "config": self.config, "phases": self.phases},
                      self.path)
        return self.phases[name]


def pool_search(setting: Setting, reporter: ProgressReporter) -> dict[str, Any]:
    """Best-fixed-on-dev with live progress: the best pool prompt, its dev table, the cost."""
    env = setting.select_env()
    k = len(env.prompts)
    columns: list[np.ndarray] = []
    curve: list[tuple[int, float]] = []
    bar = reporter.add(f"best-fixed-on-dev: {k} pool prompts x {setting.dev_limit} dev inputs", k)
    with measured(env) as usage:
        for prompt in env.prompts:
            columns.append(env.score_prompts([prompt], "dev", reward=setting.resolved_metric,
                                             limit=setting.dev_limit)[:, 0])
            means = [float(c.mean()) for c in columns]
            top = int(np.argmax(means))
            curve.append((len(columns) * len(columns[0]), means[top]))
            meter = env.llm_usage()
            reporter.update(bar, completed=len(columns), status=(
                f"LLM calls {meter['calls']} | cache hits {meter['cache_hits']} | best dev "
                f"{means[top]:.3f} ({env.prompts[top].name})"))
    table = np.stack(columns, axis=1)
    index = int(best_fixed_on_dev(table, table).choices[0])
    means = table.mean(axis=0)
    tied = int(np.sum(np.isclose(means, means[index])))
    if tied == k:
        reporter.print(f"note: all {k} pool prompts score {means[index]:.3f} on the "
                       f"{table.shape[0]} dev inputs, so dev cannot tell them apart; the first "
                       f"(the manual prompt) is kept. See report.md for what the model answered.",
                       highlight=False)
    return {"index": index, "dev_score": float(table[:, index].mean()), "tied": tied,
            "usage": dataclasses.asdict(usage()), "curve": curve}


def tie_note(pool: dict[str, Any], k: int) -> str:
    """What the best-of-pool note adds when dev scores tie at the top (a resumed run's state
    from before ties were recorded adds nothing)."""
    tied = int(pool.get("tied", 1))
    if tied == k:
        return f"; all {k} pool prompts tie on dev (no signal there), so the first is kept"
    return f"; {tied} prompts tie at the top, the first of them kept" if tied > 1 else ""


def run_method(setting: Setting, method: str, budget: int) -> dict[str, Any]:
    """A registered policy on the dev setting: its prompt (JSON), cost, notes and curve (its
    distinct pairs its own, as in a resumed run: the pool search's count again)."""
    setting.restart_distinct_count()
    result = get_policy(method).run(setting, budget)
    prompt = result.prompt
    if prompt is None:
        choices = sorted(set(result.choices or []))
        if len(choices) != 1:
            raise ValueError(f"policy {method!r} chose {len(choices)} different prompts for the "
                             "dev inputs, so it gives no single prompt to ship")
        prompt = setting.select_env().prompts[choices[0]]
    curve = [(int(c), float(s)) for c, s in zip(*search_curve_points(result.extra), strict=True)]
    keep = {k: v for k, v in result.extra.items() if k in ("tie_break", "tie_break_calls",
                                                             "search_score", "start_score")}
    return {"prompt": prompt.to_json(), "usage": dataclasses.asdict(result.train),
            "notes": result.notes, "curve": curve, "extra": keep}


def search_curve_points(extra: dict[str, Any]) -> tuple[list[float], list[float]]:
    """(LLM calls, best dev score so far) of an Edit-env policy's ``search_curve``."""
    curve = extra.get("search_curve") or {}
    return list(curve.get("llm_calls", [])), list(curve.get("best", []))


def evaluate_prompts(setting: Setting, prompts: Sequence[Any], reporter: ProgressReporter,
                     extra_metric: str | None) -> list[dict[str, Any]]:
    """Test score (and ``extra_metric``, e.g. token F1) and cost of each prompt. A prompt
    listed again, under any name (the winner is often a pool prompt), is scored once; each
    prompt scored counts its own distinct pairs, as if evaluated alone (a calibration twin
    asks the LLM the same pairs as its raw prompt)."""
    env = setting.select_env()
    keys = [prompt.unnamed() for prompt in prompts]
    first: dict[Any, int] = {}  # each prompt (by what it asks) at its first place in the list
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    scored: dict[Any, dict[str, Any]] = {}
    spent = Usage()  # the evaluation's own requests, as the table counts them
    bar = reporter.add(f"held-out test: {len(first)} prompts", len(first))
    for key, i in first.items():
        env.restart_distinct_count()
        with measured(env) as usage:
            scores = env.score_prompts([prompts[i]], "test", reward=setting.resolved_metric,
                                       limit=setting.test_limit)
        entry = {"score": float(scores.mean()), "usage": dataclasses.asdict(usage())}
        if extra_metric is not None:  # the same generations, read by another metric: cached
            entry[extra_metric] = float(env.score_prompts([prompts[i]], "test", reward=extra_metric,
                                                          limit=setting.test_limit).mean())
        scored[key] = entry
        spent += usage()  # not the extra metric's reread of the same answers from the cache
        reporter.update(bar, completed=len(scored),
                        status=f"LLM calls {spent.calls} | cache hits {spent.cache_hits}")
    # a prompt listed again repeats the first entry, marked so that its cost is counted once
    return [{**scored[key], "same_as": first[key]} if first[key] != i else scored[key]
            for i, key in enumerate(keys)]


def answer_examples(setting: Setting, named: Sequence[tuple[str, Any]],
                    count: int = EXAMPLES) -> list[dict[str, Any]]:
    """What the model answered on the first ``count`` held-out inputs under each named
    prompt (already scored by the evaluation, so read from the cache)."""
    env = setting.select_env()
    n = min(count, setting.n_eval)
    outcomes = env.answers([p for _, p in named], "test", indices=list(range(n)))
    task = env.task
    examples = []
    for i, row in enumerate(outcomes):
        example = task.split("test")[i]
        answers = {}
        for (name, _), outcome in zip(named, row, strict=True):
            answer: dict[str, Any] = {"answer": outcome.prediction, "score": round(outcome.score, 4)}
            if not outcome.fits:  # the prompt and this input exceed the model's context
                answer["fits"] = False
            scores = outcome.calibrated_logprobs or outcome.label_logprobs
            if scores is not None:
                probabilities = np.exp(np.asarray(scores) - np.max(scores))
                answer["probability"] = round(float(probabilities.max() / probabilities.sum()), 3)
            answers[name] = answer
        entry: dict[str, Any] = {"input": example.text, "reference": row[0].reference, "answers": answers}
        accepted = list(dict.fromkeys(example.references))  # every answer the metric accepts
        if len(accepted) > 1:
            entry["references"] = accepted
        examples.append(entry)
    return examples


# ------------------------------------------------------------------------------ the run


def optimize(data: str | Path, *, llm: Any = "default", budget: int | str = 500,
             policy: str | None = None, seed: int = 0, out: str | Path = "runs/opt",
             task_options: dict[str, Any] | None = None,
             test_limit: int | None = DEFAULT_TEST_LIMIT, metric: str | None = None,
             tie_break: Any = None, progress: bool | ProgressReporter = True,
             tracking_uri: str | None = None, plan: OptimizePlan | None = None,
             method: str | None = None, proposer: Any = "task") -> OptimizeResult:
    """Find the best prompt for ``data`` within ``budget`` LLM calls and write it to ``out``.

    Args:
        data: a .jsonl/.csv/.tsv file, a directory (train/dev/test files, or a saved
            ``datasets`` directory) or a catalog task name.
        llm: the task LLM spec (``"default"``, ``"hf:..."``, ``"openai:<url>#<model>"``, a dict).
        budget: LLM calls the search may request (cached or not), or a preset (``"light"``,
            ``"medium"``, ``"heavy"``: 1, 3 or 5 x the task's pool cost); the held-out
            evaluation and the best-of-pool reference come on top (see the plan).
        policy: a registered single-prompt policy (None: chosen by the budget rule).
        seed: seeds the policy (and picks the 16-shot split of sst2/agnews, 13/21/42/87/100).
        out: the output directory (a killed run restarts from its ``state.json``).
        task_options: how to read the data (``input_field``, ``label_field``, ``label_names``, ...).
        test_limit: score on the first N held-out test inputs (None: all).
        metric: the reward that selects and evaluates (None: the task's metric).
        tie_break: Edit-env policies: a ``TieBreak`` (None: the default one; False: none).
        progress: progress bars (True), none (False), or a given reporter.
        tracking_uri: log the run to MLflow (``""``: the local file store ``./mlruns``).
        plan: a plan from :func:`plan_run` for these arguments (computed when None).
        method: the former name of ``policy`` (deprecated).
        proposer: who writes instructions for the LLM-writing policies (``ape``, ``opro``,
            ``evoprompt-llm``, ``gepa``, ``edit-*-propose``): ``"task"`` (the task LLM, its
            calls metered apart) or an LLM spec; the written instruction is in ``best_prompt.txt``.
    """
    from agents.experiments.optimize_files import write_run_files

    if method is not None:
        import warnings

        warnings.warn("optimize(method=...) is deprecated; use policy=...", DeprecationWarning,
                      stacklevel=2)
        policy = policy or method
    data, out = str(data), Path(out)
    plan = plan or plan_run(data, llm=llm, budget=budget, method=policy, task_options=task_options,
                            test_limit=test_limit, metric=metric, seed=seed, tie_break=tie_break)
    config = {"data": str(Path(data).resolve()) if Path(data).exists() else data, "llm": llm,
              "budget": budget, "policy": plan.method, "seed": seed,
              "task_options": task_options or {}, "test_limit": test_limit, "metric": metric,
              "tie_break": dataclasses.asdict(plan.tie_break) if plan.tie_break else None,
              **({"proposer": proposer} if uses_proposer(plan.method) else {})}
    state = RunState(out, redact(config))
    reporter = reporter_for(progress)
    start = time.perf_counter()
    with reporter:
        if state.resumed:
            reporter.print(f"resuming from {state.path}: {', '.join(state.phases)} already done",
                           highlight=False)
        reporter.print(plan.describe(), highlight=False)
        setting = Setting.for_task(data, llm=llm, seed=seed, task_options=task_options,
                                   metric=metric, split="dev", test_limit=plan.dev_inputs,
                                   dev_limit=plan.dev_inputs, search_space=bool(plan.search_space),
                                   tie_break=plan.tie_break, proposer=proposer, reporter=reporter)
        prompts = setting.select_env().prompts
        pool = state.run("pool", lambda: pool_search(setting, reporter))
        best_pool = prompts[pool["index"]]
        winner, search = best_pool, pool
        if plan.method != DEFAULT_POLICY:
            search = state.run("search", lambda: run_method(setting, plan.method, plan.budget))
            winner = _prompt(search["prompt"])
        evaluation = dataclasses.replace(setting, split="test", test_limit=test_limit)
        task = setting.select_env().task
        extra_metric = "f1" if task.kind == "generation" and setting.resolved_metric != "f1" else None
        candidates = [prompts[0], best_pool, winner]
        scored = state.run("evaluation", lambda: {"scores": evaluate_prompts(
            evaluation, candidates, reporter, extra_metric)})["scores"]
        named = [("manual", prompts[0]), (DEFAULT_POLICY, best_pool)]
        if plan.method != DEFAULT_POLICY:
            named.append((plan.method, winner))
        examples = state.run("examples", lambda: {"examples": answer_examples(
            evaluation, [(n, p) for n, p in named if n in ("manual", plan.method)])})["examples"]
    rows = result_rows(plan, pool, search, scored, prompts, seed, setting.resolved_metric,
                       extra_metric, label=task_label(data))
    usage = _total_usage(plan, pool, search, scored)
    usage.wall_s = time.perf_counter() - start
    curve = search["curve"] if search is not pool else pool["curve"]
    text = write_run_files(out, winner=winner, task=task, rows=rows, plan=plan, usage=usage,
                           config=config, examples=examples, curve=curve)
    run_id = None
    if tracking_uri is not None:
        run_id = track(tracking_uri, out, plan, config, rows, {"best_dev_score": curve,
                                                                "best_of_pool_dev": pool["curve"]})
    return OptimizeResult(winner, text, rows, plan, out, usage, state.resumed, run_id)


def _prompt(data: dict[str, Any]) -> Any:
    from prompt_env.prompts import Prompt

    return Prompt.from_json(data)


def _usage(data: dict[str, Any]) -> Usage:
    return Usage(**data)


def _total_usage(plan: OptimizePlan, pool: dict[str, Any], search: dict[str, Any],
                 scored: list[dict[str, Any]]) -> Usage:
    """What the whole run requested: each phase once (a prompt evaluated twice counts once);
    its distinct pairs are the phases' own, summed, as a resumed run counts them."""
    total = _usage(pool["usage"])
    if search is not pool:
        total = total + _usage(search["usage"])
    for entry in scored:
        if "same_as" not in entry:  # a prompt scored once counts once
            total = total + _usage(entry["usage"])
    return total


def result_rows(plan: OptimizePlan, pool: dict[str, Any], search: dict[str, Any],
                scored: list[dict[str, Any]], prompts: Sequence[Any], seed: int, metric: str,
                extra_metric: str | None, *, label: str) -> list[dict[str, Any]]:
    """The comparison rows: manual, best-of-pool and (when it differs) the method's winner."""
    context = {"task": label, "seed": seed, "test_limit": plan.n_test, "metric": metric}

    def row(name: str, entry: dict[str, Any], train: Usage, notes: str) -> dict[str, Any]:
        fields = dict(context)
        if extra_metric is not None:
            fields[extra_metric] = round(entry[extra_metric], 4)
        return ResultRow(name, entry["score"], plan.n_test, train, _usage(entry["usage"]),
                         notes=notes, context=fields).as_dict()

    best = prompts[pool["index"]]
    rows = [row("manual", scored[0], Usage(), "the task's hand-written prompt (pool candidate 0)"),
            row(DEFAULT_POLICY, scored[1], _usage(pool["usage"]),
                f"best of {len(prompts)} pool prompts on {plan.dev_inputs} dev inputs: "
                f"{best.name} (dev {pool['dev_score']:.3f}){tie_note(pool, len(prompts))}")]
    if plan.method != DEFAULT_POLICY:
        rows.append(row(plan.method, scored[2], _usage(search["usage"]), search["notes"]))
    return rows


def track(uri: str, out: Path, plan: OptimizePlan, config: dict[str, Any],
          rows: list[dict[str, Any]], curves: dict[str, list[tuple[int, float]]]) -> str:
    """Log the run to MLflow: parameters, the best-so-far curves (by LLM calls), the table,
    the files; returns the MLflow run id."""
    from agents.experiments.optimize_files import OUTPUT_FILES
    from agents.experiments.tracking import MLflowRun

    with MLflowRun(uri, f"optimize {plan.task} {plan.method} seed {config['seed']}") as run:
        run.params({"config": redact(config), "plan": plan.as_dict()})
        for name, points in curves.items():
            run.curve(name, points)
        run.table(rows)
        run.artifacts(out / name for name in OUTPUT_FILES)
    assert run.run_id is not None
    return run.run_id
