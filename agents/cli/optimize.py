"""`prompt-env optimize`: from a data file to ``best_prompt.txt``, with the evidence beside it.

    prompt-env optimize --data my.jsonl [--llm SPEC] [--budget N|light|medium|heavy]
                        [--policy NAME] [--seed S] [--input-field F] [--label-field F]
                        [--label-names a,b] [--label-order sorted|first-seen]
                        [--task-options JSON] [--test-limit N] [--metric NAME]
                        [--no-tie-break] [--proposer SPEC] [--mlflow [URI]] [--dry-run]
                        [--out runs/opt]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agents.cli.checks import (
    LLM_SPEC_HELP,
    DeprecatedAlias,
    UsageError,
    check_llm_spec,
    parse_json_object,
)

PRESET_NAMES = ("light", "medium", "heavy")


def budget_value(text: str) -> int | str:
    """``--budget``: a positive number of LLM calls or a preset name."""
    if text in PRESET_NAMES:
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number of LLM calls or one of {', '.join(PRESET_NAMES)}, "
            f"got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of LLM calls, got {value}")
    return value


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
    optimize.add_argument("--llm", default="default",
                          help=f'task LLM spec (default "default"): {LLM_SPEC_HELP}')
    optimize.add_argument("--budget", type=budget_value, default=500,
                          help="LLM calls the search may request, cached or not, or a preset: "
                               "light, medium, heavy = 1, 3, 5 x the task's pool cost (K pool "
                               "prompts x up to 32 dev inputs); the dry run shows each (default 500)")
    optimize.add_argument("--policy", help="a registered single-prompt policy (default: chosen by "
                                           "the budget rule, shown by --dry-run; see `prompt-env list`)")
    optimize.add_argument("--method", dest="policy", action=DeprecatedAlias, new="--policy",
                          help=argparse.SUPPRESS)
    optimize.add_argument("--seed", type=int, default=0, help="seed of the method (default 0)")
    optimize.add_argument("--proposer", default="task", metavar="SPEC",
                          help="who writes instructions for ape, opro, evoprompt-llm, gepa and "
                               "edit-*-propose: 'task' (the task LLM, metered apart; default) or an "
                               "LLM spec like --llm's")
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
    optimize.add_argument("--no-tie-break", action="store_true",
                          help="Edit-env policies keep their best prompt on dev as it is (default: "
                               "dev ties are rescored on held-out inputs, charged to the budget)")
    optimize.add_argument("--mlflow", nargs="?", const="", metavar="URI",
                          help="log the run to MLflow (default store: the file store ./mlruns; "
                               "needs pip install 'prompt-env[tracking]')")
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

    from agents.experiments.optimize import optimize
    from agents.experiments.optimize_plan import plan_run
    from prompt_env.errors import DataNotFoundError

    console = Console(highlight=False, markup=False)  # paths and "[rows]" print as written
    llm = check_llm_spec(args.llm, normalized=True)
    proposer = args.proposer if args.proposer == "task" else check_llm_spec(args.proposer, normalized=True)
    options = task_options_of(args)
    common: dict[str, Any] = {"llm": llm, "budget": args.budget, "task_options": options,
                              "test_limit": args.test_limit, "metric": args.metric,
                              "seed": args.seed, "tie_break": False if args.no_tie_break else None}
    try:
        plan = plan_run(args.data, method=args.policy, **common)
    except DataNotFoundError as error:
        raise UsageError(str(error), "pass --data PATH of your file or directory") from None
    if args.dry_run:
        console.print(plan.describe())
        console.print("dry run: no LLM was called")
        return 0
    result = optimize(args.data, policy=args.policy, out=args.out, plan=plan,
                      progress=not args.no_progress, tracking_uri=args.mlflow,
                      proposer=proposer, **common)
    from agents.experiments.report import policy_table

    console.print(policy_table(result.rows, f"{plan.task}: held-out test ({plan.n_test} inputs)")
                  .to_rich())
    usage = result.usage
    console.print(f"LLM calls {usage.calls} (cache hits {usage.cache_hits}, model calls "
                  f"{usage.model_calls}), {usage.wall_s:.1f} s")
    console.print(f"Best prompt: {result.out / 'best_prompt.txt'}; report: {result.out / 'report.md'}")
    if result.tracking_run_id is not None:
        console.print(f"MLflow run {result.tracking_run_id} in {args.mlflow or './mlruns'}")
    return 0
