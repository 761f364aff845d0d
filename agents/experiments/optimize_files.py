"""What ``prompt-env optimize`` writes: the prompt to ship, how to use it, the evidence, the config.

- ``best_prompt.txt``: the exact text to send (a chat prompt: the JSON list of
  messages), with ``{field}`` placeholders where the input goes;
- ``best_prompt.json``: its parts (instruction, exemplars, template,
  verbalizer), how to fill it and how to read the model's answer;
- ``report.md`` and ``score_vs_calls.png``: the winner next to the manual prompt
  and the best pool prompt on held-out inputs, with what each cost, and what the model
  answered on a few of those inputs;
- ``results.json`` (the rows) and ``config.json`` (everything needed to rerun it, the plan).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.experiments.files import redact, save_json, save_text
from agents.experiments.plots import plot_score_vs_cost
from agents.experiments.report import policy_table
from agents.experiments.search_space import describe_search_space
from agents.experiments.usage import Usage

if TYPE_CHECKING:
    from agents.experiments.optimize_plan import OptimizePlan

PROMPT_TEXT = "best_prompt.txt"
PROMPT_JSON = "best_prompt.json"
REPORT = "report.md"
PLOT = "score_vs_calls.png"
RESULTS = "results.json"
CONFIG = "config.json"
OUTPUT_FILES = (PROMPT_TEXT, PROMPT_JSON, REPORT, PLOT, RESULTS, CONFIG)

FILL_NOTE = ("replace each {field} placeholder with the input's text, as a literal string replacement "
             "(not str.format: inputs may contain braces)")


def render_with_placeholders(prompt: Any, task: Any) -> tuple[str, Any]:
    """(``best_prompt.txt`` text, the rendered prompt) with ``{field}`` where each input field goes."""
    from prompt_env.tasks.base import Example

    placeholder = Example(fields={f: "{" + f + "}" for f in task.input_fields})
    rendered = prompt.render(placeholder, task)
    if isinstance(rendered, str):
        return rendered, rendered
    return json.dumps(rendered, indent=2, ensure_ascii=False), rendered


def prompt_description(prompt: Any, task: Any) -> dict[str, Any]:
    """``best_prompt.json``: the prompt's parts and how to render and read it."""
    text, rendered = render_with_placeholders(prompt, task)
    train = task.splits.get("train", [])
    exemplars = [{"fields": dict(train[i].fields), "answer": prompt.answer_text(train[i])}
                 for i in prompt.exemplars if 0 <= i < len(train)]
    if task.kind == "classification":
        answer = ("the label whose word the model most likely continues the prompt with: score "
                  f"each of {prompt.choices()} as the continuation (log-probability), or generate a "
                  "few tokens and map the first word back through 'verbalizer'")
        verbalizer = dict(zip(task.label_names or (), prompt.verbalizer or (), strict=False))
        if prompt.calibration == "content-free":
            answer += ("; then calibrate (Zhao et al. 2021): divide each label's probability by "
                       "its mean probability when the input is 'N/A', '' and '[MASK]' under the "
                       "same prompt, and take the largest")
        elif prompt.calibration == "pmi":
            answer += ("; then calibrate (domain-conditional PMI): subtract each label's "
                       "log-probability under the prompt without its input, and take the largest")
    else:
        from prompt_env.scoring import default_max_new_tokens

        answer = ("generate a continuation" + ("" if prompt.chat else " and keep its first line")
                  + f" (the task uses up to {default_max_new_tokens(task)} new tokens)")
        verbalizer = None
    return {
        "format": "chat" if prompt.chat else "text",
        "prompt": rendered,
        "placeholders": list(task.input_fields),
        "how_to_render": (f"{FILL_NOTE}; " + ("send 'prompt' as the chat messages (the model's chat "
                                              "template applies)" if prompt.chat else
                                              "send 'prompt' as plain text (a completion)")),
        "how_to_read_the_answer": answer,
        "name": prompt.name,
        "instruction": prompt.instruction,
        "template": {"name": prompt.template.name, "input_format": prompt.template.input_format,
                     "answer_prefix": prompt.template.answer_prefix,
                     "separator": prompt.template.separator},
        "exemplars": exemplars,
        "verbalizer": verbalizer,
        "answer_choices": prompt.choices() if task.kind == "classification" else None,
        "calibration": prompt.calibration,
        "task": {"name": task.name, "kind": task.kind, "metric": task.metric,
                 "input_fields": list(task.input_fields),
                 "label_names": list(task.label_names) if task.label_names else None},
        "text_length_chars": len(text),
    }


