"""``prompt-env optimize`` on the catalog's 16-shot splits, seed by seed, and the summary of its gains.

    PROMPT_ENV_THREADS=1 python benchmarks/optimize_grid.py --tasks sst2 --budget heavy \\
        --data-dir ../shared/data        # and, in a second process, --tasks agnews

For every (task, seed) it runs the product path exactly as a user would (no ``--policy``:
the method the budget rule picks), writing ``<out>/<task>-seed<S>/`` (report.md,
results.json, best_prompt.txt, config.json ...); a finished run is skipped, a killed one
resumes from its ``state.json``. Then ``<out>/README.md`` gets one table: the winner's test
score against best-fixed-on-dev and the manual prompt on the same test inputs, per seed,
with the mean gain and its spread, and the LLM calls each cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from agents.experiments.files import read_json, read_jsonl, save_text  # noqa: E402
from agents.experiments.optimize import optimize  # noqa: E402
from agents.experiments.report import ResultTable  # noqa: E402

SEEDS = (13, 21, 42, 87, 100)
TEST_LIMITS = {"sst2": 500, "agnews": 200}
"""The edit-search benchmark's fixed test subsets (the first N test inputs)."""
EDIT_SEARCH_ROWS = ROOT / "benchmarks" / "results" / "edit_search" / "results.jsonl"
"""The harness's edit-search rows (same splits, seeds and test inputs; no tie-break)."""
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "optimize"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="sst2,agnews", help="comma-separated catalog tasks")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--budget", default="heavy", help="LLM calls or a preset (default heavy)")
    parser.add_argument("--data-dir", help="task data directory (else $PROMPT_ENV_DATA)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--report-only", action="store_true", help="only rewrite README.md")
    return parser.parse_args(argv)


def run_dir(out: Path, task: str, seed: int) -> Path:
    return out / f"{task}-seed{seed}"


def runs(out: Path) -> list[tuple[str, int, dict[str, dict[str, Any]], str]]:
    """(task, seed, rows by policy, the shipped method) of every finished run under ``out``."""
    found = []
    for results in out.glob("*-seed*/results.json"):
        task, seed = results.parent.name.split("-seed")
        rows = {r["policy"]: r for r in read_json(results)}
        method = [p for p in rows if p not in ("manual", "best-fixed-on-dev")] or ["best-fixed-on-dev"]
        found.append((task, int(seed), rows, method[0]))
    return sorted(found, key=lambda run: (run[0], run[1]))


def other_budgets(out: Path) -> ResultTable:
    """The runs of other budgets kept in subfolders of ``out`` (``budget-<N>/``), seed by seed
    against this folder's runs: the shipped prompt's test score and the calls it cost."""
    table = ResultTable(["runs", "task", "seeds", "winner (%)", "here (%)", "same prompt shipped",
                         "LLM calls (there / here)"], ["left", "left"] + ["right"] * 5)
    here = {(task, seed): (rows[method], method) for task, seed, rows, method in runs(out)}
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and (p / "README.md").exists()):
        by_task: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        for task, seed, rows, method in runs(folder):
            if (task, seed) in here:
                by_task.setdefault(task, []).append((rows[method], here[(task, seed)][0]))
        for task, pairs in sorted(by_task.items()):
            same = sum(a.get("final_prompt") == b.get("final_prompt") for a, b in pairs)
            table.rows.append([f"[{folder.name}]({folder.name}/README.md)", task, str(len(pairs)),
                               f"{100 * statistics.mean(a['test_score'] for a, _ in pairs):.1f}",
                               f"{100 * statistics.mean(b['test_score'] for _, b in pairs):.1f}",
                               f"{same} / {len(pairs)}",
                               f"{statistics.mean(a['llm_calls'] for a, _ in pairs):.0f} / "
                               f"{statistics.mean(b['llm_calls'] for _, b in pairs):.0f}"])
    return table


def commands(out: Path, budget: str, tasks: list[str]) -> list[str]:
    """The command lines that write ``out``'s runs, a process per task."""
    folder = out.resolve()
    shown = folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else out
    where = "" if folder == DEFAULT_OUT else f" --out {shown}"
    return [f"PROMPT_ENV_THREADS=1 python benchmarks/optimize_grid.py --tasks {task} --budget {budget}"
            f"{where} --data-dir ../shared/data" for task in tasks]


