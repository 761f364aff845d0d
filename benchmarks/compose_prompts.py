"""The prompts the Compose-env policies wrote, per seed, from the harness's results rows.

    python benchmarks/compose_prompts.py benchmarks/results/compose/results.jsonl [--dev-baselines]

Prints a Markdown table: seed, policy, the prompt's words (as the task LM reads them, between
the input and the answer cue or before the input, as the run's ``[compose]`` options say), test
accuracy, the chosen candidate's dev score (the training reward on the dev split), the training
reward of the first and the last 25 episodes (moving means from the row's curve), training
episodes and LLM calls. ``--dev-baselines`` also scores the empty and the manual prompt on each
seed's dev split with the same reward (the real task LLM of the rows; 64 pairs a seed, cached).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

import prompt_env  # noqa: E402,F401  (registers the env ids)
from agents.experiments.files import read_jsonl  # noqa: E402
from agents.experiments.report import ResultTable  # noqa: E402

COMPOSED = ("compose-random", "compose-random-search", "compose-dqn")
"""The policies whose rows carry composed words (the empty prompt has none)."""


def prompt_table(rows: list[dict]) -> ResultTable:
    """One line per (seed, policy) of the policies that write a prompt of words."""
    table = ResultTable(["seed", "policy", "prompt words", "test accuracy (%)", "dev score",
                         "train reward, first → last 25 episodes", "episodes", "LLM calls"],
                        ["right", "left", "left", "right", "right", "right", "right", "right"])
    chosen = [r for r in rows if r["policy"] in COMPOSED]
    for r in sorted(chosen, key=lambda r: (r["seed"], COMPOSED.index(r["policy"]))):
        dev = [c["dev_score"] for c in r.get("candidates", []) if c["prompt_words"] == r["prompt_words"]]
        curve = r.get("curve", {}).get("reward", [])
        trend = f"{curve[0]:+.3f} → {curve[-1]:+.3f}" if curve else "–"
        table.rows.append([str(r["seed"]), r["policy"], f"`{r['prompt_words']}`", f"{100 * r['test_score']:.1f}",
                           f"{dev[0]:.3f}" if dev else "–", trend, str(r.get("episodes", "–")),
                           str(r["llm_calls"])])
    return table


def dev_baselines(rows: list[dict]) -> ResultTable:
    """Per seed: the dev score (training reward) of the empty and the manual prompt, and of the
    prompts the searching policies chose, as in their rows."""
    import gymnasium as gym

    table = ResultTable(["seed", "empty prompt", "manual prompt", "compose-random-search", "compose-dqn"],
                        ["right"] * 5)
    for seed in sorted({r["seed"] for r in rows}):
        chosen = {r["policy"]: r for r in rows if r["seed"] == seed}
        row = next(r for r in chosen.values() if "compose_options" in r)
        kwargs = {"llm": row["llm"], "task_options": row["task_options"]}
        select = gym.make("PromptEnv/SST2-Select-v0", **kwargs).unwrapped
        empty = gym.make("PromptEnv/SST2-Compose-v0", **kwargs, **row["compose_options"]).unwrapped.prompt_of([])
        scores = select.score_prompts([empty, select.prompts[0]], "dev", reward=row["train_reward"]).mean(axis=0)
        found = []
        for policy in ("compose-random-search", "compose-dqn"):
            r = chosen.get(policy)
            dev = [c["dev_score"] for c in (r or {}).get("candidates", []) if c["prompt_words"] == r["prompt_words"]]
            found.append(f"{dev[0]:.3f}" if dev else "–")
        table.rows.append([str(seed), f"{scores[0]:.3f}", f"{scores[1]:.3f}", *found])
    return table


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results.jsonl written by benchmarks/run.py")
    parser.add_argument("--dev-baselines", action="store_true",
                        help="also score the empty and manual prompts on each seed's dev split (needs the LLM)")
    args = parser.parse_args(argv)
    rows = read_jsonl(args.results)
    text = prompt_table(rows).to_markdown()
    if args.dev_baselines:
        text += "\n\nDev score (training reward on the 32 dev sentences):\n\n" + dev_baselines(rows).to_markdown()
    print(text)
    return text


if __name__ == "__main__":
    main()
