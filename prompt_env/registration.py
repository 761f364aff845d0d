"""Every env id in one loop: catalog tasks x env kinds -> ``gymnasium.register``.

Ids are ``PromptEnv/<Task>-<Kind>[-Tabular]-v0``, e.g. ``PromptEnv/SST2-Select-v0``.
Registration reads no data; the task loads when an env is made.
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
}


def env_id(task_env_name: str, kind: str, version: int = 0) -> str:
    return f"{NAMESPACE}/{task_env_name}-{kind}-v{version}"


def register_all() -> list[str]:
    """Register every catalog task under every env kind; return the ids."""
    ids = []
    for entry in catalog_entries():
        for kind, (entry_point, extra, vector_entry_point) in ENV_KINDS.items():
            name = env_id(entry.env_name, kind)
            if name not in gym.registry:
                gym.register(
                    id=name,
                    entry_point=entry_point,
                    vector_entry_point=vector_entry_point,
                    kwargs={"task": entry.name, **extra},
                )
            ids.append(name)
    return ids


def registered_ids() -> list[str]:
    return sorted(i for i in gym.registry if i.startswith(f"{NAMESPACE}/"))
