"""TSV / CSV files with a header row (``sentence<TAB>label`` by default, or named columns)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

from prompt_env.errors import TaskFormatError
from prompt_env.tasks.loaders.common import LoadedExamples, read_text
from prompt_env.tasks.loaders.records import examples_from_records, record_options


def read_delimited(
    path: str | Path,
    *,
    input_fields: Sequence[str] | str | None = None,
    label_field: str = "label",
    label_names: Sequence[str] | str | None = None,
    label_order: str = "sorted",
    reference_field: str | None = None,
    format: str | None = None,
    delimiter: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    input_field: Sequence[str] | str | None = None,
) -> LoadedExamples:
    """A file with a header row: named input column(s) and a label (or reference) column.

    The input column defaults to ``sentence``, or ``text`` when the header has
    no ``sentence`` column (``input_field``/``input_fields``/``text_column``
    name others; several columns make several input fields). ``delimiter``
    defaults to a tab for ``.tsv``/``.txt`` files and a comma otherwise.
    Tab-separated files are split on tabs only (quotes are text); CSV files
    follow the ``csv`` module's quoting rules. Labels are integers
    ``0..len(label_names)-1`` or names: a label equal to one of ``label_names``,
    or, without ``label_names``, strings that become the label names (see
    :func:`~prompt_env.tasks.loaders.common.resolve_labels`). With
    ``reference_field`` (or ``format="qa"``/``"summarization"``/``"generation"``)
    the file is a generation task instead.
    """
    path = Path(path)
    label_field = label_column or label_field
    options = record_options({"input_fields": input_field or text_column or input_fields}, str(path))
    text = read_text(path)
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    kind_name = "tab-separated" if delimiter == "\t" else f"{delimiter!r}-separated"
    rows = _split_rows(path, text, delimiter)
    header = next(rows, None)
    if header is None or not any(cell.strip() for cell in header[1]):
        raise TaskFormatError(f"{path}: the file is empty; it needs a header row and examples")
    columns = [c.strip() for c in header[1]]
    fields = options.get("input_fields")
    if fields is None and format in (None, "classification") and reference_field is None:
        fields = ("text",) if "sentence" not in columns and "text" in columns else ("sentence",)
    needed = [*(fields or ()), *([reference_field] if reference_field else [])]
    if format in (None, "classification") and reference_field is None:
        needed.append(label_field)
    for name in needed:
        if name not in columns:
            raise TaskFormatError(
                f"{path} line 1: header has columns {columns}, but no {name!r} column; "
                "pass input_field=/label_field= (--input-field/--label-field) to name the right ones"
            )
    records = []
    for line_number, cells in rows:
        if len(cells) == 1 and not cells[0].strip():
            continue  # blank line
        where = f"{path} line {line_number}"
        if len(cells) != len(columns):
            raise TaskFormatError(
                f"{where}: expected {len(columns)} {kind_name} columns ({', '.join(columns)}), "
                f"found {len(cells)}"
            )
        records.append((where, f"{path}:{line_number}", dict(zip(columns, cells, strict=True))))
    if not records:
        raise TaskFormatError(f"{path}: the file has no example rows after the header; it needs at least one")
    if fields is not None:
        options["input_fields"] = fields
    return examples_from_records(str(path), records, format=format, label_field=label_field,
                                 reference_field=reference_field, label_names=label_names,
                                 label_order=label_order, **options)


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
