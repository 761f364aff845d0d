"""Throughput of label scoring: a naive log-likelihood loop vs prompt-env's fast path.

Scores N real SST-2 sentences under a 2-shot prompt with the label words
" positive" / " negative", twice in the same process:

* naive: one forward pass per (example, label word) on the full prompt plus
  the label text, no batching, no prefix reuse, no cache (what a generic
  log-likelihood scorer does);
* fast: ``HFCausalLM.score`` (batched, shared-prefix KV reuse, both label
  words read from one forward pass), still without the response cache.

Then it scores ``--single`` (prompt, sentence) pairs one pair per call, the
way a Select env step makes them, with the prompt drawn at random from the
SST-2 pool (11 prompts) for each sentence: once with the prompt cache (prefix
key/values kept across calls) switched off and once on.

The last line printed is one JSON object with ``naive_examples_per_s``,
``fast_examples_per_s``, ``speedup``, ``max_abs_logprob_diff``, ``accuracy``,
``single_pair_per_s_no_prompt_cache``, ``single_pair_per_s_prompt_cache``,
``prompt_cache_speedup`` and ``prompt_cache_max_abs_diff``.

    python benchmarks/llm_throughput.py --data ../shared/data/classification/sst-2/test.tsv --n 200
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from prompt_env.llm.hf import HFCausalLM, load_default
from prompt_env.scoring import evaluate
from prompt_env.tasks import load_task
from prompt_env.tasks.loaders import read_delimited

LABEL_WORDS = [" negative", " positive"]
INSTRUCTION = "Classify the sentiment of each movie review as positive or negative."


def pick_shots(train_file: Path) -> list[tuple[str, int]]:
    """The first negative and the first positive sentence of a train split."""
    examples = read_delimited(train_file).examples
    return [next((e.fields["sentence"], e.label) for e in examples if e.label == y) for y in (0, 1)]


def build_prompt(sentence: str, shots: list[tuple[str, int]]) -> str:
    parts = [INSTRUCTION]
    for text, label in shots:
        parts.append(f"Review: {text}\nSentiment:{LABEL_WORDS[label]}")
    parts.append(f"Review: {sentence}\nSentiment:")
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="an SST-2 style TSV (sentence, label)")
    parser.add_argument("--n", type=int, default=200, help="number of sentences to score")
    parser.add_argument(
        "--shots-from",
        type=Path,
        default=None,
        help="train TSV to take the 2 exemplars from (default: 16-shot-seed42/train.tsv beside --data)",
    )
    parser.add_argument("--single", type=int, default=100,
                        help="(prompt, sentence) pairs scored one per call, prompt cache off and on")
    args = parser.parse_args()

    shots = pick_shots(args.shots_from or args.data.parent / "16-shot-seed42" / "train.tsv")
    examples = read_delimited(args.data).examples[: args.n]
    prompts = [build_prompt(e.fields["sentence"], shots) for e in examples]
    labels = np.array([e.label for e in examples])
    console = Console(stderr=True)
    console.print(f"loading the default model; scoring {len(prompts)} sentences from {args.data}")
    llm = load_default()
    llm.score(prompts[:2], LABEL_WORDS)  # warm-up: first calls pay one-off allocation costs

    start = time.perf_counter()
    naive = llm.score_naive(prompts, LABEL_WORDS)
    naive_s = time.perf_counter() - start

    start = time.perf_counter()
    fast = llm.score(prompts, LABEL_WORDS)
    fast_s = time.perf_counter() - start

    single = single_pair_calls(llm, args.data.parents[2], args.single) if args.single else {}

    accuracy = float(np.mean(fast.argmax(axis=1) == labels))
    result = {
        "n": len(prompts),
        "naive_examples_per_s": round(len(prompts) / naive_s, 2),
        "fast_examples_per_s": round(len(prompts) / fast_s, 2),
        "speedup": round(naive_s / fast_s, 2),
        "max_abs_logprob_diff": float(np.abs(naive - fast).max()),
        "accuracy": round(accuracy, 4),
        **{k: v for k, v in single.items() if not k.endswith("_s")},
    }
    table = Table(title="Label scoring throughput (SmolLM2-135M-Instruct, CPU)")
    for column in ("path", "seconds", "examples/s"):
        table.add_column(column)
    table.add_row("naive loop", f"{naive_s:.2f}", f"{result['naive_examples_per_s']}")
    table.add_row("fast path", f"{fast_s:.2f}", f"{result['fast_examples_per_s']}")
    if single:
        table.add_row(f"one pair per call, {args.single} random pool prompts, no prompt cache",
                      f"{single['off_s']:.2f}", f"{single['single_pair_per_s_no_prompt_cache']}")
        table.add_row("one pair per call, prompt cache on",
                      f"{single['on_s']:.2f}", f"{single['single_pair_per_s_prompt_cache']}")
    console.print(table)
    print(json.dumps(result))


def single_pair_calls(base: HFCausalLM, data_dir: Path, n: int) -> dict[str, float]:
    """Env-step-like scoring: one (random pool prompt, sentence) pair per call, prompt cache off vs on."""
    task = load_task("sst2", data_dir=str(data_dir), few_shot_seed=42)
    prompts = task.prompt_pool.candidates
    rng = np.random.default_rng(0)
    examples = task.split("test")[:n]
    pairs = [(prompts[int(rng.integers(len(prompts)))], e) for e in examples]
    out: dict[str, float] = {}
    rows = {}
    for label, capacity in (("off", 0), ("on", 8192)):
        llm = HFCausalLM(base.model, base.tokenizer, name=base.name, identity=base.identity(),
                         prefix_cache_tokens=capacity)
        start = time.perf_counter()
        rows[label] = np.array([evaluate(llm, task, [pair])[0].label_logprobs for pair in pairs])
        out[f"{label}_s"] = time.perf_counter() - start
    out["single_pair_per_s_no_prompt_cache"] = round(n / out["off_s"], 2)
    out["single_pair_per_s_prompt_cache"] = round(n / out["on_s"], 2)
    out["prompt_cache_speedup"] = round(out["off_s"] / out["on_s"], 2)
    out["prompt_cache_max_abs_diff"] = float(np.abs(rows["off"] - rows["on"]).max())
    return out


if __name__ == "__main__":
    main()
