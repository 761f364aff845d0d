"""Issue #27's questions, answered from the committed proposer rows (no LLM calls).

    python benchmarks/proposer_summary.py benchmarks/results/proposer/results.jsonl \\
        --data-dir ../shared/data --out benchmarks/results/proposer/summary.md

Per task: every policy's mean test score over the seeds present, the task-LM calls, distinct
pairs and proposer calls it spent, and its paired difference (same seeds) against the best
pool-only search of the task (random search, evolution, edit-tabular-q: the prompt space
without written text). Then the instructions each writing policy ended with, seed by seed,
marked *written* when the proposer wrote them and *pool* when the search kept a pool one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from agents.experiments.files import read_jsonl, save_text  # noqa: E402
from agents.experiments.report import ResultTable  # noqa: E402

POOL_ONLY = ("random-search", "evolution", "edit-tabular-q")
WRITERS = ("ape", "opro", "evoprompt-llm", "gepa", "edit-tabular-q-propose", "edit-dqn-propose")


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * spread:.1f}"


def task_table(rows: list[dict[str, Any]]) -> tuple[ResultTable, str]:
    """(the policies of one task, the best pool-only search's name)."""
    by_policy: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        by_policy.setdefault(row["policy"], {})[row["seed"]] = row
    pool_means = {p: statistics.mean(r["test_score"] for r in by_policy[p].values())
                  for p in POOL_ONLY if p in by_policy}
    reference = max(pool_means, key=pool_means.get) if pool_means else ""
    table = ResultTable(["policy", "seeds", "test score (%)", f"Δ {reference or 'pool search'} (paired)",
                         "task-LM calls", "distinct pairs", "proposer calls"],
                        ["left", "right", "right", "right", "right", "right", "right"])
    for policy, seeds in by_policy.items():
        scores = [r["test_score"] for r in seeds.values()]
        paired = [100 * (r["test_score"] - by_policy[reference][s]["test_score"])
                  for s, r in seeds.items() if reference and s in by_policy[reference]]
        delta = (f"{statistics.mean(paired):+.1f}" if paired and policy != reference else "")
        table.rows.append([policy, str(len(seeds)), _mean_std(scores), delta,
                           f"{statistics.mean(r['llm_calls'] for r in seeds.values()):.0f}",
                           f"{statistics.mean(r['distinct_pairs'] for r in seeds.values()):.0f}",
                           f"{statistics.mean(r.get('proposer_calls', 0) for r in seeds.values()):.0f}"])
    return table, reference


def pool_instructions(task: str, data_dir: str | None = None) -> set[str]:
    """The instructions of the task's hand-written pool (empty when the data is not here)."""
    try:
        from prompt_env.tasks import load_task

        options = {"data_dir": data_dir} if data_dir else {}
        return set(load_task(task, **options).prompt_pool.instructions)
    except Exception:  # noqa: BLE001 - the summary still lists the instructions
        return set()


def instructions(rows: list[dict[str, Any]], pool: set[str]) -> ResultTable:
    table = ResultTable(["policy", "seed", "test score", "kept instruction", "source"],
                        ["left", "right", "right", "left", "left"])
    for row in sorted((r for r in rows if r["policy"] in WRITERS),
                      key=lambda r: (WRITERS.index(r["policy"]), r["seed"])):
        text = str((row.get("final_prompt") or {}).get("instruction") or "")
        source = "pool" if text in pool else ("written" if pool else "?")
        shown = text.replace("|", "/").replace("\n", " ")
        table.rows.append([row["policy"], str(row["seed"]), f"{row['test_score']:.3f}",
                           (shown[:160] + "…") if len(shown) > 160 else shown or "(none)", source])
    return table


def summary(rows: list[dict[str, Any]], data_dir: str | None = None) -> str:
    lines = []
    for task in sorted({r["task"] for r in rows}):
        mine = [r for r in rows if r["task"] == task]
        table, reference = task_table(mine)
        metric = mine[0].get("metric", "score")
        lines += [f"## {task} ({metric}, first {mine[0].get('n_test')} test inputs)", "",
                  table.to_markdown(), "",
                  (f"Δ: mean paired difference in points against {reference}, the best pool-only "
                   "search of this task, on the seeds both have." if reference else
                   "Δ: no pool-only search row of this task yet."), "",
                  "Instructions the writing policies ended with:", "",
                  instructions(mine, pool_instructions(task, data_dir)).to_markdown(), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--data-dir", help="task data directory (else $PROMPT_ENV_DATA), to tell "
                                           "written instructions from the pool's")
    args = parser.parse_args(argv)
    text = summary(read_jsonl(args.rows), args.data_dir)
    if args.out:
        save_text(text, args.out)
    print(text)


if __name__ == "__main__":
    main()
