"""The prompts the Compose-env policies wrote, per seed, from the harness's results rows.

    python benchmarks/compose_prompts.py benchmarks/results/compose/results.jsonl

Prints a Markdown table: seed, policy, the prompt's words (as the task LM reads them, between
the input and the answer cue or before the input, as the run's ``[compose]`` options say), test
accuracy, the chosen candidate's dev score, training episodes and LLM calls.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from agents.experiments.files import read_jsonl  # noqa: E402
from agents.experiments.report import ResultTable  # noqa: E402

COMPOSED = ("compose-random", "compose-empty", "compose-random-search", "compose-dqn")


def prompt_table(rows: list[dict]) -> ResultTable:
    """One line per (seed, policy) of the policies that write a prompt of words."""
    table = ResultTable(["seed", "policy", "prompt words", "test accuracy (%)", "dev score", "episodes",
                         "LLM calls"], ["right", "left", "left", "right", "right", "right", "right"])
    chosen = [r for r in rows if r["policy"] in COMPOSED]
    for r in sorted(chosen, key=lambda r: (r["seed"], COMPOSED.index(r["policy"]))):
        dev = [c["dev_score"] for c in r.get("candidates", []) if c["prompt_words"] == r["prompt_words"]]
        table.rows.append([str(r["seed"]), r["policy"], f"`{r['prompt_words']}`", f"{100 * r['test_score']:.1f}",
                           f"{dev[0]:.3f}" if dev else "–", str(r.get("episodes", "–")), str(r["llm_calls"])])
    return table


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results.jsonl written by benchmarks/run.py")
    text = prompt_table(read_jsonl(parser.parse_args(argv).results)).to_markdown()
    print(text)
    return text


if __name__ == "__main__":
    main()
