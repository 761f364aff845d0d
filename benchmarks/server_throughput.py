"""Throughput of label scoring through a local llama.cpp server vs the in-process backend.

Scores the same N SST-2 sentences (2-shot prompt, label words " negative" /
" positive", the prompt of ``llm_throughput.py``) twice, neither through the
response cache:

* in-process: ``HFCausalLM.score`` on the embedded SmolLM2 (batched, prefix reuse);
* server: ``OpenAICompatLLM.score`` against ``prompt_env.llm.server`` on the same
  GGUF (``logit_bias`` method, ``--concurrency`` requests in flight, ``--n-parallel``
  server slots).

Both share the machine's cores, so run it on an otherwise idle machine. The
last line printed is one JSON object: server start time, inputs/s and
requests/s of each path, agreement of their label rankings and the largest
log-prob difference.

    python benchmarks/server_throughput.py --data ../shared/data/classification/sst-2/test.tsv --n 200
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_throughput import LABEL_WORDS, build_prompt, pick_shots  # noqa: E402

from prompt_env.llm.hf_loading import load_default  # noqa: E402
from prompt_env.llm.openai_compat import OpenAICompatLLM  # noqa: E402
from prompt_env.llm.server import start_local_server  # noqa: E402
from prompt_env.tasks.loaders import read_delimited  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="an SST-2 style TSV (sentence, label)")
    parser.add_argument("--n", type=int, default=200, help="number of sentences to score")
    parser.add_argument("--n-parallel", type=int, default=2, help="server slots")
    parser.add_argument("--concurrency", type=int, default=4, help="client requests in flight")
    parser.add_argument("--threads", type=int, default=2, help="server CPU threads")
    args = parser.parse_args()

    shots = pick_shots(args.data.parent / "16-shot-seed42" / "train.tsv")
    examples = read_delimited(args.data).examples[: args.n]
    prompts = [build_prompt(e.fields["sentence"], shots) for e in examples]
    labels = np.array([e.label for e in examples])

    local = load_default()
    local.score(prompts[:2], LABEL_WORDS)  # warm-up
    start = time.perf_counter()
    local_scores = local.score(prompts, LABEL_WORDS)
    local_s = time.perf_counter() - start
    del local

    with start_local_server(n_parallel=args.n_parallel, threads=args.threads) as server:
        llm = OpenAICompatLLM(server.base_url, server.model, concurrency=args.concurrency)
        method = llm.resolve_score_method()
        llm.score(prompts[:2], LABEL_WORDS)  # warm-up (and the label words' token ids)
        requests_before = llm.stats.batches
        start = time.perf_counter()
        served_scores = llm.score(prompts, LABEL_WORDS)
        served_s = time.perf_counter() - start
        requests = llm.stats.batches - requests_before
        llm.close()

    result = {
        "n": len(prompts),
        "server_start_s": round(server.started_in_s, 2),
        "score_method": method,
        "n_parallel": args.n_parallel,
        "concurrency": args.concurrency,
        "local_inputs_per_s": round(len(prompts) / local_s, 2),
        "server_inputs_per_s": round(len(prompts) / served_s, 2),
        "server_requests_per_s": round(requests / served_s, 2),
        "server_requests": requests,
        "server_over_local": round(local_s / served_s, 3),
        "ranking_agreement": float(np.mean(served_scores.argmax(1) == local_scores.argmax(1))),
        "max_abs_logprob_diff": round(float(np.abs(served_scores - local_scores).max()), 4),
        "local_accuracy": float(np.mean(local_scores.argmax(1) == labels)),
        "server_accuracy": float(np.mean(served_scores.argmax(1) == labels)),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
