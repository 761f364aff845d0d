"""Throughput of generation with and without prefix reuse, on few-shot summarization.

Generates summaries of N real XSum dev articles under the task's manual prompt with K train
articles as exemplars (the prompts the Edit env scores on a generation task), in the same
process, on the default model:

* plain: ``HFCausalLM(prefix_reuse=False).generate``: every row reads its whole prompt
  (left padding, batched);
* reused: the default: the instruction and exemplars, shared by every row, are read once;
  each row continues their keys and values (padding between the prefix and its own tokens).

The two must give the same greedy answers. It prints the seconds and prompt tokens read of
each path, and as its last line one JSON object: ``n``, ``shots``, ``max_new_tokens``,
``prompt_tokens`` (mean per row), ``shared_prefix_tokens``, ``plain_s``, ``reused_s``,
``speedup`` (plain over reused), ``plain_prompt_tokens_read``,
``reused_prompt_tokens_read`` and ``same_answers``.

    python benchmarks/generation_throughput.py --data ../shared/data/summarization/xsum_100.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from prompt_env.llm.hf import HFCausalLM
from prompt_env.llm.hf_loading import load_default
from prompt_env.llm.prefix_cache import common_prefix
from prompt_env.tasks import load_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a summarization JSONL (XSum)")
    parser.add_argument("--n", type=int, default=8, help="dev articles to summarize")
    parser.add_argument("--shots", type=int, default=2, help="train articles as exemplars")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="alternate the paths; best time")
    args = parser.parse_args()

    task = load_task(str(args.data))
    prompt = task.prompt_pool.candidates[0].replace(exemplars=tuple(range(args.shots)))
    rendered = [prompt.render(e, task) for e in task.split("dev")[: args.n]]
    console = Console(stderr=True)
    console.print(f"loading the default model; {len(rendered)} articles from {args.data}, "
                  f"{args.shots} exemplars")
    base = load_default()
    paths = {name: HFCausalLM(base.model, base.tokenizer, name=base.name, identity=base.identity(),
                              prefix_reuse=name == "reused") for name in ("plain", "reused")}
    contexts = base.encode_many([base.prompt_text(r) for r in rendered])
    shared = min(common_prefix(contexts[0], c, len(c) - 1) for c in contexts[1:])
    for llm in paths.values():
        llm.generate(["Summarize: the cat sat on the mat.\nSummary:"], 4)  # one-off allocations
    seconds: dict[str, float] = {}
    answers: dict[str, list[str]] = {}
    read: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, llm in paths.items():
            llm.prefix_cache.clear()
            before = llm.stats.prompt_tokens
            start = time.perf_counter()
            answers[name] = llm.generate(rendered, args.max_new_tokens, ["\n"])
            elapsed = time.perf_counter() - start
            seconds[name] = min(seconds.get(name, elapsed), elapsed)
            read[name] = llm.stats.prompt_tokens - before
    result = {
        "n": len(rendered), "shots": args.shots, "max_new_tokens": args.max_new_tokens,
        "prompt_tokens": round(sum(len(c) for c in contexts) / len(contexts), 1),
        "shared_prefix_tokens": shared,
        "plain_s": round(seconds["plain"], 2), "reused_s": round(seconds["reused"], 2),
        "speedup": round(seconds["plain"] / seconds["reused"], 2),
        "plain_prompt_tokens_read": read["plain"], "reused_prompt_tokens_read": read["reused"],
        "same_answers": answers["plain"] == answers["reused"],
    }
    table = Table(title=f"Few-shot generation ({base.name}, {args.shots} exemplars, "
                        f"{len(rendered)} articles, {args.max_new_tokens} new tokens at most)")
    for column in ("path", "seconds", "articles/s", "prompt tokens read"):
        table.add_column(column)
    for name in paths:
        table.add_row(name, f"{seconds[name]:.2f}", f"{len(rendered) / seconds[name]:.2f}",
                      str(read[name]))
    console.print(table)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
