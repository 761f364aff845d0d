"""Which tie-break rule picks the better prompt, judged on inputs that are neither test nor dev.

    PROMPT_ENV_THREADS=1 python benchmarks/tie_break_rule.py --tasks sst2 --data-dir ../shared/data
    python benchmarks/tie_break_rule.py --report-only          # the rules, from the saved rows

``prompt-env optimize --budget heavy`` keeps the best prompt of its search on 32 dev inputs and
breaks dev ties (:mod:`agents.experiments.tie_break`) on about 32 held-out inputs. How wide the
tie should be, and whether the dev score should count in the final choice, are rules to pick
without looking at the test split. This script runs the same search as ``optimize`` (same
plan, setting and seed, so its LLM calls land in the response cache the optimize runs reuse)
and, where the tie-break would run, records for the prompts within ``--within`` dev inputs of
the best (at most ``--prompts``): their dev score, their score on the tie-break's held-out
inputs, and their accuracy on a **validation** set: train and dev examples of the *other*
16-shot splits of the task (drawn from the task's train set, like every 16-shot split, so
disjoint from the test file), minus any text this split holds. Rules are then replayed on
those rows: which prompt each keeps, and that prompt's validation accuracy. (The recorded
held-out inputs leave out the exemplars of every recorded prompt, so a replayed rule may see
a few held-out inputs fewer than the real tie-break, which leaves out only its own prompts'.)

Rows go to ``benchmarks/results/tie_break_rule/rows.jsonl`` (one per task and seed; resumed),
the comparison to ``README.md`` beside them. Validation accuracy is measured; a rule's score
is derived (the validation accuracy of the prompt it would keep).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from agents.experiments import search_policies, tie_break  # noqa: E402
from agents.experiments.files import append_jsonl, read_jsonl, save_text  # noqa: E402
from agents.experiments.optimize import run_method  # noqa: E402
from agents.experiments.optimize_plan import plan_run  # noqa: E402
from agents.experiments.report import ResultTable  # noqa: E402
from agents.experiments.setting import Setting  # noqa: E402
from prompt_env.scoring import score_matrix  # noqa: E402
from prompt_env.tasks import load_task  # noqa: E402

SEEDS = (13, 21, 42, 87, 100)
TEST_LIMITS = {"sst2": 500, "agnews": 200}
OUT = ROOT / "benchmarks" / "results" / "tie_break_rule"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="sst2,agnews")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--data-dir", help="task data directory (else $PROMPT_ENV_DATA)")
    parser.add_argument("--within", type=int, default=3, help="record prompts this many dev inputs from the best")
    parser.add_argument("--prompts", type=int, default=10, help="at most this many of them")
    parser.add_argument("--validation", type=int, default=128, help="validation inputs per task and seed")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--report-only", action="store_true")
    return parser.parse_args(argv)


def validation_examples(task_name: str, seed: int, own: Any, count: int) -> list[Any]:
    """Train and dev examples of the task's other 16-shot splits whose text this split lacks."""
    def key(example: Any) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(example.fields.items()))

    seen = {key(e) for split in ("train", "dev") for e in own.split(split)}
    pool = []
    for other in SEEDS:
        if other == seed:
            continue
        task = load_task(task_name, few_shot_seed=other)
        for example in task.split("train") + task.split("dev"):
            if key(example) not in seen:
                seen.add(key(example))
                pool.append(example)
    order = np.random.default_rng(seed).permutation(len(pool))
    return [pool[i] for i in order[:count]]


