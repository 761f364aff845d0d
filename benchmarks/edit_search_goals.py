"""Issue #13's goal lines, answered from committed harness rows (no LLM calls).

    python benchmarks/edit_search_goals.py benchmarks/results/edit_search/results.jsonl

Per task, from the rows of ``benchmarks/configs/edit_search.toml``:

1. each Q-learner (``edit-tabular-q``, ``edit-dqn``; the rule Q(s,a) = r + gamma max Q(s',a'),
   gamma 0.9, on the multi-step Edit env) against ``best-fixed-on-dev`` + 2 points: the mean
   test accuracy over seeds, and the per-seed difference (mean ± sample std: the seeds share
   the test subset, so the paired difference is what the claim rests on);
2. the same Q-learner against each search baseline (random search, hill-climb, evolution) at
   the same budget: paired differences, and the mean LLM calls and distinct pairs each spent;
3. the cost columns are the rows' own (every requested call, and the distinct pairs);
4. the cost of *finding*: on each seed, the best dev accuracy any searching policy reached on
   the shared fixed minibatch, and per policy how often and after how many distinct pairs its
   search curve first reached it (dev accuracy is read off the ``accuracy_margin`` score: the
   margin term moves it by less than half an input).

Prints Markdown tables; ``--out`` also writes them to a file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from agents.experiments.files import read_jsonl, save_text  # noqa: E402

LEARNERS = ("edit-tabular-q", "edit-dqn")
SEARCHES = ("random-search", "hill-climb", "evolution")
BASELINE = "best-fixed-on-dev"
MARGIN = 2.0
"""Points over best-fixed-on-dev the learners must reach (goal 1)."""


def by_seed(rows: Sequence[dict[str, Any]], task: str, policy: str) -> dict[int, dict[str, Any]]:
    return {int(r["seed"]): r for r in rows if r["task"] == task and r["policy"] == policy}


def paired(a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]]) -> tuple[np.ndarray, list[int]]:
    """Per-seed test-score differences a - b, in points, over the seeds both have."""
    seeds = sorted(set(a) & set(b))
    return np.array([100 * (a[s]["test_score"] - b[s]["test_score"]) for s in seeds]), seeds


def spread(values: np.ndarray) -> str:
    if len(values) == 0:
        return "–"
    std = f" ± {values.std(ddof=1):.1f}" if len(values) > 1 else ""
    return f"{values.mean():+.1f}{std}"


SEARCHERS = (*SEARCHES, *LEARNERS, "edit-tabular-q-prior")


def dev_correct(score: float, n: int) -> int:
    """Dev inputs answered right, from an ``accuracy_margin`` score on ``n`` inputs."""
    return int(round(score * n))


def finding_report(rows: Sequence[dict[str, Any]], task: str) -> list[str]:
    """Goal 4 of the tables: how soon each searcher reaches the seed's best dev accuracy."""
    curves = {(int(r["seed"]), r["policy"]): r["search_curve"] for r in rows
              if r["task"] == task and r["policy"] in SEARCHERS and r.get("search_curve")}
    if not curves:
        return []
    # minibatch size per seed: the config's, else (all of dev) what the start prompt cost,
    # the least first point among the seed's curves
    size = {int(r["seed"]): r["edit_options"].get("minibatch_size") for r in rows if r["task"] == task}
    first_cost: dict[int, int] = {}
    for (seed, _), curve in curves.items():
        first_cost[seed] = min(first_cost.get(seed, 1 << 30), int(round(curve["distinct"][0])))
    right = {(seed, policy): [dev_correct(v, size.get(seed) or first_cost[seed]) for v in curve["best"]]
             for (seed, policy), curve in curves.items()}
    target: dict[int, int] = {}
    for (seed, _), counts in right.items():
        target[seed] = max(target.get(seed, 0), max(counts))
    lines = ["", "| searcher | reached the seed's best dev accuracy | distinct pairs to reach it "
             "(mean; a run that never did counts its whole search, marked ≥) | best dev accuracy, mean (inputs right) | seeds |",
             "|---|---:|---:|---:|---:|"]
    for policy in SEARCHERS:
        seeds = sorted(seed for seed, name in curves if name == policy)
        if not seeds:
            continue
        hits, costs = 0, []
        for seed in seeds:
            distinct, counts = curves[seed, policy]["distinct"], right[seed, policy]
            first = next((i for i, k in enumerate(counts) if k >= target[seed]), None)
            hits += first is not None
            costs.append(distinct[-1] if first is None else distinct[first])  # None: censored
        cost = f"{'≥ ' if hits < len(seeds) else ''}{np.mean(costs):.0f}"
        found = np.mean([max(right[seed, policy]) for seed in seeds])
        lines.append(f"| {policy} | {hits} / {len(seeds)} | {cost} | {found:.1f} | {len(seeds)} |")
    return lines


def task_report(rows: Sequence[dict[str, Any]], task: str) -> str:
    base = by_seed(rows, task, BASELINE)
    lines = [f"## {task}", "",
             f"| Q-learner | test acc. (%) | {BASELINE} (%) | Δ vs {BASELINE} (points, per seed) | "
             f"≥ +{MARGIN:g}? | seeds |", "|---|---:|---:|---:|---|---:|"]
    for learner in LEARNERS:
        runs = by_seed(rows, task, learner)
        if not runs:
            continue
        diff, seeds = paired(runs, base)
        mean = 100 * np.mean([runs[s]["test_score"] for s in seeds])
        reference = 100 * np.mean([base[s]["test_score"] for s in seeds])
        verdict = "yes" if mean >= reference + MARGIN else "no"
        lines.append(f"| {learner} | {mean:.1f} | {reference:.1f} | {spread(diff)} | {verdict} | {len(seeds)} |")
    lines += ["", "| Q-learner vs search | Δ test acc. (points, per seed) | wins / seeds | "
              "calls (Q / search) | distinct pairs (Q / search) | at least as good? |",
              "|---|---:|---:|---:|---:|---|"]
    for learner in LEARNERS:
        runs = by_seed(rows, task, learner)
        for search in SEARCHES:
            other = by_seed(rows, task, search)
            diff, seeds = paired(runs, other)
            if not seeds:
                continue
            calls = (np.mean([runs[s]["llm_calls"] for s in seeds]), np.mean([other[s]["llm_calls"] for s in seeds]))
            pairs = (np.mean([runs[s]["distinct_pairs"] for s in seeds]),
                     np.mean([other[s]["distinct_pairs"] for s in seeds]))
            wins = int(np.sum(diff > 0))
            lines.append(f"| {learner} vs {search} | {spread(diff)} | {wins} / {len(seeds)} | "
                         f"{calls[0]:.0f} / {calls[1]:.0f} | {pairs[0]:.0f} / {pairs[1]:.0f} | "
                         f"{'yes' if diff.mean() >= 0 else 'no'} |")
    lines += finding_report(rows, task)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a harness results.jsonl")
    parser.add_argument("--out", type=Path, default=None, help="also write the tables here")
    args = parser.parse_args(argv)
    rows = read_jsonl(args.results)
    tasks = sorted({r["task"] for r in rows}, key=lambda t: (t != "sst2", t))
    text = "\n\n".join(task_report(rows, task) for task in tasks) + "\n"
    print(text)
    if args.out is not None:
        save_text(text, args.out)


if __name__ == "__main__":
    main()
