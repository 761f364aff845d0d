"""The evidence behind `prompt-env optimize`'s budget rule: tabular Q against best-fixed-on-dev
at budgets of 1, 2, 3 and 5 times a task's pool cost.

    PROMPT_ENV_THREADS=1 python benchmarks/budget_rule.py --tasks sst2 --data-dir ../shared/data
    PROMPT_ENV_THREADS=1 python benchmarks/budget_rule.py --tasks agnews --data-dir ../shared/data
    python benchmarks/budget_rule.py --report-only

The pool cost of SST-2 and AG News is 11 pool prompts x 32 search dev inputs = 352 calls.
Each multiple runs the harness (``benchmarks/configs/edit_search_tiebreak.toml``'s settings:
the shared search space, dev ties broken on held-out inputs) with best-fixed-on-dev and
edit-tabular-q on the 5 seeds into ``benchmarks/results/budget_rule/x<multiple>/``. Tabular
Q's runs with a smaller budget follow the same path as its runs with a larger one (same seed,
same rewards), so they read their answers from the response cache of the larger runs.
The report (``README.md`` there) gives, per task and multiple, the mean test accuracy of both
and which is ahead. No sweep is committed yet: the rule in
``agents/experiments/optimize_plan.py`` (``BUDGET_RULE``, ``RULE_EVIDENCE``) rests on the
edit-search rows (``benchmarks/results/edit_search/``), and a test checks it against them;
a committed sweep is what would move the threshold below 4.5 pool costs.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from agents.experiments.files import read_jsonl, save_text  # noqa: E402
from agents.experiments.report import ResultTable  # noqa: E402

POOL_COST = 11 * 32
MULTIPLES = (1, 2, 3, 5)
CONFIG = ROOT / "benchmarks" / "configs" / "edit_search_tiebreak.toml"
OUT = ROOT / "benchmarks" / "results" / "budget_rule"
POLICIES = ("best-fixed-on-dev", "edit-tabular-q")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="sst2,agnews")
    parser.add_argument("--multiples", default=",".join(map(str, MULTIPLES)))
    parser.add_argument("--data-dir", help="task data directory (else $PROMPT_ENV_DATA)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--report-only", action="store_true")
    return parser.parse_args(argv)


def harness() -> Any:
    spec = importlib.util.spec_from_file_location("benchmark_harness", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def evidence(out: Path) -> list[dict[str, Any]]:
    """Per task and multiple: mean test accuracy (%) of both policies over the seeds both have."""
    found = []
    for folder in sorted(out.glob("x*"), key=lambda p: float(p.name[1:])):
        rows = read_jsonl(folder / "results.jsonl")
        for task in sorted({r["task"] for r in rows}):
            by_policy = {p: {r["seed"]: r["test_score"] for r in rows
                             if r["task"] == task and r["policy"] == p} for p in POLICIES}
            seeds = sorted(set(by_policy[POLICIES[0]]) & set(by_policy[POLICIES[1]]))
            if not seeds:
                continue
            means = {p: 100 * statistics.mean(by_policy[p][s] for s in seeds) for p in POLICIES}
            gains = [100 * (by_policy[POLICIES[1]][s] - by_policy[POLICIES[0]][s]) for s in seeds]
            found.append({"task": task, "multiple": float(folder.name[1:]), "seeds": len(seeds),
                          "best_fixed": round(means[POLICIES[0]], 1),
                          "search": round(means[POLICIES[1]], 1),
                          "gain": round(statistics.mean(gains), 1),
                          "gain_std": round(statistics.stdev(gains), 1) if len(gains) > 1 else None,
                          "rows": f"benchmarks/results/budget_rule/{folder.name}/results.jsonl"})
    return found


def report(found: list[dict[str, Any]]) -> str:
    table = ResultTable(["task", "budget (x pool cost)", "calls", "seeds", "best-fixed-on-dev (%)",
                         "edit-tabular-q (%)", "gain (points, mean ± std over seeds)", "ahead"],
                        ["left"] + ["right"] * 7)
    for e in found:
        spread = "" if e["gain_std"] is None else f" ± {e['gain_std']:.1f}"
        table.rows.append([e["task"], f"{e['multiple']:g}", str(int(e["multiple"] * POOL_COST)),
                           str(e["seeds"]), f"{e['best_fixed']:.1f}", f"{e['search']:.1f}",
                           f"{e['gain']:+.1f}{spread}", "yes" if e["gain"] > 0 else "no"])
    return "\n".join([
        "# Which method at which budget",
        "",
        "Tabular Q-learning (gamma 0.9) over the shared search space with dev ties broken on "
        "held-out inputs, against best-fixed-on-dev (the 11 pool prompts on all of dev), at "
        "budgets of 1, 2, 3 and 5 times the pool cost (11 prompts x 32 dev inputs = 352 calls) "
        "on SST-2 (first 500 test sentences) and AG News (first 200 test articles), 16-shot "
        "splits of seeds 13, 21, 42, 87 and 100. `prompt-env optimize` without `--policy` "
        "picks best-fixed-on-dev below the smallest multiple at which tabular Q is ahead on both "
        "tasks and stays ahead, and edit-tabular-q from there on (`BUDGET_RULE` in "
        "`agents/experiments/optimize_plan.py`).",
        "",
        "```",
        "PROMPT_ENV_THREADS=1 python benchmarks/budget_rule.py --tasks sst2 --data-dir ../shared/data",
        "PROMPT_ENV_THREADS=1 python benchmarks/budget_rule.py --tasks agnews --data-dir ../shared/data",
        "```",
        "",
        table.to_markdown(),
        "",
        "Rows: `x<multiple>/results.jsonl` beside this file (every column measured; tabular Q's "
        "LLM calls include its tie-break).",
        "",
    ])


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    if not args.report_only:
        run = harness()
        for multiple in (float(m) for m in args.multiples.split(",")):
            run.main(["--config", str(CONFIG), "--tasks", args.tasks, "--policies", ",".join(POLICIES),
                      "--budget", str(int(multiple * POOL_COST)), "--out", str(args.out / f"x{multiple:g}"),
                      "--no-progress", *(["--data-dir", args.data_dir] if args.data_dir else [])])
    found = evidence(args.out)
    save_text(report(found), args.out / "README.md")
    print(report(found))
    return found


if __name__ == "__main__":
    main()
