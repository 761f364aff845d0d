"""Benchmark harness: tasks x policies x seeds, resumable, with a table and two plots.

    python benchmarks/run.py --quick --data-dir ../shared/data --out runs/quick
    python benchmarks/run.py --config benchmarks/configs/protocol.toml --data-dir ../shared/data
    python benchmarks/run.py --tasks bbc-topic --policies random,manual,ucb1 --seeds 0,1 \\
        --budget 100 --test-limit 20 --out runs/mine

For each (task, seed) the harness scores every prompt of the task's pool on
dev and on a fixed test subset (the first ``test_limit`` test examples) once;
the baselines (random, manual, best-fixed-on-dev and the per-query oracle,
an upper bound) are read from those two score tables, and each learned
policy is trained for ``budget`` LLM calls on the train split, then scored
on the same test subset. For sst2 and agnews the seed is also the 16-shot
split (``few_shot_seed``); for other tasks it seeds the agent only.

Every finished (task, policy, seed) cell is appended as one JSON line to
``<out>/results.jsonl`` (flushed and fsynced), so an interrupted run resumes
where it stopped and a rerun of a finished grid does no new cells. Several
harness processes may work on one ``--out`` at once (e.g. one per core): each
claims a (task, seed) in ``<out>/.claims`` before running its cells, skips
those another live process holds, and takes over claims of dead ones. From all
rows present the harness (re)writes ``results.md`` (mean ± std over seeds),
``score_vs_calls.png`` and ``learning_curves.png``.

Policies: random, manual, best-fixed-on-dev, per-query-oracle (upper
bound), ucb1, successive-halving, epsilon-greedy, thompson, tabular-q, dqn
(this project's agents on the Select env; tabular-q on Select-Tabular),
sb3-ppo (stable-baselines3 PPO on the Select env) and maskable-ppo
(sb3-contrib MaskablePPO on the Edit env; the score is the final prompt's
test score).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

import prompt_env  # noqa: E402,F401  (registers the env ids)
from prompt_env.tasks.catalog import TASK_CATALOG  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
QUICK_CONFIG = CONFIG_DIR / "quick.toml"

BASELINES = ("random", "manual", "best-fixed-on-dev", "per-query-oracle")
ORACLE = "per-query-oracle"
AGENT_POLICIES = ("ucb1", "successive-halving", "epsilon-greedy", "thompson", "tabular-q", "dqn")
SB3_POLICIES = ("sb3-ppo", "maskable-ppo")
POLICIES = BASELINES + AGENT_POLICIES + SB3_POLICIES
"""Every policy name the harness knows, in table order (the oracle is moved last)."""
FEW_SHOT_TASKS = ("sst2", "agnews")
REQUIRED_KEYS = (
    "task",
    "policy",
    "seed",
    "test_score",
    "llm_calls",
    "metric",
    "wall_s",
    "cache_hit_rate",
    "test_limit",
    "upper_bound",
)
CURVE_POINTS = 200


# --------------------------------------------------------------------------- configuration


@dataclasses.dataclass
class TaskPlan:
    """One task of the grid and its per-task settings."""

    name: str
    seeds: list[int]
    test_limit: int
    budget: int
    train_reward: str | None
    """Reward while training ('margin' for classification); None: the task's metric."""
    policies: list[str]
    task_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Passed to ``load_task`` (e.g. ``{"n_dev": 8}`` for bbc-topic); sst2/agnews add ``few_shot_seed``."""


@dataclasses.dataclass
class Plan:
    """The whole grid plus shared settings."""

    tasks: list[TaskPlan]
    llm: str
    data_dir: str | None
    out: Path
    policy_budgets: dict[str, int]
    """LLM-call budgets for particular policies (e.g. maskable-ppo), overriding the task budget."""
    edit_minibatch: int
    progress: bool = True

    def cells(self) -> Iterator[tuple[TaskPlan, int, str]]:
        """(task, seed, policy) in seed-major order, so a partial run covers every task."""
        depth = max((len(t.seeds) for t in self.tasks), default=0)
        for i in range(depth):
            for task in self.tasks:
                if i < len(task.seeds):
                    for policy in task.policies:
                        yield task, task.seeds[i], policy

    def budget_of(self, task: TaskPlan, policy: str) -> int:
        return int(self.policy_budgets.get(policy, task.budget))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="TOML config (see benchmarks/configs/)")
    parser.add_argument(
        "--quick", action="store_true", help=f"the reduced grid of {QUICK_CONFIG.name}"
    )
    parser.add_argument("--tasks", help="comma-separated catalog task names")
    parser.add_argument("--policies", help=f"comma-separated, of: {', '.join(POLICIES)}")
    parser.add_argument("--seeds", help="comma-separated seeds (sst2/agnews: 13,21,42,87,100)")
    parser.add_argument(
        "--budget", type=int, help="LLM calls per learned policy run (training steps)"
    )
    parser.add_argument(
        "--test-limit", type=int, help="size of the fixed test subset (first N test examples)"
    )
    parser.add_argument(
        "--train-reward", help="training reward (default: margin for classification, else metric)"
    )
    parser.add_argument(
        "--task-options", type=json.loads, help="JSON options for load_task, e.g. '{\"n_dev\": 8}'"
    )
    parser.add_argument("--llm", help="LLM spec (default: the embedded SmolLM2-135M)")
    parser.add_argument("--data-dir", help="task data directory (else $PROMPT_ENV_DATA)")
    parser.add_argument(
        "--out", type=Path, help="output directory (default from config, else runs/bench)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def _split_list(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def build_plan(args: argparse.Namespace) -> Plan:
    """Merge the TOML config (if any) with the CLI flags; flags win."""
    config_path = QUICK_CONFIG if args.quick and args.config is None else args.config
    config: dict[str, Any] = {}
    if config_path is not None:
        with open(config_path, "rb") as handle:
            config = tomllib.load(handle)
    defaults = {
        "policies": _split_list(args.policies)
        or config.get("policies")
        or ["random", "manual", "ucb1"],
        "seeds": [int(s) for s in _split_list(args.seeds) or []] or config.get("seeds") or [0],
        "budget": args.budget or config.get("budget", 200),
        "test_limit": args.test_limit or config.get("test_limit", 50),
        "train_reward": args.train_reward or config.get("train_reward"),
    }
    task_tables = config.get("tasks", [])
    if args.tasks:
        wanted = _split_list(args.tasks) or []
        by_name = {t["name"]: t for t in task_tables}
        task_tables = [by_name.get(name, {"name": name}) for name in wanted]
    if not task_tables:
        raise SystemExit("no tasks: pass --tasks, --config or --quick")
    tasks = []
    for table in task_tables:
        name = table["name"]
        if name not in TASK_CATALOG:
            raise SystemExit(f"unknown task {name!r}; catalog tasks: {', '.join(TASK_CATALOG)}")
        # CLI flags override per-task config values as well as the config's defaults
        pick = {
            key: (defaults[key] if getattr(args, key, None) else table.get(key, defaults[key]))
            for key in ("budget", "test_limit", "train_reward")
        }
        policies = (
            defaults["policies"] if args.policies else table.get("policies", defaults["policies"])
        )
        seeds = defaults["seeds"] if args.seeds else table.get("seeds", defaults["seeds"])
        unknown = sorted(set(policies) - set(POLICIES))
        if unknown:
            raise SystemExit(f"unknown policies {unknown}; known: {', '.join(POLICIES)}")
        train_reward = pick["train_reward"]
        if train_reward is None and TASK_CATALOG[name].kind == "classification":
            train_reward = "margin"
        tasks.append(
            TaskPlan(
                name,
                [int(s) for s in seeds],
                int(pick["test_limit"]),
                int(pick["budget"]),
                train_reward,
                list(policies),
                {**table.get("task_options", {}), **(args.task_options or {})},
            )
        )
    out = args.out or Path(config.get("out", "runs/bench"))
    return Plan(
        tasks=tasks,
        llm=args.llm or config.get("llm", "default"),
        data_dir=args.data_dir or config.get("data_dir") or os.environ.get("PROMPT_ENV_DATA"),
        out=out,
        policy_budgets={k: int(v) for k, v in config.get("policy_budgets", {}).items()},
        edit_minibatch=int(config.get("edit_minibatch", 8)),
        progress=not args.no_progress,
    )


# --------------------------------------------------------------------------- results file


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a results.jsonl; a torn last line (killed mid-write) is ignored."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def append_row(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def cell_key(task: str, policy: str, seed: int) -> tuple[str, str, int]:
    return (task, policy, int(seed))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def claim(out: Path, task: str, seed: int) -> bool:
    """Claim a (task, seed) for this process, so parallel harness runs on one grid never
    duplicate its cells. A claim left by a dead process is taken over."""
    claims = out / ".claims"
    claims.mkdir(exist_ok=True)
    path = claims / f"{task}-{seed}.pid"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            try:
                owner = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner == os.getpid():
                return True
            if owner and _pid_alive(owner):
                return False
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        return True
    return False


def release(out: Path, task: str, seed: int) -> None:
    path = out / ".claims" / f"{task}-{seed}.pid"
    try:
        if int(path.read_text().strip() or 0) == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


# --------------------------------------------------------------------------- one (task, seed)


def env_id(task: str, kind: str) -> str:
    return f"PromptEnv/{TASK_CATALOG[task].env_name}-{kind}-v0"


def base_env_kwargs(plan: Plan, task: TaskPlan, seed: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"llm": plan.llm}
    if plan.data_dir:
        kwargs["data_dir"] = plan.data_dir
    options = dict(task.task_options)
    if task.name in FEW_SHOT_TASKS:
        options["few_shot_seed"] = seed
    if options:
        kwargs["task_options"] = options
    return kwargs


class TaskSeedCell:
    """Everything shared by the policies of one (task, seed): score tables and test observations."""

    def __init__(self, plan: Plan, task: TaskPlan, seed: int) -> None:
        self.plan, self.task, self.seed = plan, task, seed
        self.env_kwargs = base_env_kwargs(plan, task, seed)
        self.metric = self._metric()
        self._baselines: dict[str, dict[str, Any]] | None = None
        self._test_table: np.ndarray | None = None
        self._observations: dict[bool, list[Any]] = {}
        self.table_progress: Any = None
        """Optional ``(split, done, total)`` callback while the score tables are computed."""

    def _metric(self) -> str:
        return gym.make(env_id(self.task.name, "Select"), **self.env_kwargs).unwrapped.task.metric

    def tables(self) -> tuple[dict[str, dict[str, Any]], np.ndarray]:
        """Baseline rows and the test score table, computed once (dev + test, batched, cached)."""
        if self._baselines is None:
            from agents.experiment import evaluate_policies

            rows, tables = evaluate_policies(
                env_id(self.task.name, "Select"),
                {},
                env_kwargs=self.env_kwargs,
                split="test",
                limit=self.task.test_limit,
                reward=self.metric,
                table_progress=self.table_progress,
            )
            self._baselines = {r["policy"]: r for r in rows}
            self._test_table = tables["test"]
        assert self._test_table is not None
        return self._baselines, self._test_table

    def observations(self, tabular: bool) -> list[Any]:
        if tabular not in self._observations:
            kind = "Select-Tabular" if tabular else "Select"
            env = gym.make(env_id(self.task.name, kind), **self.env_kwargs).unwrapped
            self._observations[tabular] = env.observe_all("test", self.task.test_limit)
        return self._observations[tabular]

    def eval_cost(self) -> tuple[int, float]:
        """LLM calls and wall time of scoring one fixed prompt choice per test input."""
        manual = self.tables()[0]["manual"]
        return int(manual["llm_calls"]), float(manual["wall_s"])


def run_policy(cell: TaskSeedCell, policy: str) -> dict[str, Any]:
    """Train (if needed) and evaluate one policy; returns its results row."""
    baselines, test_table = cell.tables()
    if policy in BASELINES:
        row = dict(baselines[policy])
        curve: list[dict[str, float]] = []
    elif policy == "maskable-ppo":
        row, curve = run_maskable_ppo(cell)
    else:
        row, curve = run_select_learner(cell, policy, test_table)
    row.update(
        {
            "task": cell.task.name,
            "policy": policy,
            "seed": cell.seed,
            "metric": cell.metric,
            "test_limit": cell.task.test_limit,
            "upper_bound": policy == ORACLE,
            "budget": cell.plan.budget_of(cell.task, policy) if policy not in BASELINES else 0,
            "train_reward": cell.task.train_reward,
            "llm": cell.plan.llm,
        }
    )
    row["n_test"] = int(test_table.shape[0])
    row["task_options"] = cell.env_kwargs.get("task_options", {})
    if curve:
        row["curve"] = compress_curve(curve)
    return row


def run_select_learner(
    cell: TaskSeedCell, policy: str, test_table: np.ndarray
) -> tuple[dict[str, Any], list]:
    """A learner on the Select env (this project's agents, or SB3 PPO); scored from the test table."""
    from agents.baselines import score_of_choices

    budget = cell.plan.budget_of(cell.task, policy)
    train_kwargs = {**cell.env_kwargs, "split": "train", "reward": cell.task.train_reward}
    tabular = policy == "tabular-q"
    if policy == "sb3-ppo":
        act, log = train_sb3_select(cell, train_kwargs, budget)
    else:
        from agents.experiment import train

        kind = "Select-Tabular" if tabular else "Select"
        result = train(
            env_id(cell.task.name, kind),
            policy,
            budget,
            seed=cell.seed,
            env_kwargs=train_kwargs,
            progress=False,
        )
        log = TrainLog(result.curve, result.llm_calls, result.cache_hits, result.wall_s)

        def act(obs: Any) -> int:
            return int(result.agent.act(obs, greedy=True))

    choices = [act(obs) for obs in cell.observations(tabular)]
    eval_calls, eval_wall = cell.eval_cost()
    k = test_table.shape[1]
    row = {
        "test_score": round(score_of_choices(test_table, choices), 4),
        "llm_calls": log.llm_calls + eval_calls,
        "cache_hit_rate": round(log.cache_hits / log.llm_calls, 3) if log.llm_calls else 0.0,
        "wall_s": round(log.wall_s + eval_wall, 2),
        "prompt_counts": np.bincount(choices, minlength=k).tolist(),
        "notes": f"trained {budget} steps on train",
    }
    return row, log.curve


@dataclasses.dataclass
class TrainLog:
    curve: list[dict[str, float]]
    llm_calls: int
    cache_hits: int
    wall_s: float


class CurveRecorder(gym.Wrapper):
    """Records (step, reward, LLM calls, cache hits) for SB3 runs, like ``agents.experiment.train``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.curve: list[dict[str, float]] = []

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        usage = info.get("llm")
        self.curve.append(
            {
                "step": len(self.curve) + 1,
                "reward": float(reward),
                "llm_calls": usage.env_calls if usage is not None else len(self.curve) + 1,
                "cache_hits": usage.cache_hits if usage is not None else 0,
            }
        )
        return obs, reward, terminated, truncated, info


def _cache_hits(env: gym.Env) -> int:
    llm = env.unwrapped._llm
    return int(llm.stats.cache_hits) if llm is not None else 0


def train_sb3_select(
    cell: TaskSeedCell, train_kwargs: dict[str, Any], budget: int
) -> tuple[Any, TrainLog]:
    from agents.sb3 import train_sb3

    env = CurveRecorder(gym.make(env_id(cell.task.name, "Select"), **train_kwargs))
    start = time.perf_counter()
    n_steps = max(8, min(64, budget))
    model = train_sb3(
        env, "ppo", budget, seed=cell.seed, n_steps=n_steps, batch_size=min(32, n_steps)
    )
    log = TrainLog(
        env.curve, int(env.unwrapped.calls_used), _cache_hits(env), time.perf_counter() - start
    )
    env.close()

    def act(obs: Any) -> int:
        action, _ = model.predict(obs, deterministic=True)
        return int(np.asarray(action).item())

    return act, log


def run_maskable_ppo(cell: TaskSeedCell) -> tuple[dict[str, Any], list]:
    """MaskablePPO edits the manual prompt on the Edit env; its final prompt is scored on test."""
    from agents.sb3 import train_sb3
    from prompt_env.scoring import evaluate

    budget = cell.plan.budget_of(cell.task, "maskable-ppo")
    minibatch = cell.plan.edit_minibatch
    kwargs = {**cell.env_kwargs, "minibatch_size": minibatch}
    if cell.task.train_reward:
        kwargs["reward"] = cell.task.train_reward
    env = CurveRecorder(gym.make(env_id(cell.task.name, "Edit"), **kwargs))
    # each edit scores the prompt on the minibatch, and so does each reset
    steps = max(16, budget // minibatch)
    n_steps = max(8, min(64, steps))
    start = time.perf_counter()
    model = train_sb3(
        env, "maskable_ppo", steps, seed=cell.seed, n_steps=n_steps, batch_size=min(32, n_steps)
    )
    train_wall = time.perf_counter() - start
    train_calls, hits = int(env.unwrapped.calls_used), _cache_hits(env)
    obs, _ = env.reset(seed=cell.seed)
    done = False
    while not done:  # one greedy episode from the manual prompt: its final prompt is the result
        action, _ = model.predict(
            obs, deterministic=True, action_masks=env.unwrapped.action_masks()
        )
        obs, _, terminated, truncated, _ = env.step(int(np.asarray(action).item()))
        done = terminated or truncated
    base = env.unwrapped
    prompt = base.prompt
    test = base.task.split("test")[: cell.task.test_limit]
    eval_start = time.perf_counter()
    outcomes = evaluate(base.llm, base.task, [(prompt, e) for e in test], cell.metric)
    score = float(np.mean([o.score for o in outcomes]))
    env.close()
    row = {
        "test_score": round(score, 4),
        "llm_calls": int(base.calls_used) + len(test),
        "cache_hit_rate": round(hits / train_calls, 3) if train_calls else 0.0,
        "wall_s": round(train_wall + time.perf_counter() - eval_start, 2),
        "notes": f"final prompt {prompt.name} after {steps} edit steps on dev",
        "final_prompt": prompt.describe() if hasattr(prompt, "describe") else prompt.name,
    }
    return row, env.curve


def compress_curve(curve: list[dict[str, float]], window: int = 25) -> dict[str, list[float]]:
    """Moving mean of the training reward vs LLM calls, at most CURVE_POINTS points."""
    rewards = np.array([c["reward"] for c in curve], dtype=np.float64)
    calls = np.array([c["llm_calls"] for c in curve], dtype=np.float64)
    width = max(1, min(window, len(rewards)))
    smooth = np.convolve(rewards, np.ones(width) / width, mode="valid")
    calls = calls[len(calls) - len(smooth) :]
    index = np.unique(np.linspace(0, len(smooth) - 1, min(CURVE_POINTS, len(smooth))).astype(int))
    return {
        "llm_calls": calls[index].tolist(),
        "reward": [round(float(r), 5) for r in smooth[index]],
    }


# --------------------------------------------------------------------------- the grid


def run_grid(plan: Plan) -> dict[str, Any]:
    """Run every missing cell; returns counts and all rows."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    plan.out.mkdir(parents=True, exist_ok=True)
    results = plan.out / "results.jsonl"
    rows = read_rows(results)
    done = {cell_key(r["task"], r["policy"], r["seed"]) for r in rows}
    cells = list(plan.cells())
    console = Console(stderr=True)
    skipped = sum(cell_key(t.name, p, s) in done for t, s, p in cells)
    new = 0
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not plan.progress,
    )
    current: TaskSeedCell | None = None
    busy: set[tuple[str, int]] = set()  # (task, seed) claimed by another harness process
    with progress:
        bar = progress.add_task("grid", total=len(cells), completed=skipped)
        table_bar = progress.add_task("score tables", total=1, visible=False)
        last_line = [0.0]

        def on_table(split: str, done: int, total: int) -> None:
            progress.update(table_bar, description=f"  {split} score table (prompt x input pairs)",
                            completed=done, total=max(total, 1), visible=done < total)
            # a log file gets no live bar: a line at most every 30 s instead
            if plan.progress and not console.is_terminal and done and (
                done == total or time.monotonic() - last_line[0] > 30
            ):
                last_line[0] = time.monotonic()
                console.print(f"  {split} score table: {done}/{total} prompt x input pairs")

        try:
            for task, seed, policy in cells:
                if cell_key(task.name, policy, seed) in done or (task.name, seed) in busy:
                    continue
                if current is None or (current.task.name, current.seed) != (task.name, seed):
                    if current is not None:
                        release(plan.out, current.task.name, current.seed)
                        current = None
                    if not claim(plan.out, task.name, seed):
                        busy.add((task.name, seed))
                        console.print(f"{task.name} seed {seed}: another harness process has it; skipped")
                        continue
                    # rows another process appended since this one started
                    done |= {cell_key(r["task"], r["policy"], r["seed"]) for r in read_rows(results)}
                    if cell_key(task.name, policy, seed) in done:
                        release(plan.out, task.name, seed)
                        continue
                    current = TaskSeedCell(plan, task, seed)
                    current.table_progress = on_table
                progress.update(bar, description=f"{task.name} seed {seed}: {policy}")
                row = run_policy(current, policy)
                append_row(results, row)
                rows.append(row)
                done.add(cell_key(task.name, policy, seed))
                new += 1
                progress.advance(bar)
                console.print(
                    f"{task.name} seed {seed} {policy:>20}: {row['metric']} {row['test_score']:.3f}, "
                    f"{row['llm_calls']} LLM calls, {row['wall_s']:.1f} s"
                )
        finally:
            if current is not None:
                release(plan.out, current.task.name, current.seed)
    rows = read_rows(results)  # every process's rows, for the table and plots
    write_outputs(rows, plan)
    return {"new": new, "skipped": skipped, "rows": rows, "out": plan.out}


