"""Built-in tasks by name, and tasks from a user's own files.

``load_task(name_or_path, **options)`` accepts:

- a **catalog name** (see :func:`list_tasks`). ``bbc-topic`` and
  ``bbc-headline`` work offline with nothing but this package's
  dependencies; the others read a data directory laid out like the
  project's shared data (``data_dir=`` option, else ``$PROMPT_ENV_DATA``);
- a **file** (``.tsv``, ``.csv``, ``.jsonl``, ``.json``), split
  deterministically into train/dev/test;
- a **directory** holding ``train``, ``dev`` (or ``validation``) and
  ``test`` files in one of those formats, or a Hugging Face ``datasets``
  directory written by ``save_to_disk`` (its train/validation/test splits, or
  one split cut like a file; needs the ``hf`` extra, never downloads).

Options of a task from a path: ``input_field`` (one name, a list, or names
separated by commas), ``label_field``, ``label_names`` (names of the integer
labels 0..K-1, in order), ``label_order`` (``"sorted"``, the default, or
``"first-seen"``: how label names read from string labels are ordered),
``reference_field`` and ``format`` (generation tasks), ``delimiter`` (CSV/TSV)
and ``split_seed``. String labels (``{"text": ..., "label": "positive"}``)
are the label names, and the names are the default verbalizer; integer labels
without ``label_names`` load with a :class:`~prompt_env.errors.UnnamedLabelsWarning`
that says how to name them.

Split sizes (all splits are deterministic, seeded by ``split_seed``, default 0):

=================== ============================== =========================
task                train / dev / test             notes
=================== ============================== =========================
sst2, agnews        16 per class / 16 per class /   ``few_shot_seed`` picks
                    full test (1,821 / 7,600)      ``16-shot-seed{N}`` (42)
squad               32 / 32 / 136                  of 200 rows
xsum                16 / 24 / 60                   of 100; documents cut to
                                                   ``max_words`` (300) words
object-counting     32 / 32 / 136                  of 200 rows
ii-<name>           induce file / half / half      of the execute file
bbc-topic           25 (5 per class) / 40 / 200    ``n_dev``, ``n_test``
bbc-headline        16 / 50 / 200                  ``n_dev``, ``n_test``
a file              min(32, n/4) / min(64, n/4) /  rest
=================== ============================== =========================

Loaded tasks are cached per (name, options) in this process; every call
returns a fresh :class:`Task` object whose split lists may be changed
freely (the examples themselves are immutable).

The modules behind it: :mod:`~prompt_env.tasks.builtin` (the catalog and
its readers), :mod:`~prompt_env.tasks.assembly` (splits, prompt pool, a
user's paths), :mod:`~prompt_env.tasks.loaders` (file formats) and
:mod:`~prompt_env.tasks.pools` (prompt pools).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

from prompt_env.errors import DataNotFoundError, UnknownTaskError
from prompt_env.tasks.assembly import load_directory, load_file
from prompt_env.tasks.base import Task
from prompt_env.tasks.builtin import (
    AGNEWS_LABELS,
    BBC_FOLDERS,
    BBC_LABELS,
    DATA_ENV_VAR,
    FEW_SHOT_SEEDS,
    INDUCTION_TASKS,
    SST2_LABELS,
    TASK_CATALOG,
    CatalogEntry,
    bbc_root,
    catalog_entries,
    list_tasks,
    load_builtin,
    resolve_data_dir,
)

__all__ = [
    "AGNEWS_LABELS",
    "BBC_FOLDERS",
    "BBC_LABELS",
    "DATA_ENV_VAR",
    "FEW_SHOT_SEEDS",
    "INDUCTION_TASKS",
    "SST2_LABELS",
    "TASK_CATALOG",
    "CatalogEntry",
    "bbc_root",
    "catalog_entries",
    "clear_cache",
    "list_tasks",
    "load_task",
    "resolve_data_dir",
]

_CACHE: dict[str, Task] = {}


def _cache_key(name: str, options: dict[str, Any]) -> str:
    return json.dumps([name, options], sort_keys=True, default=str)


def _fresh(task: Task) -> Task:
    return dataclasses.replace(task, splits={k: list(v) for k, v in task.splits.items()})


def load_task(name_or_path: str | os.PathLike[str], **options: Any) -> Task:
    """A task by catalog name, file path or directory path.

    Catalog options: ``data_dir`` (else ``$PROMPT_ENV_DATA``) for tasks that
    read the shared data layout; ``few_shot_seed`` (sst2, agnews: 13, 21,
    42, 87 or 100; default 42); ``split_seed`` (default 0); ``n_dev`` and
    ``n_test`` (bbc-*); ``max_words`` (xsum). Options of a file or directory
    (``input_field``, ``label_field``, ``label_names``, ``label_order``,
    ``reference_field``, ``format``, ``delimiter``, ``split_seed``) are listed in
    the module docstring; ``data_dir`` is ignored for paths.
    """
    name = os.fspath(name_or_path)
    if name in TASK_CATALOG:
        key_options = dict(options)
        key_options.pop("data_dir", None)
        if TASK_CATALOG[name].needs_data_dir:
            key_options["data_dir"] = str(resolve_data_dir(options.get("data_dir"), name).resolve())
        key = _cache_key(name, key_options)
        if key not in _CACHE:
            _CACHE[key] = load_builtin(name, key_options)
        return _fresh(_CACHE[key])
    path = Path(name).expanduser()
    if path.exists() and name.strip():
        options = {k: v for k, v in options.items() if k != "data_dir"}
        key = _cache_key(str(path.resolve()), {**options, "_mtime": path.stat().st_mtime_ns})
        if key not in _CACHE:
            if path.is_dir():
                _CACHE[key] = load_directory(path, **options)
            else:
                _CACHE[key] = load_file(path, **options)
        return _fresh(_CACHE[key])
    if re.search(r"[\\/]|\.(tsv|csv|jsonl|json|txt)$", name):
        raise DataNotFoundError(f"{name}: no such file or directory")
    raise UnknownTaskError(
        f"unknown task {name!r}; known tasks: {', '.join(list_tasks())}; "
        "or pass the path of a .tsv/.csv/.jsonl/.json file or a directory with train/dev/test files"
    )


def clear_cache() -> None:
    """Forget cached tasks (after changing files on disk, or in tests)."""
    _CACHE.clear()
