"""Which registered envs serve a task given by catalog name or by the path of a user's data.

A catalog task has its own ids (``PromptEnv/SST2-Select-v0``); a file or
directory is served by the ``PromptEnv/File-*`` ids with ``task=<path>``
(see :mod:`prompt_env.registration`). The benchmark harness and
``prompt-env optimize`` both call :func:`task_envs`, so a path works wherever
a task name does.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from prompt_env.errors import DataNotFoundError
from prompt_env.registration import FILE_TASK, env_id
from prompt_env.tasks.catalog import TASK_CATALOG, list_tasks


@dataclasses.dataclass(frozen=True)
class TaskEnvs:
    """The env ids of one task and the ``gym.make`` kwargs that name it."""

    select_id: str
    edit_id: str
    kwargs: dict[str, Any]
    """``{}`` for a catalog task (its ids name it), ``{"task": <absolute path>}`` for a path."""
    is_path: bool
    compose_id: str | None = None
    """The Compose env id: catalog classification tasks and paths (whose env checks the kind)."""


def task_envs(task: str | os.PathLike[str]) -> TaskEnvs:
    """The Select, Edit and Compose env ids of a catalog task name or of a file/directory path."""
    name = os.fspath(task)
    if name in TASK_CATALOG:
        entry = TASK_CATALOG[name]
        compose = env_id(entry.env_name, "Compose") if entry.kind == "classification" else None
        return TaskEnvs(env_id(entry.env_name, "Select"), env_id(entry.env_name, "Edit"), {}, False,
                        compose)
    path = Path(name).expanduser()
    if not name.strip() or not path.exists():
        raise DataNotFoundError(
            f"{name!r} is neither a catalog task ({', '.join(list_tasks()[:6])}, ...) nor an "
            "existing file or directory; give the path of a .jsonl/.csv/.tsv file, a directory "
            "with train/dev/test files, or a saved Hugging Face datasets directory"
        )
    return TaskEnvs(env_id(FILE_TASK, "Select"), env_id(FILE_TASK, "Edit"),
                    {"task": str(path.resolve())}, True, env_id(FILE_TASK, "Compose"))


def task_label(task: str | os.PathLike[str]) -> str:
    """A short name for tables: the catalog name, or the file's stem / the directory's name."""
    name = os.fspath(task)
    if name in TASK_CATALOG:
        return name
    path = Path(name)
    return path.stem if path.suffix else path.name


PATH_KEYS = ("input_field", "label_field", "label_names", "label_order", "reference_field",
             "format", "delimiter", "split_seed")
"""Keys of a harness ``[[tasks]]`` table that say how to read a path (they join ``task_options``)."""


def task_entry(table: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    """(name, path or None, task options) of one ``[[tasks]]`` table of a harness config.

    A table names a catalog task (``name = "sst2"``) or a user's data (``path = "my.jsonl"``,
    optionally with ``name`` for tables and the reading options of :data:`PATH_KEYS` as keys);
    a ``name`` that is an existing path counts as one. Raises ValueError naming what is wrong.
    """
    unknown_path = table.get("path")
    name = table.get("name")
    if unknown_path is None and isinstance(name, str) and name not in TASK_CATALOG and Path(name).exists():
        unknown_path = name
    options = dict(table.get("task_options", {}))
    options.update({key: table[key] for key in PATH_KEYS if key in table})
    if unknown_path is None:
        if name not in TASK_CATALOG:
            raise ValueError(f"unknown task {name!r}: a [[tasks]] table needs name = <a catalog task: "
                             f"{', '.join(TASK_CATALOG)}> or path = <a file or directory>")
        return str(name), None, options
    path = str(unknown_path)
    task_envs(path)  # a missing path is a DataNotFoundError naming it
    return str(name) if name and name != path else task_label(path), path, options
