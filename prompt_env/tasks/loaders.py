"""Read task examples from files in common formats, naming bad data precisely.

Every reader returns a :class:`LoadedExamples`: the examples (each with
``source="file:line"``), the task kind and family, the input field names,
label names (classification) and a sensible default metric. The same
readers serve the built-in catalog and a user's own files.

Formats:

- **TSV / CSV with a header** (:func:`read_delimited`): one text column and
  one integer label column (``sentence<TAB>label`` by default).
- **JSONL** (:func:`read_jsonl`): classification (``text`` + ``label``), QA
  (``context``, ``question``, ``answers``), summarization (``document``,
  ``summary``), BIG-bench exports (``input`` + ``target`` /
  ``target_scores``) or any fields you name.
- **BIG-bench** ``task.json`` (:func:`read_bigbench_json`).
- **Instruction induction** JSON (:func:`read_instruction_induction`).
- **Hugging Face** ``datasets`` (:func:`read_hf_dataset`), only when that
  library is installed; nothing is ever downloaded implicitly by this module.

BIG-bench ``target_scores``: when every example has the same set of answer
keys (a fixed multiple choice, e.g. yes/no), the task becomes classification
over those keys (label = the key with the highest score). Otherwise it is
generation, with the highest-scoring keys as references.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterator, Mapping, Sequence
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


# --------------------------------------------------------------------------- reading text


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


def _nonempty(path: Path, examples: list[Example], what: str = "examples") -> list[Example]:
    if not examples:
        raise TaskFormatError(f"{path}: the file has no {what}; it needs at least one")
    return examples


def _parse_label(
    value: str, where: str, column: str, label_names: Sequence[str] | None
) -> int:
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


def _finish_labels(
    path: Path, examples: list[Example], label_names: Sequence[str] | None
) -> tuple[str, ...]:
    if label_names is not None:
        return tuple(label_names)
    top = max(e.label or 0 for e in examples)
    return tuple(str(i) for i in range(top + 1))


# --------------------------------------------------------------------------- TSV / CSV


def read_delimited(
    path: str | Path,
    *,
    text_column: str | None = None,
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
    delimiter: str | None = None,
) -> LoadedExamples:
    """A classification file with a header row: one text column, one integer label column.

    ``text_column`` defaults to ``sentence``, or ``text`` when the header has
    no ``sentence`` column. ``delimiter`` defaults to a tab for ``.tsv``/``.txt`` files and a comma
    otherwise. Tab-separated files are split on tabs only (quotes are text);
    CSV files follow the ``csv`` module's quoting rules. Labels are integers
    ``0..len(label_names)-1``; a label equal to one of ``label_names`` is
    accepted too.
    """
    path = Path(path)
    text = read_text(path)
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    kind_name = "tab-separated" if delimiter == "\t" else f"{delimiter!r}-separated"
    rows = _split_rows(path, text, delimiter)
    header = next(rows, None)
    if header is None or not any(cell.strip() for cell in header[1]):
        raise TaskFormatError(f"{path}: the file is empty; it needs a header row and examples")
    _, columns = header
    columns = [c.strip() for c in columns]
    if text_column is None:
        text_column = "text" if "sentence" not in columns and "text" in columns else "sentence"
    for needed in (text_column, label_column):
        if needed not in columns:
            raise TaskFormatError(
                f"{path} line 1: header has columns {columns}, but no {needed!r} column; "
                "pass text_column=/label_column= to name the right ones"
            )
    text_index, label_index = columns.index(text_column), columns.index(label_column)
    examples = []
    for line_number, cells in rows:
        if len(cells) == 1 and not cells[0].strip():
            continue  # blank line
        where = f"{path} line {line_number}"
        if len(cells) != len(columns):
            raise TaskFormatError(
                f"{where}: expected {len(columns)} {kind_name} columns ({', '.join(columns)}), "
                f"found {len(cells)}"
            )
        label = _parse_label(cells[label_index], where, label_column, label_names)
        examples.append(
            Example(
                fields={text_column: cells[text_index]},
                label=label,
                source=f"{path}:{line_number}",
            )
        )
    _nonempty(path, examples, "example rows after the header")
    return LoadedExamples(
        examples=examples,
        kind="classification",
        family="classification",
        input_fields=(text_column,),
        metric="accuracy",
        label_names=_finish_labels(path, examples, label_names),
    )


def _split_rows(path: Path, text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) per row; line numbers are 1-based physical lines."""
    if delimiter == "\t":
        for number, line in enumerate(text.splitlines(), start=1):
            yield number, line.split("\t")
        return
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    start = 1
    try:
        for cells in reader:
            yield start, cells if cells else [""]
            start = reader.line_num + 1
    except csv.Error as error:
        raise TaskFormatError(f"{path} line {reader.line_num}: {error}") from None


