"""What a task is: examples in splits, a kind, a metric and a prompt pool."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal

from prompt_env.errors import TaskFormatError
from prompt_env.tasks.example import Example

if TYPE_CHECKING:
    from prompt_env.prompts import PromptPool

TaskKind = Literal["classification", "generation"]
SPLITS = ("train", "dev", "test")
__all__ = ["SPLITS", "Example", "Task", "TaskKind"]


@dataclasses.dataclass
class Task:
    """A task: examples (train/dev/test), its kind, default metric and prompt pool."""

    name: str
    kind: TaskKind
    family: str
    """classification, qa, summarization, translation or instruction."""
    splits: dict[str, list[Example]]
    input_fields: tuple[str, ...]
    metric: str
    """Default metric name in :mod:`prompt_env.rewards`."""
    prompt_pool: PromptPool
    label_names: tuple[str, ...] | None = None
    description: str = ""
    max_new_tokens: int | None = None
    """Default generation length for this task (None: the family's default in scoring)."""

    def split(self, name: str) -> list[Example]:
        if name not in self.splits:
            raise TaskFormatError(
                f"task {self.name!r} has no split {name!r}; it has {sorted(self.splits)}"
            )
        return self.splits[name]

    @property
    def num_labels(self) -> int:
        return len(self.label_names or ())

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "family": self.family,
            "metric": self.metric,
            "sizes": {k: len(v) for k, v in self.splits.items()},
            "labels": list(self.label_names or []),
            "prompts": len(self.prompt_pool.candidates),
        }
