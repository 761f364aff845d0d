"""Read task examples from files in common formats, naming bad data precisely.

Every reader returns a :class:`LoadedExamples`: the examples (each with
``source="file:line"``), the task kind and family, the input field names,
label names (classification) and a sensible default metric. The same
readers serve the built-in catalog and a user's own files.

Formats, one module each:

- **TSV / CSV with a header** (:func:`read_delimited`, ``delimited``): named
  input column(s) and a label column (``sentence<TAB>label`` by default).
- **JSONL** (:func:`read_jsonl`, ``jsonl``): classification (``text`` +
  ``label``), QA (``context``, ``question``, ``answers``), summarization
  (``document``, ``summary``), BIG-bench exports (``input`` + ``target`` /
  ``target_scores``) or any fields you name.
- **BIG-bench** ``task.json`` (:func:`read_bigbench_json`, ``bigbench``).
- **Instruction induction** JSON (:func:`read_instruction_induction`, ``induction``).
- **Hugging Face** ``datasets`` (:func:`read_hf_disk` for a ``save_to_disk``
  directory, :func:`read_hf_dataset` for a hub split; ``hf``), only when that
  library is installed; nothing is ever downloaded implicitly by this package.

CSV/TSV, JSONL and ``datasets`` rows all become examples through one path
(:mod:`~prompt_env.tasks.loaders.records`), with the same options:
``input_field`` (one name, a list, or names separated by commas),
``label_field``, ``label_names``, ``label_order``, ``reference_field`` and
``format``. String labels are label names (sorted alphabetically unless
``label_order="first-seen"``); integer labels index ``label_names``.

:func:`read_file` picks the reader from a file's suffix (and, for ``.json``,
its content). BIG-bench ``target_scores``: when every example has the same
set of answer keys (a fixed multiple choice, e.g. yes/no), the task becomes
classification over those keys (label = the key with the highest score).
Otherwise it is generation, with the highest-scoring keys as references.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prompt_env.errors import TaskFormatError
from prompt_env.tasks.loaders.bigbench import read_bigbench_json
from prompt_env.tasks.loaders.common import LoadedExamples, read_json_document, read_text
from prompt_env.tasks.loaders.delimited import read_delimited
from prompt_env.tasks.loaders.hf import is_hf_disk_dataset, read_hf_dataset, read_hf_disk
from prompt_env.tasks.loaders.induction import read_instruction_induction
from prompt_env.tasks.loaders.jsonl import JSONL_FORMATS, detect_jsonl_format, read_jsonl
from prompt_env.tasks.loaders.records import record_options

__all__ = [
    "FILE_SUFFIXES",
    "JSONL_FORMATS",
    "LoadedExamples",
    "detect_jsonl_format",
    "is_hf_disk_dataset",
    "read_bigbench_json",
    "read_delimited",
    "read_file",
    "read_hf_dataset",
    "read_hf_disk",
    "read_instruction_induction",
    "read_jsonl",
    "read_text",
]

FILE_SUFFIXES = (".tsv", ".csv", ".txt", ".jsonl", ".json")


def read_file(path: str | Path, **options: Any) -> LoadedExamples:
    """Read ``path`` with the reader its extension (and, for .json, its content) calls for.

    ``options`` go to the reader (``input_field=``, ``label_field=``,
    ``label_names=``, ``label_order=``, ``reference_field=``, ``format=``, and
    ``delimiter=`` for CSV/TSV); an unknown option is a TaskFormatError naming the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".csv", ".txt"):
        return read_delimited(path, **record_options(options, str(path), extra=("delimiter",)))
    if suffix == ".jsonl":
        return read_jsonl(path, **record_options(options, str(path)))
    if suffix == ".json" and options:
        raise TaskFormatError(f"{path}: a .json task file (BIG-bench or instruction induction) "
                              f"takes no options, got {sorted(options)}")
    if suffix == ".json":
        document = read_json_document(path)
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