# --------------------------------------------------------------------------- JSON lines


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


def _string(record: Mapping[str, Any], key: str, where: str) -> str:
    if key not in record:
        raise TaskFormatError(f"{where}: missing field {key!r} (fields present: {sorted(record)})")
    value = record[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise TaskFormatError(f"{where}: field {key!r} should be a string, found {type(value).__name__}")
    return value


def _string_list(record: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
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


JSONL_FORMATS = ("classification", "qa", "summarization", "bigbench", "generation")


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
        return _bigbench_examples(path, records)
    if format == "classification":
        first = records[0][1]
        fields = tuple(input_fields or (("sentence",) if "sentence" in first else ("text",)))
        examples = []
        for number, record in records:
            where = f"{path} line {number}"
            if label_field not in record:
                raise TaskFormatError(f"{where}: missing field {label_field!r} (fields present: {sorted(record)})")
            label = _parse_label(str(record[label_field]), where, label_field, label_names)
            examples.append(
                Example(
                    fields={f: _string(record, f, where) for f in fields},
                    label=label,
                    source=f"{path}:{number}",
                )
            )
        return LoadedExamples(
            examples, "classification", "classification", fields, "accuracy",
            _finish_labels(path, examples, label_names),
        )
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
                fields={f: _string(record, f, where) for f in fields},
                references=_string_list(record, ref_field, where),
                source=f"{path}:{number}",
            )
        )
    return LoadedExamples(examples, "generation", family, fields, metric)


# --------------------------------------------------------------------------- BIG-bench


def _bigbench_examples(path: Path, records: Sequence[tuple[int, Mapping[str, Any]]]) -> LoadedExamples:
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
                    fields={"input": _string(record, "input", where_of(number))},
                    label=best,
                    source=f"{path}:{abs(number)}",
                )
            )
        return LoadedExamples(examples, "classification", "classification", ("input",), "accuracy", tuple(names))
    examples = []
    for number, record in records:
        where = where_of(number)
        if "target" in record:
            refs = _string_list(record, "target", where)
        else:
            scores = record["target_scores"]
            top = max(scores.values())
            refs = tuple(k for k, v in scores.items() if v == top)
        examples.append(
            Example(fields={"input": _string(record, "input", where)}, references=refs, source=f"{path}:{abs(number)}")
        )
    return LoadedExamples(examples, "generation", "instruction", ("input",), "exact_match")


def _load_json_document(path: Path) -> Any:
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


def read_bigbench_json(path: str | Path) -> LoadedExamples:
    """A BIG-bench ``task.json``: ``{"examples": [{"input", "target" | "target_scores"}]}``.

    Sources are ``file:N`` with N the 1-based example number (JSON documents
    have no meaningful per-example line).
    """
    path = Path(path)
    document = _load_json_document(path)
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
    return _bigbench_examples(path, records)


# --------------------------------------------------------------------------- instruction induction

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
    document = _load_json_document(path)
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
        out.append(_ii_example(record, where, f"{path}:{key}", len(out)))
    return LoadedExamples(out, "generation", "instruction", ("input",), "exact_match")


