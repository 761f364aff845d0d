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
    label_source: str = "given"
    """Where the label names came from: ``"given"`` (``label_names`` or the format),
    ``"integers"`` (``"0".."K-1"``: integer labels without names) or ``"strings"`` (the labels)."""


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


LABEL_ORDERS = ("sorted", "first-seen")
"""How label names read from string labels are ordered: alphabetically (``sorted``, the
default: the same order whatever the row order or split) or as first met in the file."""

MAX_UNNAMED_LABEL = 1000
"""Largest integer label accepted without ``label_names`` (a bigger one is not a class index)."""


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
            + (f" or one of label_names {list(label_names)}" if label_names else "")
        ) from None
    if label < 0:
        raise TaskFormatError(f"{where}: label {label} in column {column!r} is negative; "
                              "class indices run 0..K-1")
    if label_names is not None and label >= len(label_names):
        shown = ", ".join(map(str, label_names[:8])) + (", ..." if len(label_names) > 8 else "")
        raise TaskFormatError(
            f"{where}: label {label} in column {column!r} has no name: label_names (--label-names) "
            f"lists {len(label_names)} ({shown}) for labels "
            f"0..{len(label_names) - 1}; give one name per label, in label order"
        )
    if label_names is None and label > MAX_UNNAMED_LABEL:
        raise TaskFormatError(
            f"{where}: label {label} in column {column!r} is too large for a class index; "
            "use labels 0..K-1 or label names"
        )
    return label


def label_text(value: Any, where: str, column: str) -> str:
    """A label cell or JSON value as text: strings, integers (``1.0`` counts as ``1``), booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, int, float)):
        text = str(value).strip()
        if text:
            return text
        raise TaskFormatError(f"{where}: the label in field {column!r} is empty; give every example a label")
    raise TaskFormatError(
        f"{where}: the label in field {column!r} should be a string or an integer, "
        f"found {type(value).__name__}"
    )


def _is_integer(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def check_label_names(label_names: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """``label_names`` as a tuple of distinct non-empty strings (a comma-separated string is split)."""
    if label_names is None:
        return None
    if isinstance(label_names, str):
        label_names = [name.strip() for name in label_names.split(",")]
    names = tuple(label_names)
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise TaskFormatError(
            f"label_names must be a non-empty list of non-empty strings, got {list(names)!r}"
        )
    if len(set(names)) != len(names):
        raise TaskFormatError(f"label_names has repeated names: {list(names)}")
    return names


def resolve_labels(
    raw: Sequence[tuple[str, Any]],
    column: str,
    label_names: Sequence[str] | str | None = None,
    label_order: str = "sorted",
) -> tuple[list[int], tuple[str, ...], str]:
    """Class indices, label names and where the names came from, for raw ``(where, value)`` labels.

    - ``label_names`` given: every label is an index ``0..K-1`` or one of the names
      (``source="given"``);
    - every label an integer: the names are ``"0".."K-1"`` (``source="integers"``; the task
      loaders warn that a model cannot be asked to answer with digits);
    - otherwise the labels are names, ordered by ``label_order`` (``"sorted"`` or
      ``"first-seen"``; ``source="strings"``).
    """
    if label_order not in LABEL_ORDERS:
        raise TaskFormatError(f"label_order must be one of {LABEL_ORDERS}, got {label_order!r}")
    names = check_label_names(label_names)
    texts = [(where, label_text(value, where, column)) for where, value in raw]
    if names is not None:
        return [parse_label(text, where, column, names) for where, text in texts], names, "given"
    if all(_is_integer(text) for _, text in texts):
        labels = [parse_label(text, where, column, None) for where, text in texts]
        return labels, tuple(str(i) for i in range(max(labels, default=0) + 1)), "integers"
    seen = list(dict.fromkeys(text for _, text in texts))
    ordered = tuple(sorted(seen) if label_order == "sorted" else seen)
    index = {name: i for i, name in enumerate(ordered)}
    return [index[text] for _, text in texts], ordered, "strings"


def string_field(record: Mapping[str, Any], key: str, where: str, hint: str = "") -> str:
    """``record[key]`` as text (numbers are accepted and written out); ``hint`` ends a missing-field error."""
    if key not in record:
        raise TaskFormatError(f"{where}: missing field {key!r} (fields present: {sorted(record)}){hint}")
    value = record[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise TaskFormatError(f"{where}: field {key!r} should be a string, found {type(value).__name__}")
    return value


def string_list_field(record: Mapping[str, Any], key: str, where: str,
                      hint: str = "") -> tuple[str, ...]:
    """``record[key]`` (a string or a list of them) as unique references, order kept."""
    if key not in record:
        raise TaskFormatError(f"{where}: missing field {key!r} (fields present: {sorted(record)}){hint}")
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
