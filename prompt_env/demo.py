"""`make demo`: the main job on the embedded default model."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def run_llm_demo(n: int = 12) -> None:
    """Score real BBC articles under two prompts with the default model and print a table."""
    from prompt_env.llm import load_llm
    from prompt_env.scoring import evaluate
    from prompt_env.tasks import load_task

    console = Console()
    task = load_task("bbc-topic")
    llm = load_llm("default")
    examples = task.split("test")[:n]
    prompts = [task.prompt_pool.manual, task.prompt_pool.candidates[5]]
    table = Table(title=f"{n} real BBC News openings scored by {llm.name} under two prompts")
    table.add_column("article (opening)")
    table.add_column("gold")
    for prompt in prompts:
        table.add_column(f"prompt '{prompt.name}'")
    outcomes = [evaluate(llm, task, [(prompt, e) for e in examples]) for prompt in prompts]
    for k, example in enumerate(examples):
        cells = [example.text[:60] + "…", outcomes[0][k].reference]
        for per_prompt in outcomes:
            o = per_prompt[k]
            cells.append(f"{'✓' if o.correct else '✗'} {o.prediction}")
        table.add_row(*cells)
    accuracies = [sum(o.correct for o in per) / len(per) for per in outcomes]
    table.add_row("accuracy", "", *[f"{a:.2f}" for a in accuracies])
    console.print(table)
    for prompt in prompts:
        console.print(f"[bold]{prompt.name}[/]: {prompt.instruction!r}")
    console.print(f"LLM stats: {llm.stats.as_dict()}")
