"""BIG-bench examples: ``task.json`` files and JSONL exports (``input`` + ``target``/``target_scores``).

``target_scores``: when every example has the same set of answer keys (a
fixed multiple choice, e.g. yes/no), the task becomes classification over
those keys (label = the key with the highest score). Otherwise it is
generation, with the highest-scoring keys as references.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prompt_env.errors import TaskFormatError
from prompt_env.tasks.base import Example
from prompt_env.tasks.loaders.common import (
    LoadedExamples,
    read_json_document,
    string_field,
    string_list_field,
)


def bigbench_examples(path: Path, records: Sequence[tuple[int, Mapping[str, Any]]]) -> LoadedExamples:
    """BIG-bench examples (``input`` with ``target`` or ``target_scores``).

    ``records`` carry positive line numbers (JSONL) or negated example numbers (task.json).
    """

    def where_of(number: int) -> str:
        return f"{path} line {number}" if number > 0 else f"{path} example {-number}"

    for number, record in records:
        where = where_of(number)
        if "input" not in record:
            raise TaskFormatError(f"{where}: missing field 'input' (fields present: {sorted(record)})")
        if "target" not in record and "target_scores" not in record:
            raise TaskFormatError(f"{where}: needs 'target' or 'target_scores' (fields present: {sorted(record)})")
        scores = record.get("target_scores")
        if scores is not None and (
            not isinstance(scores, dict)
            or not scores
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scores.values())
        ):
            raise TaskFormatError(f"{where}: 'target_scores' should be a non-empty object of numbers")

    key_sets = {tuple(r["target_scores"]) for _, r in records if "target_scores" in r}
    all_scored = all("target_scores" in r for _, r in records)
    if all_scored and len(key_sets) == 1:
        names = next(iter(key_sets))
        examples = []
        for number, record in records:
            scores = record["target_scores"]
            best = max(range(len(names)), key=lambda i: scores[names[i]])
            examples.append(
                Example(
                    fields={"input": string_field(record, "input", where_of(number))},
                    label=best,
                    source=f"{path}:{abs(number)}",
                )
            )
        return LoadedExamples(examples, "classification", "classification", ("input",), "accuracy", tuple(names))
    examples = []
    for number, record in records:
        where = where_of(number)
        if "target" in record:
            refs = string_list_field(record, "target", where)
        else:
            scores = record["target_scores"]
            top = max(scores.values())
            refs = tuple(k for k, v in scores.items() if v == top)
        examples.append(
            Example(fields={"input": string_field(record, "input", where)}, references=refs,
                    source=f"{path}:{abs(number)}")
        )
    return LoadedExamples(examples, "generation", "instruction", ("input",), "exact_match")


def read_bigbench_json(path: str | Path) -> LoadedExamples:
    """A BIG-bench ``task.json``: ``{"examples": [{"input", "target" | "target_scores"}]}``.

    Sources are ``file:N`` with N the 1-based example number (JSON documents
    have no meaningful per-example line).
    """
    path = Path(path)
    document = read_json_document(path)
    examples = document.get("examples") if isinstance(document, dict) else None
    if not isinstance(examples, list):
        raise TaskFormatError(f"{path}: expected an object with an 'examples' list (BIG-bench task.json)")
    if not examples:
        raise TaskFormatError(f"{path}: 'examples' is empty; it needs at least one example")
    records = []
    for i, record in enumerate(examples, start=1):
        if not isinstance(record, dict):
            raise TaskFormatError(f"{path} example {i}: expected a JSON object, found {type(record).__name__}")
        records.append((-i, record))
    return bigbench_examples(path, records)
