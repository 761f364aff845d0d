"""The `prompt-env` command: list, train, eval, demo, optimize.

    prompt-env list [--all]
    prompt-env train --env ID --policy NAME --steps N [--llm SPEC] [--seed S] [--out DIR]
                     [--env-kwargs JSON] [--agent-kwargs JSON] [--checkpoint-every N]
    prompt-env eval --run DIR [--split test] [--limit N] [--dev-limit N] [--reward NAME] [--llm SPEC]
    prompt-env demo [--out DIR] [--steps N] [--n-test N] [--llm SPEC] [--seed S]
    prompt-env optimize --data PATH [--llm SPEC] [--budget N|light|medium|heavy] [--policy NAME]
                        [--dry-run] [--mlflow [URI]] [--out DIR]

"Policy" is the one word for a way of choosing prompts: ``train --policy``, ``optimize
--policy`` and the harness's ``--policies`` take names of the one registry (``prompt-env
list``). The old ``train --agent`` and ``optimize --method`` still work, with a note on stderr.

User mistakes (unknown env id or agent, missing data directory, bad LLM
spec, bad JSON, a directory that is not a run) print one line and a hint on
stderr and exit with status 2; set ``PROMPT_ENV_DEBUG=1`` to see the
traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agents.cli import optimize as optimize_command
from agents.cli.checks import LLM_SPEC_HELP, DeprecatedAlias, UsageError
from agents.cli.listing import command_list
from agents.cli.runs import AGENT_FILE, command_demo, command_eval, command_train

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
SPLITS = ("train", "dev", "test")


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prompt-env",
        description="Prompt optimization as reinforcement learning: environments, agents, benchmarks.",
        epilog=(
            "examples:\n"
            "  prompt-env list\n"
            "  prompt-env train --env PromptEnv/BBCTopic-Select-Tabular-v0 --policy tabular-q --steps 300 "
            "--out runs/tq\n"
            "  prompt-env eval --run runs/tq --split test --limit 60\n"
            "  prompt-env demo --steps 300 --n-test 60\n"
            "  prompt-env optimize --data my.jsonl --budget medium --out runs/opt"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="train tabular Q, DQN and UCB1 on bbc-topic and compare with baselines")
    demo.add_argument("--out", type=Path, help="output directory (default runs/demo)")
    demo.add_argument("--steps", type=_positive_int, help="training steps per agent (default 300)")
    demo.add_argument("--n-test", type=_positive_int, help="test articles to score (default 60)")
    demo.add_argument("--llm", help=f"task LLM spec (default: the embedded model): {LLM_SPEC_HELP}")
    demo.add_argument("--seed", type=int, help="seed (default 0)")

    listing = sub.add_parser("list", help="tasks, env ids, agents and LLM spec forms")
    listing.add_argument("--all", action="store_true", help="print every registered env id, one per line")

    train = sub.add_parser("train", help="train an agent on an env and save it with its learning curve")
    train.add_argument("--env", required=True, metavar="ID", help="env id, e.g. PromptEnv/BBCTopic-Select-Tabular-v0")
    # required, but checked after parsing: argparse would not count the --agent alias as giving it
    train.add_argument("--policy", metavar="NAME",
                       help="a learning policy of the registry: an agent of this package "
                            "(tabular-q, dqn, ucb1, ...; see `prompt-env list`)")
    train.add_argument("--agent", dest="policy", action=DeprecatedAlias, new="--policy",
                       help=argparse.SUPPRESS)
    train.set_defaults(required_after_parse=(("policy", "--policy"),), subparser=train)
    train.add_argument("--steps", required=True, type=_positive_int, help="env steps to train for")
    train.add_argument("--llm", help='task LLM spec (default "default", or the "llm" of --env-kwargs): '
                       + LLM_SPEC_HELP)
    train.add_argument("--seed", type=int, default=0, help="seed of the agent and the env (default 0)")
    train.add_argument("--out", type=Path, help="run directory (default runs/<env>-<agent>-seed<S>)")
    train.add_argument("--env-kwargs", metavar="JSON", help='env arguments, e.g. \'{"max_examples": 20}\'')
    train.add_argument("--agent-kwargs", metavar="JSON", help='agent arguments, e.g. \'{"gamma": 0.5}\'')
    train.add_argument("--checkpoint-every", type=_positive_int, metavar="N",
                       help=f"also save the agent to DIR/{AGENT_FILE} every N steps")
    train.add_argument("--tensorboard", type=Path, metavar="DIR",
                       help="also write TensorBoard event files under DIR (stable-baselines3's "
                            "tensorboard_log convention: DIR/<agent>_<N>)")

    evaluate = sub.add_parser("eval", help="evaluate a trained run next to the baselines")
    evaluate.add_argument("--run", required=True, type=Path, metavar="DIR", help="run directory made by `train`")
    evaluate.add_argument("--split", default="test", choices=SPLITS, help="split to evaluate on (default test)")
    evaluate.add_argument("--limit", type=_positive_int, metavar="N", help="only the first N inputs of the split")
    evaluate.add_argument("--dev-limit", type=_positive_int, metavar="N",
                          help="only the first N dev inputs to choose best-fixed-on-dev (Select envs)")
    evaluate.add_argument("--reward", help="metric to report (default: the task's metric)")
    evaluate.add_argument("--llm", help=f"task LLM spec (default: the one the run trained with): {LLM_SPEC_HELP}")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the evaluation episode (Edit envs)")
    optimize_command.add_parser(sub, _positive_int)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        for dest, flag in getattr(args, "required_after_parse", ()):
            if getattr(args, dest) is None:
                args.subparser.error(f"the following arguments are required: {flag}")
    except SystemExit as exit_:  # argparse already printed usage and the error
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else EXIT_USAGE
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "demo": command_demo, "list": command_list, "train": command_train, "eval": command_eval,
        "optimize": optimize_command.command_optimize,
    }
    if args.command not in commands:
        parser.print_help()
        return 0
    try:
        with _user_warnings_as_lines(args.command):
            return commands[args.command](args)
    except KeyboardInterrupt:
        print("prompt-env: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - only user mistakes are reported; the rest re-raise
        message, hint = _user_error(error)
        if message is None or os.environ.get("PROMPT_ENV_DEBUG"):
            raise
        print(f"prompt-env {args.command}: error: {message}", file=sys.stderr)
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
        return EXIT_USAGE


@contextlib.contextmanager
def _user_warnings_as_lines(command: str) -> Iterator[None]:
    """Warnings about the user's data (:class:`~prompt_env.errors.UnnamedLabelsWarning`) print
    as one line, ``prompt-env <command>: warning: ...``, not as Python's file:line and source."""
    from prompt_env.errors import UnnamedLabelsWarning

    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], *rest: Any, **kw: Any) -> None:
            if issubclass(category, UnnamedLabelsWarning):
                print(f"prompt-env {command}: warning: {message}", file=sys.stderr)
            else:
                shown(message, category, *rest, **kw)

        warnings.showwarning = show
        yield