def short_spec(spec: Any) -> str:
    """The shortest form of an LLM spec a shell user types: ``default``, ``hf:<path>``,
    ``openai:<url>#<model>``, else its JSON."""
    if isinstance(spec, str):
        return spec
    keys = set(spec)
    if keys == {"backend"} and spec["backend"] in ("default", "fake"):
        return str(spec["backend"])
    if keys == {"backend", "model"} and spec["backend"] == "hf":
        return f"hf:{spec['model']}"
    if keys == {"backend", "base_url", "model"} and spec["backend"] == "openai":
        return f"openai:{spec['base_url']}#{spec['model']}"
    return json.dumps(spec)


def reproduce_command(config: dict[str, Any], out: Path) -> str:
    """The ``prompt-env optimize`` command line that reruns this run."""
    parts = ["prompt-env", "optimize", "--data", str(config["data"]), "--budget", str(config["budget"]),
             "--policy", str(config["policy"]), "--seed", str(config["seed"]), "--out", str(out)]
    parts += ["--llm", short_spec(config["llm"])]
    if config.get("task_options"):
        parts += ["--task-options", json.dumps(config["task_options"])]
    if config.get("test_limit") is not None:
        parts += ["--test-limit", str(config["test_limit"])]
    if config.get("metric"):
        parts += ["--metric", str(config["metric"])]
    if config.get("tie_break") is None and _is_edit_search(config):
        parts += ["--no-tie-break"]
    return shlex.join(parts)


def _is_edit_search(config: dict[str, Any]) -> bool:
    from agents.experiments.optimize_plan import uses_edit_env

    return uses_edit_env(str(config["policy"]))


def _against_the_pool(rows: list[dict[str, Any]]) -> str:
    """The clause that compares the winner with the best pool prompt on dev, when the run
    has that row ("" otherwise): the gain a search must show to be worth its calls."""
    pool = [row for row in rows[1:-1] if row["policy"] == "best-fixed-on-dev"]
    if not pool:
        return ""
    gain = rows[-1]["test_score"] - pool[0]["test_score"]
    return f", and {_verdict(gain)} the best pool prompt on dev ({pool[0]['test_score']:.3f}, {gain:+.3f})"


def _verdict(gain: float) -> str:
    return "better than" if gain > 0 else "the same as" if gain == 0 else "worse than"


def report_markdown(rows: list[dict[str, Any]], plan: OptimizePlan, usage: Usage, text: str,
                    command: str, examples: list[dict[str, Any]], classification: bool = True) -> str:
    """``report.md``: what was searched, the comparison on held-out inputs, what the model
    answered on a few of them, the winner, the cost."""
    winner = rows[-1]
    manual = rows[0]
    gain = winner["test_score"] - manual["test_score"]
    extra = [key for key in ("f1",) if key in winner]
    table = policy_table(rows, notes=True)
    for key in extra:  # generation tasks: token F1 beside the task's metric
        table.headers.insert(2, f"test {key}")
        table.align.insert(2, "right")
        for cells, row in zip(table.rows, rows, strict=True):
            cells.insert(2, f"{row[key]:.3f}")
    lines = [
        f"# Optimized prompt for {plan.task}",
        "",
        f"Method: **{plan.method}**: {plan.reason}.",
        "",
    ]
    if plan.search_space:
        lines += [f"Search space: {describe_search_space(plan.search_space, plan.train_reward)}."
                  + (f" Dev ties (prompts within {plan.tie_break.within} dev input(s) of the best, "
                     f"up to {plan.tie_break.prompts}) rescored on up to {plan.tie_break.inputs} held-out "
                     "inputs no candidate shows, charged to the budget."
                     if plan.tie_break else ""), ""]
    lines += [
        f"Held-out test: the first {plan.n_test} test inputs, metric `{winner['metric']}`. "
        f"The winner scores {winner['test_score']:.3f}, {_verdict(gain)} the manual prompt "
        f"({manual['test_score']:.3f}, {gain:+.3f}){_against_the_pool(rows)}. It was chosen on "
        "train/dev only; the test inputs were scored once, after the choice.",
        "",
        table.to_markdown(),
        "",
        "`LLM calls` = calls requested for the search (or the dev scores of the pool) plus the "
        "held-out evaluation, whether the response cache answered them or not; `distinct pairs` = "
        "the distinct (prompt, input) pairs among them.",
        "",
        f"![test score vs LLM calls]({PLOT})",
        "",
        f"Whole run: {usage.calls} LLM calls requested, {usage.cache_hits} answered by the cache, "
        f"{usage.model_calls} by the model, {usage.wall_s:.1f} s. Each row counts what its policy "
        "would cost alone; pairs rows share (a winner that is the manual prompt or the best pool "
        "prompt is scored on the held-out inputs once) were requested once, so the whole run can "
        "be less than the rows' sum.",
        "",
    ]
    lines += answers_section(examples, classification)
    lines += [
        f"## The prompt (`{PROMPT_TEXT}`; parts and usage in `{PROMPT_JSON}`)",
        "",
        "```",
        text,
        "```",
        "",
        f"Fill it: {FILL_NOTE}.",
        "",
        "## Reproduce",
        "",
        "```bash",
        command,
        "```",
        "",
    ]
    return "\n".join(lines)


