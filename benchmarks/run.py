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
split (``few_shot_seed``; see ``Setting.for_task``); for other tasks it seeds the agent only.

A task may be a user's own data wherever a task name goes: ``--tasks my.jsonl``,
or a TOML ``[[tasks]]`` table with ``path = "my.jsonl"`` (and optionally
``name``, ``label_names``, ``input_field``, ``label_field``, ``label_order``,
``reference_field``, ``split_seed``); it runs on the ``PromptEnv/File-*`` envs.
``--tensorboard DIR`` also writes each row as TensorBoard event files.

Every finished (task, policy, seed) cell is appended as one JSON line to
``<out>/results.jsonl`` (flushed and fsynced), so an interrupted run resumes
where it stopped and a rerun of a finished grid does no new cells. Several
harness processes may work on one ``--out`` at once (e.g. one per core): each
claims a (task, seed) in ``<out>/.claims`` before running its cells, skips
those another live process holds, and takes over claims of dead ones. From all
rows present the harness (re)writes ``results.md`` (mean ± std over seeds),
``score_vs_calls.png`` and ``learning_curves.png``.

Policies: every name of the experiment layer's registry
(``agents.experiments.POLICIES``; ``prompt-env list`` describes them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

import prompt_env  # noqa: E402,F401  (registers the env ids)
from agents.experiments import POLICIES as REGISTRY  # noqa: E402
from agents.experiments import Setting, run_policy  # noqa: E402
from agents.experiments.files import ResumableRows, save_text  # noqa: E402
from agents.experiments.plots import plot_learning_curves, plot_score_vs_cost, plot_search_curves  # noqa: E402
from agents.experiments.registry import uses_proposer  # noqa: E402
from agents.experiments.report import summary_tables  # noqa: E402
from agents.experiments.run_policies import split_policy_name  # noqa: E402
from agents.experiments.task_ids import PATH_KEYS, task_entry  # noqa: E402
from agents.experiments.tensorboard import log_rows  # noqa: E402
from agents.experiments.tie_break import TieBreak  # noqa: E402
from agents.progress import ProgressReporter  # noqa: E402
from prompt_env.errors import PromptEnvError, did_you_mean  # noqa: E402
from prompt_env.tasks.catalog import load_task  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
QUICK_CONFIG = CONFIG_DIR / "quick.toml"

POLICIES = tuple(REGISTRY)
"""Every policy name the harness knows: the experiment layer's registry, in table order."""
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


# --------------------------------------------------------------------------- configuration


@dataclasses.dataclass
class TaskPlan:
    """One task of the grid and its per-task settings."""

    name: str
    seeds: list[int]
    test_limit: int
    budget: int
    train_reward: str | None
    """Reward while training (None: the setting's default, ``default_train_reward``)."""
    policies: list[str]
    task_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Passed to ``load_task`` (e.g. ``{"n_dev": 8}`` for bbc-topic); sst2/agnews add ``few_shot_seed``."""
    path: str | None = None
    """A user's file or directory (``name`` is then its label in tables)."""
    edit_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Edit env kwargs of the edit and search policies (the config's ``[edit_env]`` table,
    updated by the task's own ``edit_env`` table)."""
    search_space: bool = False
    """Edit-env policies search the shared search space (``agents.experiments.search_space``;
    ``edit_options`` override parts of it) and select on its reward."""
    tie_break: TieBreak | None = None
    """Rescore the dev-tied best prompts of Edit-env policies on held-out inputs."""


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
    compose_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Compose env kwargs of the compose-* policies (a ``[compose]`` table of the config)."""
    progress: bool = True
    tensorboard: Path | None = None
    """Also write each results row as TensorBoard event files here."""
    proposer: Any = "task"
    """Who writes instructions for the LLM-writing policies (ape, opro, evoprompt-llm, gepa,
    edit-*-propose): ``"task"`` (the task LLM, metered apart) or an LLM spec (``proposer`` key)."""

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
    parser.add_argument("--tasks", help="comma-separated catalog task names or data paths")
    parser.add_argument("--policies", help=f"comma-separated, of: {', '.join(POLICIES)}; "
                        "NAME@content-free or NAME@pmi scores with calibrated labels")
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
    parser.add_argument("--proposer", help="who writes instructions for ape, opro, evoprompt-llm, gepa "
                                           "and edit-*-propose: 'task' (the task LLM, default) or an LLM spec")
    parser.add_argument("--data-dir", help="task data directory (else $PROMPT_ENV_DATA)")
    parser.add_argument(
        "--out", type=Path, help="output directory (default from config, else runs/bench)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--edit-minibatch", type=int, metavar="N",
                        help="dev inputs each edit / search candidate is scored on (default 8)")
    parser.add_argument("--tie-break", action="store_true",
                        help="Edit-env policies rescore their dev-tied best prompts on held-out "
                             "inputs (charged to their budget); a config's tie_break = {...} sizes it")
    parser.add_argument("--tensorboard", type=Path, metavar="DIR",
                        help="also write TensorBoard event files, one run per results row")
    return parser.parse_args(argv)


def _split_list(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


CONFIG_KEYS = ("out", "llm", "proposer", "data_dir", "policies", "seeds", "budget", "test_limit",
               "train_reward", "policy_budgets", "edit_minibatch", "edit_env", "search_space",
               "tie_break", "compose", "tensorboard", "tasks")
"""Keys of a harness config's top level (a misspelt one would silently keep its default)."""
TASK_KEYS = ("name", "path", "task_options", "policies", "seeds", "budget", "test_limit",
             "train_reward", "edit_env", "search_space", "tie_break", *PATH_KEYS)
"""Keys of a ``[[tasks]]`` table (the reading options of a path among them)."""


def check_keys(where: str, table: Any, allowed: Sequence[str]) -> None:
    """SystemExit naming a key of ``table`` the harness does not read, with the likely typo."""
    if not isinstance(table, dict):
        raise SystemExit(f"{where} must be a table, got {type(table).__name__} {table!r}")
    for key in table:
        if key not in allowed:
            raise SystemExit(f"{where}: unknown key {key!r}{did_you_mean(key, allowed, cutoff=0.75)}; "
                             f"it takes {', '.join(allowed)}")


def read_config(path: Path) -> dict[str, Any]:
    """A harness config, checked: a missing file, bad TOML or an unknown key is one line."""
    try:
        with open(path, "rb") as handle:
            config = tomllib.load(handle)
    except FileNotFoundError:
        raise SystemExit(f"--config {path}: no such file (the committed ones are in benchmarks/configs/)") from None
    except tomllib.TOMLDecodeError as error:
        raise SystemExit(f"{path}: not valid TOML: {error}") from None
    check_keys(str(path), config, CONFIG_KEYS)
    tables = config.get("tasks", [])
    if not isinstance(tables, list):
        raise SystemExit(f"{path}: tasks must be [[tasks]] tables, got {type(tables).__name__}")
    for i, table in enumerate(tables):
        check_keys(f"{path} [[tasks]] #{i + 1}", table, TASK_KEYS)
    return config


def build_plan(args: argparse.Namespace) -> Plan:
    """Merge the TOML config (if any) with the CLI flags; flags win."""
    config_path = QUICK_CONFIG if args.quick and args.config is None else args.config
    config: dict[str, Any] = read_config(config_path) if config_path is not None else {}
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
        try:
            name, path, options = task_entry(table)
        except (ValueError, FileNotFoundError) as error:
            raise SystemExit(str(error)) from None
        options.update(args.task_options or {})
        # CLI flags override per-task config values as well as the config's defaults
        pick = {
            key: (defaults[key] if getattr(args, key, None) else table.get(key, defaults[key]))
            for key in ("budget", "test_limit", "train_reward")
        }
        policies = (
            defaults["policies"] if args.policies else table.get("policies", defaults["policies"])
        )
        seeds = defaults["seeds"] if args.seeds else table.get("seeds", defaults["seeds"])
        unknown = sorted(p for p in policies if split_policy_name(p)[0] not in POLICIES)
        if unknown:
            raise SystemExit(f"unknown policies {unknown}; known: {', '.join(POLICIES)}")
        if path is not None:
            try:
                load_task(path, **options)  # a file that cannot be read fails before any work
            except PromptEnvError as error:
                raise SystemExit(f"[[tasks]] {name!r}: {error}") from None
        try:
            tie_break = TieBreak.of(True if args.tie_break else table.get("tie_break",
                                                                          config.get("tie_break")))
        except ValueError as error:
            raise SystemExit(str(error)) from None
        tasks.append(
            TaskPlan(
                name,
                [int(s) for s in seeds],
                int(pick["test_limit"]),
                int(pick["budget"]),
                pick["train_reward"],
                list(policies),
                options,
                path,
                edit_env_options({**config.get("edit_env", {}), **table.get("edit_env", {})}),
                bool(table.get("search_space", config.get("search_space", False))),
                tie_break,
            )
        )
    out = args.out or Path(config.get("out", "runs/bench"))
    return Plan(
        tasks=tasks,
        llm=args.llm or config.get("llm", "default"),
        data_dir=args.data_dir or config.get("data_dir") or os.environ.get("PROMPT_ENV_DATA"),
        out=out,
        policy_budgets={k: int(v) for k, v in config.get("policy_budgets", {}).items()},
        edit_minibatch=int(args.edit_minibatch or config.get("edit_minibatch", 8)),
        compose_options=dict(config.get("compose", {})),
        progress=not args.no_progress,
        tensorboard=args.tensorboard or (Path(config["tensorboard"]) if "tensorboard" in config else None),
        proposer=proposer_of(getattr(args, "proposer", None) or config.get("proposer", "task")),
    )


def proposer_of(spec: Any) -> Any:
    """The ``proposer`` config key (or ``--proposer``), checked before any work."""
    from prompt_env.proposer import ProposerError, check_proposer_spec

    try:
        check_proposer_spec(spec)
    except ProposerError as error:
        raise SystemExit(str(error)) from None
    return spec


ALL = "all"
"""TOML has no null: ``n_candidates = "all"`` / ``minibatch_size = "all"`` mean None (the
whole train split / every dev input), ``calibration_choices = ["raw", ...]`` None for raw scores."""


def edit_env_options(table: dict[str, Any]) -> dict[str, Any]:
    """Edit env kwargs from an ``[edit_env]`` table (TOML spellings of None turned into None)."""
    options = dict(table)
    for key in ("n_candidates", "minibatch_size"):
        if options.get(key) == ALL:
            options[key] = None
    if "calibration_choices" in options:
        options["calibration_choices"] = [None if c == "raw" else c for c in options["calibration_choices"]]
    return options


# --------------------------------------------------------------------------- results file

RESULTS_FILE = "results.jsonl"


def cell_key(task: str, policy: str, seed: int) -> tuple[str, str, int]:
    return (task, policy, int(seed))


def row_key(row: dict[str, Any]) -> tuple[str, str, int]:
    return cell_key(row["task"], row["policy"], row["seed"])


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


def setting_of(plan: Plan, task: TaskPlan, seed: int, reporter: ProgressReporter) -> Setting:
    """The experiment setting of one (task, seed): its envs, training reward and test subset."""
    return Setting.for_task(task.path or task.name, llm=plan.llm, seed=seed,
                            data_dir=plan.data_dir, task_options=task.task_options,
                            train_reward=task.train_reward, test_limit=task.test_limit,
                            edit_minibatch=plan.edit_minibatch, edit_options=task.edit_options,
                            search_space=task.search_space, tie_break=task.tie_break,
                            compose_options=plan.compose_options, proposer=plan.proposer,
                            reporter=reporter)


def run_cell(plan: Plan, task: TaskPlan, setting: Setting, policy: str) -> dict[str, Any]:
    """Train (if needed) and evaluate one policy; returns its results row."""
    context: dict[str, Any] = {"task": task.name,
                               "task_options": setting.env_kwargs.get("task_options", {})}
    if setting.edit_options:
        context["edit_options"] = setting.edit_options
    if task.tie_break is not None:
        context["tie_break_options"] = dataclasses.asdict(task.tie_break)
    if task.path is not None:
        context["task_path"] = task.path
    if uses_proposer(policy):
        context["proposer"] = setting.proposer
    return run_policy(setting, policy, plan.budget_of(task, policy), context)


# --------------------------------------------------------------------------- the grid


def run_grid(plan: Plan) -> dict[str, Any]:
    """Run every missing cell; returns counts and all rows."""
    plan.out.mkdir(parents=True, exist_ok=True)
    results = ResumableRows(plan.out / RESULTS_FILE, row_key)
    cells = list(plan.cells())
    skipped = sum(results.done(cell_key(t.name, p, s)) for t, s, p in cells)
    new = 0
    reporter = ProgressReporter(enabled=plan.progress)
    console = reporter.console
    current: tuple[TaskPlan, int, Setting] | None = None
    busy: set[tuple[str, int]] = set()  # (task, seed) claimed by another harness process
    with reporter:
        bar = reporter.add("grid", len(cells), completed=skipped)
        try:
            for task, seed, policy in cells:
                if results.done(cell_key(task.name, policy, seed)) or (task.name, seed) in busy:
                    continue
                if current is None or (current[0].name, current[1]) != (task.name, seed):
                    if current is not None:
                        release(plan.out, current[0].name, current[1])
                        current = None
                    if not claim(plan.out, task.name, seed):
                        busy.add((task.name, seed))
                        console.print(f"{task.name} seed {seed}: another harness process has it; skipped")
                        continue
                    results.refresh()  # rows another process appended since this one started
                    if results.done(cell_key(task.name, policy, seed)):
                        release(plan.out, task.name, seed)
                        continue
                    current = (task, seed, setting_of(plan, task, seed, reporter))
                reporter.update(bar, description=f"{task.name} seed {seed}: {policy}")
                row = results.add(run_cell(plan, task, current[2], policy))
                if plan.tensorboard is not None:
                    log_rows(plan.tensorboard, [row])
                new += 1
                reporter.update(bar, advance=1)
                console.print(
                    f"{task.name} seed {seed} {policy:>20}: {row['metric']} {row['test_score']:.3f}, "
                    f"{row['llm_calls']} LLM calls ({row['distinct_pairs']} distinct), "
                    f"{row['wall_s']:.1f} s"
                    + (f", {row['proposer_calls']} proposer calls" if row.get("proposer_calls") else "")
                )
        finally:
            if current is not None:
                release(plan.out, current[0].name, current[1])
    rows = results.refresh()  # every process's rows, for the table and plots
    write_results(rows, plan.out)
    return {"new": new, "skipped": skipped, "rows": rows, "out": plan.out}


# --------------------------------------------------------------------------- reports


def results_markdown(rows: list[dict[str, Any]]) -> str:
    """results.md: one table per task, mean ± std over seeds."""
    llms = sorted({str(r.get("llm")) for r in rows})
    lines = [
        "# Benchmark results",
        "",
        f"Task LLM: {', '.join(f'`{m}`' for m in llms)}. Scores are on a fixed test subset "
        "(the first N test examples, N given per task), mean ± sample std over seeds.",
        "`LLM calls` = (prompt, input) calls the policy requested, training + evaluation, cached or "
        "not (best-fixed-on-dev: K prompts x dev + test; oracle: K x test); `distinct pairs` = the "
        "distinct ones among them (what a run costs with a cache); `Δ manual` = mean gain over the "
        "manual prompt on the same seed; `wall s` = measured time of the work done for that policy "
        "alone (test scores of pool-prompt choices are read from one shared, separately timed test "
        "score table).",
        "",
    ]
    for task, table in summary_tables(rows).items():
        seeds = sorted({r["seed"] for r in rows if r["task"] == task})
        lines += [f"## {table.title}", "", f"Seeds present: {', '.join(map(str, seeds))}.", "",
                  table.to_markdown(), ""]
    lines += [
        "The per-query oracle looks at the answers (best prompt per input): an upper bound, "
        "not a policy.",
        "",
        "![score vs LLM calls](score_vs_calls.png)",
        "",
        "![score vs distinct pairs](score_vs_distinct_pairs.png)",
        "",
        "![learning curves](learning_curves.png)",
        "",
    ]
    if any(r.get("search_curve") for r in rows):
        lines += ["Edit and search policies: the best prompt found so far, by its score on their dev "
                  "minibatch, against the distinct pairs spent:", "",
                  "![best found vs distinct pairs](search_curves.png)", ""]
    return "\n".join(lines)


def write_results(rows: list[dict[str, Any]], out: Path) -> None:
    """results.md and the three figures, from every row present."""
    save_text(results_markdown(rows), out / "results.md")
    if rows:
        plot_score_vs_cost(rows, out / "score_vs_calls.png", "llm_calls")
        plot_score_vs_cost(rows, out / "score_vs_distinct_pairs.png", "distinct_pairs")
    plot_learning_curves(rows, out / "learning_curves.png")
    if any(r.get("search_curve") for r in rows):
        plot_search_curves(rows, out / "search_curves.png")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the grid described by ``argv``; returns ``{"new", "skipped", "rows", "out"}``."""
    plan = build_plan(parse_args(argv))
    start = time.perf_counter()
    summary = run_grid(plan)
    elapsed = time.perf_counter() - start
    print(results_markdown(summary["rows"]))
    print(
        f"{summary['new']} new cells, {summary['skipped']} skipped (already in "
        f"{plan.out / RESULTS_FILE}), {elapsed:.0f} s."
    )
    summary["wall_s"] = elapsed
    return summary


if __name__ == "__main__":
    main()
