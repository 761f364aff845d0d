"""The `prompt-env` command."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prompt-env",
        description="Prompt optimization as reinforcement learning: environments, agents, benchmarks.",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("demo", help="score real sentences under two prompts with the default model")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from prompt_env.demo import run_demo

        run_demo()
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
