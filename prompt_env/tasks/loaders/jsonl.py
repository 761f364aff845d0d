"""JSON-lines files: classification, QA, summarization, BIG-bench exports or named fields."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from prompt_env.errors import TaskFormatError
from prompt_env.tasks.loaders.bigbench import bigbench_examples
from prompt_env.tasks.loaders.common import LoadedExamples, read_text
from prompt_env.tasks.loaders.records import (
    FORMATS,
    detect_format,
    examples_from_records,
    format_of,
    record_options,
)

JSONL_FORMATS = FORMATS


def _json_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    text = read_text(path)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise TaskFormatError(
                f"{path} line {number}: invalid JSON ({error.msg} at column {error.colno})"
            ) from None
        except RecursionError:
            raise TaskFormatError(f"{path} line {number}: JSON nested too deeply to read") from None
        if not isinstance(record, dict):
            raise TaskFormatError(
                f"{path} line {number}: expected a JSON object, found {type(record).__name__}"
            )
        yield number, record


def detect_jsonl_format(record: Mapping[str, Any]) -> str:
    """Guess the JSONL format from the fields of its first record."""
    return detect_format(record)


def read_jsonl(
    path: str | Path,
    *,
    format: str | None = None,
    input_fields: Sequence[str] | str | None = None,
    label_field: str = "label",
    reference_field: str | None = None,
    label_names: Sequence[str] | str | None = None,
    label_order: str = "sorted",
    input_field: Sequence[str] | str | None = None,
) -> LoadedExamples:
    """Examples from a JSON-lines file, one object per line.

    ``format`` is one of :data:`JSONL_FORMATS` (guessed from the first record
    when omitted). Defaults per format: classification reads
    ``input_fields=("text",)`` (or ``sentence``) and ``label`` (integers, or
    strings that become the label names: see
    :func:`~prompt_env.tasks.loaders.common.resolve_labels`); qa reads
    ``context``, ``question`` and references from ``answers``; summarization
    reads ``document`` and ``summary``; bigbench reads ``input`` with
    ``target`` (a string or list of aliases) or ``target_scores``;
    generation needs ``input_fields`` and ``reference_field``.
    ``input_field`` is another name for ``input_fields`` (a name, a list, or
    names separated by commas).
    """
    path = Path(path)
    options = record_options({"input_fields": input_field or input_fields}, str(path))
    numbered = list(_json_records(path))
    if not numbered:
        raise TaskFormatError(f"{path}: the file is empty; it needs one JSON object per line")
    records = [(f"{path} line {n}", f"{path}:{n}", record) for n, record in numbered]
    format = format or format_of(records[0], label_field, reference_field)
    if format == "bigbench":
        return bigbench_examples(path, numbered)
    return examples_from_records(str(path), records, format=format, label_field=label_field,
                                 reference_field=reference_field, label_names=label_names,
                                 label_order=label_order, **options)
