"""Scoring throughput on a GPU: both engines in float32 and bfloat16 against plain transformers.

Random weights in real shapes (nothing is downloaded): the default model's own config
(SmolLM2-135M) and a 1.7B shape (hidden 2048, 24 layers, MLP 8192, 32 heads, 32 KV heads),
built with ``LlamaForCausalLM(config)`` on the device, with the default model's tokenizer.
Speed and engine agreement are real on random weights; accuracy is not.

Every (shape, dtype) scores the same 2-shot SST-2 prompts (label words " negative" /
" positive") three ways, in the same run, so that the ratio is the result:

* ``fused`` and ``transformers``: ``HFCausalLM.score`` with that engine (the fused engine runs
  float32 only; with bfloat16 its row says ``skipped``), prefix cache cleared before each run;
* ``plain``: what a user writes with transformers alone: left-padded batches of 128 in the
  prompts' order, one forward each, log-softmax at the last position, one ``.cpu()`` a batch.

Each row: examples/s, scored tokens/s (the prompts' tokens over the wall time, the same
count for all three methods), the ratio to ``plain`` of that (shape, dtype), and the largest
log-prob difference from ``plain``. Rows go to ``--out/results.jsonl``, the table to
``--out/results.md`` and the console.

    python benchmarks/gpu_throughput.py                         # on a CUDA machine
    python benchmarks/gpu_throughput.py --small --out /tmp/gpu  # tiny shapes: a smoke run, any machine

Without CUDA the script refuses the default ``--out`` (CPU numbers are not GPU results).
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from prompt_env.llm.default_model import default_model_dir
from prompt_env.llm.devices import resolve_device
from prompt_env.llm.hf import HFCausalLM
from prompt_env.tasks import load_task

LABEL_WORDS = [" negative", " positive"]
INSTRUCTION = "Classify the sentiment of each movie review as positive or negative."
DEFAULT_OUT = Path(__file__).parent / "results" / "gpu"
PLAIN_BATCH = 128
SHAPES = {
    "135m": {},  # the default model's config as it is
    "1.7b": {"hidden_size": 2048, "num_hidden_layers": 24, "intermediate_size": 8192,
             "num_attention_heads": 32, "num_key_value_heads": 32},
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128,
             "num_attention_heads": 4, "num_key_value_heads": 2},
}


def sst2_prompts(n: int) -> list[str]:
    """``n`` 2-shot prompts over SST-2 sentences (train, dev and test, cycled if needed)."""
    task = load_task("sst2")
    examples = [e for split in ("train", "dev", "test") for e in task.splits.get(split, [])]
    shots = [next(e for e in examples if e.label == y) for y in (0, 1)]
    head = "\n\n".join([INSTRUCTION] + [f"Review: {e.fields['sentence']}\nSentiment:{LABEL_WORDS[e.label]}"
                                        for e in shots])
    sentences = [e.fields["sentence"] for e in examples if e not in shots]
    return [f"{head}\n\nReview: {sentences[i % len(sentences)]}\nSentiment:" for i in range(n)]


def random_model(shape: str, device: str) -> tuple[Any, Any]:
    """A float32 random-weight Llama of ``shape`` on ``device``, and the default tokenizer."""
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

    directory = str(default_model_dir()[0])
    config = AutoConfig.from_pretrained(directory)
    for key, value in SHAPES[shape].items():
        setattr(config, key, value)
    config.head_dim = config.hidden_size // config.num_attention_heads
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).float().eval()
    return model, AutoTokenizer.from_pretrained(directory)


def plain_scores(model: Any, tokenizer: Any, prompts: list[str]) -> np.ndarray:
    """Plain transformers: left-padded batches, one forward, last-position log-softmax."""
    device = next(model.parameters()).device
    labels = torch.tensor([tokenizer(w, add_special_tokens=False).input_ids[0] for w in LABEL_WORDS],
                          device=device)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    out = []
    with torch.inference_mode():
        for start in range(0, len(prompts), PLAIN_BATCH):
            batch = tokenizer(prompts[start: start + PLAIN_BATCH], add_special_tokens=False,
                              padding=True, return_tensors="pt").to(device)
            positions = (batch.attention_mask.cumsum(-1) - 1).clamp(min=0)
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                           position_ids=positions, logits_to_keep=1).logits[:, -1]
            out.append(torch.log_softmax(logits.float(), -1)[:, labels].double().cpu())
    return torch.cat(out).numpy()


def timed(run: Any, repeats: int) -> tuple[float, Any]:
    """Best wall time of ``repeats`` runs (after one warm-up on the device), and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, result


