"""Tasks: examples in train/dev/test splits, a kind, a metric and a prompt pool."""

from prompt_env.tasks.base import Example, Task
from prompt_env.tasks.catalog import CatalogEntry, catalog_entries, list_tasks, load_task

__all__ = ["CatalogEntry", "Example", "Task", "catalog_entries", "list_tasks", "load_task"]