def _user_error(error: Exception) -> tuple[str | None, str]:
    """(one-line message, hint) for errors a user can fix; (None, "") for bugs."""
    import gymnasium

    from prompt_env.errors import (
        CheckpointError,
        DataNotFoundError,
        LLMSpecError,
        PromptEnvError,
        UnknownTaskError,
    )

    def one_line(text: str) -> str:
        return " ".join(str(text).split())

    if isinstance(error, UsageError):
        return one_line(str(error)), error.hint
    if isinstance(error, DataNotFoundError):
        return one_line(str(error)), (
            'set PROMPT_ENV_DATA to the data directory or pass --env-kwargs \'{"data_dir": "..."}\'; '
            "`prompt-env list` shows which tasks need one"
        )
    if isinstance(error, LLMSpecError):
        return one_line(str(error)), "`prompt-env list` shows the LLM spec forms"
    if isinstance(error, UnknownTaskError):
        return one_line(str(error)), "`prompt-env list` shows the catalog tasks"
    if isinstance(error, CheckpointError):
        return one_line(str(error)), "train the agent again with `prompt-env train`"
    if isinstance(error, PromptEnvError):
        return one_line(str(error)), ""
    if isinstance(error, gymnasium.error.Error):
        return one_line(str(error)), "`prompt-env list` shows the registered env ids"
    if isinstance(error, ValueError):
        return one_line(str(error)), "check the command's arguments (`prompt-env <command> --help`)"
    return None, ""
