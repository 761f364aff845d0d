"""How much does the choice of prompt matter? Score every pool prompt on n test examples.

    python benchmarks/prompt_spread.py --task sst2 --n 200 [--data-dir ../shared/data] [--llm default]

Prints a table (accuracy and mean margin per prompt for classification; the
task metric and exact match for generation), then best, mean and worst
prompt, and the per-query oracle: the fraction of examples that at least one
prompt gets right (generation: the mean over examples of the best prompt's
score). The last line is one JSON object with keys ``best``, ``mean``,
``worst`` and ``oracle`` (plus context).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from prompt_env.llm import load_llm
from prompt_env.scoring import evaluate
from prompt_env.tasks import load_task


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="sst2", help="catalog name or path of a task file")
    parser.add_argument("--n", type=int, default=200, help="test examples to score (a seeded sample)")
    parser.add_argument("--data-dir", default=None, help="data directory (else $PROMPT_ENV_DATA)")
    parser.add_argument("--llm", default="default", help="LLM spec for prompt_env.llm.load_llm")
    parser.add_argument("--split", default="test", help="split to sample from")
    parser.add_argument("--seed", type=int, default=0, help="seed of the example sample")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, object]:
    args = parse_args(argv)
    console = Console(width=160)  # wide enough that the table does not wrap in a log file
    options = {"data_dir": args.data_dir} if args.data_dir else {}
    task = load_task(args.task, **options)
    pool = task.split(args.split)
    rng = np.random.default_rng(args.seed)
    chosen = sorted(rng.choice(len(pool), size=min(args.n, len(pool)), replace=False))
    examples = [pool[i] for i in chosen]
    prompts = list(task.prompt_pool.candidates)
    llm = load_llm(args.llm)

    start = time.perf_counter()
    pairs = [(p, e) for e in examples for p in prompts]
    outcomes = evaluate(llm, task, pairs)
    seconds = time.perf_counter() - start
    shape = (len(examples), len(prompts))
    classification = task.kind == "classification"
    main_metric = "accuracy" if classification else task.metric
    second_metric = "margin" if classification else "exact_match"
    first = np.array([o.metrics[main_metric] for o in outcomes]).reshape(shape)
    second = np.array([o.metrics[second_metric] for o in outcomes]).reshape(shape)

    table = Table(title=f"{task.name}: {len(prompts)} prompts x {len(examples)} {args.split} examples "
                        f"({len(pairs) / seconds:.1f} pairs/s)")
    for column in ("#", "name", "chat", "shots", "verbalizer", "instruction", main_metric,
                   f"mean {second_metric}"):
        table.add_column(column, justify="right" if column in ("#", "shots") else "left")
    for j, prompt in enumerate(prompts):
        table.add_row(
            str(j), prompt.name, "yes" if prompt.chat else "", str(len(prompt.exemplars)),
            "/".join(prompt.verbalizer) if prompt.verbalizer else "",
            (prompt.instruction[:40] + "...") if len(prompt.instruction) > 40 else prompt.instruction,
            f"{first[:, j].mean():.3f}", f"{second[:, j].mean():.3f}",
        )
    console.print(table)

    per_prompt = first.mean(axis=0)
    oracle = float((first.max(axis=1) > 0).mean()) if classification else float(first.max(axis=1).mean())
    summary = {
        "task": task.name,
        "metric": main_metric,
        "n": len(examples),
        "prompts": len(prompts),
        "manual": round(float(per_prompt[0]), 4),
        "best": round(float(per_prompt.max()), 4),
        "best_prompt": prompts[int(per_prompt.argmax())].name,
        "mean": round(float(per_prompt.mean()), 4),
        "worst": round(float(per_prompt.min()), 4),
        "worst_prompt": prompts[int(per_prompt.argmin())].name,
        "oracle": round(oracle, 4),
        "seconds": round(seconds, 1),
        "llm": llm.describe().get("name", args.llm),
    }
    console.print(
        f"best {summary['best']:.3f} ({summary['best_prompt']})  mean {summary['mean']:.3f}  "
        f"worst {summary['worst']:.3f} ({summary['worst_prompt']})  per-query oracle {oracle:.3f}"
    )
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
