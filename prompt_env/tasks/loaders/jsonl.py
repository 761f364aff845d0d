"""JSON-lines files: classification, QA, summarization, BIG-bench exports or named fields."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from prompt_env.errors import TaskFormatError
from prompt_env.tasks.base import Example
from prompt_env.tasks.loaders.bigbench import bigbench_examples
from prompt_env.tasks.loaders.common import (
    LoadedExamples,
    finish_labels,
    parse_label,
    read_text,
    string_field,
    string_list_field,
)

JSONL_FORMATS = ("classification", "qa", "summarization", "bigbench", "generation")


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
    keys = set(record)
    if {"context", "question", "answers"} <= keys:
        return "qa"
    if {"document", "summary"} <= keys:
        return "summarization"
    if "input" in keys and ("target" in keys or "target_scores" in keys):
        return "bigbench"
    if "label" in keys:
        return "classification"
    raise TaskFormatError(
        f"cannot tell the format from fields {sorted(keys)}; expected context/question/answers "
        "(qa), document/summary (summarization), input/target (BIG-bench) or text/label "
        "(classification); pass format= and the field names"
    )


def read_jsonl(
    path: str | Path,
    *,
    format: str | None = None,
    input_fields: Sequence[str] | None = None,
    label_field: str = "label",
    reference_field: str | None = None,
    label_names: Sequence[str] | None = None,
) -> LoadedExamples:
    """Examples from a JSON-lines file, one object per line.

    ``format`` is one of :data:`JSONL_FORMATS` (guessed from the first record
    when omitted). Defaults per format: classification reads
    ``input_fields=("text",)`` (or ``sentence``) and ``label``; qa reads
    ``context``, ``question`` and references from ``answers``; summarization
    reads ``document`` and ``summary``; bigbench reads ``input`` with
    ``target`` (a string or list of aliases) or ``target_scores``;
    generation needs ``input_fields`` and ``reference_field``.
    """
    path = Path(path)
    records = list(_json_records(path))
    if not records:
        raise TaskFormatError(f"{path}: the file is empty; it needs one JSON object per line")
    if format is None:
        try:
            format = detect_jsonl_format(records[0][1])
        except TaskFormatError as error:
            raise TaskFormatError(f"{path} line {records[0][0]}: {error}") from None
    if format == "bigbench":
        return bigbench_examples(path, records)
    if format == "classification":
        return _classification(path, records, input_fields, label_field, label_names)
    defaults = {
        "qa": (("context", "question"), "answers", "qa", "f1"),
        "summarization": (("document",), "summary", "summarization", "rouge_l"),
        "generation": ((), None, "instruction", "exact_match"),
    }
    if format not in defaults:
        raise TaskFormatError(f"{path}: unknown format {format!r}; use one of {JSONL_FORMATS}")
    default_fields, default_ref, family, metric = defaults[format]
    fields = tuple(input_fields or default_fields)
    ref_field = reference_field or default_ref
    if not fields or ref_field is None:
        raise TaskFormatError(
            f"{path}: format 'generation' needs input_fields= and reference_field= "
            f"(fields present: {sorted(records[0][1])})"
        )
    examples = []
    for number, record in records:
        where = f"{path} line {number}"
        examples.append(
            Example(
                fields={f: string_field(record, f, where) for f in fields},
                references=string_list_field(record, ref_field, where),
                source=f"{path}:{number}",
            )
        )
    return LoadedExamples(examples, "generation", family, fields, metric)


def _classification(
    path: Path,
    records: Sequence[tuple[int, dict[str, Any]]],
    input_fields: Sequence[str] | None,
    label_field: str,
    label_names: Sequence[str] | None,
) -> LoadedExamples:
    first = records[0][1]
    fields = tuple(input_fields or (("sentence",) if "sentence" in first else ("text",)))
    examples = []
    for number, record in records:
        where = f"{path} line {number}"
        if label_field not in record:
            raise TaskFormatError(f"{where}: missing field {label_field!r} (fields present: {sorted(record)})")
        label = parse_label(str(record[label_field]), where, label_field, label_names)
        examples.append(
            Example(
                fields={f: string_field(record, f, where) for f in fields},
                label=label,
                source=f"{path}:{number}",
            )
        )
    return LoadedExamples(
        examples, "classification", "classification", fields, "accuracy",
        finish_labels(examples, label_names),
    )
