"""`prompt-env optimize`: from a data file to ``best_prompt.txt``, with the evidence beside it.

    prompt-env optimize --data my.jsonl [--llm SPEC] [--budget 500] [--method NAME] [--seed S]
                        [--input-field F] [--label-field F] [--label-names a,b]
                        [--label-order sorted|first-seen] [--task-options JSON]
                        [--test-limit N] [--metric NAME] [--dry-run] [--out runs/opt]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agents.cli.checks import UsageError, check_llm_spec, parse_json_object


def add_parser(sub: Any, positive_int: Any) -> None:
    """Add the ``optimize`` subcommand to the ``prompt-env`` parser."""
    optimize = sub.add_parser(
        "optimize", help="find the best prompt for your data file within a budget of LLM calls",
        description="Find the best prompt for a task from your own data within --budget LLM calls, "
                    "compare it with the manual prompt and the best pool prompt on held-out inputs, "
                    "and write best_prompt.txt, best_prompt.json, report.md and config.json.")
    optimize.add_argument("--data", required=True, metavar="PATH",
                          help="a .jsonl/.csv/.tsv file, a train/dev/test directory, a saved Hugging "
                               "Face datasets directory, or a catalog task name")
    optimize.add_argument("--llm", default="default", help='task LLM spec (default "default")')
    optimize.add_argument("--budget", type=positive_int, default=500,
                          help="LLM calls the search may request, cached or not (default 500)")
    optimize.add_argument("--method", help="a registered single-prompt policy (default: "
                                           "best-fixed-on-dev; see `prompt-env list`)")
    optimize.add_argument("--seed", type=int, default=0, help="seed of the method (default 0)")
    optimize.add_argument("--input-field", help="input field(s) of the data, comma-separated")
    optimize.add_argument("--label-field", help="label field (default 'label')")
    optimize.add_argument("--label-names", help="names of integer labels 0..K-1, comma-separated")
    optimize.add_argument("--label-order", choices=("sorted", "first-seen"),
                          help="order of label names read from string labels (default sorted)")
    optimize.add_argument("--task-options", metavar="JSON",
                          help='more task options, e.g. \'{"split_seed": 1, "reference_field": "answer"}\'')
    optimize.add_argument("--test-limit", type=positive_int, default=200,
                          help="score on the first N held-out test inputs (default 200)")
    optimize.add_argument("--metric", help="reward that selects and evaluates (default: the task's metric)")
    optimize.add_argument("--dry-run", action="store_true",
                          help="print the projected number of LLM calls and exit (calls no LLM)")
    optimize.add_argument("--out", type=Path, default=Path("runs/opt"),
                          help="output directory (default runs/opt)")
    optimize.add_argument("--no-progress", action="store_true", help="no progress bars")


def task_options_of(args: argparse.Namespace) -> dict[str, Any]:
    """The task options from ``--task-options`` and the field/label flags (the flags win)."""
    options = parse_json_object(args.task_options, "--task-options")
    flags = {"input_field": args.input_field, "label_field": args.label_field,
             "label_names": args.label_names, "label_order": args.label_order}
    options.update({k: v for k, v in flags.items() if v is not None})
    if isinstance(options.get("label_names"), str):
        options["label_names"] = [n.strip() for n in options["label_names"].split(",") if n.strip()]
    return options


def command_optimize(args: argparse.Namespace) -> int:
    from rich.console import Console

    from agents.experiments.optimize import optimize, plan_run
    from prompt_env.errors import DataNotFoundError

    console = Console()
    llm = check_llm_spec(args.llm)
    options = task_options_of(args)
    common: dict[str, Any] = {"llm": llm, "budget": args.budget, "method": args.method,
                              "task_options": options, "test_limit": args.test_limit,
                              "metric": args.metric}
    try:
        plan = plan_run(args.data, **common)
    except DataNotFoundError as error:
        raise UsageError(str(error), "pass --data PATH of your file or directory") from None
    if args.dry_run:
        console.print(plan.describe(), highlight=False)
        console.print("dry run: no LLM was called", highlight=False)
        return 0
    result = optimize(args.data, seed=args.seed, out=args.out, progress=not args.no_progress,
                      **common)
    from agents.experiments.report import policy_table

    console.print(policy_table(result.rows, f"{plan.task}: held-out test ({plan.n_test} inputs)")
                  .to_rich())
    usage = result.usage
    console.print(f"LLM calls {usage.calls} (cache hits {usage.cache_hits}, model calls "
                  f"{usage.model_calls}), {usage.wall_s:.1f} s", highlight=False)
    console.print(f"Best prompt: {result.out / 'best_prompt.txt'}; report: {result.out / 'report.md'}",
                  highlight=False)
    return 0
