"""Sample efficiency (issue #13, P3): how few LLM calls find a pool prompt as good as the best on dev.

    PROMPT_ENV_THREADS=1 python benchmarks/sample_efficiency.py --data-dir ../shared/data

For SST-2 and AG News on the 16-shot splits of seeds 13, 21, 42, 87 and 100, the reference
is **exhaustive dev evaluation**: every pool prompt on every dev input (K x n_dev calls), whose
best prompt is what best-fixed-on-dev picks. Each method gets a budget of a fraction of that
cost and names one prompt; its *dev accuracy* (read from the exhaustive dev table) is compared
with the best prompt's: a run succeeds when it is within ``--tolerance`` points.

- ``successive-halving``, ``ucb1``: this package's bandits search the pool on the Select env
  over the *dev* split (one LLM call per pull: a pool prompt on a random dev input, reward
  ``--reward``) and name their best arm;
- ``paired-subset``: every pool prompt on the same random, label-balanced subset of
  ``fraction x n_dev`` dev inputs (common random numbers), the best by ``accuracy_margin`` (accuracy, ties broken by
  the margin) is named: best-fixed-on-dev on a smaller dev set. Read from the dev table of
  that reward (the same (prompt, input) pairs), its cost is K x the subset size;
- ``paired-halving``: successive halving with common random numbers. Every surviving prompt is
  scored on the same label-balanced dev inputs; each of the ceil(log2 K) rounds spends about an
  equal share of the budget on new inputs for the survivors and keeps the better half by mean
  ``accuracy_margin`` over every input seen so far. Read from the same dev table; its cost is
  the pairs it reads (at most the budget).

Every pull is a real env step on the real default model (answered from the response cache
once the dev table is computed: the table and the bandits ask for the same pairs). Each
(task, seed, bandit, fraction) runs ``--repeats`` times with different bandit seeds; rows
record the success rate, the mean gap, the calls requested and the distinct pairs.

Outputs in ``--out`` (default ``benchmarks/results/sample_efficiency``): ``results.jsonl``
(one line per task, seed, bandit, fraction) and ``results.md`` (success rate and gap per
task and fraction, over seeds and repeats). Resumable: rows already present are skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from agents import make_agent  # noqa: E402
from agents.experiments.files import ResumableRows, save_text  # noqa: E402
from agents.experiments.report import ResultTable  # noqa: E402
from agents.experiments.setting import Setting  # noqa: E402
from agents.experiments.usage import read_usage  # noqa: E402
from agents.progress import ProgressReporter  # noqa: E402

TASKS = ("sst2", "agnews")
SEEDS = (13, 21, 42, 87, 100)
BANDITS = ("successive-halving", "ucb1", "paired-subset", "paired-halving")
FRACTIONS = (0.05, 0.1, 0.2, 0.3)
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "sample_efficiency"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="shared data dir (or PROMPT_ENV_DATA)")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--bandits", default=",".join(BANDITS))
    parser.add_argument("--fractions", default=",".join(map(str, FRACTIONS)),
                        help="budgets as fractions of the exhaustive dev evaluation's calls")
    parser.add_argument("--repeats", type=int, default=20, help="bandit seeds per cell")
    parser.add_argument("--reward", default="margin", help="the bandits' reward per pull")
    parser.add_argument("--tolerance", type=float, default=1.0, help="points of dev accuracy")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def setting_for(task: str, seed: int, data_dir: str | None) -> Setting:
    return Setting.for_task(task, seed=seed, data_dir=data_dir,
                            task_options={"few_shot_seed": seed}, metric="accuracy", test_limit=1)


def search(setting: Setting, bandit: str, budget: int, seed: int, reward: str) -> tuple[int, dict[str, int]]:
    """One bandit run of ``budget`` pulls on the dev split; its best arm and what it asked."""
    env = setting.make(split="dev", reward=reward, episode_length=budget)
    agent = make_agent(bandit, env, seed=seed)
    before = read_usage(env)
    agent.learn(env, budget, seed=seed)
    after = read_usage(env)
    env.close()
    return int(agent.best_arm()), {key: after[key] - before.get(key, 0) for key in ("env_calls", "distinct")}


def balanced_subset(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` dev rows drawn at random, as evenly over the labels as ``size`` allows."""
    by_label = [rng.permutation(np.flatnonzero(labels == y)) for y in np.unique(labels)]
    order = [rows[i] for i in range(max(len(r) for r in by_label)) for rows in by_label if i < len(rows)]
    return np.array(order[:size])


def paired_subset(tiebroken: np.ndarray, labels: np.ndarray, fraction: float,
                  seed: int) -> tuple[int, dict[str, int]]:
    """The best pool prompt by mean ``accuracy_margin`` on one random, label-balanced dev
    subset, and its cost."""
    n_dev, k = tiebroken.shape
    size = max(1, int(fraction * n_dev))
    rows = balanced_subset(labels, size, np.random.default_rng(seed))
    return int(np.argmax(tiebroken[rows].mean(axis=0))), {"env_calls": k * size, "distinct": k * size}


