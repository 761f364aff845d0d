"""Every env id in one loop: catalog tasks x env kinds -> ``gymnasium.register``.

Ids are ``PromptEnv/<Task>-<Kind>[-Tabular]-v0``, e.g. ``PromptEnv/SST2-Select-v0``.
Registration reads no data; the task loads when an env is made. Kinds in
:data:`CLASSIFICATION_KINDS` (``Compose``) are registered only for classification tasks
(the catalog knows each task's kind) and for the file task, whose env checks when made.

A task from a user's own file or directory has its own ids,
``PromptEnv/File-<Kind>[-Tabular]-v0``, which need ``task=<path>``:
``gym.make("PromptEnv/File-Select-v0", task="my.jsonl", task_options={"label_names": [...]})``.
"""

from __future__ import annotations

import gymnasium as gym

from prompt_env.tasks import catalog_entries

NAMESPACE = "PromptEnv"

ENV_KINDS = {
    # kind suffix: (entry point, extra kwargs, vector entry point)
    "Select": ("prompt_env.envs.select:PromptSelectEnv", {}, "prompt_env.envs.vector:BatchedPromptSelectVectorEnv"),
    "Select-Tabular": ("prompt_env.envs.select:PromptSelectEnv", {"tabular": True},
                       "prompt_env.envs.vector:BatchedPromptSelectVectorEnv"),
    "Edit": ("prompt_env.envs.edit:PromptEditEnv", {}, None),
    "Edit-Tabular": ("prompt_env.envs.edit:PromptEditEnv", {"tabular": True}, None),
    "Compose": ("prompt_env.envs.compose:PromptComposeEnv", {}, None),
}

CLASSIFICATION_KINDS = frozenset({"Compose"})
"""Env kinds that exist only for classification tasks."""


FILE_TASK = "File"
"""The ``<Task>`` of the env ids of a user's own file or directory (``task=<path>`` required)."""


def env_id(task_env_name: str, kind: str, version: int = 0) -> str:
    return f"{NAMESPACE}/{task_env_name}-{kind}-v{version}"


def register_all() -> list[str]:
    """Register every catalog task, and the file task, under every env kind; return the ids."""
    ids = []
    tasks = [(e.env_name, e.name, e.kind) for e in catalog_entries()] + [(FILE_TASK, "", None)]
    for task_env_name, task, task_kind in tasks:
        for kind, (entry_point, extra, vector_entry_point) in ENV_KINDS.items():
            if kind in CLASSIFICATION_KINDS and task_kind not in ("classification", None):
                continue
            name = env_id(task_env_name, kind)
            if name not in gym.registry:
                gym.register(
                    id=name,
                    entry_point=entry_point,
                    vector_entry_point=vector_entry_point,
                    kwargs={"task": task, **extra},
                )
            ids.append(name)
    return ids


def registered_ids() -> list[str]:
    return sorted(i for i in gym.registry if i.startswith(f"{NAMESPACE}/"))
