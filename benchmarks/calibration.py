"""Label bias of the pool prompts, and what calibrated label scoring does to it.

    PROMPT_ENV_THREADS=1 PROMPT_ENV_DATA=/work/shared/data python benchmarks/calibration.py

For SST-2 and AG News (16-shot, ``few_shot_seed=13``) it scores every pool
prompt (``task.prompt_pool.candidates``) on a fixed test subset (the first
``--sst2-n`` / ``--agnews-n`` test inputs) three times: raw label log-probs
(``calibration=None``), contextual calibration (``"content-free"``) and
domain-conditional PMI (``"pmi"``), all through
:func:`prompt_env.scoring.outcome_matrix` (batched, cached). Raw scores come
first, so the calibrated passes reuse the cached (prompt, input) scores and
only ask the LLM for the calibration premises.

Outputs, in ``--out`` (default ``benchmarks/results/calibration``):

- ``results.jsonl``: one line per (task, prompt, calibration): accuracy,
  mean margin reward, the fraction of inputs predicted as each label, the
  gold label fractions, the label-bias distance (total variation between the
  predicted and the gold label distribution), LLM calls;
- ``results.md``: the same as readable tables.

Resumable: a (task, prompt, calibration) line already in ``results.jsonl``
for the same subset size and few-shot seed is not scored again; an
interrupted pass resumes from the response cache.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from agents.experiments.files import ResumableRows, save_text  # noqa: E402
from agents.progress import ProgressReporter  # noqa: E402
from prompt_env.llm import load_llm  # noqa: E402
from prompt_env.llm.base import LLM  # noqa: E402
from prompt_env.prompts import Prompt  # noqa: E402
from prompt_env.scoring import CONTENT_FREE_INPUTS, Outcome, outcome_matrix  # noqa: E402
from prompt_env.tasks import Task, load_task  # noqa: E402
from prompt_env.tasks.base import Example  # noqa: E402

CALIBRATIONS: tuple[str | None, ...] = (None, "content-free", "pmi")
CALIBRATION_CALLS = {None: 0, "content-free": len(CONTENT_FREE_INPUTS), "pmi": 1}
"""LLM calls each calibration asks per prompt, besides one per (prompt, input) pair."""
TASKS = ("sst2", "agnews")
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "calibration"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sst2-n", type=int, default=200, help="first N SST-2 test sentences")
    parser.add_argument("--agnews-n", type=int, default=100, help="first N AG News test articles")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: sst2,agnews")
    parser.add_argument("--few-shot-seed", type=int, default=13)
    parser.add_argument("--data-dir", default=None, help="data directory (else $PROMPT_ENV_DATA)")
    parser.add_argument("--llm", default="default", help="task LLM spec")
    parser.add_argument("--chunk-size", type=int, default=16,
                        help="test inputs per batched scoring chunk (each chunk is cached as it ends)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    unknown = set(args.tasks.split(",")) - set(TASKS)
    if unknown:
        parser.error(f"unknown tasks {sorted(unknown)}; choose among {TASKS}")
    return args


def line_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a results line: task, prompt, calibration, subset size, few-shot seed."""
    return (row["task"], row["prompt"], row["calibration"], row["n_test"], row["few_shot_seed"])


def label_fractions(indices: Sequence[int], names: Sequence[str]) -> dict[str, float]:
    counts = np.bincount(np.asarray(indices, dtype=np.int64), minlength=len(names))
    return {name: round(float(c) / max(len(indices), 1), 4) for name, c in zip(names, counts)}


