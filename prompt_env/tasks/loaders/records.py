"""One path from records (a JSONL line, a CSV row, a ``datasets`` row) to task examples.

Every reader turns its rows into :data:`Record` triples (where the row is, for
errors; its ``source``; the row as a mapping of field name to value) and calls
:func:`examples_from_records` with the user's options, so a JSONL file, a CSV
with a header and a saved Hugging Face dataset take the same options and give
the same errors:

- ``format``: ``classification``, ``qa``, ``summarization``, ``generation`` (or
  ``bigbench``, JSONL only); guessed from the first record when omitted;
- ``input_field`` / ``input_fields``: the input field(s) (classification default:
  ``sentence`` if present, else ``text``);
- ``label_field`` (default ``label``), ``label_names``, ``label_order``
  (``sorted`` or ``first-seen``): see :func:`~prompt_env.tasks.loaders.common.resolve_labels`;
- ``reference_field``: the answer field of a generation task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prompt_env.errors import TaskFormatError
from prompt_env.tasks.base import Example
from prompt_env.tasks.loaders.common import (
    LoadedExamples,
    resolve_labels,
    string_field,
    string_list_field,
)

Record = tuple[str, str, Mapping[str, Any]]
"""(where, for error messages: ``"file line 3"``; source: ``"file:3"``; the row's fields)."""

FORMATS = ("classification", "qa", "summarization", "bigbench", "generation")

FIELD_HINT = "; name the right fields with input_field= / label_field= (--input-field / --label-field)"

_GENERATION = {
    # format: (default input fields, default reference field, family, metric)
    "qa": (("context", "question"), "answers", "qa", "f1"),
    "summarization": (("document",), "summary", "summarization", "rouge_l"),
    "generation": ((), None, "instruction", "exact_match"),
}

OPTION_ALIASES = {"input_field": "input_fields", "text_column": "input_fields",
                  "text_field": "input_fields", "label_column": "label_field"}
"""Other names accepted for the record options (the CSV readers' older names among them)."""

RECORD_OPTIONS = ("format", "input_fields", "label_field", "reference_field", "label_names",
                  "label_order")
PATH_OPTIONS = ("split_seed",)
"""Options of a task from a path besides the readers' (how it is cut into splits); the loaders
have taken them out before they read, and name them among the options accepted."""


def record_options(options: Mapping[str, Any], where: str,
                   extra: Sequence[str] = ()) -> dict[str, Any]:
    """The options with aliases resolved (``input_field="a,b"`` -> ``input_fields=("a", "b")``);
    an unknown option is a TaskFormatError naming ``where`` and the options accepted."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        name = OPTION_ALIASES.get(key, key)
        if name not in RECORD_OPTIONS and name not in extra:
            accepted = sorted({*RECORD_OPTIONS, *PATH_OPTIONS, *extra, "input_field"})
            raise TaskFormatError(f"{where}: unknown option {key!r}; accepted: {', '.join(accepted)}")
        if value is None:
            continue
        if name == "input_fields":
            value = (value.split(",") if isinstance(value, str) else list(value))
            value = tuple(str(v).strip() for v in value if str(v).strip())
            if not value:
                raise TaskFormatError(f"{where}: {key} names no field")
        out[name] = value
    return out


def detect_format(fields: Mapping[str, Any] | Sequence[str], label_field: str = "label",
                  reference_field: str | None = None) -> str:
    """Guess the format from the field names of the first record (or a header row)."""
    keys = set(fields)
    if reference_field is not None:
        return "generation"
    if {"context", "question", "answers"} <= keys:
        return "qa"
    if {"document", "summary"} <= keys:
        return "summarization"
    if "input" in keys and ("target" in keys or "target_scores" in keys):
        return "bigbench"
    if label_field in keys:
        return "classification"
    raise TaskFormatError(
        f"cannot tell the format from fields {sorted(keys)}: expected a {label_field!r} field "
        "(classification), context/question/answers (qa), document/summary (summarization) or "
        "input/target (BIG-bench); pass label_field= (--label-field) to name the label field, "
        "or format= with input_field= and reference_field="
    )


def format_of(record: Record, label_field: str = "label", reference_field: str | None = None) -> str:
    """:func:`detect_format` of one record, its error naming where the record is."""
    try:
        return detect_format(record[2], label_field, reference_field)
    except TaskFormatError as error:
        raise TaskFormatError(f"{record[0]}: {error}") from None


def examples_from_records(
    origin: str,
    records: Sequence[Record],
    *,
    format: str | None = None,
    input_fields: Sequence[str] | None = None,
    label_field: str = "label",
    reference_field: str | None = None,
    label_names: Sequence[str] | str | None = None,
    label_order: str = "sorted",
) -> LoadedExamples:
    """Examples of a classification or generation task from ``records`` (not BIG-bench).

    ``origin`` names the file or directory in errors about the whole set.
    """
    if not records:
        raise TaskFormatError(f"{origin}: no examples; it needs at least one")
    format = format or format_of(records[0], label_field, reference_field)
    if format == "classification":
        return _classification(records, input_fields, label_field, label_names, label_order)
    if format not in _GENERATION:
        raise TaskFormatError(f"{origin}: unknown format {format!r}; use one of {FORMATS}")
    default_fields, default_ref, family, metric = _GENERATION[format]
    fields = tuple(input_fields or default_fields)
    ref_field = reference_field or default_ref
    if not fields or ref_field is None:
        raise TaskFormatError(
            f"{origin}: format 'generation' needs input_field= and reference_field= "
            f"(fields present: {sorted(records[0][2])})"
        )
    examples = [
        Example(fields={f: string_field(data, f, where, FIELD_HINT) for f in fields},
                references=string_list_field(data, ref_field, where, FIELD_HINT), source=source)
        for where, source, data in records
    ]
    return LoadedExamples(examples, "generation", family, fields, metric)


def _classification(records: Sequence[Record], input_fields: Sequence[str] | None,
                    label_field: str, label_names: Sequence[str] | str | None,
                    label_order: str) -> LoadedExamples:
    first = records[0][2]
    fields = tuple(input_fields or (("sentence",) if "sentence" in first else ("text",)))
    inputs, raw = [], []
    for where, _, data in records:
        if label_field not in data:
            raise TaskFormatError(
                f"{where}: missing field {label_field!r} (fields present: {sorted(data)}){FIELD_HINT}"
            )
        inputs.append({f: string_field(data, f, where, FIELD_HINT) for f in fields})
        raw.append((where, data[label_field]))
    labels, names, source = resolve_labels(raw, label_field, label_names, label_order)
    examples = [Example(fields=f, label=label, source=record[1])
                for f, label, record in zip(inputs, labels, records, strict=True)]
    return LoadedExamples(examples, "classification", "classification", fields, "accuracy",
                          names, label_source=source)
