"""What every reader shares: the result type, UTF-8 decoding and field checks.

The checks raise :class:`~prompt_env.errors.TaskFormatError` naming the file
and line (or example) at fault.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prompt_env.errors import DataNotFoundError, TaskFormatError
from prompt_env.tasks.base import Example, TaskKind


@dataclasses.dataclass
class LoadedExamples:
    """Examples read from one file, with what the reader learnt about the task."""

    examples: list[Example]
    kind: TaskKind
    family: str
    input_fields: tuple[str, ...]
    metric: str
    label_names: tuple[str, ...] | None = None


def read_text(path: str | Path) -> str:
    """The file's text as UTF-8 (a BOM is dropped); bad bytes raise TaskFormatError."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise TaskFormatError(
            f"{path} line {line}: not valid UTF-8 at byte offset {error.start} "
            f"({raw[error.start:error.start + 1]!r}); re-save the file as UTF-8"
        ) from None


def read_json_document(path: Path) -> Any:
    """The whole file parsed as one JSON document (a task.json or instruction-induction file)."""
    text = read_text(path)
    if not text.strip():
        raise TaskFormatError(f"{path}: the file is empty; it needs a JSON object with 'examples'")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise TaskFormatError(
            f"{path} line {error.lineno}: invalid JSON ({error.msg} at column {error.colno})"
        ) from None
    except RecursionError:
        raise TaskFormatError(f"{path}: JSON nested too deeply to read") from None


def parse_label(value: str, where: str, column: str, label_names: Sequence[str] | None) -> int:
    """A class index from an integer text, or from one of ``label_names``; checked for range."""
    text = value.strip()
    try:
        label = int(text)
    except ValueError:
        if label_names is not None and text in label_names:
            return list(label_names).index(text)
        raise TaskFormatError(
            f"{where}: label {text!r} in column {column!r} is not an integer"
            + (f" or one of {list(label_names)}" if label_names else "")
        ) from None
    if label < 0 or (label_names is not None and label >= len(label_names)):
        allowed = f"0..{len(label_names) - 1}" if label_names else "0 or more"
        raise TaskFormatError(f"{where}: label {label} in column {column!r} is out of range ({allowed})")
    return label


def finish_labels(examples: list[Example], label_names: Sequence[str] | None) -> tuple[str, ...]:
    """The label names given, or ``"0".."k"`` up to the largest label seen."""
    if label_names is not None:
        return tuple(label_names)
    top = max(e.label or 0 for e in examples)
    return tuple(str(i) for i in range(top + 1))


def string_field(record: Mapping[str, Any], key: str, where: str) -> str:
    """``record[key]`` as text (numbers are accepted and written out)."""
    if key not in record:
        raise TaskFormatError(f"{where}: missing field {key!r} (fields present: {sorted(record)})")
    value = record[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise TaskFormatError(f"{where}: field {key!r} should be a string, found {type(value).__name__}")
    return value


def string_list_field(record: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    """``record[key]`` (a string or a list of them) as unique references, order kept."""
    if key not in record:
        raise TaskFormatError(f"{where}: missing field {key!r} (fields present: {sorted(record)})")
    value = record[key]
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
    ):
        raise TaskFormatError(f"{where}: field {key!r} should be a string or a list of strings")
    refs = tuple(dict.fromkeys(str(v) for v in value))  # unique, order kept
    if not refs:
        raise TaskFormatError(f"{where}: field {key!r} is an empty list; give at least one answer")
    return refs