def summarise(task: Task, prompt: Prompt, outcomes: Sequence[Outcome], examples: Sequence[Example],
              calibration: str | None, few_shot_seed: int) -> dict[str, Any]:
    """One results line for a prompt's outcomes on the test subset."""
    names = list(task.label_names or ())
    assert prompt.verbalizer is not None
    predicted = [list(prompt.verbalizer).index(o.prediction) for o in outcomes]
    gold = [int(e.label or 0) for e in examples]
    predicted_frac = label_fractions(predicted, names)
    gold_frac = label_fractions(gold, names)
    bias = 0.5 * sum(abs(predicted_frac[n] - gold_frac[n]) for n in names)
    return {
        "task": task.name,
        "prompt": prompt.name,
        "calibration": calibration,
        "n_test": len(examples),
        "few_shot_seed": few_shot_seed,
        "accuracy": round(float(np.mean([o.metrics["accuracy"] for o in outcomes])), 4),
        "margin": round(float(np.mean([o.metrics["margin"] for o in outcomes])), 4),
        "predicted_fraction": predicted_frac,
        "gold_fraction": gold_frac,
        "label_bias_tv": round(float(bias), 4),
        "verbalizer": list(prompt.verbalizer),
        "chat": prompt.chat,
        "llm_calls": len(examples) + CALIBRATION_CALLS[calibration],
    }


def run_task(name: str, n: int, args: argparse.Namespace, llm: LLM, results: ResumableRows,
             progress: ProgressReporter) -> None:
    """Score the pool of one task under each calibration, appending new lines to ``results``."""
    task = load_task(name, few_shot_seed=args.few_shot_seed, data_dir=args.data_dir)
    examples = task.split("test")[:n]
    for calibration in CALIBRATIONS:
        todo = [p for p in task.prompt_pool.candidates
                if not results.done((task.name, p.name, calibration, len(examples), args.few_shot_seed))]
        label = f"{name} / {calibration or 'raw'}"
        if not todo:
            progress.print(f"{label}: already in {results.path}")
            continue
        bar = progress.add(f"{label} (prompt x input pairs)", len(todo) * len(examples))
        before = llm.stats.as_dict()
        started = time.perf_counter()

        def report(finished: int, total: int, bar: int = bar) -> None:
            progress.update(bar, completed=finished)

        rows = outcome_matrix(llm, task, todo, examples, reward="accuracy",
                              chunk_size=args.chunk_size, calibration=calibration,
                              on_progress=report)
        usage = llm.stats.since(before)
        seconds = round(time.perf_counter() - started, 1)
        for j, prompt in enumerate(todo):
            line = summarise(task, prompt, [row[j] for row in rows], examples, calibration,
                             args.few_shot_seed)
            line["pass_usage"] = {**usage, "seconds": seconds, "prompts": len(todo)}
            results.add(line)


# --------------------------------------------------------------------------- report


def _fractions_text(fractions: dict[str, float]) -> str:
    return " / ".join(f"{v:.2f}" for v in fractions.values())