# --------------------------------------------------------------------------- reports


def _order(policy: str) -> int:
    return POLICIES.index(policy) if policy in POLICIES and policy != ORACLE else len(POLICIES)


def summarize(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per task, per policy: mean/std of the test score over seeds, mean calls and wall time."""
    by_task: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        by_task.setdefault(r["task"], {}).setdefault(r["policy"], []).append(r)
    summary: dict[str, list[dict[str, Any]]] = {}
    for task, policies in by_task.items():
        manual = {r["seed"]: r["test_score"] for r in policies.get("manual", [])}
        entries = []
        for policy in sorted(policies, key=_order):
            group = policies[policy]
            scores = np.array([r["test_score"] for r in group], dtype=np.float64)
            gains = [r["test_score"] - manual[r["seed"]] for r in group if r["seed"] in manual]
            entries.append(
                {
                    "policy": policy,
                    "n": len(group),
                    "mean": float(scores.mean()),
                    "std": float(scores.std(ddof=1)) if len(scores) > 1 else math.nan,
                    "gain": float(np.mean(gains)) if gains else math.nan,
                    "llm_calls": float(np.mean([r["llm_calls"] for r in group])),
                    "wall_s": float(np.mean([r["wall_s"] for r in group])),
                    "metric": group[0]["metric"],
                    "test_limit": group[0]["test_limit"],
                    "n_test": group[0].get("n_test", group[0]["test_limit"]),
                    "seeds": sorted(r["seed"] for r in group),
                    "upper_bound": policy == ORACLE,
                }
            )
        summary[task] = entries
    return summary


def _pct(x: float, percent: bool) -> str:
    if math.isnan(x):
        return "–"
    return f"{100 * x:.1f}" if percent else f"{x:.3f}"


def markdown_report(rows: list[dict[str, Any]], plan: Plan | None = None) -> str:
    """results.md: one table per task, mean ± std over seeds."""
    summary = summarize(rows)
    lines = ["# Benchmark results", ""]
    llms = sorted({str(r.get("llm")) for r in rows})
    lines.append(
        f"Task LLM: {', '.join(f'`{m}`' for m in llms)}. Scores are on a fixed test subset "
        "(the first N test examples, N given per task), mean ± sample std over seeds."
    )
    lines.append(
        "`LLM calls` = calls the policy needed, training + evaluation (best-fixed-on-dev: "
        "K prompts x dev + test; oracle: K x test), cached or not; `Δ manual` = mean gain "
        "over the manual prompt on the same seed."
    )
    lines.append("")
    for task, entries in summary.items():
        first = entries[0]
        percent = first["metric"] in {"accuracy", "exact_match", "em"}
        unit = " (%)" if percent else ""
        seeds = sorted({s for e in entries for s in e["seeds"]})
        lines += [
            f"## {task}: {first['metric']}{unit} on a fixed test subset of {first['n_test']} examples",
            "",
            f"Seeds present: {', '.join(map(str, seeds))}.",
            "",
            f"| policy | test {first['metric']}{unit} | Δ manual | seeds | LLM calls (mean) | wall s (mean) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for e in entries:
            name = f"{e['policy']} (upper bound)" if e["upper_bound"] else e["policy"]
            spread = "" if math.isnan(e["std"]) else f" ± {_pct(e['std'], percent)}"
            gain = _pct(e["gain"], percent)
            gain = gain if gain == "–" or gain.startswith("-") else f"+{gain}"
            lines.append(
                f"| {name} | {_pct(e['mean'], percent)}{spread} | {gain} | {e['n']} | "
                f"{e['llm_calls']:.0f} | {e['wall_s']:.1f} |"
            )
        lines.append("")
    lines += [
        "The per-query oracle looks at the answers (best prompt per input): an upper bound, "
        "not a policy.",
        "",
        "![score vs LLM calls](score_vs_calls.png)",
        "",
        "![learning curves](learning_curves.png)",
        "",
    ]
    return "\n".join(lines)


def _save_figure(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def _colors(policies: list[str]) -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {p: cmap(i % 10) for i, p in enumerate(sorted(policies, key=_order))}


def plot_score_vs_calls(rows: list[dict[str, Any]], path: Path) -> None:
    """One marker per policy per task: mean test score vs mean LLM calls (log x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    summary = summarize(rows)
    colors = _colors(sorted({r["policy"] for r in rows}))
    markers = "osD^v<>ph*"
    fig, axes = plt.subplots(
        1, len(summary), figsize=(5.5 * len(summary) + 1.5, 4.2), squeeze=False
    )
    for ax, (task, entries) in zip(axes[0], summary.items(), strict=False):
        for i, e in enumerate(entries):
            label = f"{e['policy']} (upper bound)" if e["upper_bound"] else e["policy"]
            yerr = None if math.isnan(e["std"]) else e["std"]
            ax.errorbar(
                max(e["llm_calls"], 1),
                e["mean"],
                yerr=yerr,
                fmt=markers[i % len(markers)],
                color=colors[e["policy"]],
                markersize=8,
                capsize=3,
                label=label,
                markerfacecolor="none" if e["upper_bound"] else colors[e["policy"]],
            )
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("LLM calls (training + evaluation, mean over seeds)")
        ax.set_ylabel(f"test {entries[0]['metric']} (n={entries[0]['n_test']})")
        ax.set_title(f"{task} ({len(entries[0]['seeds'])} seeds)")
        ax.grid(alpha=0.3, which="both")
    handles, labels = {}, {}
    for ax in axes[0]:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
            labels[label] = label
    fig.legend(list(handles.values()), list(handles), loc="center right", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1 - 1.6 / (5.5 * len(summary) + 1.5), 1))
    _save_figure(fig, path)


def plot_learning_curves(rows: list[dict[str, Any]], path: Path) -> None:
    """Training reward (moving mean, averaged over seeds) vs LLM calls, per task; Edit-env policies apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[tuple[str, str], dict[str, list[dict[str, list[float]]]]] = {}
    for r in rows:
        if r.get("curve"):
            env_kind = (
                "Edit env (reward: score change)" if r["policy"] == "maskable-ppo" else "Select env"
            )
            curves.setdefault((r["task"], env_kind), {}).setdefault(r["policy"], []).append(
                r["curve"]
            )
    panels = sorted(curves)
    colors = _colors(sorted({p for c in curves.values() for p in c}))
    fig, axes = plt.subplots(
        1, max(1, len(panels)), figsize=(5.5 * max(1, len(panels)), 4.2), squeeze=False
    )
    for ax, key in zip(axes[0], panels, strict=False):
        for policy in sorted(curves[key], key=_order):
            runs = curves[key][policy]
            n = min(len(c["reward"]) for c in runs)
            calls = np.mean([c["llm_calls"][:n] for c in runs], axis=0)
            reward = np.array([c["reward"][:n] for c in runs])
            ax.plot(
                calls,
                reward.mean(axis=0),
                color=colors[policy],
                linewidth=2,
                label=f"{policy} ({len(runs)})",
            )
            if len(runs) > 1:
                ax.fill_between(
                    calls, reward.min(axis=0), reward.max(axis=0), color=colors[policy], alpha=0.15
                )
        reward_names = sorted({str(r.get("train_reward")) for r in rows if r["task"] == key[0]})
        ax.set_title(f"{key[0]}, {key[1]}")
        ax.set_xlabel("LLM calls requested by the env (training)")
        ax.set_ylabel(f"training reward ({', '.join(reward_names)}), moving mean")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="policy (seeds)", title_fontsize=8)
    if not panels:
        axes[0][0].text(0.5, 0.5, "no learned policies in this grid", ha="center", va="center")
    fig.tight_layout()
    _save_figure(fig, path)


def write_outputs(rows: list[dict[str, Any]], plan: Plan) -> None:
    report = markdown_report(rows, plan)
    tmp = plan.out / "results.md.tmp"
    tmp.write_text(report)
    tmp.replace(plan.out / "results.md")
    if rows:
        plot_score_vs_calls(rows, plan.out / "score_vs_calls.png")
    plot_learning_curves(rows, plan.out / "learning_curves.png")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the grid described by ``argv``; returns ``{"new", "skipped", "rows", "out"}``."""
    plan = build_plan(parse_args(argv))
    start = time.perf_counter()
    summary = run_grid(plan)
    elapsed = time.perf_counter() - start
    print(markdown_report(summary["rows"], plan))
    print(
        f"{summary['new']} new cells, {summary['skipped']} skipped (already in "
        f"{plan.out / 'results.jsonl'}), {elapsed:.0f} s."
    )
    summary["wall_s"] = elapsed
    return summary


if __name__ == "__main__":
    main()
