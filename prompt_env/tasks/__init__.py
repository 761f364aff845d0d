"""Tasks: examples in train/dev/test splits, a kind, a metric and a prompt pool.

``load_task`` (:mod:`~prompt_env.tasks.catalog`) is the entry point. Behind
it: :mod:`~prompt_env.tasks.builtin` (the built-in catalog),
:mod:`~prompt_env.tasks.assembly` (splits and a user's own paths),
:mod:`~prompt_env.tasks.loaders` (file formats) and
:mod:`~prompt_env.tasks.pools` (prompt pools).
"""

from prompt_env.tasks.base import Example, Task
from prompt_env.tasks.catalog import CatalogEntry, catalog_entries, list_tasks, load_task

__all__ = ["CatalogEntry", "Example", "Task", "catalog_entries", "list_tasks", "load_task"]