def summary(out: Path, budget: str) -> str:
    """README.md: per seed and per task, the shipped prompt against best-fixed-on-dev."""
    table = ResultTable(["task", "seed", "method", "winner (%)", "best-fixed-on-dev (%)", "manual (%)",
                         "gain over best-fixed", "LLM calls (search + test)", "distinct pairs"],
                        ["left", "right", "left"] + ["right"] * 6)
    gains: dict[str, list[float]] = {}
    for task, seed, rows, method in runs(out):
        winner = rows[method]
        gain = 100 * (winner["test_score"] - rows["best-fixed-on-dev"]["test_score"])
        gains.setdefault(task, []).append(gain)
        table.rows.append([f"[{task}]({run_dir(Path(), task, seed)}/report.md)", str(seed), method,
                           f"{100 * winner['test_score']:.1f}",
                           f"{100 * rows['best-fixed-on-dev']['test_score']:.1f}",
                           f"{100 * rows['manual']['test_score']:.1f}", f"{gain:+.1f}",
                           str(winner["llm_calls"]), str(winner["distinct_pairs"])])
    means = ResultTable(["task", "seeds", "mean gain over best-fixed-on-dev (points)", "std over seeds",
                         "standard error of the mean (derived)"], ["left"] + ["right"] * 4)
    for task, values in gains.items():
        spread = statistics.stdev(values) if len(values) > 1 else float("nan")
        means.rows.append([task, str(len(values)), f"{statistics.mean(values):+.1f}", f"{spread:.1f}",
                           f"{spread / len(values) ** 0.5:.1f}"])
    harness = {(r["task"], r["seed"]): r for r in read_jsonl(EDIT_SEARCH_ROWS)
               if r["policy"] == "edit-tabular-q"} if EDIT_SEARCH_ROWS.exists() else {}
    versus = ResultTable(["task", "seeds", "optimize: edit-tabular-q + tie-break (%)",
                          "harness: edit-tabular-q, no tie-break (%)", "harness budget (calls)",
                          "paired difference (points)"], ["left"] + ["right"] * 5)
    for task in sorted(gains):
        pairs = [(rows["edit-tabular-q"]["test_score"], harness[(task, seed)]["test_score"],
                  harness[(task, seed)]["budget"])
                 for t, seed, rows, _ in runs(out) if t == task and "edit-tabular-q" in rows
                 and (task, seed) in harness]
        if pairs:
            ours, theirs, budgets = zip(*pairs)
            diffs = [100 * (a - b) for a, b in zip(ours, theirs)]
            versus.rows.append([task, str(len(pairs)), f"{100 * statistics.mean(ours):.1f}",
                                f"{100 * statistics.mean(theirs):.1f}", str(budgets[0]),
                                f"{statistics.mean(diffs):+.1f} ± "
                                f"{statistics.stdev(diffs) if len(diffs) > 1 else float('nan'):.1f}"])
    others = other_budgets(out)
    return "\n".join([
        "# `prompt-env optimize` on the 16-shot splits",
        "",
        f"The product path as a user runs it: `prompt-env optimize --data <task> --seed <S> --budget "
        f"{budget} --test-limit <N>`, no `--policy` (the budget rule picks the method), on the "
        "catalog's SST-2 and AG News 16-shot splits. Test inputs: the first 500 SST-2 and 200 AG "
        "News test examples, as in the edit-search rows; the winner, best-fixed-on-dev and the "
        "manual prompt are scored on the same inputs, once, after the choice.",
        "",
        "```",
        *commands(out, budget, sorted(gains)),
        "```",
        "",
        means.to_markdown(),
        "",
        table.to_markdown(),
        "",
        "The same method through the harness (`benchmarks/configs/edit_search.toml`: the same "
        "search space, splits, seeds and test inputs, the budget in the table, no tie-break), "
        "seed by seed:",
        "",
        versus.to_markdown(),
        "",
        "`LLM calls` of the winner: its search (pool scores of the reference excluded, the "
        "tie-break included) plus its test evaluation, requested whether the cache answered or "
        "not; each run's `report.md` has the whole account and what the model answered.",
        "",
    ] + ([] if not others.rows else [
        "The same runs at other budgets (`--budget N --out <this folder>/budget-N`), against these:",
        "",
        others.to_markdown(),
        "",
    ]))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.data_dir:
        os.environ["PROMPT_ENV_DATA"] = str(Path(args.data_dir).resolve())
    budget: Any = int(args.budget) if args.budget.isdigit() else args.budget
    if not args.report_only:
        for task in args.tasks.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                target = run_dir(args.out, task, seed)
                if (target / "results.json").exists():
                    print(f"{task} seed {seed}: done ({target})")
                    continue
                # the report's reproduce line names the folder as a user in the checkout would
                shown = Path(os.path.relpath(target)) if target.resolve().is_relative_to(Path.cwd()) else target
                result = optimize(task, budget=budget, seed=seed, out=shown,
                                  test_limit=TEST_LIMITS.get(task, 200), progress=False)
                print(f"{task} seed {seed}: {result.plan.method} "
                      + ", ".join(f"{r['policy']} {r['test_score']:.3f}" for r in result.rows))
    save_text(summary(args.out, str(args.budget)), args.out / "README.md")
    print(summary(args.out, str(args.budget)))


if __name__ == "__main__":
    main()
