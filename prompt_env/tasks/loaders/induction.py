"""Instruction-induction JSON files: ``{"examples": {"1": {"input": ..., "output": ...}}}``."""

from __future__ import annotations

from collections.abc import Mapping
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

# Extra fields in the instruction-induction files that list further accepted answers.
_EXTRA_ANSWERS = ("possible_translations", "possible_outputs", "all_common_concepts")


def read_instruction_induction(path: str | Path) -> LoadedExamples:
    """An instruction-induction file: ``{"examples": {"1": {"input": ..., "output": ...}}}``.

    References are ``output`` followed by any alternatives the file lists
    (``possible_translations``, ``possible_outputs``). Two tasks use other
    fields and are mapped to input/output here:

    - cause_and_effect (``cause``, ``effect``): input is both sentences as
      ``"Sentence 1: ... Sentence 2: ..."`` (the cause first for odd-numbered
      examples, second for even ones, so position gives nothing away) and the
      reference is the cause sentence;
    - common_concept (``items``, ``all_common_concepts``): input is the items
      joined by commas and references are the listed concepts.
    """
    path = Path(path)
    document = read_json_document(path)
    examples = document.get("examples") if isinstance(document, dict) else None
    if not isinstance(examples, dict):
        raise TaskFormatError(
            f"{path}: expected an object with an 'examples' object keyed by number "
            "(instruction-induction format)"
        )
    if not examples:
        raise TaskFormatError(f"{path}: 'examples' is empty; it needs at least one example")
    out = []
    for key, record in examples.items():
        where = f"{path} example {key}"
        if not isinstance(record, dict):
            raise TaskFormatError(f"{where}: expected a JSON object, found {type(record).__name__}")
        out.append(_example(record, where, f"{path}:{key}", len(out)))
    return LoadedExamples(out, "generation", "instruction", ("input",), "exact_match")


def _example(record: Mapping[str, Any], where: str, source: str, position: int) -> Example:
    if "cause" in record and "effect" in record:
        cause, effect = string_field(record, "cause", where), string_field(record, "effect", where)
        first, second = (cause, effect) if position % 2 == 0 else (effect, cause)
        return Example(
            fields={"input": f"Sentence 1: {first} Sentence 2: {second}"},
            references=(cause,),
            source=source,
        )
    if "items" in record and "input" not in record:
        items = record["items"]
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise TaskFormatError(f"{where}: field 'items' should be a list of strings")
        concepts = "all_common_concepts" if "all_common_concepts" in record else "concept"
        return Example(
            fields={"input": ", ".join(items)},
            references=string_list_field(record, concepts, where),
            source=source,
        )
    if "input" not in record or "output" not in record:
        raise TaskFormatError(
            f"{where}: missing field {'input' if 'input' not in record else 'output'!r} "
            f"(fields present: {sorted(record)}); instruction-induction examples need "
            "input/output (or cause/effect, or items/concept)"
        )
    refs = [string_field(record, "output", where)]
    for extra in _EXTRA_ANSWERS:
        if isinstance(record.get(extra), list):
            refs.extend(str(v) for v in record[extra] if isinstance(v, (str, int, float)))
    return Example(
        fields={"input": string_field(record, "input", where)},
        references=tuple(dict.fromkeys(refs)),
        source=source,
    )
