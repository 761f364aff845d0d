"""Throughput of label scoring: a naive loop, the reference engine and the fused engine.

Scores N real SST-2 sentences under a 2-shot prompt with the label words
" positive" / " negative", in the same process:

* naive: one forward pass per (example, label word) on the full prompt plus
  the label text, no batching, no prefix reuse, no cache (what a generic
  log-likelihood scorer does);
* reference: ``HFCausalLM.score`` with ``engine="transformers"`` (batched,
  shared-prefix KV reuse, both label words read from one forward pass: the fast
  path as it was before the fused engine), without the response cache;
* fused: the same call with ``engine="fused"`` (the default): packed rows on a
  lean forward pass of the Llama architecture.

It prints the scored tokens per second of the fused path as a fraction of the
FLOP limit measured in the same run (the best float32 matmul rate of this
machine on the model's own shapes, over 2 x the transformer layers' parameters
per token; the LM head runs only where a label is read).

Then it scores ``--single`` (prompt, sentence) pairs one pair per call, the
way a Select env step makes them, with the prompt drawn at random from the
SST-2 pool (11 prompts) for each sentence: on the reference engine with the
prompt cache (prefix key/values kept across calls) off and on, and on the
fused engine with it on.

The last line printed is one JSON object with ``naive_examples_per_s``,
``reference_examples_per_s``, ``fast_examples_per_s`` (fused), ``speedup``
(fused over naive), ``engine_speedup`` (fused over reference),
``max_abs_logprob_diff`` (fused vs naive), ``max_abs_logprob_diff_reference``
(fused vs reference), ``same_ranking``, ``accuracy``, ``fused_tokens_per_s``,
``flop_limit_tokens_per_s``, ``flop_fraction``, ``matmul_gflops`` and, for the
one-pair calls, ``single_pair_per_s_no_prompt_cache``,
``single_pair_per_s_prompt_cache`` (reference engine), ``prompt_cache_speedup``,
``single_pair_per_s_fused``, ``single_engine_speedup`` and
``single_max_abs_diff``.

    python benchmarks/llm_throughput.py --data ../shared/data/classification/sst-2/test.tsv --n 200
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from prompt_env.llm.hf import HFCausalLM
from prompt_env.llm.hf_loading import load_default
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
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed runs of each engine, alternating (the best counts)")
    parser.add_argument("--naive", type=int, default=50,
                        help="sentences the naive loop is timed on (its rate is scaled to --n)")
    parser.add_argument("--single", type=int, default=100,
                        help="(prompt, sentence) pairs scored one per call, prompt cache off and on")
    args = parser.parse_args()

    shots = pick_shots(args.shots_from or args.data.parent / "16-shot-seed42" / "train.tsv")
    examples = read_delimited(args.data).examples[: args.n]
    prompts = [build_prompt(e.fields["sentence"], shots) for e in examples]
    labels = np.array([e.label for e in examples])
    console = Console(stderr=True)
    console.print(f"loading the default model; scoring {len(prompts)} sentences from {args.data}")
    base = load_default()
    engines = {name: HFCausalLM(base.model, base.tokenizer, name=base.name, identity=base.identity(),
                                engine=name) for name in ("transformers", "fused")}
    for llm in engines.values():
        llm.score(prompts[:2], LABEL_WORDS)  # warm-up: first calls pay one-off allocation costs
        llm.prefix_cache.clear()

    start = time.perf_counter()
    naive = base.score_naive(prompts[: args.naive], LABEL_WORDS)
    naive_s = (time.perf_counter() - start) * len(prompts) / max(1, args.naive)
    seconds: dict[str, float] = {}
    scores, tokens = {}, {}
    for _ in range(args.repeats):  # alternate the engines; keep each one's best time
        for name, llm in engines.items():
            llm.prefix_cache.clear()
            before = llm.stats.prompt_tokens
            start = time.perf_counter()
            scores[name] = llm.score(prompts, LABEL_WORDS)
            elapsed = time.perf_counter() - start
            seconds[name] = min(seconds.get(name, elapsed), elapsed)
            tokens[name] = llm.stats.prompt_tokens - before
    fast, reference = scores["fused"], scores["transformers"]
    gflops = matmul_gflops(base.model.config)
    per_token = 2 * layer_parameters(base.model)
    limit = gflops * 1e9 / per_token
    fused_tokens_per_s = tokens["fused"] / seconds["fused"]

    single = single_pair_calls(base, args.data.parents[2], args.single) if args.single else {}

    accuracy = float(np.mean(fast.argmax(axis=1) == labels))
    result = {
        "n": len(prompts),
        "naive_examples_per_s": round(len(prompts) / naive_s, 2),
        "reference_examples_per_s": round(len(prompts) / seconds["transformers"], 2),
        "fast_examples_per_s": round(len(prompts) / seconds["fused"], 2),
        "speedup": round(naive_s / seconds["fused"], 2),
        "engine_speedup": round(seconds["transformers"] / seconds["fused"], 2),
        "max_abs_logprob_diff": float(np.abs(naive - fast[: args.naive]).max()),
        "max_abs_logprob_diff_reference": float(np.abs(reference - fast).max()),
        "same_ranking": bool((reference.argmax(axis=1) == fast.argmax(axis=1)).all()),
        "accuracy": round(accuracy, 4),
        "fused_tokens_per_s": round(fused_tokens_per_s, 1),
        "flop_limit_tokens_per_s": round(limit, 1),
        "flop_fraction": round(fused_tokens_per_s / limit, 3),
        "matmul_gflops": round(gflops, 1),
        **{k: v for k, v in single.items() if not k.endswith("_s")},
    }
    table = Table(title="Label scoring throughput (SmolLM2-135M-Instruct, CPU)")
    for column in ("path", "seconds", "examples/s", "scored tokens/s"):
        table.add_column(column)
    table.add_row(f"naive loop (timed on {args.naive}, scaled)", f"{naive_s:.2f}",
                  f"{result['naive_examples_per_s']}", "")
    table.add_row("reference engine (transformers)", f"{seconds['transformers']:.2f}",
                  f"{result['reference_examples_per_s']}", f"{tokens['transformers'] / seconds['transformers']:.0f}")
    table.add_row("fused engine", f"{seconds['fused']:.2f}", f"{result['fast_examples_per_s']}",
                  f"{fused_tokens_per_s:.0f} ({result['flop_fraction']:.0%} of the FLOP limit, {limit:.0f})")
    if single:
        table.add_row(f"one pair per call, {args.single} random pool prompts, reference, no prompt cache",
                      f"{single['off_s']:.2f}", f"{single['single_pair_per_s_no_prompt_cache']}", "")
        table.add_row("one pair per call, reference, prompt cache on",
                      f"{single['on_s']:.2f}", f"{single['single_pair_per_s_prompt_cache']}", "")
        table.add_row("one pair per call, fused, prompt cache on",
                      f"{single['fused_s']:.2f}", f"{single['single_pair_per_s_fused']}", "")
    console.print(table)
    print(json.dumps(result))


def layer_parameters(model: Any) -> int:
    """Parameters of the transformer layers (what every scored token multiplies through)."""
    return sum(p.numel() for p in model.model.layers.parameters())


def matmul_gflops(config: Any, repeats: int = 5) -> float:
    """Best float32 matmul rate (GFLOP/s) on the model's shapes at a large batch, with the
    threads the scoring used."""
    import torch

    from prompt_env.llm.threads import set_threads

    set_threads()
    hidden, inner, rows = int(config.hidden_size), int(config.intermediate_size), 2048
    x, w = torch.randn(rows, hidden), torch.randn(inner, hidden)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.nn.functional.linear(x, w)
        best = min(best, time.perf_counter() - start)
    return 2 * rows * hidden * inner / best / 1e9


def single_pair_calls(base: HFCausalLM, data_dir: Path, n: int) -> dict[str, float]:
    """Env-step-like scoring: one (random pool prompt, sentence) pair per call; reference
    engine with the prompt cache off and on, fused engine with it on."""
    task = load_task("sst2", data_dir=str(data_dir), few_shot_seed=42)
    prompts = task.prompt_pool.candidates
    rng = np.random.default_rng(0)
    examples = task.split("test")[:n]
    pairs = [(prompts[int(rng.integers(len(prompts)))], e) for e in examples]
    out: dict[str, float] = {}
    rows = {}
    for label, capacity, engine in (("off", 0, "transformers"), ("on", 8192, "transformers"),
                                    ("fused", 8192, "fused")):
        llm = HFCausalLM(base.model, base.tokenizer, name=base.name, identity=base.identity(),
                         prefix_cache_tokens=capacity, engine=engine)
        start = time.perf_counter()
        rows[label] = np.array([evaluate(llm, task, [pair])[0].label_logprobs for pair in pairs])
        out[f"{label}_s"] = time.perf_counter() - start
    out["single_pair_per_s_no_prompt_cache"] = round(n / out["off_s"], 2)
    out["single_pair_per_s_prompt_cache"] = round(n / out["on_s"], 2)
    out["prompt_cache_speedup"] = round(out["off_s"] / out["on_s"], 2)
    out["prompt_cache_max_abs_diff"] = float(np.abs(rows["off"] - rows["on"]).max())
    out["single_pair_per_s_fused"] = round(n / out["fused_s"], 2)
    out["single_engine_speedup"] = round(out["on_s"] / out["fused_s"], 2)
    out["single_max_abs_diff"] = float(np.abs(rows["off"] - rows["fused"]).max())
    return out


if __name__ == "__main__":
    main()
