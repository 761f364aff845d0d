"""One input of a task with its target: the data a prompt renders and a metric scores."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class Example:
    """One input with its target.

    ``fields`` holds the input text by field name (``{"sentence": ...}`` or
    ``{"context": ..., "question": ...}``); templates refer to these names.
    Classification examples carry ``label`` (an index into the task's label
    names); generation examples carry ``references`` (every acceptable answer).
    """

    fields: Mapping[str, str]
    label: int | None = None
    references: tuple[str, ...] = ()
    source: str = ""
    """Where the example came from (``file:line``), for error messages."""

    @property
    def text(self) -> str:
        """All input fields joined, for encoders and display."""
        return "\n".join(str(v) for v in self.fields.values())

    @property
    def reference(self) -> str:
        """The first reference (generation) or empty string."""
        return self.references[0] if self.references else ""
