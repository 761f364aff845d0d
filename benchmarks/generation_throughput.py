"""Throughput of few-shot generation: transformers' generate against ours, with and without prefix reuse.

Generates summaries of N real XSum dev articles under the task's manual prompt with K train
articles as exemplars (the prompts the Edit env scores on a generation task), in the same
process, on the default model, greedy, stopping at a newline:

* transformers: the batch as a user of transformers writes it: the whole prompts, left
  padded to the longest, one ``model.generate`` call (the reference), with a stopping
  criterion for the stop string as prompt-env reads it (after the answer's first visible
  character; ``stop_strings`` would also stop in the whitespace before);
* ours, no reuse: ``HFCausalLM(prefix_reuse=False).generate``: every row reads its whole
  prompt, the prompt pass in buckets of similar length, then one batched decode;
* ours: the default: the instruction and exemplars, shared by every row, are read once and
  each row continues their keys and values;
* ours, growing cache: the default, but the decode keeps its keys and values in transformers'
  dynamic cache, which concatenates the whole cache with every new token, instead of ours,
  allocated once with room for the new tokens.

All paths must give the same answers. It prints the seconds and prompt tokens read (padding
not counted) of each path, and as its last line one JSON object: ``n``, ``shots``, ``max_new_tokens``,
``prompt_tokens`` (mean per row), ``shared_prefix_tokens``, per path ``<path>_s`` and
``<path>_prompt_tokens_read`` (``transformers``, ``ours_no_reuse``, ``ours_growing_cache``,
``ours``), the speed-ups ``speedup_no_reuse``, ``speedup_growing_cache`` and ``speedup``
(transformers' seconds over ours), and ``same_answers``.

    python benchmarks/generation_throughput.py --data ../shared/data/summarization/xsum_100.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from prompt_env.llm.base import cut_at_stop, stopped
from prompt_env.llm.hf import HFCausalLM
from prompt_env.llm.hf_loading import load_default
from prompt_env.llm.prefix_cache import common_prefix
from prompt_env.tasks import load_task

STOP = ["\n"]


def transformers_generate(base: HFCausalLM, texts: list[str], max_new_tokens: int) -> tuple[list[str], int]:
    """The reference: one left-padded batch through ``model.generate``; answers and the
    prompt tokens it read (padding not counted, as for ours)."""
    import torch

    contexts = base.encode_many(texts)
    width = max(len(c) for c in contexts)
    pad = base.tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(c)) + c for c in contexts])
    mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts])
    from transformers import StoppingCriteria, StoppingCriteriaList

    class AfterVisibleText(StoppingCriteria):
        """A row is done once its new text holds a stop string after its first visible
        character (generate's own ``stop_strings`` would also stop in the whitespace before)."""

        def __call__(self, input_ids, scores, **kwargs):  # noqa: ANN001 - transformers' hook
            new = [base.tokenizer.decode(row, skip_special_tokens=True) for row in input_ids[:, width:].tolist()]
            return torch.tensor([stopped(t, STOP) for t in new], device=input_ids.device)

    with torch.inference_mode():
        out = base.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                  do_sample=False, num_beams=1, pad_token_id=pad,
                                  eos_token_id=[base.tokenizer.eos_token_id],
                                  stopping_criteria=StoppingCriteriaList([AfterVisibleText()]))[:, width:].tolist()
    answers = [cut_at_stop(base.tokenizer.decode([t for t in row if t != pad], skip_special_tokens=True), STOP)
               for row in out]
    return answers, sum(len(c) for c in contexts)


class GrowingCache(HFCausalLM):
    """Ours with the decode on transformers' dynamic cache (a copy of the cache per token)."""

    def _decode_cache(self, layers_kv: list, length: int):
        return self._new_cache([(k[:, :, :length], v[:, :, :length]) for k, v in layers_kv])


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
    ours = {name: kind(base.model, base.tokenizer, name=base.name, identity=base.identity(),
                       prefix_reuse=name != "ours_no_reuse")
            for name, kind in (("ours_no_reuse", HFCausalLM), ("ours_growing_cache", GrowingCache),
                               ("ours", HFCausalLM))}
    texts = [base.prompt_text(r) for r in rendered]
    contexts = base.encode_many(texts)
    shared = min(common_prefix(contexts[0], c, len(c) - 1) for c in contexts[1:])

    def run_ours(llm: HFCausalLM) -> Callable[[], tuple[list[str], int]]:
        def run() -> tuple[list[str], int]:
            llm.prefix_cache.clear()
            before = llm.stats.prompt_tokens
            answers = llm.generate(rendered, args.max_new_tokens, STOP)
            return answers, llm.stats.prompt_tokens - before
        return run

    paths: dict[str, Callable[[], tuple[list[str], int]]] = {
        "transformers": lambda: transformers_generate(base, texts, args.max_new_tokens),
        **{name: run_ours(llm) for name, llm in ours.items()},
    }
    for llm in ours.values():
        llm.generate(["Summarize: the cat sat on the mat.\nSummary:"], 4)  # one-off allocations
    seconds: dict[str, float] = {}
    answers: dict[str, list[str]] = {}
    read: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, run in paths.items():
            start = time.perf_counter()
            answers[name], read[name] = run()
            elapsed = time.perf_counter() - start
            seconds[name] = min(seconds.get(name, elapsed), elapsed)
    result = {
        "n": len(rendered), "shots": args.shots, "max_new_tokens": args.max_new_tokens,
        "prompt_tokens": round(sum(len(c) for c in contexts) / len(contexts), 1),
        "shared_prefix_tokens": shared,
        **{f"{name}_s": round(seconds[name], 2) for name in paths},
        **{f"{name}_prompt_tokens_read": read[name] for name in paths},
        "speedup_no_reuse": round(seconds["transformers"] / seconds["ours_no_reuse"], 2),
        "speedup_growing_cache": round(seconds["transformers"] / seconds["ours_growing_cache"], 2),
        "speedup": round(seconds["transformers"] / seconds["ours"], 2),
        "same_answers": all(answers[name] == answers["transformers"] for name in paths),
    }
    table = Table(title=f"Few-shot generation ({base.name}, {args.shots} exemplars, "
                        f"{len(rendered)} articles, {args.max_new_tokens} new tokens at most)")
    for column in ("path", "seconds", "articles/s", "prompt tokens read", "speed-up"):
        table.add_column(column)
    for name in paths:
        table.add_row(name, f"{seconds[name]:.2f}", f"{len(rendered) / seconds[name]:.2f}",
                      str(read[name]), f"{seconds['transformers'] / seconds[name]:.2f}x")
    console.print(table)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