def paired_halving(tiebroken: np.ndarray, labels: np.ndarray, budget: int,
                   seed: int) -> tuple[int, dict[str, int]]:
    """Successive halving over the pool on shared, label-balanced dev inputs (common random
    numbers): the prompt it keeps and the (prompt, input) pairs it read, at most ``budget``."""
    n_dev, k = tiebroken.shape
    order = balanced_subset(labels, n_dev, np.random.default_rng(seed))
    rounds = max(1, int(np.ceil(np.log2(k))))
    alive, seen, used = np.arange(k), 0, 0
    for round_ in range(rounds):
        if len(alive) == 1:
            break
        share = (budget - used) // (rounds - round_)  # the rest of the budget, split evenly
        add = min(n_dev - seen, max(1, share // len(alive)))
        if used + add * len(alive) > budget or add == 0:
            break
        seen, used = seen + add, used + add * len(alive)
        means = tiebroken[order[:seen]][:, alive].mean(axis=0)
        keep = 1 if round_ == rounds - 1 else int(np.ceil(len(alive) / 2))
        alive = alive[np.argsort(-means, kind="stable")[:keep]]
    # survivors are sorted best first on what was read (if the budget ran out early)
    return int(alive[0]), {"env_calls": used, "distinct": used}


def run_cell(setting: Setting, dev: np.ndarray, tiebroken: np.ndarray, bandit: str, fraction: float,
             args: argparse.Namespace) -> dict[str, Any]:
    labels = np.array([int(e.label) for e in setting.select_env().task.split("dev")])
    n_dev, k = dev.shape
    exhaustive = n_dev * k
    budget = (k * max(1, int(fraction * n_dev)) if bandit == "paired-subset"
              else max(k, int(round(fraction * exhaustive))))
    accuracy = dev.mean(axis=0) * 100
    best = float(accuracy.max())
    gaps, calls, distinct, arms = [], [], [], []
    for repeat in range(args.repeats):
        seed = 1000 * setting.seed + repeat
        if bandit == "paired-subset":
            arm, usage = paired_subset(tiebroken, labels, fraction, seed)
        elif bandit == "paired-halving":
            arm, usage = paired_halving(tiebroken, labels, budget, seed)
        else:
            arm, usage = search(setting, bandit, budget, seed, args.reward)
        gaps.append(best - float(accuracy[arm]))
        calls.append(usage["env_calls"])
        distinct.append(usage["distinct"])
        arms.append(arm)
    gaps_array = np.array(gaps)
    return {"bandit": bandit, "fraction": fraction, "budget": budget, "exhaustive_calls": exhaustive,
            "best_dev_accuracy": round(best, 2), "tolerance": args.tolerance,
            "success_rate": float(np.mean(gaps_array <= args.tolerance + 1e-9)),
            "mean_gap": round(float(gaps_array.mean()), 2), "calls_mean": float(np.mean(calls)),
            "distinct_mean": float(np.mean(distinct)), "arms": arms, "repeats": args.repeats,
            "reward": "accuracy_margin" if bandit.startswith("paired-") else args.reward}


def report(rows: list[dict[str, Any]], out: Path) -> str:
    """Per task: success rate and mean dev gap per bandit and budget fraction (all seeds)."""
    parts = ["# Sample efficiency: finding the best pool prompt on dev with few calls", "",
             "A run succeeds when its best arm's dev accuracy is within the tolerance of the best "
             "pool prompt's (exhaustive dev evaluation). Mean over seeds x repeats.", ""]
    for task in sorted({r["task"] for r in rows}):
        headers = ["bandit", "budget (% of exhaustive)", "calls (mean)", "distinct pairs (mean)",
                   "within tolerance", "mean dev gap (points)", "seeds x repeats"]
        table = ResultTable(headers, ["left", "left"] + ["right"] * 5, title=task)
        keys = sorted({(r["bandit"], r["fraction"]) for r in rows if r["task"] == task})
        for bandit, fraction in keys:
            cell = [r for r in rows if r["task"] == task and r["bandit"] == bandit and r["fraction"] == fraction]
            weights = np.array([r["repeats"] for r in cell], dtype=float)
            success = float(np.average([r["success_rate"] for r in cell], weights=weights))
            gap = float(np.average([r["mean_gap"] for r in cell], weights=weights))
            table.rows.append([bandit, f"{fraction:.0%} ({cell[0]['budget']} of {cell[0]['exhaustive_calls']})",
                           f"{np.mean([r['calls_mean'] for r in cell]):.0f}",
                           f"{np.mean([r['distinct_mean'] for r in cell]):.0f}",
                           f"{success:.0%}", f"{gap:.1f}", f"{len(cell)} x {cell[0]['repeats']}"])
        parts += [f"## {task}", "", table.to_markdown(), ""]
    text = "\n".join(parts)
    save_text(text, out / "results.md")
    return text


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    data_dir = str(args.data_dir.resolve()) if args.data_dir else os.environ.get("PROMPT_ENV_DATA")
    args.out.mkdir(parents=True, exist_ok=True)
    results = ResumableRows(args.out / "results.jsonl",
                            lambda r: (r["task"], r["seed"], r["bandit"], r["fraction"]))
    tasks, seeds = args.tasks.split(","), [int(s) for s in args.seeds.split(",")]
    bandits, fractions = args.bandits.split(","), [float(f) for f in args.fractions.split(",")]
    reporter = ProgressReporter()
    with reporter:
        total = len(tasks) * len(seeds) * len(bandits) * len(fractions)
        bar, finished = reporter.add("sample efficiency cells", total), 0
        for task in tasks:
            for seed in seeds:
                setting = setting_for(task, seed, data_dir)
                setting.reporter = reporter
                dev = tiebroken = None
                for bandit in bandits:
                    for fraction in fractions:
                        if not results.done((task, seed, bandit, fraction)):
                            if dev is None:
                                dev = setting.tables().dev  # the exhaustive evaluation (accuracy)
                                tiebroken = setting.select_env().score_table("dev", reward="accuracy_margin")
                            results.add({"task": task, "seed": seed,
                                         **run_cell(setting, dev, tiebroken, bandit, fraction, args)})
                        finished += 1
                        reporter.update(bar, completed=finished)
    # re-read: another process (one per task or seed) may have appended rows meanwhile
    print(report(results.refresh(), args.out))


if __name__ == "__main__":
    main()