def measure(shape: str, dtype: str, device: str, prompts: list[str], repeats: int,
            float32: np.ndarray | None = None) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The rows of one (shape, dtype), and its plain scores; ``float32``: the plain float32
    scores of this shape, which the rows of another dtype are compared with."""
    model, tokenizer = random_model(shape, device)
    if dtype != "float32":
        model = model.to(getattr(torch, dtype))
    n_tokens = sum(len(tokenizer(p, add_special_tokens=False).input_ids) for p in prompts)
    runs: dict[str, tuple[float, np.ndarray] | None] = {}
    plain_scores(model, tokenizer, prompts[:PLAIN_BATCH])  # warm-up
    runs["plain"] = timed(lambda: plain_scores(model, tokenizer, prompts), repeats)
    for engine in ("fused", "transformers"):
        if engine == "fused" and dtype != "float32":
            runs[engine] = None  # the fused engine is float32 only
            continue
        llm = HFCausalLM(model, tokenizer, name=f"random-{shape}", identity=f"random-{shape}",
                         device=device, engine=engine)
        llm.score(prompts[:8], LABEL_WORDS)  # warm-up

        def run(llm: HFCausalLM = llm) -> np.ndarray:
            llm.prefix_cache.clear()
            llm._recent.clear()
            return llm.score(prompts, LABEL_WORDS)

        runs[engine] = timed(run, repeats)
    plain_seconds, plain = runs["plain"]  # type: ignore[misc]
    rows = []
    for method, outcome in runs.items():
        row: dict[str, Any] = {"shape": shape, "dtype": dtype, "method": method, "n": len(prompts),
                               "scored_tokens": n_tokens}
        if outcome is None:
            rows.append({**row, "skipped": "the fused engine runs float32 only"})
            continue
        seconds, scores = outcome
        same = float(np.mean(scores.argmax(1) == plain.argmax(1)))
        rows.append({**row, "seconds": round(seconds, 4),
                     "examples_per_s": round(len(prompts) / seconds, 1),
                     "tokens_per_s": round(n_tokens / seconds, 1),
                     "vs_plain": round(plain_seconds / seconds, 3),
                     "max_abs_diff_vs_plain": round(float(np.abs(scores - plain).max()), 6),
                     "same_ranking_vs_plain": round(same, 4)})
        if float32 is not None and dtype != "float32":
            rows[-1]["max_abs_diff_vs_float32"] = round(float(np.abs(scores - float32).max()), 6)
            rows[-1]["same_ranking_vs_float32"] = round(float(np.mean(scores.argmax(1) == float32.argmax(1))), 4)
    return rows, plain


def table(rows: list[dict[str, Any]], title: str) -> tuple[Table, str]:
    """The rows as a rich table and as Markdown."""
    columns = ["shape", "dtype", "method", "examples_per_s", "tokens_per_s", "vs_plain",
               "max_abs_diff_vs_plain", "same_ranking_vs_plain", "same_ranking_vs_float32"]
    rich_table = Table(title=title)
    for column in columns:
        rich_table.add_column(column)
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [str(row.get(c, "skipped" if c == "examples_per_s" and "skipped" in row else "")) for c in columns]
        rich_table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    return rich_table, "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true",
                        help="tiny shapes and few prompts: a smoke run that works on a CPU")
    parser.add_argument("--n", type=int, help="prompts to score (default 2048; 24 with --small)")
    parser.add_argument("--shapes", help="comma-separated, of 135m, 1.7b, tiny (default 135m,1.7b; tiny with --small)")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated (default float32,bfloat16)")
    parser.add_argument("--device", default="auto", help="torch device (default auto: CUDA when available)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each method; the best counts")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args()

    device = resolve_device(args.device)
    if not device.startswith("cuda") and args.out.resolve() == DEFAULT_OUT.resolve():
        parser.error(f"no CUDA device here: give --out (CPU numbers do not belong in {DEFAULT_OUT})")
    shapes = (args.shapes or ("tiny" if args.small else "135m,1.7b")).split(",")
    n = args.n or (24 if args.small else 2048)
    prompts = sst2_prompts(n)
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    console = Console(stderr=True)
    meta = {"device": name, "torch": torch.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    rows: list[dict[str, Any]] = []
    for shape in shapes:
        float32 = None
        for dtype in sorted(args.dtypes.split(","), key=lambda d: d != "float32"):
            console.print(f"{shape} {dtype} on {name}: {n} prompts")
            measured, plain = measure(shape, dtype, device, prompts, args.repeats, float32)
            float32 = plain if dtype == "float32" else float32
            rows += [{**meta, **row} for row in measured]
            if device.startswith("cuda"):
                torch.cuda.empty_cache()  # the last shape's weights are gone with measure's frame
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "results.jsonl", "a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    rich_table, markdown = table(rows, f"Scoring throughput on {name}, {n} two-shot SST-2 prompts")
    (args.out / "results.md").write_text(markdown, encoding="utf-8")
    Console().print(rich_table)


if __name__ == "__main__":
    main()