def record(task_name: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run optimize's search for (task, seed) and record the tie candidates' three scores."""
    plan = plan_run(task_name, budget="heavy", seed=seed, test_limit=TEST_LIMITS.get(task_name, 200))
    setting = Setting.for_task(task_name, seed=seed, split="dev", test_limit=plan.dev_inputs,
                               dev_limit=plan.dev_inputs, search_space=bool(plan.search_space),
                               tie_break=plan.tie_break)
    real = search_policies.break_ties
    row: dict[str, Any] = {"task": task_name, "seed": seed, "method": plan.method}

    def recording(edit: Any, select: Any, rule: Any, **kwargs: Any) -> Any:
        n_dev = len(edit.minibatch_indices())
        wide = tie_break.TieBreak(prompts=args.prompts, inputs=rule.inputs, within=args.within)
        tied = tie_break.tied_candidates(edit.scored_prompts(), n_dev, wide)
        prompts = [p for p, _ in tied]
        parts = tie_break.held_out_inputs(edit, select, prompts, rule.inputs, seed)
        held = np.concatenate([select.score_prompts(prompts, split, reward=kwargs["reward"], indices=idx)
                               for split, idx in parts])
        validation = validation_examples(task_name, seed, select.task, args.validation)
        accuracy = score_matrix(select.llm, select.task, prompts, validation, "accuracy",
                                calibration=select.calibration)
        result = real(edit, select, rule, **kwargs)
        row.update(n_dev=n_dev, n_held=int(held.shape[0]), n_validation=len(validation),
                   prompts=[p.describe() for p in prompts],
                   dev=[round(s, 5) for _, s in tied],
                   held=[round(float(v), 5) for v in held.mean(axis=0)],
                   validation=[round(float(v), 5) for v in accuracy.mean(axis=0)],
                   kept=prompts.index(result.prompt) if result.prompt in prompts else None)
        return result

    search_policies.break_ties = recording
    try:
        run_method(setting, plan.method, plan.budget)
    finally:
        search_policies.break_ties = real
    return row


# ------------------------------------------------------------------- rules on the rows


def rule(within: int, weight_dev: bool, prompts: int = 8) -> Callable[[dict[str, Any]], int]:
    """Keep the best of the prompts within ``within`` dev inputs of the best (at most
    ``prompts``), on dev and held-out inputs pooled (``weight_dev``) or held-out alone."""
    def pick(row: dict[str, Any]) -> int:
        slack = within / row["n_dev"] + 1e-9
        best = max(row["dev"])
        tied = [i for i, s in enumerate(row["dev"]) if s >= best - slack][:prompts]
        if len(tied) == 1:
            return tied[0]
        n_dev, n_held = (row["n_dev"] if weight_dev else 0), row["n_held"]
        pooled = [(row["dev"][i] * n_dev + row["held"][i] * n_held) / (n_dev + n_held) for i in tied]
        return tied[int(np.argmax(pooled))]
    return pick


RULES: dict[str, Callable[[dict[str, Any]], int]] = {
    "dev only (no tie-break)": lambda row: 0,
    "within 1, dev + held-out (the default)": rule(1, True),
    "within 1, held-out only": rule(1, False),
    "within 2, dev + held-out": rule(2, True),
    "within 2, held-out only": rule(2, False),
    "within 3, dev + held-out": rule(3, True),
    "within 3, held-out only": rule(3, False),
}


def report(rows: list[dict[str, Any]]) -> str:
    tasks = sorted({r["task"] for r in rows})
    headers = ["rule"] + [f"{t} (%)" for t in tasks] + ["all (%)", "vs default (points)"]
    table = ResultTable(headers, ["left"] + ["right"] * (len(headers) - 1))
    base = {id(r): r["validation"][RULES["within 1, dev + held-out (the default)"](r)] for r in rows}
    for name, pick in RULES.items():
        per_task = []
        for t in tasks:
            chosen = [r["validation"][pick(r)] for r in rows if r["task"] == t]
            per_task.append(f"{100 * statistics.mean(chosen):.1f}")
        chosen_all = [r["validation"][pick(r)] for r in rows]
        diffs = [100 * (r["validation"][pick(r)] - base[id(r)]) for r in rows]
        spread = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
        table.rows.append([name, *per_task, f"{100 * statistics.mean(chosen_all):.1f}",
                   f"{statistics.mean(diffs):+.1f} ± {spread:.1f}"])
    columns = ["task", "seed", "recorded", "dev (best)", "validation of the dev best (%)",
               "best validation among them (%)", "kept by the default"]
    detail = ResultTable(columns, ["left"] + ["right"] * (len(columns) - 1))
    for r in rows:
        detail.rows.append([r["task"], str(r["seed"]), str(len(r["dev"])), f"{r['dev'][0]:.3f}",
                    f"{100 * r['validation'][0]:.1f}", f"{100 * max(r['validation']):.1f}",
                    f"#{RULES['within 1, dev + held-out (the default)'](r) + 1}"])
    n = {t: sum(r["task"] == t for r in rows) for t in tasks}
    return "\n".join([
        "# Tie-break rules judged on validation inputs (not test, not dev)",
        "",
        "```",
        "PROMPT_ENV_THREADS=1 python benchmarks/tie_break_rule.py --tasks sst2 --data-dir ../shared/data",
        "PROMPT_ENV_THREADS=1 python benchmarks/tie_break_rule.py --tasks agnews --data-dir ../shared/data",
        "```",
        "",
        f"Seeds per task: {', '.join(f'{t} {k}' for t, k in n.items())}. For each, the search of "
        "`prompt-env optimize --budget heavy`; the prompts within 3 dev inputs of its best (at most 10) "
        "scored on the tie-break's held-out inputs and on validation inputs drawn from the other "
        "16-shot splits' train and dev examples (never the test file). A rule's column is derived: "
        "the mean validation accuracy of the prompt the rule would keep; the last column is paired "
        "with the default, mean ± std over task-seeds.",
        "",
        table.to_markdown(),
        "",
        detail.to_markdown(),
        "",
    ])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.data_dir:
        os.environ["PROMPT_ENV_DATA"] = str(Path(args.data_dir).resolve())
    path = args.out / "rows.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        done = {(r["task"], r["seed"]) for r in read_jsonl(path)} if path.exists() else set()
        for task_name in args.tasks.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                if (task_name, seed) in done:
                    continue
                row = record(task_name, seed, args)
                append_jsonl(path, row)
                print(f"{task_name} seed {seed}: {len(row.get('dev', []))} recorded", flush=True)
    rows = [r for r in read_jsonl(path) if r.get("dev")]
    text = report(rows)
    save_text(text, args.out / "README.md")
    print(text)


if __name__ == "__main__":
    main()