def render_markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The results tables: accuracy and label bias per prompt and calibration, per task."""
    cal_names = {None: "raw", "content-free": "content-free", "pmi": "pmi"}
    out = [
        "# Calibrated label scoring on the pool prompts",
        "",
        "Generated by `benchmarks/calibration.py` (task LLM: the default SmolLM2-135M-Instruct; "
        f"`few_shot_seed={args.few_shot_seed}`). Every pool prompt (`task.prompt_pool.candidates`) "
        "is scored on a **fixed test subset, not the whole test split**: the first "
        f"{args.sst2_n} SST-2 test sentences and the first {args.agnews_n} AG News test articles.",
        "",
        "- **raw**: argmax of the label-word log-probs (`calibration=None`).",
        "- **content-free**: contextual calibration (Zhao et al. 2021): minus the log of the label "
        "probabilities averaged over the prompt rendered with `N/A`, `\"\"` and `[MASK]` as the input.",
        "- **pmi**: domain-conditional PMI (Holtzman et al. 2021): minus `log p(label | premise)`, the "
        "premise being the prompt without its input (instruction and exemplars, then only the answer cue).",
        "- **bias (TV)**: total-variation distance between the predicted and the gold label "
        "distribution on the subset: 0 when the predictions spread over the labels like the gold "
        "labels do; a prompt that always predicts label y gets 1 - (gold share of y).",
        "",
    ]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    for name in tasks:
        task_rows = [r for r in rows if r["task"] == name]
        by_key = {(r["prompt"], r["calibration"]): r for r in task_rows}
        prompts = list(dict.fromkeys(r["prompt"] for r in task_rows))
        any_row = task_rows[0]
        labels = " / ".join(any_row["gold_fraction"])
        out += [f"## {name} (first {any_row['n_test']} test inputs)", "",
                f"Gold label fractions ({labels}): {_fractions_text(any_row['gold_fraction'])}", "",
                "| prompt | verbalizer | acc raw | acc content-free | acc pmi "
                "| bias raw | bias content-free | bias pmi "
                f"| predicted ({labels}) raw | content-free | pmi |",
                "|---|---|---:|---:|---:|---:|---:|---:|---|---|---|"]
        means: dict[tuple[str, str | None], list[float]] = {}
        for prompt in prompts:
            cells = [prompt]
            first = next(r for r in task_rows if r["prompt"] == prompt)
            cells.append(" ".join(first["verbalizer"]) + (" (chat)" if first["chat"] else ""))
            for metric in ("accuracy", "label_bias_tv"):
                for cal in CALIBRATIONS:
                    row = by_key.get((prompt, cal))
                    cells.append(f"{row[metric]:.3f}" if row else "-")
                    if row:
                        means.setdefault((metric, cal), []).append(row[metric])
            for cal in CALIBRATIONS:
                row = by_key.get((prompt, cal))
                cells.append(_fractions_text(row["predicted_fraction"]) if row else "-")
            out.append("| " + " | ".join(cells) + " |")
        mean_cells = ["**mean over prompts**", ""]
        for metric in ("accuracy", "label_bias_tv"):
            for cal in CALIBRATIONS:
                values = means.get((metric, cal), [])
                mean_cells.append(f"**{np.mean(values):.3f}**" if values else "-")
        mean_cells += ["", "", ""]
        out.append("| " + " | ".join(mean_cells) + " |")
        out += ["", "LLM calls for this task (requested = one per (prompt, input) pair plus the "
                "calibration premises, 3 per prompt for content-free and 1 for pmi; model = not "
                "answered by the response cache, in the run(s) that wrote these lines):", "",
                "| calibration | requested calls | model calls | cache hits | seconds |",
                "|---|---:|---:|---:|---:|"]
        for cal in CALIBRATIONS:
            cal_rows = [r for r in task_rows if r["calibration"] == cal]
            if not cal_rows:
                continue
            passes = {json.dumps(r["pass_usage"], sort_keys=True): r["pass_usage"] for r in cal_rows}
            model = sum(p.get("model_calls", 0) for p in passes.values())
            hits = sum(p.get("cache_hits", 0) for p in passes.values())
            seconds = sum(p.get("seconds", 0.0) for p in passes.values())
            requested = sum(r["llm_calls"] for r in cal_rows)
            out.append(f"| {cal_names[cal]} | {requested} | {model} | {hits} | {seconds:.0f} |")
        out.append("")
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.data_dir = args.data_dir or os.environ.get("PROMPT_ENV_DATA")
    args.out.mkdir(parents=True, exist_ok=True)
    results = ResumableRows(args.out / "results.jsonl", line_key)
    llm = load_llm(args.llm)
    sizes = {"sst2": args.sst2_n, "agnews": args.agnews_n}
    with ProgressReporter() as progress:
        for name in args.tasks.split(","):
            run_task(name, sizes[name], args, llm, results, progress)
    wanted = {(name, sizes[name], args.few_shot_seed) for name in args.tasks.split(",")}
    results.refresh()
    latest = [r for r in results.latest() if (r["task"], r["n_test"], r["few_shot_seed"]) in wanted]
    markdown = render_markdown(latest, args)
    save_text(markdown, args.out / "results.md")
    print(markdown)
    print(f"LLM usage this run: {llm.stats.as_dict()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