def _ii_example(record: Mapping[str, Any], where: str, source: str, position: int) -> Example:
    if "cause" in record and "effect" in record:
        cause, effect = _string(record, "cause", where), _string(record, "effect", where)
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
        return Example(
            fields={"input": ", ".join(items)},
            references=_string_list(record, "all_common_concepts" if "all_common_concepts" in record else "concept", where),
            source=source,
        )
    if "input" not in record or "output" not in record:
        raise TaskFormatError(
            f"{where}: missing field {'input' if 'input' not in record else 'output'!r} "
            f"(fields present: {sorted(record)}); instruction-induction examples need "
            "input/output (or cause/effect, or items/concept)"
        )
    refs = [_string(record, "output", where)]
    for extra in _EXTRA_ANSWERS:
        if isinstance(record.get(extra), list):
            refs.extend(str(v) for v in record[extra] if isinstance(v, (str, int, float)))
    return Example(
        fields={"input": _string(record, "input", where)},
        references=tuple(dict.fromkeys(refs)),
        source=source,
    )


# --------------------------------------------------------------------------- Hugging Face datasets


def read_hf_dataset(
    name: str,
    split: str,
    *,
    config: str | None = None,
    text_field: str = "text",
    label_field: str = "label",
) -> LoadedExamples:
    """A classification split from the ``datasets`` library (optional dependency).

    Whether it downloads is up to ``datasets`` and its cache settings; this
    package never calls it on its own. Without the library installed, raise
    :class:`DataNotFoundError` explaining how to use local files instead.
    """
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise DataNotFoundError(
            f"loading {name!r} from Hugging Face needs the 'datasets' package, which is not "
            "installed; export the split to TSV/CSV/JSONL and pass its path to load_task(), "
            "or set PROMPT_ENV_DATA to a data directory"
        ) from None
    rows = datasets.load_dataset(name, config, split=split)
    examples = []
    names = None
    feature = getattr(rows, "features", {}).get(label_field)
    if feature is not None and hasattr(feature, "names"):
        names = tuple(feature.names)
    for i, row in enumerate(rows):
        where = f"{name}[{split}] row {i}"
        examples.append(
            Example(
                fields={text_field: _string(row, text_field, where)},
                label=_parse_label(str(row[label_field]), where, label_field, names),
                source=f"{name}/{split}:{i}",
            )
        )
    if not examples:
        raise TaskFormatError(f"{name}[{split}]: the split is empty")
    return LoadedExamples(
        examples, "classification", "classification", (text_field,), "accuracy",
        names or tuple(str(i) for i in range(max(e.label or 0 for e in examples) + 1)),
    )


# --------------------------------------------------------------------------- by file type

FILE_SUFFIXES = (".tsv", ".csv", ".txt", ".jsonl", ".json")


def read_file(path: str | Path, **options: Any) -> LoadedExamples:
    """Read ``path`` with the reader its extension (and, for .json, its content) calls for.

    ``options`` go to the reader (e.g. ``text_column=``, ``label_names=``,
    ``format=``).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".csv", ".txt"):
        return read_delimited(path, **options)
    if suffix == ".jsonl":
        return read_jsonl(path, **options)
    if suffix == ".json":
        document = _load_json_document(path)
        examples = document.get("examples") if isinstance(document, dict) else None
        if isinstance(examples, dict):
            return read_instruction_induction(path)
        if isinstance(examples, list):
            return read_bigbench_json(path)
        raise TaskFormatError(
            f"{path}: a .json task file needs an 'examples' list (BIG-bench) or an 'examples' "
            "object keyed by number (instruction induction)"
        )
    raise TaskFormatError(
        f"{path}: unsupported file type {suffix or '(none)'}; use one of {', '.join(FILE_SUFFIXES)}"
    )