NO_ROOM = "(too long for the model)"
"""An answer cell whose prompt and input did not fit the model's context."""


def _cell(text: str, width: int = 90) -> str:
    """Table-safe text: one line, pipes escaped, cut at ``width`` characters."""
    flat = " ".join(str(text).split()).replace("|", "\\|")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def answers_section(examples: list[dict[str, Any]], classification: bool = True) -> list[str]:
    """What the model answered on the first held-out inputs under the manual prompt and the
    winner (a classification answer with its probability; a generation task's references
    with every accepted answer), so a score has a face."""
    if not examples:
        return []
    names = list(examples[0]["answers"])
    header = ["#", "input", "reference", *(f"{n} answer" for n in names)]
    lines = [f"## What the model answered (the first {len(examples)} held-out inputs)", "",
             "| " + " | ".join(header) + " |", "|" + "|".join(["---:"] + ["---"] * (len(header) - 1)) + "|"]
    for i, example in enumerate(examples, 1):
        accepted = " / ".join(example.get("references") or [example["reference"]])
        cells = [str(i), _cell(example["input"]), _cell(accepted, 40)]
        for name in names:
            answer = example["answers"][name]
            mark = "✓" if answer["score"] >= 1.0 or (answer["score"] > 0 and not classification) else "✗"
            prob = f" (p={answer['probability']:.2f})" if "probability" in answer else ""
            said = _cell(answer["answer"], 50) if answer.get("fits", True) else NO_ROOM
            cells.append(f"{mark} {said}{prob}")
        lines.append("| " + " | ".join(cells) + " |")
    answered = [a for example in examples for a in example["answers"].values()]
    if classification:
        legend = ("✓/✗: the label is right / wrong. p: the answer's probability among the "
                  "label words.")
    else:
        legend = "✓/✗: the answer earns some / no credit under the metric on that input."
    if any("references" in example for example in examples):
        legend += " A reference cell lists every answer the metric accepts, separated by /."
    if any(not a.get("fits", True) for a in answered):
        legend += (f" {NO_ROOM}: that input with the prompt exceeds the model's context; the pair "
                   "is scored as no answer.")
    lines += ["", legend, ""]
    return lines


def write_run_files(out: Path, *, winner: Any, task: Any, rows: list[dict[str, Any]],
                    plan: OptimizePlan, usage: Usage, config: dict[str, Any],
                    examples: list[dict[str, Any]] | None = None,
                    curve: list[tuple[int, float]] | None = None) -> str:
    """Write every output file of a run into ``out``; returns the ``best_prompt.txt`` text."""
    from agents.checkpoint import package_version

    out.mkdir(parents=True, exist_ok=True)
    text, _ = render_with_placeholders(winner, task)
    save_text(text if text.endswith("\n") else text + "\n", out / PROMPT_TEXT)
    description = prompt_description(winner, task)
    description["scores"] = {r["policy"]: r["test_score"] for r in rows}
    description["prompt_object"] = winner.to_json()
    save_json(description, out / PROMPT_JSON)
    save_json(rows, out / RESULTS)
    clean = redact(config)
    command = reproduce_command(clean, out)
    save_json({**clean, "plan": plan.as_dict(), "usage": usage.as_dict(),
               "best_dev_curve": [list(point) for point in curve or []],
               "package_version": package_version(), "command": command}, out / CONFIG)
    plot_score_vs_cost(rows, out / PLOT)
    save_text(report_markdown(rows, plan, usage, text, command, examples or [],
                              classification=task.kind == "classification"), out / REPORT)
    return text
